//! Turning outside input into typed values: JSON bodies, the admin token. The service's rules
//! (JSON only, at most 4 KiB, the field at fault named), answered as [`LabError`]s.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use coupon_issuer::http::ApiError;
use serde::de::DeserializeOwned;

use crate::error::LabError;

/// A JSON request body, read by the service's own extractor (JSON only, at most 4 KiB, the field
/// at fault named), so the lab's bodies are refused exactly as the service's are.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = LabError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, LabError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = coupon_issuer::http::JsonBody::<T>::from_request(req, payload);
        Box::pin(async move { body.await.map(|body| JsonBody(body.0)).map_err(refused_body) })
    }
}

/// The service's refusals of a body, in the lab's codes (the same codes: `invalid_request`,
/// `payload_too_large`, `unsupported_media_type`).
fn refused_body(e: ApiError) -> LabError {
    match e {
        ApiError::UnsupportedMediaType => LabError::UnsupportedMediaType,
        ApiError::PayloadTooLarge(limit) => LabError::PayloadTooLarge(limit),
        other => LabError::InvalidRequest(other.to_string()),
    }
}

/// The admin token the lab was started with; `None`: every admin request answers 401.
#[derive(Clone)]
pub struct AdminToken(pub Option<String>);

/// Proof that the request carries the admin token (the service's constant-time check).
pub struct Admin;

impl FromRequest for Admin {
    type Error = LabError;
    type Future = std::future::Ready<Result<Self, LabError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req.app_data::<web::Data<AdminToken>>();
        let ok = coupon_issuer::http::carries_token(req, token.and_then(|t| t.0.as_deref()));
        std::future::ready(if ok { Ok(Admin) } else { Err(LabError::Unauthorized) })
    }
}
