//! `POST /v1/coupon/issue`: the hot path. Validate, run the script, answer what it decided.

use std::time::Instant;

use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::JsonBody;
use crate::domain::{EventId, Shards, UserId};
use crate::issuing::IssueOutcome;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    #[schema(value_type = EventId)]
    event_id: String,
    /// Required with `AUTH_MODE=body` (trusted as given: authenticate upstream); with `jwt`
    /// optional, and if given it must be the token's. (The document served says which.)
    #[serde(default)]
    #[schema(value_type = UserId, required = true)]
    user_id: Option<String>,
}

/// Issue today's coupon of an event to a user.
///
/// One atomic Redis script checks the window (by the Redis clock), the user and today's limit.
/// Safe to retry: a user who already holds today's coupon gets 409 with that same coupon.
///
/// Records `event_id`, `day` and `outcome` into the request's span (see `observe`), and counts
/// the answer by event and outcome.
#[utoipa::path(
    post,
    path = "/v1/coupon/issue",
    tag = "coupons",
    request_body = IssueRequest,
    responses((status = 201, description = "Issued: the new coupon", body = crate::domain::Coupon)),
)]
pub async fn issue(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<IssueRequest>,
) -> Result<HttpResponse, ApiError> {
    let (event, answer) = decide(&state, &caller, &body.0).await;
    let code = answer.as_ref().err().map_or("issued", ApiError::code);
    tracing::Span::current().record("outcome", code);
    state.metrics.issue_outcome(event, code);
    answer
}

/// The answer, and the event to count it under: only an event known to exist (the script
/// found its settings, or the catalog holds it), so made-up ids cannot grow the label set;
/// they are all counted as `unknown`.
async fn decide(
    state: &AppState,
    caller: &Caller,
    body: &IssueRequest,
) -> (Option<EventId>, Result<HttpResponse, ApiError>) {
    let event = match EventId::parse(&body.event_id) {
        Ok(event) => event,
        Err(e) => return (None, Err(ApiError::invalid("event_id", e))),
    };
    let span = tracing::Span::current();
    span.record("event_id", tracing::field::display(event));
    let known = || state.catalog.knows(event).then_some(event);
    let user: UserId = match caller.user(body.user_id.as_deref()) {
        Ok(user) => user,
        Err(e) => return (known(), Err(e)),
    };
    // Before the script: a bot's retries cost a hash lookup here, not a Redis round trip.
    if let Err(e) = state.limits.check_user(&user) {
        return (known(), Err(e));
    }
    // How many buckets to walk: from the catalog's cache (Postgres on a miss). An id Postgres
    // does not know walks bucket 0 alone, as every event did before sharding: the script answers
    // `missing` (404 below), or Redis is down (503), as before.
    let found = match state.catalog.get(event).await {
        Ok(found) => found,
        Err(e) => return (None, Err(e.into())),
    };
    let shards = found.as_ref().map_or(Shards::ONE, |e| e.shards);
    // The day whose keys the script is given: by this instance's clock, a guess the script
    // checks against the Redis clock (an unknown event is answered before any day matters).
    let now = Utc::now();
    let expected = found.as_ref().map_or(now.date_naive(), |e| e.current_day(now));
    // From here the catalog has answered: the event is known exactly when it was found.
    let known = found.as_ref().map(|_| event);
    let started = Instant::now();
    let outcome = state.issuer.issue(event, shards, &user, expected).await;
    state.metrics.redis_script(started.elapsed(), outcome.is_ok());
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => return (known, Err(e.into())),
    };
    if let Some(day) = outcome.day() {
        span.record("day", tracing::field::display(day));
    }
    let answer = match outcome {
        // `to_json` writes what `json(coupon)` would, without serde (see `Coupon::to_json`).
        IssueOutcome::Issued(coupon) => Ok(HttpResponse::Created()
            .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
            .body(coupon.to_json())),
        IssueOutcome::AlreadyIssued(coupon) => Err(ApiError::AlreadyIssued(Box::new(coupon))),
        IssueOutcome::SoldOut { .. } => Err(ApiError::SoldOut),
        IssueOutcome::NotOpen => Err(ApiError::NotOpen),
        IssueOutcome::Closed => Err(ApiError::Closed),
        IssueOutcome::Missing => {
            let answer = match found {
                Some(known) => {
                    // Redis lost it (or it was never published): republished, and this request
                    // is turned away meanwhile; it is never answered from a guess.
                    state.catalog.republish(known);
                    Err(ApiError::Unavailable("event state is being restored"))
                }
                None => Err(ApiError::EventNotFound),
            };
            return (known, answer);
        }
    };
    (Some(event), answer)
}
