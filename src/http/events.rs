//! The admin API: `POST /v1/events`, `GET /v1/events`, `GET /v1/events/{id}`, and
//! `PATCH /v1/events/{id}` (the daily limit, the one thing that may change during a sale).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::extract::{Admin, JsonBody};
use crate::domain::{Discount, Event, EventId, NewEvent, NewEventRequest, TimeOfDay, parse_daily_limit};

/// An event as the API shows it.
#[derive(Serialize)]
pub struct EventView<'a> {
    id: EventId,
    name: &'a str,
    timezone: &'a str,
    starts_on: NaiveDate,
    ends_on: NaiveDate,
    daily_open: TimeOfDay,
    daily_close: TimeOfDay,
    daily_limit: u32,
    valid_days_after_end: u32,
    discount: &'a Discount,
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
            coupons_valid_until: e.valid_until(),
            created_at: e.created_at,
        }
    }
}

#[tracing::instrument(name = "create_event", skip_all, fields(event_id))]
pub async fn create(
    _: Admin,
    state: web::Data<AppState>,
    body: JsonBody<NewEventRequest>,
) -> Result<HttpResponse, ApiError> {
    let spec = NewEvent::parse(body.0).map_err(ApiError::InvalidRequest)?;
    let event = state.catalog.create(spec).await?;
    tracing::Span::current().record("event_id", tracing::field::display(event.id));
    tracing::info!(name = %event.name, daily_limit = event.daily_limit, "event created");
    Ok(HttpResponse::Created().json(EventView::from(event.as_ref())))
}

pub async fn list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let events = state.catalog.list().await?;
    let views: Vec<EventView> = events.iter().map(|e| EventView::from(e.as_ref())).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "events": views })))
}

pub async fn show(_: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = EventId::parse(&id).map_err(|e| ApiError::invalid("event id", e))?;
    let event = state.catalog.get(id).await?.ok_or(ApiError::EventNotFound)?;
    Ok(HttpResponse::Ok().json(EventView::from(event.as_ref())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitChange {
    daily_limit: i64,
}

/// Changes the daily limit, from today's day on. A raise answers once it is in force everywhere:
/// after a fence of about `SOLD_OUT_MEMORY_MS + REDIS_TIMEOUT_MS` (see `issuing::sold_out`).
#[tracing::instrument(name = "set_limit", skip_all, fields(event_id = %id))]
pub async fn set_limit(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: JsonBody<LimitChange>,
) -> Result<HttpResponse, ApiError> {
    let id = EventId::parse(&id).map_err(|e| ApiError::invalid("event id", e))?;
    let limit = parse_daily_limit(body.0.daily_limit).map_err(|e| ApiError::invalid("daily_limit", e))?;
    let event = state
        .catalog
        .set_limit(id, limit)
        .await?
        .ok_or(ApiError::EventNotFound)?;
    tracing::info!(daily_limit = limit, "daily limit changed");
    Ok(HttpResponse::Ok().json(EventView::from(event.as_ref())))
}
