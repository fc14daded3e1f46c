//! A new event's coupons reach Postgres at once (issue 14): the writer that was blocked in a
//! read of the streams it knew is woken on the instance that created the event, and the other
//! instances hear of it by pub/sub (`announce`) instead of at their next catalog reload. With
//! `WRITER_BLOCK_MS` at its default of one second, the lag was up to a second on the creating
//! instance and up to three on the others.
//!
//! The bound asserted is a second: generous on a loaded machine, and what the old lag reached.
//! The figures are printed (`--nocapture`); idle they are a few milliseconds.

use std::time::{Duration, Instant};

use coupon_issuer::config::Settings;
use redis::AsyncCommands;
use reqwest::StatusCode;

use crate::helpers::{TestApp, holders, issue_all_as_clients, spawn_app_with, users};
use crate::instances::shared_or_own_cluster;

/// The bound on the time from a new event's first 201 to its row in Postgres.
const BOUND: Duration = Duration::from_secs(1);
/// New events measured per case.
const RUNS: usize = 5;

/// Which instance's writer stores the coupons: the one that created the event, or another.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Writer {
    Creating,
    Other,
}

/// Two instances sharing a Redis (`redis_url`), prefix and database; only `writer`'s writer
/// runs (the other's is built but never driven). The event is created and issued on the first.
async fn two_instances(redis_url: Option<String>, writer: Writer) -> (TestApp, TestApp) {
    let production = move |s: &mut Settings, runs: bool| {
        if let Some(url) = &redis_url {
            s.connections.redis_url = url.clone();
            s.connections.redis_cluster_nodes = None;
        }
        // The default: a blocked read lasts this long unless woken.
        s.writer_block_ms = 1000;
        s.writer_enabled = runs;
    };
    let production_too = production.clone();
    let creating = spawn_app_with(|s| production(s, writer == Writer::Creating)).await;
    let settings = creating.settings.clone();
    let other = spawn_app_with(move |s| {
        *s = settings;
        production_too(s, writer == Writer::Other);
    })
    .await;
    (creating, other)
}

/// Creates an event on `app`, issues its first coupon there, and returns the time from the 201
/// to the coupon's row in Postgres (polled every millisecond).
async fn first_coupon_lag(app: &TestApp) -> Duration {
    let event = app.open_event(100).await;
    let response = app.issue(&event, "first").await;
    let answered = Instant::now();
    assert_eq!(response.status(), StatusCode::CREATED);
    loop {
        if !app.stored(&event).await.is_empty() {
            return answered.elapsed();
        }
        assert!(
            answered.elapsed() < Duration::from_secs(10),
            "the first coupon of {event} never reached Postgres"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// `RUNS` new events, created at different moments of the writer's blocking read; prints the
/// lags and their median, and asserts each is under `BOUND`.
async fn lag_is_bounded(redis_url: Option<String>, label: &str, writer: Writer) {
    let (creating, _other) = two_instances(redis_url, writer).await;
    // Let the writers settle into their idle wait: for the first event, with no stream to read.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = first_coupon_lag(&creating).await;
    assert!(
        first < BOUND,
        "{label}, {writer:?}: the first event's coupon took {first:?}"
    );
    // Then into their idle reads of the streams they know.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut lags = Vec::new();
    for run in 0..RUNS {
        lags.push(first_coupon_lag(&creating).await);
        // Somewhere else in the next read's second.
        tokio::time::sleep(Duration::from_millis(150 + 170 * run as u64)).await;
    }
    let mut sorted = lags.clone();
    sorted.sort();
    println!(
        "new-event lag, {label}, {writer:?} instance's writer: median {:?}, all {lags:?} (the service's first event: {first:?})",
        sorted[RUNS / 2]
    );
    for lag in lags {
        assert!(
            lag < BOUND,
            "{label}, {writer:?}: a new event's first coupon took {lag:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_one_redis_the_creating_instance_stores_a_new_events_coupons_at_once() {
    lag_is_bounded(None, "one Redis", Writer::Creating).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_one_redis_another_instance_stores_a_new_events_coupons_at_once() {
    lag_is_bounded(None, "one Redis", Writer::Other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_the_creating_instance_stores_a_new_events_coupons_at_once() {
    let (url, _own) = shared_or_own_cluster();
    lag_is_bounded(Some(url), "cluster", Writer::Creating).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_another_instance_stores_a_new_events_coupons_at_once() {
    let (url, _own) = shared_or_own_cluster();
    lag_is_bounded(Some(url), "cluster", Writer::Other).await;
}

/// The issue's scenario, measured: a new event sells 60 at once, and 200 ms after the last
/// answer Redis loses everything of it (no persistence). Before the wake-up Postgres held none
/// of the 60; now the writer reads the new stream from the first coupon. How many reached
/// Postgres is printed, not asserted: 200 ms is a timing, which a loaded machine can stretch.
/// What is asserted holds whatever the timing: Postgres holds only coupons the users were shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_events_first_sales_wiped_from_redis_200_ms_later() {
    let (app, _other) = two_instances(None, Writer::Creating).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let event = app.open_event(100).await;
    let (answers, _) = issue_all_as_clients(&app, &event, &users("early", 60)).await;
    let held = holders(answers.iter().map(|(u, s, b)| (u.as_str(), *s, b)));
    assert_eq!(held.len(), 60, "{answers:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Every key of this test's prefix, as a restart without persistence would leave Redis.
    let mut conn = app.issuer.connection();
    let mut keys: Vec<String> = Vec::new();
    let mut found: redis::AsyncIter<String> = conn.scan_match(format!("{}:*", app.keys.prefix())).await.unwrap();
    while let Some(key) = found.next_item().await {
        keys.push(key.unwrap());
    }
    drop(found);
    let _: () = conn.del(&keys).await.unwrap();

    // A batch read before the wipe may still be committing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stored = app.stored(&event).await;
    println!(
        "a new event's 60 first coupons, Redis wiped 200 ms later: {} in Postgres",
        stored.len()
    );
    let shown: std::collections::HashSet<&str> = held.values().map(|c| c["coupon_id"].as_str().unwrap()).collect();
    assert!(stored.iter().all(|(c, _, _)| shown.contains(c.as_str())), "{stored:?}");
}
