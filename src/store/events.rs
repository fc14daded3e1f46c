//! Events in Postgres, the source of truth.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use super::StoreError;
use crate::domain::{DailyWindow, Discount, Event, EventId, NewEvent, Shards, TimeOfDay};

/// A row of `events`, as the queries below select it (`query_as!` checks the columns against
/// these fields at build time).
struct EventRow {
    id: Uuid,
    name: String,
    timezone: String,
    starts_on: NaiveDate,
    ends_on: NaiveDate,
    daily_open_minute: i16,
    daily_close_minute: i16,
    daily_limit: i32,
    limit_revision: i64,
    valid_days_after_end: i32,
    discount: Json<Discount>,
    shards: i16,
    created_at: DateTime<Utc>,
}

impl TryFrom<EventRow> for Event {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<Self, StoreError> {
        let minute = |m: i16| u16::try_from(m).ok().and_then(TimeOfDay::from_minutes);
        let (Some(open), Some(close)) = (minute(row.daily_open_minute), minute(row.daily_close_minute)) else {
            return Err(StoreError::BadRow(format!(
                "event {}: stored window out of range",
                row.id
            )));
        };
        Ok(Event {
            id: row.id.into(),
            name: row.name,
            timezone: row
                .timezone
                .parse()
                .map_err(|_| StoreError::BadRow(format!("event {}: unknown stored timezone", row.id)))?,
            starts_on: row.starts_on,
            ends_on: row.ends_on,
            window: DailyWindow::new(open, close).map_err(|e| StoreError::BadRow(e.to_string()))?,
            daily_limit: u32::try_from(row.daily_limit)?,
            limit_revision: row.limit_revision,
            valid_days_after_end: u32::try_from(row.valid_days_after_end)?,
            discount: row.discount.0,
            shards: Shards::parse(i64::from(row.shards)).map_err(|e| StoreError::BadRow(e.to_string()))?,
            created_at: row.created_at,
        })
    }
}

// The queries are checked against the schema at build time (`sqlx::query!`, with the data in
// `.sqlx/`, see `.cargo/config.toml`), so each names its columns in full: a macro takes one
// string literal. A column missing from one, or of another type, fails the build.

#[tracing::instrument(skip_all, fields(event_id))]
pub async fn insert(db: &PgPool, spec: NewEvent) -> Result<Event, StoreError> {
    let id = EventId::new();
    tracing::Span::current().record("event_id", tracing::field::display(id));
    let (open, close) = (
        spec.window.open().minutes() as i16,
        spec.window.close().minutes() as i16,
    );
    let (limit, valid_days, shards) = (
        spec.daily_limit as i32,
        spec.valid_days_after_end as i32,
        spec.shards.get() as i16,
    );
    let created_at = sqlx::query_scalar!(
        "INSERT INTO events (id, name, timezone, starts_on, ends_on, daily_open_minute, daily_close_minute, \
                             daily_limit, valid_days_after_end, discount, shards) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING created_at",
        id.as_uuid(),
        &spec.name,
        spec.timezone.name(),
        spec.starts_on,
        spec.ends_on,
        open,
        close,
        limit,
        valid_days,
        Json(&spec.discount) as _,
        shards,
    )
    .fetch_one(db)
    .await?;
    Ok(Event::new(id, spec, created_at))
}

#[tracing::instrument(skip(db))]
pub async fn get(db: &PgPool, id: EventId) -> Result<Option<Event>, StoreError> {
    let row = sqlx::query_as!(
        EventRow,
        r#"SELECT id, name, timezone, starts_on, ends_on, daily_open_minute, daily_close_minute, daily_limit,
                limit_revision, valid_days_after_end, discount AS "discount: Json<Discount>", shards, created_at
           FROM events WHERE id = $1"#,
        id.as_uuid()
    )
    .fetch_optional(db)
    .await?;
    row.map(Event::try_from).transpose()
}

/// Every event, newest first.
#[tracing::instrument(skip(db))]
pub async fn list(db: &PgPool) -> Result<Vec<Event>, StoreError> {
    let rows = sqlx::query_as!(
        EventRow,
        r#"SELECT id, name, timezone, starts_on, ends_on, daily_open_minute, daily_close_minute, daily_limit,
                limit_revision, valid_days_after_end, discount AS "discount: Json<Discount>", shards, created_at
           FROM events ORDER BY created_at DESC, id"#
    )
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Event::try_from).collect()
}

/// What became of a limit change.
#[derive(Debug)]
pub enum SetLimit {
    Changed(Event),
    NotFound,
    /// A raise on a sharded event: refused (see `issuing::walk`), nothing changed.
    RaiseRefused(Event),
}

/// Changes an event's daily limit. A sharded event's limit is only lowered: the check is part
/// of the UPDATE, so two concurrent changes cannot turn a lowering into a raise.
#[tracing::instrument(skip(db))]
pub async fn set_limit(db: &PgPool, id: EventId, limit: u32) -> Result<SetLimit, StoreError> {
    let row = sqlx::query_as!(
        EventRow,
        r#"UPDATE events SET daily_limit = $2, limit_revision = limit_revision + 1
           WHERE id = $1 AND (shards = 1 OR $2 <= daily_limit)
           RETURNING id, name, timezone, starts_on, ends_on, daily_open_minute, daily_close_minute, daily_limit,
                limit_revision, valid_days_after_end, discount AS "discount: Json<Discount>", shards, created_at"#,
        id.as_uuid(),
        limit as i32
    )
    .fetch_optional(db)
    .await?;
    if let Some(row) = row {
        return Ok(SetLimit::Changed(row.try_into()?));
    }
    Ok(match get(db, id).await? {
        Some(event) => SetLimit::RaiseRefused(event),
        None => SetLimit::NotFound,
    })
}
