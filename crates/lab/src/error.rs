//! [`LabError`]: the lab's one error type, mapped to HTTP here and nowhere else.
//!
//! Every error answers `{"error": {"code": "...", "message": "..."}}`, the service's shape, with
//! the codes the lab answered when it was mounted inside the service: `invalid_request`,
//! `unauthorized`, `not_found` (an unknown strategy or path), `lab_coupon_not_found`,
//! `already_issued`, `sold_out`, `unavailable`, `internal`. Internal failures are logged with
//! their cause and answered without it.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A malformed body, a bad user or coupon id: the message names the field.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body must be JSON, sent with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("a valid admin token is required (Authorization: Bearer <token>)")]
    Unauthorized,
    /// No such route, or no such strategy in `/v1/lab/{strategy}/...`.
    #[error("no such route")]
    RouteNotFound,
    /// No lab coupon with this id has been set up.
    #[error("no such lab coupon")]
    CouponNotFound,
    /// The user already holds a unit of this lab coupon.
    #[error("you already hold this coupon")]
    AlreadyIssued,
    #[error("today's coupons are all gone")]
    SoldOut,
    /// The strategy's own back-pressure: a full queue, a lock not won in time, too many
    /// optimistic conflicts. Retrying later is the answer.
    #[error("the service is busy or a dependency is unavailable ({0}); retry shortly")]
    Busy(&'static str),
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    RedisTimeout(Duration),
}

/// Seconds a client should wait before retrying a 503 (the service's value).
const RETRY_AFTER_SECS: &str = "1";

impl LabError {
    pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::InvalidRequest(format!("{field}: {problem}"))
    }

    /// What a failure of Postgres or Redis means for the client. Postgres down or overloaded,
    /// and any Redis error (a timeout, a dropped connection, a failover), is "ask again later";
    /// any other Postgres error is a bug. As the service decides.
    fn unavailable(&self) -> Option<&'static str> {
        match self {
            Self::Busy(reason) => Some(reason),
            Self::Postgres(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_),
            ) => Some("postgres"),
            Self::Redis(_) | Self::RedisTimeout(_) => Some("redis"),
            _ => None,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unauthorized => "unauthorized",
            Self::RouteNotFound => "not_found",
            Self::CouponNotFound => "lab_coupon_not_found",
            Self::AlreadyIssued => "already_issued",
            Self::SoldOut => "sold_out",
            _ if self.unavailable().is_some() => "unavailable",
            _ => "internal",
        }
    }

    /// For people; an internal failure's text stays in the log.
    fn message(&self) -> String {
        match (self.unavailable(), self) {
            (Some(reason), _) => {
                format!("the service is busy or a dependency is unavailable ({reason}); retry shortly")
            }
            (None, Self::Postgres(_)) => "internal error".into(),
            _ => self.to_string(),
        }
    }
}

impl ResponseError for LabError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::RouteNotFound | Self::CouponNotFound => StatusCode::NOT_FOUND,
            Self::AlreadyIssued => StatusCode::CONFLICT,
            Self::SoldOut => StatusCode::GONE,
            _ if self.unavailable().is_some() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self.unavailable() {
            Some(_) if matches!(self, Self::Busy(_)) => {}
            Some(_) => tracing::warn!(error = %self, "lab: a dependency is unavailable"),
            None if self.status_code().is_server_error() => tracing::error!(error = %self, "lab: internal error"),
            None => {}
        }
        if self.unavailable().is_some() {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS)));
        }
        if let Self::Unauthorized = self {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.json(json!({ "error": { "code": self.code(), "message": self.message() } }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_pressure_and_dependencies_are_503_and_other_database_errors_500() {
        assert_eq!(
            LabError::Busy("the queue is full").status_code(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(LabError::Postgres(sqlx::Error::PoolTimedOut).code(), "unavailable");
        assert_eq!(LabError::RedisTimeout(Duration::from_secs(1)).code(), "unavailable");
        let bug = LabError::Postgres(sqlx::Error::RowNotFound);
        assert_eq!(
            (bug.status_code(), bug.code()),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        );
        assert_eq!(bug.message(), "internal error");
    }
}
