//! `/metrics`: drive the service, scrape, and check the numbers are what happened.

use std::time::Duration;

use coupon_issuer::domain::EventId;
use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::helpers::{issue_all, spawn_app_with, spawn_app_without_writer, today_utc, users};
use crate::scrape::{scrape, scrape_until};

const ISSUE: (&str, &str) = ("route", "/v1/coupon/issue");

#[tokio::test]
async fn metrics_count_what_happened() {
    // Every request goes to the script: a remembered sold-out day would answer the last three
    // users without it, and the script count below would differ.
    let app = spawn_app_with(|s| s.sold_out_memory_ms = 0).await;
    let event = app.open_event(5).await;
    let answers = issue_all(&app, &event, &users("m", 8)).await;
    assert_eq!(answers.iter().filter(|(_, s, _)| *s == StatusCode::CREATED).count(), 5);
    assert_eq!(app.issue(&event, "m-0").await.status(), StatusCode::CONFLICT);
    assert_eq!(
        app.issue(&Uuid::new_v4().to_string(), "m-0").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.issue("not-an-id", "m-0").await.status(), StatusCode::BAD_REQUEST);
    app.wait_for_stored(&event, 5, Duration::from_secs(10)).await;

    let ev = ("event", event.as_str());
    // The writer acknowledges and deletes entries just after its commit.
    let m = scrape_until(&app, |m| m.value("coupon_stream_length", &[ev]) == Some(0.0)).await;
    let outcome = |o: &str| m.get("coupon_issue_requests_total", &[ev, ("outcome", o)]);
    assert_eq!(outcome("issued"), 5.0);
    assert_eq!(outcome("sold_out"), 3.0);
    assert_eq!(outcome("already_issued"), 1.0);
    let unknown = |o: &str| m.get("coupon_issue_requests_total", &[("event", "unknown"), ("outcome", o)]);
    assert_eq!(unknown("event_not_found"), 1.0);
    assert_eq!(unknown("invalid_request"), 1.0);

    let post = ("method", "POST");
    assert_eq!(
        m.get("coupon_http_request_duration_seconds_count", &[post, ISSUE]),
        11.0
    );
    let status = |s: &str| m.get("coupon_http_responses_total", &[post, ISSUE, ("status", s)]);
    assert_eq!(
        [
            status("201"),
            status("410"),
            status("409"),
            status("404"),
            status("400")
        ],
        [5.0, 3.0, 1.0, 1.0, 1.0]
    );
    // Raw paths never become labels: both event reads count under the pattern.
    let route = ("route", "/v1/events/{id}");
    app.get_json(&format!("/v1/events/{event}")).await;
    app.get_json(&format!("/v1/events/{}", Uuid::new_v4())).await;
    let m2 = scrape(&app).await;
    assert_eq!(
        m2.get(
            "coupon_http_request_duration_seconds_count",
            &[("method", "GET"), route]
        ),
        2.0
    );
    // Every request with a valid event id reached the script once.
    assert_eq!(
        m.get("coupon_redis_script_duration_seconds_count", &[("result", "ok")]),
        10.0
    );

    let day = today_utc().to_string();
    let ev_day = [ev, ("day", day.as_str())];
    assert_eq!(m.get("coupon_day_issued", &ev_day), 5.0);
    assert_eq!(m.get("coupon_day_limit", &ev_day), 5.0);
    assert_eq!(m.get("coupon_stream_pending", &[ev]), 0.0);
    assert_eq!(m.get("coupon_dead_letters", &[ev]), 0.0);
    assert_eq!(m.get("coupon_stream_oldest_entry_age_seconds", &[ev]), 0.0);
    assert_eq!(m.get("coupon_writer_entries_total", &[("result", "inserted")]), 5.0);
    assert_eq!(m.get("coupon_writer_batch_size_sum", &[]), 5.0);
    assert!(m.get("coupon_writer_lag_seconds_count", &[]) >= 1.0);
    assert_eq!(m.get("coupon_writer_failures_total", &[]), 0.0);
    assert_eq!(m.get("coupon_http_in_flight", &[]), 0.0);
    assert_eq!(m.get("coupon_http_shed_total", &[]), 0.0);
    assert!(!m.text.contains("m-0"), "a user id became a label");
}

#[tokio::test]
async fn metrics_show_the_writer_backlog_and_dead_letters() {
    let mut app = spawn_app_without_writer().await;
    let event = app.open_event(100).await;
    let event_id = EventId::parse(&event).unwrap();
    issue_all(&app, &event, &users("b", 3)).await;
    let mut redis = app.issuer.connection();
    // Another consumer reads two entries and never acknowledges them.
    let read: StreamReadReply = redis
        .xread_options(
            &[app.keys.stream(event_id)],
            &[">"],
            &StreamReadOptions::default().group("writer", "stalled").count(2),
        )
        .await
        .unwrap();
    assert_eq!(read.keys[0].ids.len(), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let ev = ("event", event.as_str());
    let m = scrape(&app).await;
    assert_eq!(m.get("coupon_stream_length", &[ev]), 3.0);
    assert_eq!(m.get("coupon_stream_pending", &[ev]), 2.0);
    let lag = m.get("coupon_stream_oldest_entry_age_seconds", &[ev]);
    assert!((0.3..30.0).contains(&lag), "lag {lag}");

    let _: String = redis
        .xadd(app.keys.stream(event_id), "*", &[("coupon_id", "not-a-uuid")])
        .await
        .unwrap();
    let mut writer = app.writer.take().unwrap();
    while writer.process_batch().await.unwrap() != coupon_issuer::writer::Outcome::Idle {}
    let m = scrape(&app).await;
    // The stalled consumer's two stay pending; the rest is stored or dead.
    assert_eq!(m.get("coupon_stream_length", &[ev]), 2.0);
    assert_eq!(m.get("coupon_stream_pending", &[ev]), 2.0);
    assert_eq!(m.get("coupon_dead_letters", &[ev]), 1.0);
    assert_eq!(m.get("coupon_writer_entries_total", &[("result", "dead")]), 1.0);
    assert_eq!(m.get("coupon_writer_entries_total", &[("result", "inserted")]), 1.0);
}

#[tokio::test]
async fn shed_requests_are_counted() {
    let app = spawn_app_with(|s| s.max_in_flight = 0).await;
    for _ in 0..3 {
        let answer = app.issue(&Uuid::new_v4().to_string(), "s").await;
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let m = scrape(&app).await;
    assert_eq!(m.get("coupon_http_shed_total", &[]), 3.0);
    assert_eq!(m.get("coupon_http_in_flight_limit", &[]), 0.0);
    let shed = [("method", "POST"), ISSUE, ("status", "503")];
    assert_eq!(m.get("coupon_http_responses_total", &shed), 3.0);
}
