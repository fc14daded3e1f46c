//! The fault tests' servers (the `coupon-test-support` crate), and helpers to drive the service
//! when it runs as a process.

use coupon_test_support::{ApiClient, NewEvent};
pub use coupon_test_support::{
    OwnCluster, OwnPostgres, OwnRedis, OwnSentinels, ServerTls, Service, TestCerts, free_port, primary_port_at,
    shared_or_own_cluster,
};

/// Starts this build's `coupon-issuer serve` on a free port.
pub fn start_service(env: &[(&str, String)]) -> Service {
    Service::start_bin(
        std::path::Path::new(env!("CARGO_BIN_EXE_coupon-issuer")),
        free_port(),
        env,
    )
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
    let api = ApiClient::new(client.clone(), service.url("")).with_admin_token(crate::helpers::ADMIN_TOKEN);
    let event = NewEvent::open_now("Half price", daily_limit.into(), 3);
    api.create_event(&event).await.unwrap_or_else(|e| panic!("{e}"))
}
