//! The lab's settings: `coupon-lab serve --help` lists them all. The connection settings have
//! the service's names (REDIS_URL, DATABASE_URL, ...), so one environment can start either; the
//! strategies' knobs are `LAB_*`.

use std::time::Duration;

use clap::Args;
use coupon_issuer::config::Connections;
use coupon_issuer::redis_target::{RedisTarget, TargetError};

/// The lab's default database: one of its own, beside the service's `coupon_issuer`. Its tables
/// live in the schema `lab` wherever they are, but a lab left at its defaults should not even add
/// that schema to the service's database.
pub const LAB_DATABASE: &str = "postgres://postgres@127.0.0.1:5432/coupon_issuer_lab";

/// `serve`'s arguments with the lab's own database default: the flattened [`Connections`] carry
/// the service's.
pub fn with_lab_defaults(serve: clap::Command) -> clap::Command {
    serve.mut_arg("database_url", |arg| arg.default_value(LAB_DATABASE))
}

/// Where the lab serves and what it connects to.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8090")]
    pub listen_addr: String,

    /// Redis, Postgres and the key prefix: the service's own settings (`REDIS_URL`,
    /// `REDIS_TLS_*`, `REDIS_CLUSTER_NODES`, `DATABASE_URL`, `REDIS_KEY_PREFIX`), so one
    /// environment can start either. Only `DATABASE_URL`'s default differs (see [`LAB_DATABASE`]).
    #[command(flatten)]
    pub connections: Connections,

    /// Postgres pool size (the same for every strategy, so that they compare fairly).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,

    /// Bearer token for `PUT /v1/lab/coupons/{id}`; unset, every PUT answers 401.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// How long a Redis call may take before the request answers 503, in ms.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 1000)]
    pub redis_timeout_ms: u64,

    /// HTTP worker threads (0: one per CPU).
    #[arg(long, env = "HTTP_WORKERS", default_value_t = 0)]
    pub http_workers: usize,

    #[command(flatten)]
    pub strategies: StrategySettings,
}

impl ServeSettings {
    /// What `serve` would read with no flags: the environment, else the defaults. Tests start
    /// from these, so `REDIS_URL` and `DATABASE_URL` point them at the servers to use.
    pub fn from_env() -> Self {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            settings: ServeSettings,
        }
        use clap::{CommandFactory, FromArgMatches};
        let matches = with_lab_defaults(Only::command()).get_matches_from(["coupon-lab"]);
        match Only::from_arg_matches(&matches) {
            Ok(only) => only.settings,
            Err(e) => e.exit(),
        }
    }

    pub fn redis_target(&self) -> Result<RedisTarget, TargetError> {
        self.connections.redis_target()
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    /// The admin token, if one is configured (an empty one counts as none).
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref().filter(|t| !t.is_empty())
    }
}

/// The strategies' knobs.
#[derive(Debug, Clone, Args)]
pub struct StrategySettings {
    /// The `naive` strategy sleeps this long between its read and its write, to widen the race
    /// on purpose (as the seeds' demonstrations do), in ms.
    #[arg(long = "lab-naive-delay-ms", env = "LAB_NAIVE_DELAY_MS", default_value_t = 0)]
    pub naive_delay_ms: u64,

    /// Capacity of the `queue` strategy's channel; a full channel answers 503.
    #[arg(long = "lab-queue-capacity", env = "LAB_QUEUE_CAPACITY", default_value_t = 1000)]
    pub queue_capacity: usize,

    /// How long a `redis-lock` lock lives if its holder never releases it, in ms.
    #[arg(long = "lab-lock-ttl-ms", env = "LAB_LOCK_TTL_MS", default_value_t = 2000)]
    pub lock_ttl_ms: u64,

    /// How long a `redis-lock` request keeps trying to take the lock before a 503, in ms.
    #[arg(long = "lab-lock-wait-ms", env = "LAB_LOCK_WAIT_MS", default_value_t = 5000)]
    pub lock_wait_ms: u64,

    /// Attempts of a `pg-optimistic` request (the first one included) before a 503.
    #[arg(
        long = "lab-optimistic-attempts",
        env = "LAB_OPTIMISTIC_ATTEMPTS",
        default_value_t = 100
    )]
    pub optimistic_attempts: u32,
}

impl StrategySettings {
    pub fn naive_delay(&self) -> Duration {
        Duration::from_millis(self.naive_delay_ms)
    }
}
