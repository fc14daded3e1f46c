//! Publishing an event to Redis: its settings and every day's window as instants, so the issue
//! script only compares numbers, and the consumer group the writer reads the stream through.

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::keys::{Keys, WRITER_GROUP};
use crate::domain::{DayWindow, Event, EventId};

/// Writes (or rewrites, identically) an event's windows, stream group and settings.
///
/// Idempotent: events never change, so publishing again at every start-up is harmless. It does
/// not touch the day counters or user records. The settings go last: the issue script answers
/// "missing" until they exist, so it never runs against half an event (or, after Redis lost
/// its memory, against counters not yet rebuilt: see `restore`).
#[tracing::instrument(skip_all, fields(event_id = %event.id))]
pub async fn publish_event(conn: &mut ConnectionManager, keys: &Keys, event: &Event) -> redis::RedisResult<()> {
    publish_windows(conn, keys, event.id, &event.windows()).await?;
    ensure_writer_group(conn, &keys.stream(event.id)).await?;
    let valid_until_ms = event.valid_until().timestamp_millis();
    conn.hset_multiple(
        keys.settings(event.id),
        &[
            ("daily_limit", i64::from(event.daily_limit)),
            ("valid_until_ms", valid_until_ms),
        ],
    )
    .await
}

/// Replaces an event's windows in one MULTI, so the script never sees half a set.
///
/// Tests also call it directly with windows a few seconds long, to watch a day roll over
/// without waiting for midnight; production code only ever publishes `Event::windows`.
pub async fn publish_windows(
    conn: &mut ConnectionManager,
    keys: &Keys,
    event: EventId,
    windows: &[DayWindow],
) -> redis::RedisResult<()> {
    let key = keys.windows(event);
    let mut pipe = redis::pipe();
    pipe.atomic().del(&key).ignore();
    for (i, w) in windows.iter().enumerate() {
        // The first day has no "yesterday": before it, the answer is always not_open.
        let day_start = if i == 0 { 0 } else { ms(w.day_start) };
        let member = format!("{}|{}|{}|{}", w.day, ms(w.open), ms(w.close), day_start);
        pipe.zadd(&key, member, ms(w.close)).ignore();
    }
    pipe.query_async(conn).await
}

/// Creates the writer's consumer group (and the stream) unless it exists. A new group starts at
/// `0`, so entries appended before it existed are still delivered.
pub async fn ensure_writer_group<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    stream: &str,
) -> redis::RedisResult<()> {
    let created: redis::RedisResult<()> = conn.xgroup_create_mkstream(stream, WRITER_GROUP, "0").await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}
