//! Publishing an event to Redis: its settings and every day's window as instants, so the issue
//! script only compares numbers, and the consumer group the writer reads the stream through.

use std::time::Duration;

use crate::redis_target::RedisConnection;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;

use super::keys::{Keys, WRITER_GROUP};
use super::{scripts, wire};
use crate::domain::{Bucket, DayWindow, Event};

/// Writes (or rewrites, identically) an event's windows, stream group and settings, in each of
/// its buckets.
///
/// Idempotent, so publishing again at every start-up is harmless. It does not touch the day
/// counters or user records. The settings go last: the issue script answers "missing" until
/// they exist, so it never runs against half an event (or, after Redis lost its memory, against
/// counters not yet rebuilt: see `restore`). A limit raised since the last publish goes through
/// [`set_limit`]'s fence; a sharded bucket's share is never raised here (see `set_share`).
#[tracing::instrument(skip_all, fields(event_id = %event.id))]
pub async fn publish_event(
    conn: &mut RedisConnection,
    keys: &Keys,
    event: &Event,
    fence: Duration,
) -> redis::RedisResult<()> {
    let windows = event.windows();
    let valid_until_ms = event.valid_until().timestamp_millis();
    for bucket in event.shards.buckets(event.id) {
        publish_windows(conn, keys, bucket, &windows).await?;
        ensure_writer_group(conn, &keys.stream(bucket)).await?;
        if event.shards.is_sharded() {
            set_share(conn, keys, event, bucket, Some(valid_until_ms)).await?;
            continue;
        }
        set_limit(conn, keys, event, fence).await?;
        write_limit(conn, keys, event, Some(valid_until_ms), false).await?;
    }
    Ok(())
}

/// Changes a published event's daily limit in Redis, to `event.daily_limit` (an unpublished
/// event gets it when published).
///
/// Lowering takes effect at once. Raising is fenced, because instances may remember that a day
/// is sold out (see `sold_out`): the event is marked `fenced` (no new sold-out is remembered),
/// then this waits `fence`, longer than any remembered answer lives, and only then writes the
/// limit. `fenced` is a count, so raises that overlap each keep the mark up until they end. If
/// this stops half-way (a crash, Redis gone), the mark stays: the event is then never answered
/// from memory, which is slower, never wrong. Whatever order changes and publishes reach Redis
/// in, the newest revision's limit stays (`write_limit`).
///
/// A sharded event's limit is only ever lowered (a raise is refused before it gets here): each
/// bucket gets its new share, never above the one it has.
#[tracing::instrument(skip_all, fields(event_id = %event.id, limit = event.daily_limit))]
pub async fn set_limit(
    conn: &mut RedisConnection,
    keys: &Keys,
    event: &Event,
    fence: Duration,
) -> redis::RedisResult<()> {
    if event.shards.is_sharded() {
        for bucket in event.shards.buckets(event.id) {
            set_share(conn, keys, event, bucket, None).await?;
        }
        return Ok(());
    }
    let key = keys.settings(event.id);
    let (current, revision): (Option<u32>, Option<i64>) = redis::cmd("HMGET")
        .arg(&key)
        .arg(wire::settings::DAILY_LIMIT)
        .arg(wire::settings::LIMIT_REVISION)
        .query_async(conn)
        .await?;
    match current {
        None => Ok(()),
        // A copy older than Redis's: lua/set_limit.lua refuses it, so there is nothing to fence.
        Some(_) if revision.is_some_and(|r| r > event.limit_revision) => Ok(()),
        Some(current) if event.daily_limit > current && !fence.is_zero() => {
            let _: i64 = conn.hincr(&key, wire::settings::FENCED, 1).await?;
            tokio::time::sleep(fence).await;
            write_limit(conn, keys, event, None, true).await
        }
        Some(_) => write_limit(conn, keys, event, None, false).await,
    }
}

/// Writes an unsharded event's limit with its revision, unless Redis holds a newer revision
/// (`lua/set_limit.lua`): copies read from Postgres at different moments may arrive in any
/// order. `valid_until_ms` when publishing (creates the settings if missing); `end_fence` closes
/// the fence [`set_limit`] opened, in the same step.
async fn write_limit(
    conn: &mut RedisConnection,
    keys: &Keys,
    event: &Event,
    valid_until_ms: Option<i64>,
    end_fence: bool,
) -> redis::RedisResult<()> {
    scripts::set_limit(
        conn,
        &keys.settings(event.id),
        event.daily_limit,
        event.limit_revision,
        valid_until_ms,
        end_fence,
    )
    .await?;
    Ok(())
}

/// Writes a sharded bucket's share of the limit, never raising the share it has
/// (`lua/set_share.lua`): "a dry bucket stays dry" is what makes the walk safe, and two
/// lowerings, or a publish racing a lowering, may arrive in any order. `valid_until_ms` when
/// publishing (creates the settings if they are missing), `None` to only lower a published one.
async fn set_share(
    conn: &mut RedisConnection,
    keys: &Keys,
    event: &Event,
    bucket: Bucket,
    valid_until_ms: Option<i64>,
) -> redis::RedisResult<()> {
    let share = event.shards.share(event.daily_limit, bucket.shard);
    scripts::set_share(conn, &keys.settings(bucket), share, valid_until_ms).await?;
    Ok(())
}

/// Replaces an event's windows in one MULTI, so the script never sees half a set.
///
/// Tests also call it directly with windows a few seconds long, to watch a day roll over
/// without waiting for midnight; production code only ever publishes `Event::windows`.
pub async fn publish_windows(
    conn: &mut RedisConnection,
    keys: &Keys,
    bucket: impl Into<Bucket>,
    windows: &[DayWindow],
) -> redis::RedisResult<()> {
    let key = keys.windows(bucket);
    let mut pipe = redis::pipe();
    pipe.atomic().del(&key).ignore();
    for (i, w) in windows.iter().enumerate() {
        // The first day has no "yesterday": before it, the answer is always not_open.
        let day_start = if i == 0 { 0 } else { ms(w.day_start) };
        let member = wire::window_member(w.day, ms(w.open), ms(w.close), day_start);
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
