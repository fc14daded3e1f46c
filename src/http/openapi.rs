//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` annotations, served
//! at `/openapi.json` and browsable at `/swagger-ui/` (assets built into the binary).
//!
//! Success responses are annotated on each handler. Error responses are added here from one
//! table ([`errors_of`]) and their examples are the bodies [`ApiError`] itself produces, so the
//! document shows exactly what a client receives and cannot drift from it.
//!
//! There are two documents, one per `AUTH_MODE`: with `body` the user id is a required field of
//! each user request and no user token is involved; with `jwt` the user comes from a bearer
//! token and the field is optional. The service serves the one it runs with. docs/openapi.md
//! says what the document promises and how schemathesis checks it.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use actix_web::ResponseError;
use actix_web::http::Method;
use chrono::{DateTime, NaiveDate};
use serde_json::Value;
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::AdditionalProperties;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, ResponseBuilder, Schema, Type};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use super::error::{ApiError, TokenProblem};
use super::extract::MAX_BODY_BYTES;
use super::{count, coupons, events, health, issue, openapi_links};
use crate::domain::{Coupon, CouponId, EventId, UserId};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "coupon-issuer",
        description = "Limited, first-come coupons for flash sales. Every error answers \
            `{\"error\": {\"code\": \"...\", \"message\": \"...\"}}`; `code` is stable and \
            machine-readable (see the `ErrorCode` schema). A path the API does not have answers \
            404 `not_found`.",
    ),
    paths(
        issue::issue,
        count::count,
        coupons::for_user,
        coupons::redeem,
        events::create,
        events::list,
        events::show,
        events::set_limit,
        health::healthz,
        health::readyz,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&SharedComponents),
    tags(
        (name = "coupons", description = "Issuing, counting and redeeming coupons"),
        (name = "admin", description = "Events; needs `Authorization: Bearer <ADMIN_TOKEN>`"),
        (name = "health", description = "Liveness and readiness"),
    ),
)]
pub struct ApiDoc;

/// Built once per mode: every worker serves the same document.
static BODY_MODE: LazyLock<Value> = LazyLock::new(|| build(false));
static JWT_MODE: LazyLock<Value> = LazyLock::new(|| build(true));

/// The document of a service whose users are named in the request (`jwt == false`, the default
/// `AUTH_MODE=body`) or carry a token (`AUTH_MODE=jwt`), as served.
pub fn document(jwt: bool) -> &'static Value {
    if jwt { &JWT_MODE } else { &BODY_MODE }
}

fn build(jwt: bool) -> Value {
    let mut doc = ApiDoc::openapi();
    if jwt {
        user_token(&mut doc);
    }
    ErrorResponses { jwt }.modify(&mut doc);
    let mut doc = serde_json::to_value(doc).unwrap_or_else(|e| unreachable!("a document always serializes: {e}"));
    // On the JSON: utoipa 5.5 spells a link's fields in snake_case, which OpenAPI does not read.
    // After the error responses: a link starts from `already_issued` (409) too.
    openapi_links::add(&mut doc);
    doc
}

/// `/swagger-ui/` and the document it shows, `/openapi.json`.
pub fn swagger_ui(jwt: bool) -> SwaggerUi {
    SwaggerUi::new("/swagger-ui/{_:.*}").external_url_unchecked("/openapi.json", document(jwt).clone())
}

/// The operations that act for a user: in `jwt` mode they take the user's token.
fn for_a_user(method: &Method, path: &str) -> bool {
    matches!(
        (method.as_str(), path),
        ("POST", "/v1/coupon/issue" | "/v1/coupons/{coupon_id}/redeem") | ("GET", "/v1/users/{user_id}/coupons")
    )
}

/// `AUTH_MODE=jwt`: the user token's scheme on each user operation, and `user_id` optional in
/// their bodies (the token names the user; a `user_id` given, or null, must agree with it).
fn user_token(doc: &mut utoipa::openapi::OpenApi) {
    let scheme = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .description(Some("A user token (AUTH_MODE=jwt); its `sub` is the user"))
        .build();
    if let Some(components) = doc.components.as_mut() {
        components.add_security_scheme("user_token", SecurityScheme::Http(scheme));
        for name in ["IssueRequest", "RedeemRequest"] {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
                object.required.retain(|field| field != "user_id");
                let user = Ref::from_schema_name("UserId");
                let nullable = utoipa::openapi::schema::OneOfBuilder::new()
                    .item(user)
                    .item(ObjectBuilder::new().schema_type(Type::Null));
                object.properties.insert("user_id".into(), RefOr::T(nullable.into()));
            }
        }
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, operation) in [(Method::GET, item.get.as_mut()), (Method::POST, item.post.as_mut())] {
            if let Some(operation) = operation.filter(|_| for_a_user(&method, path)) {
                let requirement =
                    utoipa::openapi::security::SecurityRequirement::new("user_token", Vec::<String>::new());
                operation.security = Some(vec![requirement]);
            }
        }
    }
}

/// The error body every failure answers with.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `ApiError::body` builds the JSON
pub struct ErrorBody {
    error: ErrorDetail,
    /// Only with `already_issued`: the coupon the user already holds today.
    coupon: Option<Coupon>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    #[schema(schema_with = error_code_ref)]
    code: String,
    /// For people; may change. Names the field at fault for `invalid_request`.
    message: String,
}

fn error_code_ref() -> Ref {
    Ref::from_schema_name("ErrorCode")
}

/// The stable codes, as an enum: a client can switch on them.
fn error_code_schema() -> Schema {
    let codes: Vec<&str> = every_error().iter().map(ApiError::code).collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes))
        .description(Some("Stable, machine-readable error code."))
        .build()
        .into()
}

/// One of each error the API can answer with. The exhaustive match fails to compile when a
/// variant is added, which is the reminder to list it here (and in [`errors_of`]).
pub fn every_error() -> Vec<ApiError> {
    let all = vec![
        ApiError::InvalidRequest("event_id: must be a UUID like 0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10".into()),
        ApiError::InvalidCombination("ends_on: must not be before starts_on".into()),
        ApiError::MethodNotAllowed("GET, PATCH".into()),
        ApiError::Unauthorized,
        ApiError::EventNotFound,
        ApiError::CouponNotFound,
        ApiError::RouteNotFound,
        ApiError::NotOwner,
        ApiError::NotOpen,
        ApiError::Closed,
        ApiError::AlreadyIssued(Box::new(example_coupon())),
        ApiError::AlreadyRedeemed,
        ApiError::SoldOut,
        ApiError::ShardedLimitRaise(1000),
        ApiError::Expired,
        ApiError::PayloadTooLarge(MAX_BODY_BYTES),
        ApiError::UnsupportedMediaType,
        ApiError::Unavailable("redis"),
        ApiError::Internal(anyhow::anyhow!("example")),
        ApiError::Unauthenticated(TokenProblem::Missing),
        ApiError::Unauthenticated(TokenProblem::Expired),
        ApiError::Unauthenticated(TokenProblem::Malformed),
        ApiError::Unauthenticated(TokenProblem::Invalid),
        ApiError::UserMismatch,
        ApiError::RateLimited(1),
    ];
    for e in &all {
        match e {
            ApiError::InvalidRequest(_)
            | ApiError::InvalidCombination(_)
            | ApiError::MethodNotAllowed(_)
            | ApiError::Unauthorized
            | ApiError::EventNotFound
            | ApiError::CouponNotFound
            | ApiError::RouteNotFound
            | ApiError::NotOwner
            | ApiError::NotOpen
            | ApiError::Closed
            | ApiError::AlreadyIssued(_)
            | ApiError::AlreadyRedeemed
            | ApiError::SoldOut
            | ApiError::ShardedLimitRaise(_)
            | ApiError::Expired
            | ApiError::PayloadTooLarge(_)
            | ApiError::UnsupportedMediaType
            | ApiError::Unavailable(_)
            | ApiError::Internal(_)
            | ApiError::Unauthenticated(_)
            | ApiError::UserMismatch
            | ApiError::RateLimited(_) => {}
        }
    }
    all
}

/// The errors an operation can answer with, by their codes. Every route answers
/// `method_not_allowed` to a method it does not have. Every `/v1` route can also answer
/// `invalid_request` (a bad id or query), `unavailable` (shed, or Redis/Postgres not answering),
/// `rate_limited` (when a client rate limit is set) and `internal`; every route with a JSON body
/// `payload_too_large` and `unsupported_media_type`; every admin route `unauthorized`; with
/// `AUTH_MODE=jwt` (`jwt`), every route that acts for a user the token errors and `user_mismatch`.
pub fn errors_of(method: &Method, path: &str, jwt: bool) -> Vec<&'static str> {
    let specific: &[&str] = match (method.as_str(), path) {
        ("POST", "/v1/coupon/issue") => &["already_issued", "sold_out", "not_open", "closed", "event_not_found"],
        ("POST", "/v1/events") => &["invalid_combination"],
        ("GET", "/v1/coupon/count") => &["event_not_found"],
        ("POST", "/v1/coupons/{coupon_id}/redeem") => &["not_owner", "already_redeemed", "expired", "coupon_not_found"],
        ("GET", "/v1/events/{id}") => &["event_not_found"],
        ("PATCH", "/v1/events/{id}") => &["event_not_found", "sharded_limit_raise"],
        _ => &[],
    };
    let mut codes = specific.to_vec();
    codes.push("method_not_allowed");
    if path.starts_with("/v1/") {
        codes.extend(["invalid_request", "unavailable", "rate_limited", "internal"]);
    }
    if jwt && for_a_user(method, path) {
        codes.extend([
            "token_missing",
            "token_expired",
            "token_malformed",
            "token_invalid",
            "user_mismatch",
        ]);
    }
    if *method == Method::POST || *method == Method::PATCH {
        codes.extend(["payload_too_large", "unsupported_media_type"]);
    }
    if path.starts_with("/v1/events") {
        codes.push("unauthorized");
    }
    codes
}

/// A coupon for the examples.
fn example_coupon() -> Coupon {
    let at = |s| DateTime::parse_from_rfc3339(s).map(|t| t.to_utc()).unwrap_or_default();
    Coupon {
        coupon_id: CouponId::parse("019a2b3c-4d5e-7f60-8a9b-0c1d2e3f4a5b").unwrap_or_default(),
        event_id: EventId::parse("0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10").unwrap_or_default(),
        user_id: UserId::parse("alice").unwrap_or_else(|_| unreachable!("a valid example id")),
        day: NaiveDate::from_ymd_opt(2026, 5, 1).unwrap_or_default(),
        shard: 0,
        seq: 17,
        issued_at: at("2026-05-01T04:00:00.123Z"),
        valid_from: at("2026-05-01T04:00:00.123Z"),
        valid_until: at("2026-06-04T15:00:00Z"),
        redeemed_at: None,
    }
}

/// The admin API's bearer token, the `ErrorCode` schema (built from [`every_error`]), and the
/// discount's variants closed to unknown fields, as serde's `deny_unknown_fields` makes them
/// (utoipa leaves the variants of an internally tagged enum open).
struct SharedComponents;

impl Modify for SharedComponents {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The ADMIN_TOKEN the service was started with"))
            .build();
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme("admin_token", SecurityScheme::Http(scheme));
            components
                .schemas
                .insert("ErrorCode".to_string(), RefOr::T(error_code_schema()));
            if let Some(RefOr::T(Schema::OneOf(discount))) = components.schemas.get_mut("Discount") {
                for variant in &mut discount.items {
                    if let RefOr::T(Schema::Object(variant)) = variant {
                        variant.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
                    }
                }
            }
        }
    }
}

/// Adds each operation's error responses, one per status, with one example per code.
struct ErrorResponses {
    jwt: bool,
}

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let errors = every_error();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (Method::GET, item.get.as_mut()),
                (Method::POST, item.post.as_mut()),
                (Method::PUT, item.put.as_mut()),
                (Method::DELETE, item.delete.as_mut()),
                (Method::PATCH, item.patch.as_mut()),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    let codes = errors_of(&method, path, self.jwt);
                    add_errors(operation, errors.iter().filter(|e| codes.contains(&e.code())));
                }
            }
        }
    }
}

fn add_errors<'a>(operation: &mut Operation, errors: impl Iterator<Item = &'a ApiError>) {
    let mut by_status: BTreeMap<u16, Vec<&ApiError>> = BTreeMap::new();
    for e in errors {
        by_status.entry(e.status_code().as_u16()).or_default().push(e);
    }
    for (status, errors) in by_status {
        let codes: Vec<String> = errors
            .iter()
            .map(|e| match e {
                // Its message names the field at fault, so it has no single text.
                ApiError::InvalidRequest(_) => "`invalid_request`: a field or id is missing or malformed".to_string(),
                _ => format!("`{}`: {}", e.code(), e),
            })
            .collect();
        let examples = errors.iter().map(|e| {
            let example = ExampleBuilder::new().summary(e.code()).value(Some(e.body())).build();
            (e.code(), example)
        });
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .examples_from_iter(examples)
            .build();
        let mut response = ResponseBuilder::new()
            .description(codes.join("; "))
            .content("application/json", content);
        let header = match status {
            429 | 503 => Some(("Retry-After", Type::Integer, "Seconds to wait before retrying")),
            405 => Some((
                "Allow",
                Type::String,
                "The methods this path answers, such as `GET, PATCH`",
            )),
            401 => Some(("WWW-Authenticate", Type::String, "`Bearer`")),
            _ => None,
        };
        if let Some((name, schema_type, description)) = header {
            let header = HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(schema_type))
                .description(Some(description))
                .build();
            response = response.header(name, header);
        }
        operation
            .responses
            .responses
            .insert(status.to_string(), RefOr::T(response.build()));
    }
}
