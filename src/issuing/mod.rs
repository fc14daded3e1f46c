//! The Redis side, and the one owner of its data model: key names (`keys`), the formats that
//! cross Redis (`wire`), the Lua scripts (`scripts`), publishing events, and the hot-path client.
//!
//! Every issue is one script call over one shared multiplexed connection: concurrent requests
//! are pipelined on it instead of each holding a pooled connection, which was 13-17x faster here.

mod bucket;
mod keys;
mod publish;
pub mod scripts;
mod slots;
mod sold_out;
mod walk;
pub mod wire;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use redis::AsyncCommands;

pub use bucket::{BucketFigures, BucketReader, BucketWriter, DayRecords};
pub use keys::{Keys, WRITER_GROUP};
pub use publish::{ensure_writer_group, publish_event, publish_windows, set_limit};
pub use sold_out::SoldOutMemory;
pub use wire::IssueOutcome;

use crate::domain::{Bucket, CouponId, EventId, Shards, UserId};
use crate::redis_target::{RedisConnection, RedisTarget};

/// Why Redis could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RedisFailure {
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// A certificate the TLS settings do not trust is said in words an operator searches for.
    #[error("redis: {}", crate::redis_target::tls::explain(.0))]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    BadReply(#[from] wire::BadReply),
    #[error("only {acked} of {wanted} replicas acknowledged the coupon in time")]
    NotReplicated { acked: u32, wanted: u32 },
}

/// Issues coupons and reads day counters, over one shared auto-reconnecting connection.
#[derive(Clone)]
pub struct Issuer {
    /// Multiplexed: cloning it is cheap and every clone shares the one socket.
    conn: RedisConnection,
    /// Sold-out days answered without a round trip (see `sold_out`).
    sold_out: Arc<SoldOutMemory>,
    keys: Keys,
    /// The most a request waits for Redis before it is answered 503.
    timeout: Duration,
    /// How long a day's keys outlive its window.
    day_key_ttl: Duration,
    /// Replicas that must hold a coupon before it is answered (`REDIS_WAIT_REPLICAS`).
    replicas: u32,
}

impl Issuer {
    /// Connects lazily: the service starts (and reports not ready) while Redis is down, and the
    /// connection manager reconnects by itself when Redis comes back.
    pub fn new(
        redis: &RedisTarget,
        keys: Keys,
        timeout: Duration,
        sold_out_memory: Duration,
        day_key_ttl: Duration,
    ) -> redis::RedisResult<Self> {
        Ok(Self {
            conn: redis.multiplexed(timeout)?,
            sold_out: Arc::new(SoldOutMemory::new(sold_out_memory, timeout)),
            keys,
            timeout,
            day_key_ttl,
            replicas: 0,
        })
    }

    /// Answers a coupon only once `replicas` replicas hold it (`WAIT`), so that a failover,
    /// which promotes a replica, cannot lose a coupon a user was shown. When they do not
    /// acknowledge within half the Redis timeout, the request is answered 503; the coupon is
    /// then either kept (the user's retry gets it back) or lost with a primary that never
    /// showed it to anyone.
    pub fn with_replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// How long a day's keys outlive its window.
    pub fn day_key_ttl(&self) -> Duration {
        self.day_key_ttl
    }

    /// Reads buckets' state (figures, holders, records, entries) on the shared connection.
    pub fn reader(&self) -> BucketReader<'_> {
        BucketReader::new(self.conn.clone(), &self.keys)
    }

    /// Writes buckets' user records and counts back (the restore) on the shared connection.
    pub fn writer(&self) -> BucketWriter<'_> {
        BucketWriter::new(self.conn.clone(), &self.keys)
    }

    /// A connection for short commands (publishing, reads). Shares the one socket.
    pub fn connection(&self) -> RedisConnection {
        self.conn.clone()
    }

    /// Runs the issue script for `user` in one bucket, on its current day, or on `day` when
    /// given (see `walk`: a walk over a sharded event's buckets is about one day). `expected`
    /// is the day whose keys are declared to the script when `day` is not given: the script
    /// decides by the Redis clock, and answers `other_day` when it decides another, after which
    /// the call is made again with that day's keys (see KEYS[4] of `lua/issue.lua`).
    #[tracing::instrument(name = "issue_script", skip_all, fields(event_id = %bucket.event, shard = bucket.shard))]
    async fn issue_in(
        &self,
        bucket: Bucket,
        user: &UserId,
        day: Option<NaiveDate>,
        expected: NaiveDate,
    ) -> Result<IssueOutcome, RedisFailure> {
        if let Some(outcome) = self.recall_sold_out(bucket, user, day).await? {
            return Ok(outcome);
        }
        let sent = Instant::now();
        let mut keys_day = day.unwrap_or(expected);
        // Twice is enough unless the Redis clock crosses a day boundary between the calls.
        let mut reply = self.run_script(bucket, user, day, keys_day).await?;
        for _ in 0..2 {
            let Some(decided) = wire::other_day(&reply) else {
                break;
            };
            keys_day = decided;
            reply = self.run_script(bucket, user, day, keys_day).await?;
        }
        let outcome = IssueOutcome::from_reply(bucket, user, reply)?;
        if self.replicas > 0 && matches!(outcome, IssueOutcome::Issued(_) | IssueOutcome::AlreadyIssued(_)) {
            self.replicated(&self.keys.settings(bucket)).await?;
        }
        if let IssueOutcome::SoldOut {
            day,
            rememberable_for: Some(window_left),
        } = outcome
            && self.sold_out.remember(bucket, day, sent, window_left)
        {
            self.read_holders(bucket, day);
        }
        Ok(outcome)
    }

    /// One call of the issue script, with `keys_day`'s day keys declared.
    async fn run_script(
        &self,
        bucket: Bucket,
        user: &UserId,
        day: Option<NaiveDate>,
        keys_day: NaiveDate,
    ) -> Result<Vec<String>, RedisFailure> {
        let mut conn = self.conn.clone();
        let keys = self.keys.script_keys(bucket, keys_day);
        // The EVALSHA written straight into one command buffer: redis-rs's `ScriptInvocation`
        // keeps each key and argument in a vector of its own and copies them all into the
        // command at the call, which cost the hot path a dozen allocations per request.
        let mut call = redis::Cmd::with_capacity(15, 512);
        call.arg("EVALSHA")
            .arg(scripts::ISSUE.get_hash())
            .arg(scripts::ISSUE_KEYS);
        keys.write_keys(&mut call);
        let mut coupon = uuid::Uuid::encode_buffer();
        call.arg(user.as_str())
            .arg(
                CouponId::new()
                    .as_uuid()
                    .hyphenated()
                    .encode_lower(&mut coupon)
                    .as_bytes(),
            )
            .arg(keys.prefix.as_bytes())
            .arg(self.day_key_ttl.as_millis() as u64);
        if let Some(day) = day {
            call.arg(crate::domain::day_text(day).as_slice());
        }
        // As `ScriptInvocation::invoke_async` does: a server that does not hold the script
        // (restarted, flushed, a new replica promoted) is given it, and asked again, all within
        // the one bound.
        self.bounded(async {
            match call.query_async(&mut conn).await {
                Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                    scripts::ISSUE.load_async(&mut conn).await?;
                    call.query_async(&mut conn).await
                }
                answered => answered,
            }
        })
        .await
    }

    /// `Some(sold out)` when this instance remembers the bucket's day sold out (for `day`, if
    /// given) and `user` is not among its holders: no script call needed.
    async fn recall_sold_out(
        &self,
        bucket: Bucket,
        user: &UserId,
        day: Option<NaiveDate>,
    ) -> Result<Option<IssueOutcome>, RedisFailure> {
        let Some((remembered, holders)) = self.sold_out.recall(bucket) else {
            return Ok(None);
        };
        if day.is_some_and(|day| day != remembered) {
            return Ok(None);
        }
        // A user who holds today's coupon still gets it back (from the script); anyone else is
        // answered sold out. See `sold_out` for why the holders read once are all of them.
        let holds = match holders {
            Some(holders) => holders.contains(user.as_str()),
            None => {
                let mut conn = self.conn.clone();
                self.bounded(conn.hexists(self.keys.day_users(bucket, remembered), user.as_str()))
                    .await?
            }
        };
        Ok((!holds).then_some(IssueOutcome::SoldOut {
            day: remembered,
            rememberable_for: None,
        }))
    }

    /// Reads a sold-out day's holders in the background, for the sold-out memory.
    fn read_holders(&self, bucket: Bucket, day: NaiveDate) {
        let this = self.clone();
        tokio::spawn(async move {
            let key = this.keys.day_users(bucket, day);
            let mut conn = this.conn.clone();
            let read = async {
                let count: usize = this.bounded(conn.hlen(&key)).await?;
                if count > sold_out::MAX_HOLDERS {
                    return Ok(None);
                }
                let holders: HashSet<String> = this.bounded(conn.hkeys(&key)).await?;
                Ok::<_, RedisFailure>(Some(holders))
            };
            let holders = read.await.unwrap_or_else(|e| {
                tracing::warn!(event_id = %bucket.event, shard = bucket.shard, error = %e, "cannot read a sold-out day's holders");
                None
            });
            this.sold_out.holders_read(bucket, day, holders);
        });
    }

    /// How long a limit raise, or a lost event's return, must wait before it takes effect so
    /// that no instance still answers from a remembered sold-out (see `sold_out`).
    pub fn fence(&self) -> Duration {
        self.sold_out.fence()
    }

    /// The Redis server's clock: the same clock the script decides by.
    pub async fn now(&self) -> Result<DateTime<Utc>, RedisFailure> {
        let mut conn = self.conn.clone();
        let (secs, micros): (i64, i64) = self.bounded(redis::cmd("TIME").query_async(&mut conn)).await?;
        DateTime::from_timestamp(secs, (micros * 1000) as u32)
            .ok_or_else(|| wire::BadReply(vec![secs.to_string(), micros.to_string()]).into())
    }

    /// `None` when Redis holds no state for the event (or for one of its buckets); otherwise
    /// the day's count over every bucket, `Some(None)` when no bucket has a counter (nothing
    /// issued yet, or the keys have expired).
    pub async fn day_count(
        &self,
        event: EventId,
        shards: Shards,
        day: NaiveDate,
    ) -> Result<Option<Option<u64>>, RedisFailure> {
        let mut total: Option<u64> = None;
        for bucket in shards.buckets(event) {
            // One pipeline per bucket: on a cluster, each bucket's keys live in its own slot.
            let mut conn = self.conn.clone();
            let mut pipe = redis::pipe();
            pipe.exists(self.keys.settings(bucket))
                .get(self.keys.day_count(bucket, day));
            let (published, count): (bool, Option<u64>) = self.bounded(pipe.query_async(&mut conn)).await?;
            if !published {
                return Ok(None);
            }
            if let Some(count) = count {
                total = Some(total.unwrap_or(0) + count);
            }
        }
        Ok(Some(total))
    }

    /// Whether Redis answers a PING in time.
    pub async fn ping(&self) -> Result<(), RedisFailure> {
        let mut conn = self.conn.clone();
        self.bounded(redis::cmd("PING").query_async::<String>(&mut conn))
            .await
            .map(drop)
    }

    /// Waits until `replicas` replicas of the server holding `key` have this connection's writes.
    async fn replicated(&self, key: &str) -> Result<(), RedisFailure> {
        let mut conn = self.conn.clone();
        let wanted = self.replicas;
        let acked = self
            .bounded(conn.wait_for_replicas(key, wanted, self.timeout / 2))
            .await?;
        if acked < wanted {
            return Err(RedisFailure::NotReplicated { acked, wanted });
        }
        Ok(())
    }

    async fn bounded<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T, RedisFailure> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(RedisFailure::Timeout(self.timeout)),
        }
    }
}
