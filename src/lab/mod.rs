//! The strategy lab: every classic way to hand out a limited coupon, side by side.
//!
//! One rule -- a coupon with N units, at most one per user -- implemented eight ways against the
//! real Postgres or Redis, served under `/v1/lab/{strategy}/{coupon_id}/give` when
//! `LAB_ENABLED=true` (see `http/lab.rs`), and measured by `coupon-issuer compare`
//! ([`compare`]). Nothing in the production path calls into this module; it has its own tables
//! (`lab_coupons`, `lab_claims`), its own Redis keys ([`keys`]) and its own scripts
//! (`lua/lab_*.lua`).
//!
//! - [`pg`]: `naive`, `pg-for-update`, `pg-function`, `pg-conditional-update`, `pg-optimistic`,
//!   and the plain read-then-write that `queue` and `redis-lock` serialise.
//! - [`queue`]: one worker task fed by a bounded channel.
//! - [`redis_store`]: `redis-lock` (SET NX PX, safe release) and `redis-lua` (one script).

pub mod compare;
mod keys;
mod pg;
mod queue;
mod redis_store;
mod settings;

use std::fmt;
use std::time::Duration;

use crate::redis_target::RedisTarget;
use anyhow::Context;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

pub use keys::LabKeys;
pub use settings::LabSettings;

use crate::domain::UserId;
use crate::issuing::RedisFailure;

/// The eight strategies, in the order the comparison runs and prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    Naive,
    PgForUpdate,
    PgFunction,
    PgConditionalUpdate,
    PgOptimistic,
    Queue,
    RedisLock,
    RedisLua,
}

impl Strategy {
    pub const ALL: [Strategy; 8] = [
        Strategy::Naive,
        Strategy::PgForUpdate,
        Strategy::PgFunction,
        Strategy::PgConditionalUpdate,
        Strategy::PgOptimistic,
        Strategy::Queue,
        Strategy::RedisLock,
        Strategy::RedisLua,
    ];

    /// The name in URLs, tables and `lab_claims.strategy`.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Naive => "naive",
            Strategy::PgForUpdate => "pg-for-update",
            Strategy::PgFunction => "pg-function",
            Strategy::PgConditionalUpdate => "pg-conditional-update",
            Strategy::PgOptimistic => "pg-optimistic",
            Strategy::Queue => "queue",
            Strategy::RedisLock => "redis-lock",
            Strategy::RedisLua => "redis-lua",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Where its units and claims live: what "final quantity" and the store's claims mean.
    pub fn store(self) -> Store {
        match self {
            Strategy::RedisLua => Store::Redis,
            _ => Store::Postgres,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    Postgres,
    Redis,
}

/// What a strategy decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Issued,
    AlreadyIssued,
    SoldOut,
    /// No such lab coupon (never set up).
    NotFound,
}

impl Outcome {
    fn from_code(code: &str) -> Option<Self> {
        match code {
            "issued" => Some(Outcome::Issued),
            "already_issued" => Some(Outcome::AlreadyIssued),
            "sold_out" => Some(Outcome::SoldOut),
            "not_found" => Some(Outcome::NotFound),
            _ => None,
        }
    }
}

/// An outcome and how many tries it took (optimistic attempts, lock acquisitions tried): the
/// comparison adds them up to show where a strategy's time went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Given {
    pub outcome: Outcome,
    pub attempts: u32,
}

impl Given {
    fn first_try(outcome: Outcome) -> Self {
        Self { outcome, attempts: 1 }
    }
}

/// Why a strategy could not decide.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The strategy's own back-pressure: a full queue, a lock not won in time, too many
    /// optimistic conflicts. Retrying later is the answer.
    #[error("{0}")]
    Busy(&'static str),
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error(transparent)]
    Redis(#[from] RedisFailure),
}

/// A lab coupon's state in both stores, as the comparison reads it afterwards.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Report {
    pub coupon_id: Uuid,
    /// N, as last set up.
    pub initial: i32,
    pub postgres: PgReport,
    pub redis: RedisReport,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PgReport {
    pub quantity: i32,
    pub version: i64,
    /// Rows in `lab_claims`.
    pub claims: i64,
    /// Distinct users among them.
    pub users: i64,
    /// Users holding more than one.
    pub users_with_two_or_more: i64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RedisReport {
    /// Units left by the counter; `None` when the key is gone.
    pub quantity: Option<i64>,
    /// Holders recorded (a hash: one per user by construction).
    pub claims: i64,
}

/// Everything the strategies share. Cheap to clone.
#[derive(Clone)]
pub struct Lab {
    db: PgPool,
    redis: redis_store::RedisSide,
    queue: queue::Queue,
    naive_delay: Duration,
    optimistic_attempts: u32,
}

impl Lab {
    /// Builds the lab and starts the queue's worker. Redis is connected lazily, as the issuer is.
    pub fn new(
        settings: &LabSettings,
        db: PgPool,
        redis: &RedisTarget,
        key_prefix: &str,
        redis_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let conn = redis.multiplexed(redis_timeout).context("lab: redis connection")?;
        Ok(Self {
            queue: queue::Queue::start(db.clone(), settings.queue_capacity.max(1)),
            redis: redis_store::RedisSide::new(conn, LabKeys::new(key_prefix), settings, redis_timeout),
            db,
            naive_delay: settings.naive_delay(),
            optimistic_attempts: settings.optimistic_attempts.max(1),
        })
    }

    /// Gives one unit of `coupon` to `user`, the way `strategy` does.
    #[tracing::instrument(name = "lab_give", skip_all, fields(strategy = %strategy, coupon_id = %coupon))]
    pub async fn give(&self, strategy: Strategy, coupon: Uuid, user: &UserId) -> Result<Given, LabError> {
        let db = &self.db;
        let user = user.as_str();
        match strategy {
            Strategy::Naive => pg::read_then_write(db, strategy, coupon, user, self.naive_delay)
                .await
                .map(Given::first_try),
            Strategy::PgForUpdate => pg::for_update(db, coupon, user).await.map(Given::first_try),
            Strategy::PgFunction => pg::function(db, coupon, user).await.map(Given::first_try),
            Strategy::PgConditionalUpdate => pg::conditional_update(db, coupon, user).await.map(Given::first_try),
            Strategy::PgOptimistic => pg::optimistic(db, coupon, user, self.optimistic_attempts).await,
            Strategy::Queue => self.queue.give(coupon, user).await.map(Given::first_try),
            Strategy::RedisLock => self.redis.give_under_lock(db, coupon, user).await,
            Strategy::RedisLua => self.redis.give_by_script(coupon, user).await.map(Given::first_try),
        }
    }

    /// Sets `coupon` up with `quantity` units and no holders, in both stores.
    pub async fn reset(&self, coupon: Uuid, quantity: i32) -> Result<(), LabError> {
        pg::reset(&self.db, coupon, quantity).await?;
        self.redis.reset(coupon, quantity).await?;
        Ok(())
    }

    /// The coupon's state in both stores; `None` when it was never set up.
    pub async fn report(&self, coupon: Uuid) -> Result<Option<Report>, LabError> {
        let Some((initial, postgres)) = pg::report(&self.db, coupon).await? else {
            return Ok(None);
        };
        let redis = self.redis.report(coupon).await?;
        Ok(Some(Report {
            coupon_id: coupon,
            initial,
            postgres,
            redis,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_strategy_parses_from_its_name() {
        for s in Strategy::ALL {
            assert_eq!(Strategy::parse(s.name()), Some(s));
        }
        assert_eq!(Strategy::parse("Naive"), None);
        assert_eq!(Strategy::parse(""), None);
    }
}
