//! What coupon-issuer's tests, soak and benchmarks start for themselves: Redis, Postgres, a Redis
//! Cluster, a Sentinel set and the service as real processes, each on free ports in its own
//! temporary directory, stopped and deleted on drop; the TLS certificates they use; and one client
//! of the service's HTTP API to drive it with.
//!
//! - [`servers`]: one `redis-server`, one Postgres cluster (`initdb` + `pg_ctl`), the service.
//! - [`postgres`], [`redis_server`]: how a Postgres or a Redis of our own is found, started and
//!   waited for; shared with `cargo xtask services`, which keeps the developer's under `.local/`.
//! - [`cluster`]: a Redis Cluster of a test's own (`scripts/cluster`), or the shared one.
//! - [`sentinel`]: a primary, a replica and three sentinels (`scripts/sentinel`).
//!   Both are started, restarted and stopped through `script`.
//! - [`tls`]: a CA, server and client certificates (rcgen).
//! - [`client`]: the service's HTTP API, as the tests, the soak and the bench call it.

use std::path::{Path, PathBuf};

pub mod client;
pub mod cluster;
pub mod postgres;
pub mod redis_server;
mod script;
pub mod sentinel;
pub mod servers;
pub mod tls;

pub use client::{ApiClient, ApiError, DayCount, Discount, NewEvent};
pub use cluster::{OwnCluster, primary_port_at, shared_cluster_url, shared_or_own_cluster};
pub use sentinel::OwnSentinels;
pub use servers::{OwnPostgres, OwnRedis, ServerTls, Service, TempDir, free_port};
pub use tls::TestCerts;

/// The workspace root, where `scripts/` lives.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The same Postgres server as `url`, another database: how each test gets a database of its own
/// (any query string, such as TLS options, is dropped with the old name).
pub fn database_url_named(url: &str, name: &str) -> String {
    let without_query = url.split('?').next().unwrap_or(url);
    let (server, _) = without_query
        .rsplit_once('/')
        .expect("DATABASE_URL has a database name");
    format!("{server}/{name}")
}
