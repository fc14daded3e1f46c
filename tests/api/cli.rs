//! The admin CLI, run as the real binary against the same Postgres and Redis as a running
//! service (this test's own database and key prefix).

use std::process::Output;
use std::time::Duration;

use chrono::Duration as Days;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::helpers::{ADMIN_TOKEN, TestApp, event_body, spawn_app_with, today_utc, users};

/// The service, and the environment that points the CLI at its database and key prefix.
pub async fn app_and_env() -> (TestApp, Vec<(&'static str, String)>) {
    let mut env = Vec::new();
    let app = spawn_app_with(|s| {
        env = vec![
            ("DATABASE_URL", s.connections.database.url.clone()),
            ("REDIS_URL", s.connections.redis_url.clone()),
            ("REDIS_KEY_PREFIX", s.connections.redis_key_prefix.clone()),
        ];
    })
    .await;
    (app, env)
}

pub async fn cli(env: &[(&str, String)], args: &[&str]) -> Output {
    let run = Command::new(env!("CARGO_BIN_EXE_coupon-issuer"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the CLI finished within 30 s")
        .expect("the CLI started")
}

pub fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn temp_file(contents: &Value) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("coupon-cli-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, contents.to_string()).unwrap();
    path
}

fn drop_body(days: i64) -> Value {
    event_body(
        "Asia/Seoul",
        today_utc(),
        today_utc() + Days::days(days),
        ("13:00", "15:00"),
        100,
    )
}

#[tokio::test]
async fn events_created_by_the_cli_are_the_apis_events() {
    let (app, env) = app_and_env().await;
    let file = temp_file(&drop_body(4));
    let created: Value = serde_json::from_str(&stdout(
        &cli(&env, &["events", "create", "--file", file.to_str().unwrap(), "--json"]).await,
    ))
    .unwrap();
    let id = created["id"].as_str().unwrap();
    let from_api: Value = app
        .client
        .get(app.url(&format!("/v1/events/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(from_api, created);

    let flags = [
        "events",
        "create",
        "--name",
        "Flags drop",
        "--timezone",
        "UTC",
        "--starts-on",
        "2030-01-01",
        "--ends-on",
        "2030-01-02",
        "--open",
        "10:00",
        "--close",
        "24:00",
        "--limit",
        "5",
        "--amount",
        "5000",
        "--currency",
        "KRW",
    ];
    let table = stdout(&cli(&env, &flags).await);
    assert!(
        table.contains("Flags drop") && table.contains("5000 KRW off"),
        "{table}"
    );

    let list = stdout(&cli(&env, &["events", "list"]).await);
    assert!(
        list.contains(id) && list.contains("Flags drop") && list.contains("2 events"),
        "{list}"
    );
    let show = stdout(&cli(&env, &["events", "show", id]).await);
    assert!(show.contains("Asia/Seoul") && show.contains("13:00-15:00"), "{show}");
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn the_cli_refuses_what_the_api_refuses_with_the_same_message() {
    let (app, env) = app_and_env().await;
    let mut bad = drop_body(4);
    bad["timezone"] = json!("Mars/Olympus");
    let api: Value = app.post_event(&bad).await.json().await.unwrap();
    let file = temp_file(&bad);
    let output = cli(&env, &["events", "create", "--file", file.to_str().unwrap()]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(api["error"]["message"].as_str().unwrap()),
        "CLI: {stderr}\nAPI: {api}"
    );
    let output = cli(&env, &["events", "show", "42"]).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("event id: must be a UUID"));
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn import_checks_every_definition_first_then_creates_them_all() {
    let (_app, env) = app_and_env().await;
    let mut broken = drop_body(2);
    broken["daily_limit"] = json!(0);
    let file = temp_file(&json!([drop_body(1), broken, drop_body(3)]));
    let output = cli(&env, &["events", "import", file.to_str().unwrap()]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("nothing was imported") && stderr.contains("[1] daily_limit"),
        "{stderr}"
    );
    assert!(stdout(&cli(&env, &["events", "list"]).await).contains("0 events"));

    let many: Vec<Value> = (0..40).map(|i| drop_body(i % 10)).collect();
    let file2 = temp_file(&json!(many));
    let imported: Value = serde_json::from_str(&stdout(
        &cli(&env, &["events", "import", file2.to_str().unwrap(), "--json"]).await,
    ))
    .unwrap();
    assert_eq!(imported["imported"].as_array().unwrap().len(), 40);
    let listed: Value = serde_json::from_str(&stdout(&cli(&env, &["events", "list", "--json"]).await)).unwrap();
    assert_eq!(listed["events"].as_array().unwrap().len(), 40);
    let _ = (std::fs::remove_file(file), std::fs::remove_file(file2));
}

#[tokio::test]
async fn inspect_shows_the_days_counters() {
    let (app, env) = app_and_env().await;
    let event = app.open_event(10).await;
    for user in users("inspect", 3) {
        assert_eq!(app.issue(&event, &user).await.status(), StatusCode::CREATED);
    }
    app.wait_for_stored(&event, 3, Duration::from_secs(10)).await;

    let day: Value = serde_json::from_str(&stdout(&cli(&env, &["inspect", &event, "--json"]).await)).unwrap();
    assert_eq!(day["day"], today_utc().to_string());
    assert_eq!(day["status"], "open");
    for (field, expected) in [
        ("issued", 3),
        ("daily_limit", 10),
        ("remaining", 7),
        ("users", 3),
        ("stored", 3),
        ("stream_length", 0),
        ("pending", 0),
        ("dead_letters", 0),
        ("writer_lag_ms", 0),
    ] {
        assert_eq!(day[field], expected, "{field}: {day}");
    }
    assert_eq!(day["published"], true);

    let table = stdout(&cli(&env, &["inspect", &event]).await);
    for row in ["remaining", "users holding one", "stream length", "writer lag", "open"] {
        assert!(table.contains(row), "{row}: {table}");
    }
    let yesterday = (today_utc() - Days::days(1)).to_string();
    let before: Value = serde_json::from_str(&stdout(
        &cli(&env, &["inspect", &event, "--day", &yesterday, "--json"]).await,
    ))
    .unwrap();
    assert_eq!(before["issued"], Value::Null);
    assert_eq!(before["remaining"], 10);
    assert_eq!(before["status"], "closed");
}
