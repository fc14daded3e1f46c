//! The admin API: `POST /v1/events`, `GET /v1/events`, `GET /v1/events/{id}`, and
//! `PATCH /v1/events/{id}` (the daily limit, the one thing that may change during a sale).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Admin, JsonBody};
use crate::domain::{
    Discount, Event, EventError, EventId, NewEvent, NewEventRequest, TimeOfDay, daily_limit_schema, parse_daily_limit,
};
use crate::store::events::SetLimit;

/// An event as the API shows it.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10",
    "name": "Half price drop",
    "timezone": "Asia/Seoul",
    "starts_on": "2026-05-01",
    "ends_on": "2026-05-05",
    "daily_open": "13:00",
    "daily_close": "15:00",
    "daily_limit": 100,
    "valid_days_after_end": 30,
    "discount": {"kind": "percent", "value": 50},
    "shards": 1,
    "coupons_valid_until": "2026-06-04T15:00:00Z",
    "created_at": "2026-04-20T09:12:44.512Z"
}))]
pub struct EventView<'a> {
    id: EventId,
    name: &'a str,
    timezone: &'a str,
    starts_on: NaiveDate,
    ends_on: NaiveDate,
    #[schema(value_type = String, example = "13:00")]
    daily_open: TimeOfDay,
    #[schema(value_type = String, example = "15:00")]
    daily_close: TimeOfDay,
    daily_limit: u32,
    valid_days_after_end: u32,
    #[schema(value_type = Discount)]
    discount: &'a Discount,
    /// How many buckets each day's stock is split over (1: unsharded).
    shards: u16,
    /// The instant (exclusive) until which this event's coupons can be used.
    coupons_valid_until: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl<'a> From<&'a Event> for EventView<'a> {
    fn from(e: &'a Event) -> Self {
        Self {
            id: e.id,
            name: &e.name,
            timezone: e.timezone.name(),
            starts_on: e.starts_on,
            ends_on: e.ends_on,
            daily_open: e.window.open(),
            daily_close: e.window.close(),
            daily_limit: e.daily_limit,
            valid_days_after_end: e.valid_days_after_end,
            discount: &e.discount,
            shards: e.shards.get(),
            coupons_valid_until: e.valid_until(),
            created_at: e.created_at,
        }
    }
}

/// Every event, newest first.
#[derive(Serialize, ToSchema)]
pub struct EventList<'a> {
    events: Vec<EventView<'a>>,
}

/// Create an event (admin). Events do not change once created.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "admin",
    security(("admin_token" = [])),
    request_body = NewEventRequest,
    responses((status = 201, description = "Created", body = EventView)),
)]
#[tracing::instrument(name = "create_event", skip_all, fields(event_id))]
pub async fn create(
    _: Admin,
    state: web::Data<AppState>,
    body: JsonBody<NewEventRequest>,
) -> Result<HttpResponse, ApiError> {
    let spec = NewEvent::check(body.0).map_err(|e| match e {
        EventError::Field(m) => ApiError::InvalidRequest(m),
        EventError::Combination(m) => ApiError::InvalidCombination(m),
    })?;
    let event = state.catalog.create(spec).await?;
    tracing::Span::current().record("event_id", tracing::field::display(event.id));
    tracing::info!(name = %event.name, daily_limit = event.daily_limit, "event created");
    Ok(HttpResponse::Created().json(EventView::from(event.as_ref())))
}

/// List every event, newest first (admin).
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "admin",
    security(("admin_token" = [])),
    responses((status = 200, description = "Every event", body = EventList)),
)]
pub async fn list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let events = state.catalog.list().await?;
    let views: Vec<EventView> = events.iter().map(|e| EventView::from(e.as_ref())).collect();
    Ok(HttpResponse::Ok().json(EventList { events: views }))
}

/// One event (admin).
#[utoipa::path(
    get,
    path = "/v1/events/{id}",
    tag = "admin",
    security(("admin_token" = [])),
    params(("id" = EventId, Path, description = "The event id")),
    responses((status = 200, description = "The event", body = EventView)),
)]
pub async fn show(_: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = EventId::parse(&id).map_err(|e| ApiError::invalid("event id", e))?;
    let event = state.catalog.get(id).await?.ok_or(ApiError::EventNotFound)?;
    Ok(HttpResponse::Ok().json(EventView::from(event.as_ref())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitChange {
    /// From 1 to 100,000,000.
    #[serde(deserialize_with = "crate::domain::whole")]
    #[schema(schema_with = daily_limit_schema)]
    daily_limit: i64,
}

/// Change the daily limit, from today's day on.
///
/// A lower limit applies at once. A raise answers once it is in force on every instance: after
/// a fence of about `SOLD_OUT_MEMORY_MS + REDIS_TIMEOUT_MS`, so that no instance still answers
/// `sold_out` from memory (see `issuing::sold_out`).
///
/// A sharded event (`shards` > 1) can only be lowered: a raise answers 409
/// `sharded_limit_raise` and changes nothing. Its safety rests on a sold-out bucket staying sold
/// out for the day (see `issuing::walk`), which a raise would break.
#[utoipa::path(
    patch,
    path = "/v1/events/{id}",
    tag = "admin",
    security(("admin_token" = [])),
    params(("id" = EventId, Path, description = "The event id")),
    request_body = LimitChange,
    responses((status = 200, description = "The event with its new limit, in force", body = EventView)),
)]
#[tracing::instrument(name = "set_limit", skip_all, fields(event_id = %id))]
pub async fn set_limit(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: JsonBody<LimitChange>,
) -> Result<HttpResponse, ApiError> {
    let id = EventId::parse(&id).map_err(|e| ApiError::invalid("event id", e))?;
    let limit = parse_daily_limit(body.0.daily_limit).map_err(|e| ApiError::invalid("daily_limit", e))?;
    let event = match state.catalog.set_limit(id, limit).await? {
        SetLimit::Changed(event) => event,
        SetLimit::NotFound => return Err(ApiError::EventNotFound),
        SetLimit::RaiseRefused(event) => return Err(ApiError::ShardedLimitRaise(event.daily_limit)),
    };
    tracing::info!(daily_limit = limit, "daily limit changed");
    Ok(HttpResponse::Ok().json(EventView::from(&event)))
}
