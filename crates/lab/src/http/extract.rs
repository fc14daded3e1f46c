//! Turning outside input into typed values: JSON bodies, the admin token. The service's rules
//! (JSON only, at most 4 KiB, the field at fault named), answered as [`LabError`]s.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::error::LabError;

/// The largest request body accepted: every body of the lab is a few dozen bytes.
pub const MAX_BODY_BYTES: usize = 4096;

/// A JSON request body, parsed into `T` by the service's parser (which names the field at
/// fault).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = LabError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, LabError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req.mime_type().ok().flatten().is_some_and(|m| {
            m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
        });
        let mut payload = payload.take();
        Box::pin(async move {
            if !is_json {
                return Err(LabError::UnsupportedMediaType);
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| LabError::InvalidRequest("the request body could not be read".into()))?;
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(LabError::PayloadTooLarge(MAX_BODY_BYTES));
                }
                body.extend_from_slice(&chunk);
            }
            coupon_issuer::http::parse_json(&body)
                .map(JsonBody)
                .map_err(|e| LabError::InvalidRequest(e.to_string()))
        })
    }
}

/// The admin token the lab was started with; `None`: every admin request answers 401.
#[derive(Clone)]
pub struct AdminToken(pub Option<String>);

/// Proof that the request carries the admin token. Compared in constant time, so the token
/// cannot be guessed byte by byte from response timings.
pub struct Admin;

impl FromRequest for Admin {
    type Error = LabError;
    type Future = std::future::Ready<Result<Self, LabError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let expected = req.app_data::<web::Data<AdminToken>>().and_then(|t| t.0.clone());
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = match (expected, given) {
            (Some(expected), Some(given)) => bool::from(expected.as_bytes().ct_eq(given.as_bytes())),
            _ => false,
        };
        std::future::ready(if ok { Ok(Admin) } else { Err(LabError::Unauthorized) })
    }
}
