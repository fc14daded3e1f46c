//! [`Lab`]: what the strategies share (the pool, the Redis side, the queue's worker), and the
//! one entry point that runs a strategy. Its tables (`lab.coupons`, `lab.claims`), its Redis
//! keys ([`crate::keys`]) and its scripts (`lua/lab_*.lua`) are its own.

use std::time::Duration;

use anyhow::Context;
use coupon_issuer::domain::UserId;
use coupon_issuer::redis_target::RedisTarget;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::LabError;
use crate::keys::LabKeys;
use crate::settings::StrategySettings;
use crate::strategy::{Given, Strategy};
use crate::{pg, queue, redis_store};

/// A lab coupon's state in both stores, as the comparison reads it afterwards.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub coupon_id: Uuid,
    /// N, as last set up.
    pub initial: i32,
    pub postgres: PgReport,
    pub redis: RedisReport,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PgReport {
    pub quantity: i32,
    pub version: i64,
    /// Rows in `lab.claims`.
    pub claims: i64,
    /// Distinct users among them.
    pub users: i64,
    /// Users holding more than one.
    pub users_with_two_or_more: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
        settings: &StrategySettings,
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
