//! One bucket's state in Redis (all of an unsharded event's), read and repaired by name: its
//! figures, its holders, its user records, its stream entries and what is pending at the
//! writers; user records written back and counts raised. The metrics, `inspect`, the restore
//! and the reconcile ask for these; the commands that answer are written here only, next to
//! the keys and formats they touch. (The issue script and the writer, on the hot paths, keep
//! their own hand-written calls.)

use std::collections::HashMap;

use chrono::NaiveDate;
use redis::AsyncCommands;
use redis::streams::{StreamId, StreamPendingCountReply, StreamPendingReply, StreamRangeReply};

use super::keys::{Keys, WRITER_GROUP};
use super::scripts;
use super::wire::{UserRecord, entry_ms};
use crate::domain::{Bucket, Coupon};
use crate::redis_target::RedisConnection;

/// Reads buckets over one shared connection (see `Issuer::reader`).
pub struct BucketReader<'a> {
    conn: RedisConnection,
    keys: &'a Keys,
}

/// One bucket's figures for one day, read in one round trip (plus `XPENDING`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketFigures {
    /// Whether Redis holds the bucket's settings (the issue script refuses without them).
    pub published: bool,
    /// The day's counter; `None` when Redis has none (nothing issued yet, or its keys expired).
    pub issued: Option<u64>,
    /// Users holding the day's coupon (equals `issued`).
    pub users: u64,
    /// Entries in the stream (every day's): issued, not yet stored in Postgres.
    pub stream_length: u64,
    /// Entries a writer has read but not yet acknowledged.
    pub pending: u64,
    pub dead_letters: u64,
    /// When the oldest entry still in the stream was appended (by its id), ms by the Redis clock.
    pub oldest_entry_ms: Option<i64>,
    /// The Redis clock when the figures were read, ms: entries added after a `now` read earlier
    /// are not "from the future" against it.
    pub read_ms: i64,
}

/// A day's count and user records, read in one `MULTI`: one consistent instant.
#[derive(Debug, Clone)]
pub struct DayRecords {
    /// Redis TIME at the read, ms: the clock the issue script stamps coupons with.
    pub taken_ms: i64,
    pub count: Option<u64>,
    /// user id -> the raw `seq|coupon_id|issued_ms` record (see `wire::UserRecord`).
    pub users: HashMap<String, String>,
}

impl<'a> BucketReader<'a> {
    pub fn new(conn: RedisConnection, keys: &'a Keys) -> Self {
        Self { conn, keys }
    }

    /// The bucket's figures on `day`.
    pub async fn figures(&mut self, bucket: Bucket, day: NaiveDate) -> redis::RedisResult<BucketFigures> {
        let keys = self.keys;
        let stream = keys.stream(bucket);
        let mut pipe = redis::pipe();
        pipe.exists(keys.settings(bucket))
            .get(keys.day_count(bucket, day))
            .hlen(keys.day_users(bucket, day))
            .xlen(&stream)
            .xlen(keys.dead_letters(bucket))
            .xrange_count(&stream, "-", "+", 1)
            .cmd("TIME");
        let (published, issued, users, stream_length, dead_letters, oldest, (secs, micros)): (
            bool,
            Option<u64>,
            u64,
            u64,
            u64,
            StreamRangeReply,
            (i64, i64),
        ) = pipe.query_async(&mut self.conn).await?;
        // Apart, because it fails (NOGROUP) before the writer's group exists, and while the
        // event is being published again: nothing is pending then.
        let pending = self
            .conn
            .xpending::<_, _, StreamPendingReply>(&stream, WRITER_GROUP)
            .await
            .map_or(0, |reply| reply.count() as u64);
        Ok(BucketFigures {
            published,
            issued,
            users,
            stream_length,
            pending,
            dead_letters,
            oldest_entry_ms: oldest.ids.first().and_then(|entry| entry_ms(&entry.id)),
            read_ms: secs * 1000 + micros / 1000,
        })
    }

    /// Whether Redis holds the bucket's settings.
    pub async fn is_published(&mut self, bucket: Bucket) -> redis::RedisResult<bool> {
        self.conn.exists(self.keys.settings(bucket)).await
    }

    /// The users holding a coupon of the bucket's `day`.
    pub async fn holders(&mut self, bucket: Bucket, day: NaiveDate) -> redis::RedisResult<Vec<String>> {
        self.conn.hkeys(self.keys.day_users(bucket, day)).await
    }

    /// The day's count and every user record, at one instant.
    pub async fn day_records(&mut self, bucket: Bucket, day: NaiveDate) -> redis::RedisResult<DayRecords> {
        let ((secs, micros), count, users): ((i64, i64), Option<u64>, HashMap<String, String>) = redis::pipe()
            .atomic()
            .cmd("TIME")
            .get(self.keys.day_count(bucket, day))
            .hgetall(self.keys.day_users(bucket, day))
            .query_async(&mut self.conn)
            .await?;
        Ok(DayRecords {
            taken_ms: secs * 1000 + micros / 1000,
            count,
            users,
        })
    }

    /// Every entry still in the bucket's stream, oldest first (read them with
    /// `wire::coupon_from_entry`).
    pub async fn stream_entries(&mut self, bucket: Bucket) -> redis::RedisResult<Vec<StreamId>> {
        let reply: StreamRangeReply = self.conn.xrange_all(self.keys.stream(bucket)).await?;
        Ok(reply.ids)
    }

    /// Entry id -> (consumer, ms since its last delivery) for up to `at_most` entries delivered
    /// to a writer and not acknowledged.
    pub async fn pending_entries(
        &mut self,
        bucket: Bucket,
        at_most: usize,
    ) -> redis::RedisResult<HashMap<String, (String, u64)>> {
        if at_most == 0 {
            return Ok(HashMap::new());
        }
        let reply: redis::RedisResult<StreamPendingCountReply> = self
            .conn
            .xpending_count(self.keys.stream(bucket), WRITER_GROUP, "-", "+", at_most)
            .await;
        match reply {
            Ok(reply) => Ok(reply
                .ids
                .into_iter()
                .map(|p| (p.id, (p.consumer, p.last_delivered_ms as u64)))
                .collect()),
            // No consumer group yet: no writer has read the stream, so nothing is pending.
            Err(e) if e.code() == Some("NOGROUP") => Ok(HashMap::new()),
            Err(e) => Err(e),
        }
    }
}

/// Writes what the restore and the reconcile put back, over one shared connection.
pub struct BucketWriter<'a> {
    conn: RedisConnection,
    keys: &'a Keys,
}

impl<'a> BucketWriter<'a> {
    pub fn new(conn: RedisConnection, keys: &'a Keys) -> Self {
        Self { conn, keys }
    }

    /// Writes every coupon's user record of the bucket's `day` (replacing any there), in one
    /// round trip, and has the records expire at `expire_at_ms`.
    pub async fn put_records(
        &mut self,
        bucket: Bucket,
        day: NaiveDate,
        coupons: &[Coupon],
        expire_at_ms: i64,
    ) -> redis::RedisResult<()> {
        let users_key = self.keys.day_users(bucket, day);
        let mut pipe = redis::pipe();
        for chunk in coupons.chunks(1000) {
            let fields: Vec<(&str, String)> = chunk
                .iter()
                .map(|c| (c.user_id.as_str(), UserRecord::of(c).encode()))
                .collect();
            pipe.hset_multiple(&users_key, &fields).ignore();
        }
        pipe.cmd("PEXPIREAT").arg(&users_key).arg(expire_at_ms).ignore();
        pipe.query_async(&mut self.conn).await
    }

    /// Writes `coupon`'s user record of the bucket's `day`; with `only_if_absent`, not over one
    /// already there (`HSETNX`: a record the script writes meanwhile wins). Whether it was
    /// written.
    pub async fn put_record(
        &mut self,
        bucket: Bucket,
        day: NaiveDate,
        coupon: &Coupon,
        only_if_absent: bool,
    ) -> redis::RedisResult<bool> {
        let key = self.keys.day_users(bucket, day);
        let (user, record) = (coupon.user_id.as_str(), UserRecord::of(coupon).encode());
        if only_if_absent {
            return self.conn.hset_nx(key, user, record).await;
        }
        let _: () = self.conn.hset(key, user, record).await?;
        Ok(true)
    }

    /// Raises the bucket's count of `day` to `target` (at most `cap`), never lowering it; sets
    /// its expiry when `expire_at_ms` is given (see `lua/raise_count.lua`). The count after.
    pub async fn raise_count(
        &mut self,
        bucket: Bucket,
        day: NaiveDate,
        target: u64,
        cap: Option<u32>,
        expire_at_ms: Option<i64>,
    ) -> redis::RedisResult<u64> {
        let key = self.keys.day_count(bucket, day);
        scripts::raise_count(&mut self.conn, &key, target, cap, expire_at_ms).await
    }

    /// Acknowledges and deletes entries of the bucket's stream, as the writer does once they are
    /// stored.
    pub async fn acknowledge(&mut self, bucket: Bucket, ids: &[&str]) -> redis::RedisResult<()> {
        let stream = self.keys.stream(bucket);
        redis::pipe()
            .xack(&stream, WRITER_GROUP, ids)
            .ignore()
            .xdel(&stream, ids)
            .ignore()
            .query_async(&mut self.conn)
            .await
    }
}
