//! What both stores hold for one event day (in one bucket of a sharded event), read in an order that makes the comparison fair
//! while the service keeps issuing and the writer keeps storing.
//!
//! 1. Redis, in one MULTI: the server's TIME, the day's count and its user records. That is one
//!    consistent instant, `taken_ms`, on the same clock the issue script stamps coupons with.
//! 2. The event's stream and its pending list.
//! 3. Postgres.
//!
//! A coupon moves stream -> Postgres, so reading the stream before Postgres never misses one in
//! transit. Coupons issued after step 1 show up in steps 2-3 but not in step 1; they carry an
//! `issued_ms` later than `taken_ms` and the comparison leaves them out.

use std::collections::HashMap;

use crate::redis_target::RedisConnection;
use chrono::NaiveDate;
use sqlx::PgPool;

use crate::domain::{Bucket, Coupon, Event};
use crate::issuing::wire::{self, coupon_from_entry, entry_ms};
use crate::issuing::{BucketReader, DayRecords, Keys};
use crate::store;

/// One stream entry of the day.
#[derive(Debug, Clone)]
pub struct StreamEntry {
    pub id: String,
    /// The coupon it carries, or why it cannot be read (the writer dead-letters those).
    pub coupon: Result<Coupon, String>,
    /// Delivered to a writer and not acknowledged: (consumer, ms since the last delivery).
    pub pending: Option<(String, u64)>,
    /// How old the entry is, by its id, in ms.
    pub age_ms: u64,
}

/// Both stores' view of one event day.
#[derive(Debug, Clone)]
pub struct DaySnapshot {
    pub day: NaiveDate,
    /// The bucket (0 for an unsharded event).
    pub shard: u16,
    /// The bucket's share of the daily limit: the whole limit for an unsharded event.
    pub daily_limit: u32,
    /// Redis TIME when the count and user records were read, in ms.
    pub taken_ms: i64,
    pub redis_count: Option<u64>,
    /// user id -> the raw `seq|coupon_id|issued_ms` record.
    pub redis_users: HashMap<String, String>,
    pub stream: Vec<StreamEntry>,
    pub postgres: Vec<Coupon>,
}

/// Reads one event day of one bucket from both stores (see the module comment for the order).
pub async fn take(
    redis: &mut RedisConnection,
    db: &PgPool,
    keys: &Keys,
    event: &Event,
    bucket: Bucket,
    day: NaiveDate,
) -> anyhow::Result<DaySnapshot> {
    let mut reader = BucketReader::new(redis.clone(), keys);
    let DayRecords {
        taken_ms,
        count: redis_count,
        users: redis_users,
    } = reader.day_records(bucket, day).await?;

    let entries = reader.stream_entries(bucket).await?;
    let pending = reader.pending_entries(bucket, entries.len()).await?;
    let day_text = day.to_string();
    let stream = entries
        .iter()
        .filter(|e| e.get::<String>(wire::field::DAY).as_deref() == Some(day_text.as_str()))
        .map(|e| StreamEntry {
            id: e.id.clone(),
            coupon: coupon_from_entry(bucket, e),
            pending: pending.get(&e.id).cloned(),
            age_ms: entry_ms(&e.id).map_or(0, |ms| (taken_ms - ms).max(0) as u64),
        })
        .collect();

    let postgres = store::coupons::for_event_since(db, event.id, day)
        .await?
        .into_iter()
        .filter(|c| c.day == day && c.shard == bucket.shard)
        .collect();
    Ok(DaySnapshot {
        day,
        shard: bucket.shard,
        daily_limit: event.shards.share(event.daily_limit, bucket.shard),
        taken_ms,
        redis_count,
        redis_users,
        stream,
        postgres,
    })
}
