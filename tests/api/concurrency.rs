//! The invariants under fire: never over the limit, never one user twice.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rand::seq::SliceRandom;
use reqwest::StatusCode;

use crate::helpers::{issue_all, spawn_app, users};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_concurrent_requests_issue_exactly_the_limit() {
    let app = spawn_app().await;
    let event = app.open_event(100).await;
    // 1,000 users, each twice, shuffled, all at once.
    let mut users: Vec<String> = (0..1000)
        .flat_map(|i| [format!("user-{i}"), format!("user-{i}")])
        .collect();
    users.shuffle(&mut rand::rng());

    let answers = issue_all(&app, &event, &users).await;

    let issued: Vec<_> = answers.iter().filter(|(_, s, _)| *s == StatusCode::CREATED).collect();
    assert_eq!(issued.len(), 100, "exactly the limit is issued");
    let mut seqs: Vec<u64> = issued.iter().map(|(_, _, b)| b["seq"].as_u64().unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=100).collect::<Vec<_>>(), "seq is 1..100, each once");
    let winners: HashSet<&str> = issued.iter().map(|(u, _, _)| u.as_str()).collect();
    assert_eq!(winners.len(), 100, "no user was issued twice");

    let coupon_of: HashMap<&str, &str> = issued
        .iter()
        .map(|(u, _, b)| (u.as_str(), b["coupon_id"].as_str().unwrap()))
        .collect();
    for (user, status, body) in &answers {
        match *status {
            StatusCode::CREATED => {}
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "already_issued");
                // The 409 carries the coupon the user holds: the same one they were issued.
                assert_eq!(
                    body["coupon"]["coupon_id"].as_str(),
                    coupon_of.get(user.as_str()).copied()
                );
            }
            StatusCode::GONE => assert_eq!(body["error"]["code"], "sold_out"),
            other => panic!("unexpected {other}: {body}"),
        }
    }

    let count = app.count(&event).await;
    assert_eq!(count["issued"], 100);
    assert_eq!(count["remaining"], 0);
    assert_eq!(count["status"], "sold_out");

    let stored = app.wait_for_stored(&event, 100, Duration::from_secs(10)).await;
    assert_eq!(stored.len(), 100, "every issued coupon reaches Postgres");
    let stored_ids: HashSet<&str> = stored.iter().map(|(c, _, _)| c.as_str()).collect();
    let issued_ids: HashSet<&str> = coupon_of.values().copied().collect();
    assert_eq!(
        stored_ids, issued_ids,
        "Postgres holds exactly the coupons that were answered 201"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.stored(&event).await.len(), 100, "and nothing more arrives later");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_user_hammering_gets_exactly_one_coupon() {
    let app = spawn_app().await;
    let event = app.open_event(1000).await;
    let users = vec!["hammer".to_string(); 300];

    let answers = issue_all(&app, &event, &users).await;

    let issued: Vec<_> = answers.iter().filter(|(_, s, _)| *s == StatusCode::CREATED).collect();
    assert_eq!(issued.len(), 1);
    let coupon = issued[0].2["coupon_id"].clone();
    for (_, status, body) in &answers {
        if *status != StatusCode::CREATED {
            assert_eq!(*status, StatusCode::CONFLICT, "{body}");
            assert_eq!(body["coupon"]["coupon_id"], coupon);
        }
    }
    assert_eq!(app.count(&event).await["issued"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_events_keep_separate_counts() {
    let app = spawn_app().await;
    let (a, b) = (app.open_event(30).await, app.open_event(50).await);
    let users: Vec<String> = users("u", 200);

    let (on_a, on_b) = tokio::join!(issue_all(&app, &a, &users), issue_all(&app, &b, &users));

    let created = |answers: &[(String, StatusCode, serde_json::Value)]| {
        answers.iter().filter(|(_, s, _)| *s == StatusCode::CREATED).count()
    };
    assert_eq!((created(&on_a), created(&on_b)), (30, 50));
    assert_eq!(app.wait_for_stored(&a, 30, Duration::from_secs(10)).await.len(), 30);
    assert_eq!(app.wait_for_stored(&b, 50, Duration::from_secs(10)).await.len(), 50);
}
