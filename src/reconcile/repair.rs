//! Bringing Redis and Postgres back into agreement, one difference at a time.
//!
//! Which side wins, and why:
//!
//! - **A coupon in Postgres (or the stream) but not in Redis**: added to Redis (HSETNX, so a
//!   record the script writes meanwhile is never overwritten). Postgres is the durable record
//!   of who holds what; without the Redis record that user could be issued a second coupon.
//! - **Redis and Postgres name different coupons for one user**: Postgres wins; it holds the
//!   coupon the user can redeem.
//! - **A Redis record with no Postgres row and no stream entry** (a lost coupon: the user was
//!   answered 201, the script records a user only when it issues): inserted into Postgres
//!   directly, with the record's number, id and time. Directly rather than re-appended to the
//!   stream, because the insert tells at once whether it took: if the number or the user is
//!   already stored (a conflict), nothing is written and the difference stays, for a person.
//! - **A count below the numbers handed out**: raised to the highest number held, capped at the
//!   daily limit (`lua/raise_count.lua`). A count is never lowered: a number above every holder
//!   may still have been promised to someone.
//! - **A stuck stream entry**: stored and acknowledged, as the writer would have done (the
//!   insert is idempotent, so a writer doing the same at the same moment is harmless).
//! - **Gaps, duplicate numbers, a count over the limit, unreadable records without a stored
//!   row**: reported, not repaired. Filling a gap would hand a number out twice, or raise the
//!   count; nothing safe can be done without a person.
//!
//! A sharded event is repaired bucket by bucket, each against its own share of the limit.
//!
//! Keys created or rewritten here get the expiry the issue script would have given them.

use crate::redis_target::RedisConnection;
use chrono::DateTime;
use redis::AsyncCommands;
use sqlx::PgPool;

use crate::domain::{Bucket, Coupon, Event, UserId};
use crate::issuing::wire::UserRecord;
use crate::issuing::{BucketWriter, Keys};
use crate::store;

use super::diff::Difference;
use super::snapshot::DaySnapshot;

/// What a repair did, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Done(String),
    Skipped(String),
}

pub async fn repair(
    redis: &mut RedisConnection,
    db: &PgPool,
    keys: &Keys,
    event: &Event,
    snap: &DaySnapshot,
    found: &[Difference],
    day_key_ttl: chrono::Duration,
) -> anyhow::Result<Vec<Action>> {
    let bucket = Bucket {
        event: event.id,
        shard: snap.shard,
    };
    let (users_key, count_key) = (keys.day_users(bucket, snap.day), keys.day_count(bucket, snap.day));
    let mut writer = BucketWriter::new(redis.clone(), keys);
    let mut actions = Vec::new();
    let mut stuck = Vec::new();
    for difference in found {
        let subject = difference.subject();
        let action = match difference {
            Difference::MissingInRedis { coupon, .. } => {
                let added = writer.put_record(bucket, snap.day, coupon, true).await?;
                if added {
                    Action::Done(format!("{subject}: added to redis from the stored coupon"))
                } else {
                    Action::Skipped(format!("{subject}: redis gained a record meanwhile"))
                }
            }
            Difference::RecordDiffers { postgres, .. } => {
                writer.put_record(bucket, snap.day, postgres, false).await?;
                Action::Done(format!("{subject}: redis record replaced by postgres's"))
            }
            Difference::BadRecord { user, .. } => match snap.postgres.iter().find(|c| c.user_id.as_str() == user) {
                Some(stored) => {
                    writer.put_record(bucket, snap.day, stored, false).await?;
                    Action::Done(format!("{subject}: unreadable record replaced by postgres's"))
                }
                None => Action::Skipped(format!("{subject}: unreadable and not stored; left for a person")),
            },
            Difference::MissingInPostgres { user, record } => store_lost(db, event, snap, user, record).await?,
            Difference::CountMismatch { highest_seq, .. } => {
                let before = snap.redis_count.unwrap_or(0);
                let after = writer
                    .raise_count(bucket, snap.day, *highest_seq, Some(snap.daily_limit), None)
                    .await?;
                if after > before {
                    Action::Done(format!("count raised from {before} to {after}"))
                } else {
                    Action::Skipped("count: never lowered (a number nobody holds may still have been promised)".into())
                }
            }
            Difference::StuckEntry { entry_id, .. } => {
                stuck.push(entry_id.as_str());
                continue;
            }
            Difference::OverLimit { .. } | Difference::SeqGap { .. } | Difference::DuplicateSeq { .. } => {
                Action::Skipped(format!(
                    "{} {subject}: reported only; no safe automatic repair",
                    difference.kind()
                ))
            }
        };
        actions.push(action);
    }
    if !stuck.is_empty() {
        actions.push(store_stuck(redis, db, keys, event, snap, &stuck).await?);
    }
    keep_expiry(redis, event, snap, &[users_key, count_key], day_key_ttl).await?;
    Ok(actions)
}

/// A coupon Redis promised and nothing else holds: store it as the script issued it.
async fn store_lost(
    db: &PgPool,
    event: &Event,
    snap: &DaySnapshot,
    user: &str,
    record: &UserRecord,
) -> anyhow::Result<Action> {
    let (Ok(user_id), Some(issued_at)) = (UserId::parse(user), DateTime::from_timestamp_millis(record.issued_ms))
    else {
        return Ok(Action::Skipped(format!(
            "user {user}: record cannot be stored as it is"
        )));
    };
    let coupon = Coupon {
        coupon_id: record.coupon_id,
        event_id: event.id,
        user_id,
        day: snap.day,
        shard: snap.shard,
        seq: record.seq,
        issued_at,
        valid_from: issued_at,
        valid_until: event.valid_until(),
        redeemed_at: None,
    };
    Ok(if store::coupons::insert_batch(db, &[coupon]).await? == 1 {
        Action::Done(format!("user {user}: lost coupon stored in postgres"))
    } else {
        Action::Skipped(format!(
            "user {user}: its number or user is already stored; left for a person"
        ))
    })
}

/// Stores the stuck entries that can be read, then acknowledges and deletes them.
async fn store_stuck(
    redis: &mut RedisConnection,
    db: &PgPool,
    keys: &Keys,
    event: &Event,
    snap: &DaySnapshot,
    ids: &[&str],
) -> anyhow::Result<Action> {
    let (mut coupons, mut done) = (Vec::new(), Vec::new());
    for entry in snap.stream.iter().filter(|e| ids.contains(&e.id.as_str())) {
        if let Ok(coupon) = &entry.coupon {
            coupons.push(coupon.clone());
            done.push(entry.id.as_str());
        }
    }
    if done.is_empty() {
        return Ok(Action::Skipped(
            "stuck entries: none readable; the writer dead-letters them".into(),
        ));
    }
    let inserted = store::coupons::insert_batch(db, &coupons).await?;
    let bucket = Bucket {
        event: event.id,
        shard: snap.shard,
    };
    BucketWriter::new(redis.clone(), keys)
        .acknowledge(bucket, &done)
        .await?;
    Ok(Action::Done(format!(
        "{} stuck entries stored ({inserted} new rows) and acknowledged",
        done.len()
    )))
}

/// Gives keys without an expiry the one the issue script sets: the window's close plus the TTL.
async fn keep_expiry(
    redis: &mut RedisConnection,
    event: &Event,
    snap: &DaySnapshot,
    keys: &[String],
    day_key_ttl: chrono::Duration,
) -> anyhow::Result<()> {
    let Some(window) = event.window_on(snap.day) else {
        return Ok(());
    };
    let expire_at = (window.close + day_key_ttl).timestamp_millis();
    for key in keys {
        let ttl: i64 = redis.pttl(key).await?;
        if ttl == -1 {
            let _: () = redis::cmd("PEXPIREAT")
                .arg(key)
                .arg(expire_at)
                .query_async(redis)
                .await?;
        }
    }
    Ok(())
}
