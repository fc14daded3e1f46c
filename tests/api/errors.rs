//! Every client error answers its status and stable code, in one JSON shape, and changes nothing.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_with};

async fn error_of(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("errors are JSON");
    let code = body["error"]["code"].as_str().unwrap_or_default().to_owned();
    let message = body["error"]["message"].as_str().unwrap_or_default().to_owned();
    (status, code, message)
}

#[tokio::test]
async fn bad_issue_requests_are_400_and_name_the_field() {
    let app = spawn_app().await;
    let event = app.open_event(10).await;
    let cases: Vec<(String, &str)> = vec![
        ("{".into(), "request body"),
        ("[]".into(), "request body"),
        ("\"alice\"".into(), "request body"),
        ("".into(), "request body"),
        (json!({ "user_id": "alice" }).to_string(), "event_id"),
        (json!({ "event_id": event }).to_string(), "user_id"),
        (json!({ "event_id": 42, "user_id": "alice" }).to_string(), "event_id"),
        (
            json!({ "event_id": event, "user_id": ["alice"] }).to_string(),
            "user_id",
        ),
        (
            json!({ "event_id": "not-a-uuid", "user_id": "alice" }).to_string(),
            "event_id",
        ),
        (json!({ "event_id": event, "user_id": "" }).to_string(), "user_id"),
        (
            json!({ "event_id": event, "user_id": "a".repeat(65) }).to_string(),
            "user_id",
        ),
        (
            json!({ "event_id": event, "user_id": "bob smith" }).to_string(),
            "user_id",
        ),
        (json!({ "event_id": event, "user_id": "x|1|y" }).to_string(), "user_id"),
        (
            json!({ "event_id": event, "user_id": "alice", "extra": 1 }).to_string(),
            "extra",
        ),
    ];
    for (body, field) in cases {
        let response = app
            .client
            .post(app.url("/v1/coupon/issue"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let (status, code, message) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{body}"
        );
        assert!(message.contains(field), "{body}: {message:?} should name {field}");
    }
    assert_eq!(app.count(&event).await["issued"], 0, "none of it counted");
}

#[tokio::test]
async fn size_type_route_and_unknown_event_errors() {
    let app = spawn_app().await;
    let post = |body: String, content_type: &'static str| {
        app.client
            .post(app.url("/v1/coupon/issue"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let big = json!({ "event_id": "x", "user_id": "a".repeat(10_000) }).to_string();
    assert_eq!(
        error_of(post(big, "application/json").await.unwrap()).await.1,
        "payload_too_large"
    );
    let (status, code, _) = error_of(post("{}".into(), "text/plain").await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );

    let unknown = "0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10";
    let (status, code, _) = error_of(app.issue(unknown, "alice").await).await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "event_not_found"));
    let (_, count) = app.get_json(&format!("/v1/coupon/count?event_id={unknown}")).await;
    assert_eq!(count["error"]["code"], "event_not_found");
    for query in [
        "",
        "?event_id=nope",
        "?event_id=0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10&day=2026-13-01",
    ] {
        let (status, _) = app.get_json(&format!("/v1/coupon/count{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
    }
    let (status, code, _) = error_of(app.client.get(app.url("/nowhere")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn sold_out_is_410() {
    let app = spawn_app().await;
    let event = app.open_event(1).await;
    assert_eq!(app.issue(&event, "first").await.status(), StatusCode::CREATED);
    let (status, code, _) = error_of(app.issue(&event, "second").await).await;
    assert_eq!((status, code.as_str()), (StatusCode::GONE, "sold_out"));
}

#[tokio::test]
async fn redis_unreachable_is_a_prompt_503_with_retry_after() {
    // Nothing listens on port 1.
    let app = spawn_app_with(|s| {
        s.connections.redis_url = "redis://127.0.0.1:1".into();
        s.redis_timeout_ms = 300;
    })
    .await;
    let started = Instant::now();
    let response = app.issue("0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10", "alice").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered in {:?}",
        started.elapsed()
    );
    assert_eq!(
        response.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let (status, code, message) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    assert!(
        !message.to_lowercase().contains("refused"),
        "no internals in {message:?}"
    );
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn over_the_in_flight_limit_requests_are_shed() {
    let app = spawn_app_with(|s| s.max_in_flight = 0).await;
    let response = app.issue("0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10", "alice").await;
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_of(response).await.1, "unavailable");
    // Health checks are not shed: an overloaded instance is alive.
    assert_eq!(
        app.client.get(app.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_admin_api_needs_the_token() {
    let app = spawn_app().await;
    let list = |token: Option<&'static str>| {
        let request = app.client.get(app.url("/v1/events"));
        match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
        .send()
    };
    for token in [None, Some("wrong"), Some("")] {
        let (status, code, _) = error_of(list(token).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{token:?}"
        );
    }
    let no_admin = spawn_app_with(|s| s.admin_token = None).await;
    let response = no_admin
        .client
        .post(no_admin.url("/v1/events"))
        .bearer_auth("")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "no token configured: the admin API is closed"
    );
}
