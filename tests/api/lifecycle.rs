//! Health, readiness, and stopping gracefully.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{everyone_gets_one, spawn_app, test_settings, users};

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(
        app.client.get(app.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let report: Value = ready.json().await.unwrap();
    assert_eq!(report["checks"]["redis"]["ok"], true);
    assert_eq!(report["checks"]["postgres"]["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_stores_every_coupon_that_was_answered() {
    let app = spawn_app().await;
    let event = app.open_event(10_000).await;
    let users: Vec<String> = users("late", 300);
    // As clients do: a 503 (Redis later than its timeout on a loaded machine) is retried; every
    // user ends up holding one coupon, answered.
    everyone_gets_one(&app, &event, &users).await;

    // A pool of the test's own, opened after the stop: the app's pool may hand out a connection
    // an actix worker opened on its own runtime, which the stop has shut down ("a Tokio 1.x
    // context was found, but it is being shutdown", seen on a loaded machine).
    let database_url = app.settings.connections.database.url.clone();
    let rows_of = |db: sqlx::PgPool, event: String| async move {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM coupons WHERE event_id = $1::uuid")
            .bind(event)
            .fetch_one(&db)
            .await
            .unwrap();
        n
    };
    app.stop().await.expect("stops cleanly");
    let db = sqlx::PgPool::connect(&database_url).await.unwrap();
    assert_eq!(
        rows_of(db, event).await,
        300,
        "the writer drained the stream before exiting"
    );
}

/// A server process that a failing test does not leave running (it would hold the test
/// runner's output open).
struct KilledOnDrop(std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real binary, a real SIGTERM: it stops accepting, finishes, and exits 0.
#[tokio::test]
async fn sigterm_exits_cleanly() {
    let settings = test_settings();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = KilledOnDrop(
        Command::new(env!("CARGO_BIN_EXE_coupon-issuer"))
            .arg("serve")
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("REDIS_URL", &settings.connections.redis_url)
            .env("DATABASE_URL", &settings.connections.database.url)
            .env("REDIS_KEY_PREFIX", &settings.connections.redis_key_prefix)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    crate::helpers::wait_until_ready(&client, &format!("http://127.0.0.1:{port}")).await;
    // Sent from here, not by the `kill` command: a minimal Debian has no procps.
    let pid = nix::unistd::Pid::from_raw(child.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM sent");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
}

/// `coupon-issuer migrate` creates a missing database and applies the migrations, then exits.
#[tokio::test]
async fn migrate_creates_the_database_and_its_tables() {
    let url = test_settings().connections.database.url;
    let status = Command::new(env!("CARGO_BIN_EXE_coupon-issuer"))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(tables, ["_sqlx_migrations", "coupons", "events"]);
    // A second run has nothing left to do and still succeeds.
    let again = Command::new(env!("CARGO_BIN_EXE_coupon-issuer"))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .status()
        .unwrap();
    assert!(again.success());
}

/// Stopping while a spike is in flight: requests already accepted are answered properly, and
/// every coupon a client saw as 201 is in Postgres once the service has stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_mid_spike_loses_no_answered_coupon() {
    let app = spawn_app().await;
    let event = app.open_event(100_000).await;
    let users: Vec<String> = users("mid", 1500);
    // Rows are counted through a pool of the test's own, opened after the stop: the app's pool
    // may hand back a connection an actix worker opened on its own runtime, which the stop has
    // shut down (as in `stopping_stores_every_coupon_that_was_answered`).
    let (database_url, stop, client, url) = (
        app.settings.connections.database.url.clone(),
        app.stop.clone(),
        app.client.clone(),
        app.url("/v1/coupon/issue"),
    );

    // The stop comes once the first answers are back (not after a fixed delay, which a loaded
    // machine can outrun before a single request is answered).
    let first_answer = std::sync::Arc::new(tokio::sync::Notify::new());
    let spike = users.iter().map(|user| {
        let (client, url, event, first_answer) = (client.clone(), url.clone(), event.clone(), first_answer.clone());
        async move {
            let body = serde_json::json!({ "event_id": event, "user_id": user });
            match client.post(url).json(&body).send().await {
                Ok(response) => {
                    let status = response.status();
                    let body = response.json::<Value>().await.ok();
                    first_answer.notify_one();
                    Some((status, body))
                }
                Err(_) => None, // not accepted: the listener had closed
            }
        }
    });
    let stopping = async {
        let _ = tokio::time::timeout(Duration::from_secs(10), first_answer.notified()).await;
        stop.stop().await;
    };
    let (answers, ()) = tokio::join!(futures::future::join_all(spike), stopping);
    app.task.await.unwrap().expect("stops cleanly");

    let issued: Vec<String> = answers
        .iter()
        .flatten()
        // A 503 is an honest answer under a spike the test does not control (Redis answered
        // later than REDIS_TIMEOUT_MS while the service stopped): no coupon was promised. Any
        // other server error is a bug.
        .inspect(|(status, body)| {
            let unavailable = *status == StatusCode::SERVICE_UNAVAILABLE
                && body.as_ref().is_some_and(|b| b["error"]["code"] == "unavailable");
            assert!(!status.is_server_error() || unavailable, "{status}: {body:?}")
        })
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .filter_map(|(_, body)| body.as_ref()?["coupon_id"].as_str().map(str::to_owned))
        .collect();
    let answered = answers.iter().flatten().count();
    eprintln!(
        "stopped mid-spike: {answered} of {} answered, {} issued",
        answers.len(),
        issued.len()
    );
    assert!(!issued.is_empty(), "some requests were answered before the stop");
    let db = sqlx::PgPool::connect(&database_url).await.unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT coupon_id::text FROM coupons WHERE event_id = $1::uuid")
        .bind(&event)
        .fetch_all(&db)
        .await
        .unwrap();
    let stored: std::collections::HashSet<String> = stored.into_iter().collect();
    assert!(
        issued.iter().all(|c| stored.contains(c)),
        "every 201 is stored: {} answered, {} stored",
        issued.len(),
        stored.len()
    );
}
