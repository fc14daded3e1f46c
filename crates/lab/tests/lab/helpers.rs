//! `spawn_lab()`: the lab's server on port 0, against the real Redis and Postgres, with its own
//! database (`coupon_test_lab_*`) and its own Redis key prefix (`test-lab-*`), the patterns
//! scripts/test clears, so that every test runs in parallel with the others.

use std::time::Duration;

use actix_web::dev::ServerHandle;
use coupon_lab::LabServer;
use coupon_lab::ServeSettings;
use coupon_test_support::database_url_named;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// How many times one request answered 503 is asked again: about 15 s of retries, far longer
/// than any slow moment of a loaded machine (as the service's tests).
pub const RETRIES_PER_REQUEST: u32 = 10;

pub struct TestLab {
    pub address: String,
    pub client: reqwest::Client,
    /// The lab's database, for tests that look at its tables.
    pub db: sqlx::PgPool,
    pub stop: ServerHandle,
    pub task: JoinHandle<anyhow::Result<()>>,
}

pub async fn spawn_lab() -> TestLab {
    spawn_lab_with(|_| {}).await
}

pub async fn spawn_lab_with(configure: impl FnOnce(&mut ServeSettings)) -> TestLab {
    coupon_issuer::telemetry::init_with_default("error");
    let mut settings = test_settings();
    configure(&mut settings);
    let server = LabServer::build(settings).await.expect("the lab builds");
    let address = format!("http://127.0.0.1:{}", server.port());
    let stop = server.stop_handle();
    let db = server.db.clone();
    let task = tokio::spawn(server.run_until_stopped());
    TestLab {
        address,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            // Below actix's keep-alive (5 s): a connection the server may be closing is never
            // reused (see the service's tests/api/helpers.rs).
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .unwrap(),
        db,
        stop,
        task,
    }
}

/// Defaults from the environment (REDIS_URL, DATABASE_URL), made private to one test.
pub fn test_settings() -> ServeSettings {
    let mut settings = ServeSettings::from_env();
    let unique = Uuid::new_v4().simple().to_string();
    settings.listen_addr = "127.0.0.1:0".into();
    let db = &mut settings.connections.database.url;
    *db = database_url_named(db, &format!("coupon_test_lab_{unique}"));
    settings.connections.redis_key_prefix = format!("test-lab-{}", &unique[..12]);
    settings.admin_token = Some(ADMIN_TOKEN.into());
    settings.http_workers = 2;
    settings
}

impl TestLab {
    /// Stops the lab gracefully and waits until it has finished.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.stop(true).await;
        self.task.await?
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// GET `path`, with the answer's status and JSON body.
    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.get(self.url(path)).send().await.expect("request sent");
        (response.status(), response.json().await.unwrap_or(Value::Null))
    }
}

pub fn users(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}
