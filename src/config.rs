//! Settings: every one has a documented default and can be set by an environment variable (or
//! the matching `serve` flag). `coupon-issuer serve --help` lists them.

use std::time::Duration;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address the HTTP server listens on. Port 0 picks a free port.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: String,

    /// Redis that holds counters, user records and streams.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    /// Postgres that holds events and coupons. The database is created if it does not exist.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/coupon_issuer"
    )]
    pub database_url: String,

    /// Bearer token for the admin API (`/v1/events`). Unset or empty: the admin API is disabled.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Prefix of every Redis key, so deployments can share one Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "coupon")]
    pub redis_key_prefix: String,

    /// Most requests handled at once; more are answered 503 at once (load is shed, not queued).
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 4096)]
    pub max_in_flight: usize,

    /// The most a request waits for Redis before it is answered 503, in ms.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 1000)]
    pub redis_timeout_ms: u64,

    /// How long a day's Redis keys outlive its window, in hours.
    #[arg(long, env = "DAY_KEY_TTL_HOURS", default_value_t = 72)]
    pub day_key_ttl_hours: u64,

    /// Postgres connections in the pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,

    /// Run the writer (stream -> Postgres) in this process.
    #[arg(long, env = "WRITER_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub writer_enabled: bool,

    /// Most stream entries per stream per writer batch.
    #[arg(long, env = "WRITER_BATCH_SIZE", default_value_t = 1000)]
    pub writer_batch_size: usize,

    /// How long one writer read waits for new entries, in ms.
    #[arg(long, env = "WRITER_BLOCK_MS", default_value_t = 1000)]
    pub writer_block_ms: u64,

    /// Entries left pending this long by another (crashed) instance are claimed, in ms.
    #[arg(long, env = "WRITER_CLAIM_IDLE_MS", default_value_t = 30_000)]
    pub writer_claim_idle_ms: u64,

    /// On SIGTERM/SIGINT, how long requests in flight may take to finish, in seconds.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,

    /// HTTP worker threads (0: one per core).
    #[arg(long, env = "HTTP_WORKERS", default_value_t = 0)]
    pub http_workers: usize,

    /// The strategy lab (`LAB_*`), off by default.
    #[command(flatten)]
    pub lab: crate::lab::LabSettings,
}

impl Settings {
    /// What `serve` would read with no flags: the environment, else the defaults. Tests start
    /// from these, so `REDIS_URL` and `DATABASE_URL` point them at the servers to use.
    pub fn from_env() -> Self {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            settings: Settings,
        }
        let only: Only = clap::Parser::parse_from(["coupon-issuer"]);
        only.settings
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    pub fn day_key_ttl(&self) -> Duration {
        Duration::from_secs(self.day_key_ttl_hours * 3600)
    }

    /// The admin token, if one is configured (an empty one counts as none).
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref().filter(|t| !t.is_empty())
    }
}
