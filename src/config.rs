//! Settings: every one has a documented default and can be set by an environment variable (or
//! the matching `serve` flag). `coupon-issuer serve --help` lists them.

use std::time::Duration;

use clap::Args;

/// A setting the service cannot start with. Its message names the setting as the operator
/// sets it (`DATABASE_URL: invalid port number`), and `main` prints it as one line.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct SettingError {
    pub setting: &'static str,
    pub reason: String,
}

impl SettingError {
    pub fn new(setting: &'static str, reason: impl std::fmt::Display) -> Self {
        Self {
            setting,
            reason: reason.to_string(),
        }
    }
}

/// Where the data is: the Redis and the Postgres every command works on, and the prefix of the
/// Redis keys. One struct, so that `serve`, `migrate`, `reconcile`, `events` and `inspect` read
/// the same variables with the same defaults, and another binary (the lab) can flatten it too.
///
/// Its flags are `global`, so an admin subcommand takes them after its own name as well
/// (`coupon-issuer events list --redis-url ...`).
#[derive(Debug, Clone, Args)]
pub struct Connections {
    /// Redis that holds counters, user records and streams: one server (`redis://host:port`)
    /// or a Redis Cluster (`redis+cluster://host1:port1,host2:port2,...`); over TLS
    /// `rediss://host:port` and `rediss+cluster://host1:port1,...` (see REDIS_TLS_*). An ACL
    /// user and password go before the host(s): `rediss://user:password@host:port`.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379", global = true)]
    pub redis_url: String,

    /// TLS to Redis (`REDIS_TLS_*`): extra CA, client certificate, insecure mode.
    #[command(flatten)]
    pub redis_tls: crate::redis_target::RedisTls,

    /// Redis Cluster nodes to start from, `host1:port1,host2:port2,...`; when set, the service
    /// uses the cluster and ignores REDIS_URL.
    #[arg(long, env = "REDIS_CLUSTER_NODES", global = true)]
    pub redis_cluster_nodes: Option<String>,

    /// Postgres (`DATABASE_URL`).
    #[command(flatten)]
    pub database: Database,

    /// Prefix of every Redis key, so deployments can share one Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "coupon", global = true)]
    pub redis_key_prefix: String,
}

/// The Postgres part of [`Connections`], alone: all that `migrate` needs.
#[derive(Debug, Clone, Args)]
pub struct Database {
    /// Postgres that holds events and coupons. The database is created if it does not exist
    /// (not by `reconcile`, for which a mistyped name must fail).
    #[arg(
        id = "database_url",
        long = "database-url",
        value_name = "DATABASE_URL",
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/coupon_issuer",
        global = true
    )]
    pub url: String,
}

impl Database {
    /// DATABASE_URL, parsed (TLS files read): a bad one is reported before any connection.
    pub fn parse(&self) -> Result<crate::store::DatabaseUrl, SettingError> {
        crate::store::DatabaseUrl::parse(&self.url)
    }
}

impl Connections {
    /// The Redis (or Redis Cluster) named by REDIS_URL / REDIS_CLUSTER_NODES.
    pub fn redis_target(&self) -> Result<crate::redis_target::RedisTarget, crate::redis_target::TargetError> {
        crate::redis_target::RedisTarget::parse(&self.redis_url, self.redis_cluster_nodes.as_deref(), &self.redis_tls)
    }
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address the HTTP server listens on. Port 0 picks a free port.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: String,

    /// Where the data is: Redis, Postgres, the key prefix.
    #[command(flatten)]
    pub connections: Connections,

    /// Bearer token for the admin API (`/v1/events`). Unset or empty: the admin API is disabled.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Most requests handled at once; more are answered 503 at once (load is shed, not queued).
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 4096)]
    pub max_in_flight: usize,

    /// Replicas that must acknowledge a coupon (Redis `WAIT`) before it is answered. 0: answer
    /// as soon as the primary has it; a failover may then lose the last coupons answered. 1 on
    /// a cluster with a replica per primary: a coupon answered survives its primary's failover.
    #[arg(long, env = "REDIS_WAIT_REPLICAS", default_value_t = 0)]
    pub redis_wait_replicas: u32,

    /// The most a request waits for Redis before it is answered 503, in ms.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 1000)]
    pub redis_timeout_ms: u64,

    /// How long an instance remembers that a day is sold out and answers so without asking
    /// Redis, in ms (0: always ask). A limit raise waits this plus REDIS_TIMEOUT_MS before it
    /// takes effect, so a remembered answer never refuses a coupon Redis would issue.
    #[arg(long, env = "SOLD_OUT_MEMORY_MS", default_value_t = 250)]
    pub sold_out_memory_ms: u64,

    /// How long a day's Redis keys outlive its window, in hours.
    #[arg(long, env = "DAY_KEY_TTL_HOURS", default_value_t = 72)]
    pub day_key_ttl_hours: u64,

    /// Postgres connections in the pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,

    /// Run the writer (stream -> Postgres) in this process.
    #[arg(long, env = "WRITER_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub writer_enabled: bool,

    /// Writers in this process, each its own consumer in the group: Postgres stores batches
    /// from two sessions almost twice as fast as from one. While they keep up (small batches)
    /// they take turns to read, so that their batches are not split between them.
    #[arg(long, env = "WRITER_CONCURRENCY", default_value_t = 2)]
    pub writer_concurrency: usize,

    /// Most stream entries per stream per writer batch.
    #[arg(long, env = "WRITER_BATCH_SIZE", default_value_t = 1000)]
    pub writer_batch_size: usize,

    /// After a batch less than half full, how long the writers let entries gather before one
    /// reads again, in ms: fewer, larger inserts during a spike (0: read again at once). The
    /// first coupon after a quiet spell is read at once.
    #[arg(long, env = "WRITER_LINGER_MS", default_value_t = 10)]
    pub writer_linger_ms: u64,

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

    /// Who the user is: `body` trusts the user id in the request (for callers behind a gateway
    /// that authenticates users); `jwt` takes it from a verified bearer token's `sub`.
    #[arg(long, env = "AUTH_MODE", value_enum, default_value_t = AuthMode::Body)]
    pub auth_mode: AuthMode,

    /// `AUTH_MODE=jwt` with HS256: the shared secret (at least 32 bytes).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// `AUTH_MODE=jwt` with RS256 or ES256: a PEM file with the RSA or P-256 public key.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<std::path::PathBuf>,

    /// If set, tokens must carry this `iss`.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// If set, tokens must carry this `aud`.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Requests per second per client IP on /v1 (0: no limit).
    #[arg(long, env = "RATE_LIMIT_CLIENT_PER_SEC", default_value_t = 0)]
    pub rate_limit_client_per_sec: u32,

    /// Requests a client IP may send at once before the rate applies (0: the rate).
    #[arg(long, env = "RATE_LIMIT_CLIENT_BURST", default_value_t = 0)]
    pub rate_limit_client_burst: u32,

    /// Issue and redeem requests per second per user (0: no limit).
    #[arg(long, env = "RATE_LIMIT_USER_PER_SEC", default_value_t = 0)]
    pub rate_limit_user_per_sec: u32,

    /// Requests a user may send at once before the rate applies (0: the rate).
    #[arg(long, env = "RATE_LIMIT_USER_BURST", default_value_t = 0)]
    pub rate_limit_user_burst: u32,

    /// Take the client IP for rate limits from the last X-Forwarded-For entry. Only behind a
    /// proxy that appends it; otherwise clients could pick their own key.
    #[arg(long, env = "TRUST_X_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub trust_x_forwarded_for: bool,
}

/// How the user of a request is known (`AUTH_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// The user id in the request, trusted as it is.
    Body,
    /// The `sub` of a verified JWT.
    Jwt,
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

    /// The Redis (or Redis Cluster) named by REDIS_URL / REDIS_CLUSTER_NODES.
    pub fn redis_target(&self) -> Result<crate::redis_target::RedisTarget, crate::redis_target::TargetError> {
        self.connections.redis_target()
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    pub fn sold_out_memory(&self) -> Duration {
        Duration::from_millis(self.sold_out_memory_ms)
    }

    pub fn day_key_ttl(&self) -> Duration {
        Duration::from_secs(self.day_key_ttl_hours * 3600)
    }

    /// The admin token, if one is configured (an empty one counts as none).
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref().filter(|t| !t.is_empty())
    }
}
