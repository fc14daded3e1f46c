//! Logs carry the fields an operator filters on, as text by default and as JSON with
//! `LOG_FORMAT=json`: the real binary, its real stderr.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{ADMIN_TOKEN, event_body, test_settings, today_utc};

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the binary with `LOG_FORMAT=format`, issues one coupon, lets the writer store it,
/// stops the binary and returns its stderr and the event id.
async fn run_and_log(format: &str) -> (String, String) {
    let settings = test_settings();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut service = Service(
        Command::new(env!("CARGO_BIN_EXE_coupon-issuer"))
            .arg("serve")
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("REDIS_URL", &settings.connections.redis_url)
            .env("DATABASE_URL", &settings.connections.database.url)
            .env("REDIS_KEY_PREFIX", &settings.connections.redis_key_prefix)
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .env("WRITER_BLOCK_MS", "100")
            .env("LOG_FORMAT", format)
            .env("RUST_LOG", "warn,request=debug,writer=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    crate::helpers::wait_until_ready(&client, &base).await;
    let day = today_utc();
    let created: Value = client
        .post(format!("{base}/v1/events"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&event_body("UTC", day, day, ("00:00", "24:00"), 10))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event = created["id"].as_str().unwrap().to_owned();
    let issued = client
        .post(format!("{base}/v1/coupon/issue"))
        .json(&serde_json::json!({"event_id": event, "user_id": "logged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(600)).await; // the writer stores it

    let pid = nix::unistd::Pid::from_raw(service.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let mut stderr = String::new();
    service.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (stderr, event)
}

#[tokio::test]
async fn json_logs_carry_event_day_outcome_and_latency() {
    let (logs, event) = run_and_log("json").await;
    let lines: Vec<Value> = logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let day = today_utc().to_string();

    let request = lines
        .iter()
        .find(|l| l["target"] == "request" && l["span"]["outcome"] == "issued")
        .unwrap_or_else(|| panic!("no finished issue request in\n{logs}"));
    let span = &request["span"];
    assert_eq!(span["name"], "request");
    assert_eq!(span["event_id"], event.as_str());
    assert_eq!(span["day"], day.as_str());
    assert_eq!(span["route"], "/v1/coupon/issue");
    assert_eq!(span["status"], 201);
    assert!(span["latency_ms"].as_f64().is_some(), "{request}");

    let batch = lines
        .iter()
        .find(|l| l["target"] == "writer" && l["span"]["event_id"] == event.as_str())
        .unwrap_or_else(|| panic!("no writer batch in\n{logs}"));
    let span = &batch["span"];
    assert_eq!(span["name"], "writer_batch");
    assert_eq!(span["day"], day.as_str());
    assert_eq!(span["outcome"], "stored");
    assert!(span["latency_ms"].as_f64().is_some(), "{batch}");
}

#[tokio::test]
async fn text_logs_carry_the_same_fields() {
    let (logs, event) = run_and_log("text").await;
    let day = today_utc().to_string();
    let request = logs
        .lines()
        .find(|l| l.contains("request{") && l.contains("outcome=\"issued\""))
        .unwrap_or_else(|| panic!("no finished issue request in\n{logs}"));
    for field in [
        format!("event_id={event}"),
        format!("day={day}"),
        "latency_ms=".into(),
        "status=201".into(),
    ] {
        assert!(request.contains(&field), "{field} missing from {request}");
    }
    let batch = logs
        .lines()
        .find(|l| l.contains("writer_batch{") && l.contains(&event))
        .unwrap_or_else(|| panic!("no writer batch in\n{logs}"));
    for field in [
        format!("day=\"{day}\""),
        "outcome=\"stored\"".into(),
        "latency_ms=".into(),
    ] {
        assert!(batch.contains(&field), "{field} missing from {batch}");
    }
}
