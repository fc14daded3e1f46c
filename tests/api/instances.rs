//! The fault tests' servers (see `tests/support/servers.rs`), and helpers to drive the service
//! when it runs as a process.

#[path = "../support/servers.rs"]
mod servers;

// Uses `servers`' TempDir, so it sits beside it.
#[path = "../support/cluster.rs"]
mod cluster;

// Uses `servers`' TempDir and `cluster`'s redis-cli.
#[path = "../support/sentinel.rs"]
mod sentinel;

// Certificates for the TLS tests; uses `servers`' TempDir too.
#[path = "../support/tls.rs"]
mod tls;

pub use cluster::OwnCluster;
pub use sentinel::OwnSentinels;
pub use tls::TestCerts;
// For the tests that only read and write on a cluster (they may share scripts/test's).
#[allow(unused_imports)]
pub use cluster::{primary_port_at, shared_cluster_url, shared_or_own_cluster};
pub use servers::{OwnPostgres, OwnRedis, ServerTls, Service, free_port};

impl Service {
    /// Starts this build's `coupon-issuer serve` on a free port.
    pub fn start(env: &[(&str, String)]) -> Self {
        Self::start_bin(
            std::path::Path::new(env!("CARGO_BIN_EXE_coupon-issuer")),
            servers::free_port(),
            env,
        )
    }
}

/// What a service process needs to share the test's Redis and Postgres under its own prefix.
pub fn service_env(redis_url: &str, database_url: &str, prefix: &str) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_URL", redis_url.to_owned()),
        ("DATABASE_URL", database_url.to_owned()),
        ("REDIS_KEY_PREFIX", prefix.to_owned()),
        ("ADMIN_TOKEN", crate::helpers::ADMIN_TOKEN.to_owned()),
        ("WRITER_BLOCK_MS", "100".to_owned()),
        ("HTTP_WORKERS", "2".to_owned()),
    ]
}

/// Creates an event open all day through `service`'s admin API; returns its id.
pub async fn create_open_event(client: &reqwest::Client, service: &Service, daily_limit: u32) -> String {
    use chrono::Duration as Days;
    let today = crate::helpers::today_utc();
    let body = crate::helpers::event_body(
        "UTC",
        today - Days::days(1),
        today + Days::days(3),
        ("00:00", "24:00"),
        daily_limit,
    );
    let response = client
        .post(service.url("/v1/events"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let created: serde_json::Value = response.json().await.unwrap();
    created["id"].as_str().unwrap().to_owned()
}
