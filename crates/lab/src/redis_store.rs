//! The Redis strategies: `redis-lock` (a lock in Redis around the Postgres read-then-write, seed
//! 002) and `redis-lua` (the whole decision in one script, as the production path does).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use coupon_issuer::redis_target::RedisConnection;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::LabError;
use crate::keys::LabKeys;
use crate::lab::RedisReport;
use crate::pg;
use crate::settings::StrategySettings;
use crate::strategy::{Given, Outcome, Strategy};

/// How long a lab coupon's Redis keys live after a reset: long enough for any run, short
/// enough that a forgotten lab leaves nothing behind for long.
const KEY_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
pub struct RedisSide {
    /// Multiplexed, like the issuer's: concurrent requests share one socket.
    conn: RedisConnection,
    keys: LabKeys,
    give_script: Arc<redis::Script>,
    unlock_script: Arc<redis::Script>,
    timeout: Duration,
    lock_ttl: Duration,
    lock_wait: Duration,
}

impl RedisSide {
    pub fn new(conn: RedisConnection, keys: LabKeys, settings: &StrategySettings, timeout: Duration) -> Self {
        Self {
            conn,
            keys,
            give_script: Arc::new(redis::Script::new(include_str!("../lua/lab_give.lua"))),
            unlock_script: Arc::new(redis::Script::new(include_str!("../lua/lab_unlock.lua"))),
            timeout,
            lock_ttl: Duration::from_millis(settings.lock_ttl_ms.max(1)),
            lock_wait: Duration::from_millis(settings.lock_wait_ms),
        }
    }

    /// `redis-lua`: `lua/lab_give.lua`, one atomic step.
    pub async fn give_by_script(&self, coupon: Uuid, user: &str) -> Result<Outcome, LabError> {
        let mut conn = self.conn.clone();
        let mut call = self.give_script.prepare_invoke();
        call.key(self.keys.quantity(coupon))
            .key(self.keys.users(coupon))
            .arg(user);
        let code: String = self.bounded(call.invoke_async(&mut conn)).await?;
        Outcome::from_code(&code).ok_or_else(|| LabError::Busy("unexpected reply from lab_give.lua"))
    }

    /// `redis-lock`: take `SET lock <token> NX PX ttl`, run the plain read-then-write in
    /// Postgres, release with `lua/lab_unlock.lua` (only if the lock is still ours).
    ///
    /// Waiting is a spin: retry every 1-3 ms until `lock_wait` has passed, then 503. Safe only
    /// while the holder finishes within the TTL: a holder paused past it (GC, a slow query)
    /// loses the lock without knowing, and a second holder runs the race. Postgres never sees a
    /// fencing token, so nothing would stop the late writer.
    pub async fn give_under_lock(&self, db: &PgPool, coupon: Uuid, user: &str) -> Result<Given, LabError> {
        let lock = self.keys.lock(coupon);
        let token = Uuid::new_v4().to_string();
        let deadline = Instant::now() + self.lock_wait;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut conn = self.conn.clone();
            let mut set = redis::cmd("SET");
            set.arg(&lock)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(self.lock_ttl.as_millis() as u64);
            let taken: Option<String> = self.bounded(set.query_async(&mut conn)).await?;
            if taken.is_some() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(LabError::Busy("the coupon's lock was not free in time"));
            }
            tokio::time::sleep(spin_pause()).await;
        }
        let outcome = pg::read_then_write(db, Strategy::RedisLock, coupon, user, Duration::ZERO).await;
        let mut conn = self.conn.clone();
        let mut release = self.unlock_script.prepare_invoke();
        release.key(&lock).arg(&token);
        match self.bounded(release.invoke_async::<i64>(&mut conn)).await {
            Ok(1) => {}
            Ok(_) => {
                tracing::warn!(coupon_id = %coupon, "lab lock expired before release: another holder may have run")
            }
            // It expires by itself after its TTL; meanwhile the others wait for it.
            Err(e) => tracing::warn!(coupon_id = %coupon, error = %e, "lab lock not released"),
        }
        Ok(Given {
            outcome: outcome?,
            attempts,
        })
    }

    /// Sets the `redis-lua` counter to `quantity`, forgets every holder, drops a stale lock.
    pub async fn reset(&self, coupon: Uuid, quantity: i32) -> Result<(), LabError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(self.keys.quantity(coupon))
            .arg(quantity)
            .arg("PX")
            .arg(KEY_TTL.as_millis() as u64)
            .ignore()
            .del(self.keys.users(coupon))
            .ignore()
            .del(self.keys.lock(coupon))
            .ignore();
        self.bounded(pipe.query_async::<()>(&mut conn)).await?;
        Ok(())
    }

    pub async fn report(&self, coupon: Uuid) -> Result<RedisReport, LabError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.get(self.keys.quantity(coupon)).hlen(self.keys.users(coupon));
        let (quantity, claims): (Option<i64>, i64) = self.bounded(pipe.query_async(&mut conn)).await?;
        Ok(RedisReport { quantity, claims })
    }

    async fn bounded<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T, LabError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(LabError::RedisTimeout(self.timeout)),
        }
    }
}

/// 1-3 ms, varied so that spinning waiters do not retry in lock-step. The clock's nanoseconds
/// are random enough for that; a random-number crate would be a dependency for one line.
fn spin_pause() -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_micros(1000 + u64::from(nanos % 2000))
}
