//! The one error type of the HTTP API, mapped to status codes in one place.
//!
//! Every error answers `{"error": {"code": "...", "message": "..."}}`. `code` is stable and
//! machine-readable; `message` is for people. Internal failures are logged with their cause
//! chain and answered without it: no SQL, Redis or stack details ever reach a client.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};

use crate::catalog::CatalogError;
use crate::domain::Coupon;
use crate::issuing::RedisFailure;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON, a missing or badly typed field, a bad id: the message names the field.
    #[error("{0}")]
    InvalidRequest(String),
    /// An event definition whose fields are each valid but do not fit together (it ends before
    /// it starts, has more shards than its daily limit): rules the OpenAPI schema cannot state.
    #[error("{0}")]
    InvalidCombination(String),
    #[error("a valid admin token is required (Authorization: Bearer <token>)")]
    Unauthorized,
    #[error("no such event")]
    EventNotFound,
    #[error("no such coupon")]
    CouponNotFound,
    #[error("no such route")]
    RouteNotFound,
    /// A known path, asked with a method it does not answer; carries the ones it does, as the
    /// `Allow` header lists them ("GET, PATCH").
    #[error("this path answers only {0}")]
    MethodNotAllowed(String),
    #[error("this coupon belongs to another user")]
    NotOwner,
    #[error("coupons are not being issued yet: the event or today's window has not opened")]
    NotOpen,
    #[error("coupons are no longer being issued: today's window or the event has closed")]
    Closed,
    /// Carries the coupon the user already holds today, which the answer includes.
    #[error("you already hold today's coupon")]
    AlreadyIssued(Box<Coupon>),
    #[error("this coupon has already been used")]
    AlreadyRedeemed,
    #[error("today's coupons are all gone")]
    SoldOut,
    /// A sharded event's daily limit can be lowered, not raised; carries the current limit.
    #[error("a sharded event's daily limit cannot be raised (it is {0}); it can be lowered")]
    ShardedLimitRaise(u32),
    #[error("this coupon has expired")]
    Expired,
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body must be JSON, sent with Content-Type: application/json")]
    UnsupportedMediaType,
    /// Redis or Postgres did not answer in time, or the service is at its in-flight limit.
    /// The reason is for people; it never carries an error's text.
    #[error("the service is busy or a dependency is unavailable ({0}); retry shortly")]
    Unavailable(&'static str),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// `AUTH_MODE=jwt`: no user token, or one that does not verify.
    #[error("{0}")]
    Unauthenticated(TokenProblem),
    /// `AUTH_MODE=jwt`: the request names a user other than the token's.
    #[error("the request names a user other than the one the token was issued to")]
    UserMismatch,
    /// Too many requests from this client or for this user; retry after this many seconds.
    #[error("too many requests; retry after {0} s")]
    RateLimited(u64),
}

/// Why a user token was refused. Each has its own stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    #[error("a user token is required (Authorization: Bearer <JWT>)")]
    Missing,
    #[error("the user token has expired")]
    Expired,
    #[error("the user token is not a well-formed JWT")]
    Malformed,
    /// A bad signature, another algorithm (`none` included), the wrong issuer or audience, not
    /// yet valid, or no usable `sub`. One code for all: the caller can only get a new token.
    #[error("the user token is not valid here")]
    Invalid,
}

impl TokenProblem {
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "token_missing",
            Self::Expired => "token_expired",
            Self::Malformed => "token_malformed",
            Self::Invalid => "token_invalid",
        }
    }
}

impl ApiError {
    pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::InvalidRequest(format!("{field}: {problem}"))
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidCombination(_) => "invalid_combination",
            Self::Unauthorized => "unauthorized",
            Self::EventNotFound => "event_not_found",
            Self::CouponNotFound => "coupon_not_found",
            Self::RouteNotFound => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::NotOwner => "not_owner",
            Self::NotOpen => "not_open",
            Self::Closed => "closed",
            Self::AlreadyIssued(_) => "already_issued",
            Self::AlreadyRedeemed => "already_redeemed",
            Self::SoldOut => "sold_out",
            Self::ShardedLimitRaise(_) => "sharded_limit_raise",
            Self::Expired => "expired",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
            Self::Unauthenticated(problem) => problem.code(),
            Self::UserMismatch => "user_mismatch",
            Self::RateLimited(_) => "rate_limited",
        }
    }

    /// The JSON body this error is answered with (also the OpenAPI document's examples).
    pub fn body(&self) -> Value {
        let mut body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        if let Self::AlreadyIssued(coupon) = self {
            body["coupon"] = json!(coupon);
        }
        body
    }
}

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "1";

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InvalidCombination(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotOwner | Self::NotOpen | Self::Closed => StatusCode::FORBIDDEN,
            Self::EventNotFound | Self::CouponNotFound | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::AlreadyIssued(_) | Self::AlreadyRedeemed | Self::ShardedLimitRaise(_) => StatusCode::CONFLICT,
            Self::SoldOut | Self::Expired => StatusCode::GONE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::UserMismatch => StatusCode::FORBIDDEN,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!(error = ?cause, "internal error");
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Self::Unavailable(_) = self {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS)));
        }
        if let Self::Unauthorized = self {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        match self {
            // RFC 6750: no error attribute when no token was sent at all.
            Self::Unauthenticated(TokenProblem::Missing) => {
                response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            Self::Unauthenticated(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                ));
            }
            Self::RateLimited(secs) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from(*secs)));
            }
            Self::MethodNotAllowed(allow) => {
                if let Ok(allow) = HeaderValue::from_str(allow) {
                    response.insert_header((header::ALLOW, allow));
                }
            }
            _ => {}
        }
        response.json(self.body())
    }
}

impl From<RedisFailure> for ApiError {
    fn from(e: RedisFailure) -> Self {
        match e {
            RedisFailure::BadReply(_) => Self::Internal(e.into()),
            _ => {
                tracing::warn!(error = %e, "redis unavailable");
                Self::Unavailable("redis")
            }
        }
    }
}

/// Postgres being down or overloaded is a 503, not a bug; any other failure of the store is.
/// Every variant is named, so a new kind of store failure must be placed on one side.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::PoolTimedOut | StoreError::PoolClosed | StoreError::Unreachable(_) => {
                tracing::warn!(error = %e, "postgres unavailable");
                Self::Unavailable("postgres")
            }
            StoreError::Refused(_) | StoreError::BadRow(_) | StoreError::Other(_) => Self::Internal(e.into()),
        }
    }
}

/// A limit change: Postgres as the store counts it; Redis as the issue path counts it
/// (`From<RedisFailure>`): any error from the client (a timeout, a dropped or refused
/// connection, a failover) means "ask again later", and the change, stored in Postgres but not
/// yet in Redis, is safe to repeat.
impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Store(e) => e.into(),
            CatalogError::Redis(e) => {
                tracing::warn!(error = %e, "redis unavailable");
                Self::Unavailable("redis")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_error_under_an_admin_change_is_a_503_not_a_500() {
        let timeout = || redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        let e = CatalogError::from(timeout());
        assert_eq!(ApiError::from(e).status_code(), StatusCode::SERVICE_UNAVAILABLE);
        let e = CatalogError::from(StoreError::PoolTimedOut);
        assert_eq!(ApiError::from(e).status_code(), StatusCode::SERVICE_UNAVAILABLE);
        let e = CatalogError::from(StoreError::BadRow("x".into()));
        assert_eq!(ApiError::from(e).status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn postgres_down_is_a_503_and_a_bad_query_a_500() {
        let status = |e: StoreError| ApiError::from(e).status_code();
        assert_eq!(
            status(sqlx::Error::PoolTimedOut.into()),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(sqlx::Error::PoolClosed.into()), StatusCode::SERVICE_UNAVAILABLE);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(status(sqlx::Error::Io(reset).into()), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            status(sqlx::Error::RowNotFound.into()),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status(StoreError::BadRow("a stored window out of range".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
