//! Redis loses its memory mid-sale: the service must not count from zero again.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{TestApp, issue_all, spawn_app, users};

/// Deletes every key this test's app has in Redis, as a restart without persistence would.
async fn wipe_redis(app: &TestApp) {
    let mut redis = app.issuer.connection();
    let pattern = format!("{}:*", app.keys.prefix());
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut redis).await.unwrap();
    assert!(!keys.is_empty());
    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut redis).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_redis_loses_its_memory_the_limit_still_holds() {
    let app = spawn_app().await;
    let event = app.open_event(100).await;
    let first: Vec<String> = users("early", 60);
    let sold = issue_all(&app, &event, &first).await;
    assert!(sold.iter().all(|(_, s, _)| *s == StatusCode::CREATED));
    assert_eq!(app.wait_for_stored(&event, 60, Duration::from_secs(10)).await.len(), 60);

    wipe_redis(&app).await;

    // Keep hammering, early buyers among them, until every user has a final answer.
    let mut everyone: Vec<String> = users("late", 300);
    everyone.extend(first.iter().cloned());
    let (issued, refused_while_restoring) = hammer_until_answered(&app, &event, &first, everyone).await;

    assert!(refused_while_restoring > 0, "the missing state was noticed");
    assert_eq!(issued.len(), 40, "only what was left of the day: 100 - 60");
    assert!(
        issued.iter().all(|u| u.starts_with("late-")),
        "no early buyer got a second coupon"
    );
    let stored = app.wait_for_stored(&event, 100, Duration::from_secs(10)).await;
    assert_eq!(stored.len(), 100);
    let users: HashSet<&str> = stored.iter().map(|(_, u, _)| u.as_str()).collect();
    assert_eq!(users.len(), 100, "no user twice");
    let seqs: HashSet<i32> = stored.iter().map(|(_, _, s)| *s).collect();
    assert_eq!(seqs, (1..=100).collect(), "numbering went on from 60, not from 1");
    assert_eq!(app.count(&event).await["issued"], 100);
}

/// Sends every user's request again and again until each has a final answer; returns who got a
/// coupon and how many answers were 503 on the way. Only `first` may hear 409.
pub async fn hammer_until_answered(
    app: &TestApp,
    event: &str,
    first: &[String],
    everyone: Vec<String>,
) -> (Vec<String>, usize) {
    let mut waiting = everyone;
    let (mut issued, mut refused_while_restoring) = (Vec::new(), 0);
    let started = Instant::now();
    while !waiting.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still restoring after 20 s"
        );
        let answers = issue_all(app, event, &waiting).await;
        waiting.clear();
        for (user, status, body) in answers {
            match status {
                StatusCode::CREATED => issued.push(user),
                StatusCode::SERVICE_UNAVAILABLE => {
                    refused_while_restoring += 1;
                    waiting.push(user);
                }
                StatusCode::CONFLICT => assert!(first.contains(&user), "{user} was never issued one: {body}"),
                StatusCode::GONE => {}
                other => panic!("{other}: {body}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (issued, refused_while_restoring)
}
