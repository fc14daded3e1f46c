//! `/live` in a real headless Chromium while coupons are being issued: the numbers move.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

/// The value of `attr="..."` in the first element that has it.
fn attribute<'a>(dom: &'a str, attr: &str) -> &'a str {
    let start = dom
        .find(&format!("{attr}=\""))
        .unwrap_or_else(|| panic!("no {attr} in {dom}"))
        + attr.len()
        + 2;
    let len = dom[start..].find('"').unwrap();
    &dom[start..start + len]
}

/// Issues coupons to new users on a few connections until told to stop (or 30 s pass).
fn keep_issuing(app: &TestApp, event: &str) -> (Arc<AtomicBool>, Vec<tokio::task::JoinHandle<u32>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = (0..4)
        .map(|worker| {
            let (client, url, event, stop) = (
                app.client.clone(),
                app.url("/v1/coupon/issue"),
                event.to_owned(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let started = Instant::now();
                let mut issued = 0;
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(30) {
                    let body = serde_json::json!({"event_id": event, "user_id": format!("live-{worker}-{issued}")});
                    let answer = client.post(&url).json(&body).send().await.unwrap();
                    assert_eq!(answer.status(), StatusCode::CREATED);
                    issued += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                issued
            })
        })
        .collect();
    (stop, tasks)
}

#[tokio::test]
async fn the_live_page_shows_the_numbers_moving() {
    let app = spawn_app().await;
    let event = app.open_event(1_000_000).await;
    let (stop, tasks) = keep_issuing(&app, &event);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let url = app.url("/live");
    let dom = crate::chromium::run(&url, &["--dump-dom"], Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        assert!(task.await.unwrap() > 0);
    }

    // The page polled several times, and what it showed for the event grew in between.
    let polls: u32 = attribute(&dom, "data-polls").parse().unwrap();
    assert!(polls >= 3, "only {polls} polls in\n{dom}");
    let trail: Vec<u64> = attribute(&dom, "data-issued-trail")
        .split(';')
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        trail.len() >= 3 && trail.last() > trail.first(),
        "issued did not move: {trail:?}"
    );
    assert!(dom.contains(&format!("data-event=\"{event}\"")), "the event has no row");
    assert!(dom.contains("data-outcome=\"issued\""), "no issued rate shown");
    assert!(!dom.contains("cannot reach the service"), "{dom}");
}

#[tokio::test]
async fn the_live_page_is_self_contained_and_its_stats_add_up() {
    let app = spawn_app().await;
    let event = app.open_event(10).await;
    for user in ["a", "b", "a"] {
        app.issue(&event, user).await;
    }
    for path in ["/live", "/live/live.js", "/live/live.css"] {
        let body = app
            .client
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // Nothing is loaded from elsewhere: no absolute URL in the page or its assets.
        assert!(
            !body.contains("http://") && !body.contains("https://") && !body.contains("src=\"//"),
            "{path}"
        );
    }
    let (status, stats) = app.get_json("/live/stats.json").await;
    assert_eq!(status, StatusCode::OK);
    let ours: Vec<&Value> = stats["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_id"] == event.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{stats}");
    let e = ours[0];
    assert_eq!((e["issued"].as_u64(), e["daily_limit"].as_u64()), (Some(2), Some(10)));
    assert_eq!(e["status"], "open");
    assert_eq!(e["outcomes"]["issued"], 2);
    assert_eq!(e["outcomes"]["already_issued"], 1);
    assert_eq!(stats["latency"]["count"], 3);
    assert!(stats["at"].is_string());
}
