//! The writer's Redis: an exclusive pooled connection on one server, the writer's own cluster
//! connection on a Redis Cluster, the writer's own connection to the primary behind Sentinel.
//!
//! On one server the writer waits for new entries with a blocking `XREADGROUP` over every
//! stream at once, which would stall any other command pipelined behind it: hence a pool of
//! exclusive connections (deadpool-redis), apart from the issuer's shared one. A cluster cannot
//! serve one read over streams in different hash slots (`CROSSSLOT`), so there the writer reads
//! each stream without blocking and never holds a connection up: see `read`. Behind Sentinel
//! the writer has a multiplexed connection of its own, which follows a failover as the issuer's
//! does (`redis_target::sentinel`); a pool would keep connecting to the address it was built
//! with. Nobody else sends over it, and the writer's own commands come one after another, so a
//! blocking read on it stalls nothing.

use std::time::Duration;

use deadpool_redis::{Manager, Pool, Runtime};
use redis::aio::ConnectionLike;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, Value};

use super::WriterError;
use crate::redis_target::{RedisConnection, RedisTarget};

/// Where the writer gets its connections.
pub enum WriterRedis {
    Pool(Pool),
    Cluster(RedisConnection),
    Own(RedisConnection),
}

/// One connection, held for one step.
pub enum WriterConnection {
    Pooled(deadpool_redis::Connection),
    Cluster(RedisConnection),
    Own(RedisConnection),
}

impl WriterRedis {
    /// `block`: how long one blocking read waits; the response timeout must outlast it.
    pub fn new(target: &RedisTarget, block: Duration) -> anyhow::Result<Self> {
        let timeout = block + Duration::from_secs(5);
        Ok(match target {
            RedisTarget::Single(client) => {
                let connection = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(timeout));
                let manager = Manager::new_with_config(client.get_connection_info().clone(), connection)?;
                let pool = Pool::builder(manager)
                    .max_size(2)
                    .runtime(Runtime::Tokio1)
                    .wait_timeout(Some(Duration::from_secs(2)))
                    .create_timeout(Some(Duration::from_secs(2)))
                    .build()?;
                Self::Pool(pool)
            }
            // Its own connection, not the issuer's: a backlog read of thousands of entries must
            // not delay the requests pipelined on the hot path.
            RedisTarget::Cluster(_) => Self::Cluster(target.multiplexed(timeout)?),
            RedisTarget::Sentinel(_) => Self::Own(target.multiplexed(timeout)?),
        })
    }

    pub async fn get(&self) -> Result<WriterConnection, WriterError> {
        Ok(match self {
            Self::Pool(pool) => WriterConnection::Pooled(pool.get().await?),
            Self::Cluster(conn) => WriterConnection::Cluster(conn.clone()),
            Self::Own(conn) => WriterConnection::Own(conn.clone()),
        })
    }
}

impl ConnectionLike for WriterConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Pooled(c) => c.req_packed_command(cmd),
            Self::Cluster(c) | Self::Own(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Pooled(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) | Self::Own(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Pooled(c) => c.get_db(),
            Self::Cluster(c) | Self::Own(c) => c.get_db(),
        }
    }
}
