//! Publishing an event to Redis: its settings and every day's window as instants, so the issue
//! script only compares numbers, and the consumer group the writer reads the stream through.

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::keys::{Keys, WRITER_GROUP};
use crate::domain::{DayWindow, Event, EventId};

/// Writes (or rewrites, identically) an event's windows, stream group and settings.
///
/// Idempotent, so publishing again at every start-up is harmless. It does not touch the day
/// counters or user records. The settings go last: the issue script answers "missing" until
/// they exist, so it never runs against half an event (or, after Redis lost its memory, against
/// counters not yet rebuilt: see `restore`). A limit raised since the last publish goes through
/// [`set_limit`]'s fence.
#[tracing::instrument(skip_all, fields(event_id = %event.id))]
pub async fn publish_event(
    conn: &mut ConnectionManager,
    keys: &Keys,
    event: &Event,
    fence: Duration,
) -> redis::RedisResult<()> {
    publish_windows(conn, keys, event.id, &event.windows()).await?;
    ensure_writer_group(conn, &keys.stream(event.id)).await?;
    set_limit(conn, keys, event.id, event.daily_limit, fence).await?;
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

/// Changes a published event's daily limit in Redis (an unpublished one gets it when published).
///
/// Lowering takes effect at once. Raising is fenced, because instances may remember that a day
/// is sold out (see `sold_out`): the event is marked `fenced` (no new sold-out is remembered),
/// then this waits `fence`, longer than any remembered answer lives, and only then writes the
/// limit. `fenced` is a count, so raises that overlap each keep the mark up until they end. If
/// this stops half-way (a crash, Redis gone), the mark stays: the event is then never answered
/// from memory, which is slower, never wrong.
#[tracing::instrument(skip(conn, keys))]
pub async fn set_limit(
    conn: &mut ConnectionManager,
    keys: &Keys,
    event: EventId,
    limit: u32,
    fence: Duration,
) -> redis::RedisResult<()> {
    let key = keys.settings(event);
    let current: Option<u32> = conn.hget(&key, "daily_limit").await?;
    match current {
        None => Ok(()),
        Some(current) if limit > current && !fence.is_zero() => {
            let _: i64 = conn.hincr(&key, "fenced", 1).await?;
            tokio::time::sleep(fence).await;
            let mut pipe = redis::pipe();
            pipe.atomic()
                .hset(&key, "daily_limit", limit)
                .ignore()
                .hincr(&key, "fenced", -1)
                .ignore();
            pipe.query_async(conn).await
        }
        Some(_) => conn.hset(&key, "daily_limit", limit).await,
    }
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
