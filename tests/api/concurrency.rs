//! The invariants under fire: never over the limit, never one user twice.
//!
//! The spikes here are answered 503 when the machine is loaded (Redis slower than
//! `REDIS_TIMEOUT_MS`, or requests shed); the requests then behave as clients do and ask again
//! after `Retry-After` (see `issue_as_client`), and the invariants are checked on the final
//! answers: a retried request that had issued shows its coupon in a 409.

use std::collections::HashSet;
use std::time::Duration;

use rand::seq::SliceRandom;
use reqwest::StatusCode;

use crate::helpers::{holders, issue_all_as_clients, spawn_app, users};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_concurrent_requests_issue_exactly_the_limit() {
    let app = spawn_app().await;
    let event = app.open_event(100).await;
    // 1,000 users, each twice, shuffled, all at once.
    let mut users: Vec<String> = (0..1000)
        .flat_map(|i| [format!("user-{i}"), format!("user-{i}")])
        .collect();
    users.shuffle(&mut rand::rng());

    let (answers, retries) = issue_all_as_clients(&app, &event, &users).await;
    println!("2,000 requests at once: {retries} retries after a 503");

    // Each user is shown one coupon at most, in a 201 or in the 409 of another ask.
    let held = holders(answers.iter().map(|(u, s, b)| (u.as_str(), *s, b)));
    assert_eq!(held.len(), 100, "exactly the limit is issued");
    let mut seqs: Vec<u64> = held.values().map(|c| c["seq"].as_u64().unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=100).collect::<Vec<_>>(), "seq is 1..100, each once");
    let created = answers.iter().filter(|(_, s, _)| *s == StatusCode::CREATED).count();
    assert!(created <= 100, "{created} answered 201");
    if retries == 0 {
        assert_eq!(created, 100, "without a 503, every coupon was answered 201");
    }

    let count = app.count(&event).await;
    assert_eq!(count["issued"], 100);
    assert_eq!(count["remaining"], 0);
    assert_eq!(count["status"], "sold_out");

    let stored = app.wait_for_stored(&event, 100, Duration::from_secs(10)).await;
    assert_eq!(stored.len(), 100, "every issued coupon reaches Postgres");
    let stored_ids: HashSet<&str> = stored.iter().map(|(c, _, _)| c.as_str()).collect();
    let issued_ids: HashSet<&str> = held.values().map(|c| c["coupon_id"].as_str().unwrap()).collect();
    assert_eq!(
        stored_ids, issued_ids,
        "Postgres holds exactly the coupons the users were shown"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.stored(&event).await.len(), 100, "and nothing more arrives later");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_user_hammering_gets_exactly_one_coupon() {
    let app = spawn_app().await;
    let event = app.open_event(1000).await;
    let users = vec!["hammer".to_string(); 300];

    let (answers, retries) = issue_all_as_clients(&app, &event, &users).await;

    let held = holders(answers.iter().map(|(u, s, b)| (u.as_str(), *s, b)));
    assert_eq!(held.len(), 1, "one coupon, shown in every answer");
    assert!(answers.iter().all(|(_, s, _)| *s != StatusCode::GONE));
    let created = answers.iter().filter(|(_, s, _)| *s == StatusCode::CREATED).count();
    assert!(created <= 1, "{created} answered 201");
    if retries == 0 {
        assert_eq!(created, 1, "without a 503, the coupon was answered 201");
    }
    assert_eq!(app.count(&event).await["issued"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_events_keep_separate_counts() {
    let app = spawn_app().await;
    let (a, b) = (app.open_event(30).await, app.open_event(50).await);
    let users: Vec<String> = users("u", 200);

    let ((on_a, _), (on_b, _)) = tokio::join!(
        issue_all_as_clients(&app, &a, &users),
        issue_all_as_clients(&app, &b, &users)
    );

    let held = |answers: &[(String, StatusCode, serde_json::Value)]| {
        holders(answers.iter().map(|(u, s, b)| (u.as_str(), *s, b))).len()
    };
    assert_eq!((held(&on_a), held(&on_b)), (30, 50));
    assert_eq!(app.wait_for_stored(&a, 30, Duration::from_secs(10)).await.len(), 30);
    assert_eq!(app.wait_for_stored(&b, 50, Duration::from_secs(10)).await.len(), 50);
}
