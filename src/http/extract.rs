//! Turning outside input into typed values: JSON bodies, the admin token.
//!
//! Written here rather than with actix's `Json` extractor so that every way a body can be wrong
//! (too big, not JSON, the wrong shape) answers in the API's own error format, and so the
//! message names the field at fault (via `serde_path_to_error`).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;

/// The largest request body accepted: every body of this API is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 4096;

/// A JSON request body, parsed into `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let checked = check_headers(req);
        let mut payload = payload.take();
        Box::pin(async move {
            checked?;
            // A body this small mostly arrives in one chunk: that one is parsed where it lies,
            // and only a body in several is copied into one buffer.
            let mut first: Option<web::Bytes> = None;
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| ApiError::InvalidRequest("the request body could not be read".into()))?;
                let held = first.as_ref().map_or(0, web::Bytes::len);
                if held + body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
                }
                match first.take() {
                    None if body.is_empty() => first = Some(chunk),
                    held => {
                        if let Some(held) = held {
                            body.extend_from_slice(&held);
                        }
                        body.extend_from_slice(&chunk);
                    }
                }
            }
            match &first {
                Some(whole) => parse_json(whole),
                None => parse_json(&body),
            }
            .map(JsonBody)
        })
    }
}

fn check_headers(req: &HttpRequest) -> Result<(), ApiError> {
    // `application/json` exactly, as nearly every client sends it, is told without parsing the
    // header as a MIME type; anything else (parameters, `+json` suffixes, odd case) is parsed.
    let exactly_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/json");
    let is_json = exactly_json
        || req.mime_type().ok().flatten().is_some_and(|m| {
            m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
        });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(n) if n > MAX_BODY_BYTES => Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES)),
        _ => Ok(()),
    }
}

/// Parses JSON, naming the field at fault: "daily_limit: invalid type: string, expected i64".
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // serde would also read a struct from an array, positionally; every body here is an object.
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => {
            return Err(ApiError::InvalidRequest(
                "request body: empty; send a JSON object".into(),
            ));
        }
        Some(b'{') => {}
        Some(_) => return Err(ApiError::InvalidRequest("request body: must be a JSON object".into())),
    }
    // The plain parse first: tracking the path costs every request, and only a body that fails
    // needs it, so that one is parsed again to name the field at fault.
    let mut de = serde_json::Deserializer::from_slice(body);
    if let Ok(parsed) = T::deserialize(&mut de).and_then(|parsed| de.end().map(|()| parsed)) {
        return Ok(parsed);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let problem = inner.to_string();
        if path == "." || path == "?" {
            ApiError::InvalidRequest(format!("request body: {problem}"))
        } else {
            ApiError::invalid(&path, problem)
        }
    })?;
    de.end()
        .map_err(|e| ApiError::InvalidRequest(format!("request body: {e}")))?;
    Ok(parsed)
}

/// Proof that the request carries the admin token. Compared in constant time, so the token
/// cannot be guessed byte by byte from response timings. No token configured: always refused.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>();
        let ok = carries_token(req, state.and_then(|s| s.admin_token.as_deref()));
        std::future::ready(if ok { Ok(Admin) } else { Err(ApiError::Unauthorized) })
    }
}

/// Whether the request's `Authorization: Bearer` token is `expected`, compared in constant time.
/// No token expected: never (the lab's admin routes ask the same way).
pub fn carries_token(req: &HttpRequest, expected: Option<&str>) -> bool {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (expected, given) {
        (Some(expected), Some(given)) => bool::from(expected.as_bytes().ct_eq(given.as_bytes())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        event_id: String,
        n: i64,
    }

    fn message(body: &str) -> String {
        match parse_json::<Body>(body.as_bytes()) {
            Err(ApiError::InvalidRequest(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert!(message(r#"{"event_id": "x", "n": "7"}"#).starts_with("n: invalid type"));
        assert!(message(r#"{"n": 7}"#).contains("missing field `event_id`"));
        assert!(message(r#"{"event_id": "x", "n": 7, "extra": 1}"#).contains("unknown field `extra`"));
        let not_an_object = message(r#"[1, 2]"#);
        assert_eq!(not_an_object, "request body: must be a JSON object");
        assert_eq!(message("null"), "request body: must be a JSON object");
        assert!(message("").contains("empty"));
        assert!(message(r#"{"event_id": "x", "n": 7} trailing"#).starts_with("request body: trailing"));
        assert!(message(r#"{"event_id": "x", "#).contains("EOF while parsing"));
    }
}
