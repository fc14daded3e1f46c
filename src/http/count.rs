//! `GET /v1/coupon/count?event_id=...[&day=YYYY-MM-DD]`: a day's counter, from Redis (summed
//! over the buckets of a sharded event).

use actix_web::{HttpResponse, web};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::ApiError;
use crate::domain::{DayStatus, EventId, parse_day};
use crate::store;

/// Unknown parameters are refused (400), as unknown fields of a JSON body are: a misspelt
/// `day` must not silently count today.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CountQuery {
    /// The event (required).
    #[param(value_type = EventId, required = true)]
    event_id: Option<String>,
    /// The event day, "YYYY-MM-DD"; default: the day on now, by the Redis clock.
    #[param(value_type = String, required = false, format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", min_length = 10, max_length = 10, example = "2026-05-01")]
    day: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "event_id": "0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10",
    "day": "2026-05-01",
    "issued": 37,
    "daily_limit": 100,
    "remaining": 63,
    "status": "open"
}))]
pub struct CountResponse {
    event_id: EventId,
    day: NaiveDate,
    issued: u64,
    daily_limit: u32,
    remaining: u64,
    status: DayStatus,
}

/// A day's counter: issued, limit, remaining and where the day stands.
#[utoipa::path(
    get,
    path = "/v1/coupon/count",
    tag = "coupons",
    params(CountQuery),
    responses((status = 200, description = "The day's counter", body = CountResponse)),
)]
#[tracing::instrument(name = "count", skip_all, fields(event_id = query.event_id.as_deref()))]
pub async fn count(state: web::Data<AppState>, query: web::Query<CountQuery>) -> Result<HttpResponse, ApiError> {
    let event_id = query
        .event_id
        .as_deref()
        .ok_or_else(|| ApiError::invalid("event_id", "is required"))?;
    let event_id = EventId::parse(event_id).map_err(|e| ApiError::invalid("event_id", e))?;
    let day = query
        .day
        .as_deref()
        .map(|d| parse_day(d).ok_or_else(|| ApiError::invalid("day", "must be a date \"YYYY-MM-DD\"")))
        .transpose()?;
    let event = state.catalog.get(event_id).await?.ok_or(ApiError::EventNotFound)?;

    let now = state.issuer.now().await?;
    let day = day.unwrap_or_else(|| event.current_day(now));
    let Some(counted) = state.issuer.day_count(event_id, event.shards, day).await? else {
        state.catalog.republish(event.clone());
        return Err(ApiError::Unavailable("event state is being restored"));
    };
    // A day's keys expire some time after its window closes; Postgres then has the record.
    let window_over = event.window_on(day).is_none_or(|w| now >= w.close);
    let issued = match counted {
        Some(n) => n,
        None if window_over => store::coupons::count_day(&state.db, event_id, day).await?,
        None => 0,
    };
    Ok(HttpResponse::Ok().json(CountResponse {
        event_id,
        day,
        issued,
        daily_limit: event.daily_limit,
        remaining: u64::from(event.daily_limit).saturating_sub(issued),
        status: event.status_on(day, now, issued),
    }))
}
