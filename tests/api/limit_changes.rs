//! Changing the daily limit during a sale, while instances remember that the day is sold out.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use coupon_issuer::domain::EventId;
use coupon_issuer::issuing::publish_event;
use coupon_issuer::store;
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, RETRIES_PER_REQUEST, TestApp, holders, issue_all, issue_all_as_clients, spawn_app, spawn_app_with,
    users,
};

/// A second instance of `first`'s service: same database, same Redis prefix, no writer of its own.
async fn second_instance(first: &TestApp, sold_out_memory_ms: u64) -> TestApp {
    let (db, prefix) = (
        first.settings.connections.database.url.clone(),
        first.settings.connections.redis_key_prefix.clone(),
    );
    spawn_app_with(move |s| {
        s.connections.database.url = db;
        s.connections.redis_key_prefix = prefix;
        s.sold_out_memory_ms = sold_out_memory_ms;
        s.writer_enabled = false;
    })
    .await
}

async fn set_limit(app: &TestApp, event: &str, body: Value) -> (StatusCode, Value) {
    let response = app
        .client
        .patch(app.url(&format!("/v1/events/{event}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("request sent");
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

/// [`set_limit`] as an operator's tool does it under load: a 503 (Redis answered later than
/// `REDIS_TIMEOUT_MS` while the change was written) is asked again after a pause, at most
/// [`RETRIES_PER_REQUEST`] times. A repeated change is safe: it writes the same limit under a
/// newer revision.
async fn set_limit_as_admin(app: &TestApp, event: &str, body: Value) -> (StatusCode, Value) {
    for _ in 0..RETRIES_PER_REQUEST {
        let (status, answer) = set_limit(app, event, body.clone()).await;
        if status != StatusCode::SERVICE_UNAVAILABLE {
            return (status, answer);
        }
        eprintln!("set_limit answered 503 ({answer}); asking again");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    set_limit(app, event, body).await
}

fn issued(answers: &[(String, StatusCode, Value)]) -> Vec<&str> {
    answers
        .iter()
        .filter(|(_, s, _)| *s == StatusCode::CREATED)
        .map(|(u, _, _)| u.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_raise_reaches_an_instance_that_remembers_the_day_sold_out() {
    let memory_ms = 1_500;
    let a = spawn_app_with(|s| s.sold_out_memory_ms = memory_ms).await;
    let b = second_instance(&a, memory_ms).await;
    let event = a.open_event(10).await;
    assert_eq!(issued(&issue_all(&a, &event, &users("first", 10)).await).len(), 10);

    // B learns that the day is sold out, and from now on would answer so from memory.
    let late = b.issue(&event, "late").await;
    assert_eq!(late.status(), StatusCode::GONE);

    // A raises the limit. The raise answers only once no instance can still remember the old
    // limit: after the fence, which outlasts B's memory.
    let started = Instant::now();
    let (status, body) = set_limit(&a, &event, json!({ "daily_limit": 20 })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["daily_limit"], 20);
    assert!(
        started.elapsed() >= Duration::from_millis(memory_ms),
        "the raise was fenced"
    );

    // At once, B issues again: it never refuses a coupon that Redis would issue.
    let answers = issue_all(&b, &event, &users("after", 30)).await;
    assert_eq!(
        issued(&answers).len(),
        10,
        "exactly the ten new coupons, from the instance that remembered"
    );
    assert!(
        answers
            .iter()
            .all(|(_, s, _)| *s == StatusCode::CREATED || *s == StatusCode::GONE)
    );
    let stored = a.wait_for_stored(&event, 20, Duration::from_secs(10)).await;
    assert_eq!(stored.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_raise_under_fire_never_passes_the_new_limit_nor_gives_a_user_two() {
    let a = spawn_app_with(|s| s.sold_out_memory_ms = 300).await;
    let b = second_instance(&a, 300).await;
    let event = a.open_event(50).await;

    // Two instances hammered by 1,500 users (each asking twice), while the limit goes to 100.
    // The users ask as clients do: a 503 from a loaded machine is asked again after its
    // Retry-After, so a coupon may show first in a later 409 (`holders`).
    let everyone: Vec<String> = users("storm", 1500).into_iter().flat_map(|u| [u.clone(), u]).collect();
    let (left, right) = everyone.split_at(everyone.len() / 2);
    let (on_a, on_b, (status, body)) = tokio::join!(
        issue_all_as_clients(&a, &event, left),
        issue_all_as_clients(&b, &event, right),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            set_limit_as_admin(&a, &event, json!({ "daily_limit": 100 })).await
        }
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    eprintln!("storm: {} + {} retries after a 503", on_a.1, on_b.1);
    let answers: Vec<_> = on_a.0.into_iter().chain(on_b.0).collect();
    // `holders` panics if a user is shown two coupons.
    let storm = holders(answers.iter().map(|(u, s, b)| (u.as_str(), *s, b)));
    assert!(storm.len() <= 100, "{} hold a coupon, over the new limit", storm.len());

    // Whatever the storm left of the raise, new users now get, up to exactly 100.
    let (more, retries) = issue_all_as_clients(&b, &event, &users("then", 200)).await;
    eprintln!("then: {retries} retries after a 503");
    let then = holders(more.iter().map(|(u, s, b)| (u.as_str(), *s, b)));
    assert_eq!(storm.len() + then.len(), 100);
    let stored = a.wait_for_stored(&event, 100, Duration::from_secs(30)).await;
    let stored_users: HashSet<_> = stored.iter().map(|(_, u, _)| u.clone()).collect();
    let shown: HashSet<_> = storm.keys().chain(then.keys()).cloned().collect();
    assert_eq!(
        (stored.len(), &stored_users),
        (100, &shown),
        "stored exactly the coupons shown"
    );
}

#[tokio::test]
async fn a_lower_limit_takes_effect_at_once() {
    // A fence far longer than any slow moment of a loaded machine: a raise would wait it out.
    let fence = Duration::from_secs(20);
    let app = spawn_app_with(|s| s.sold_out_memory_ms = fence.as_millis() as u64).await;
    let event = app.open_event(100).await;
    issue_all(&app, &event, &users("early", 10)).await;

    let started = Instant::now();
    let (status, body) = set_limit(&app, &event, json!({ "daily_limit": 10 })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(started.elapsed() < fence, "no fence for a lower limit");
    let next = app.issue(&event, "eleventh").await;
    assert_eq!(next.status(), StatusCode::GONE);
    assert_eq!(app.count(&event).await["daily_limit"], 10);
}

#[tokio::test]
async fn a_bad_limit_change_is_refused_clearly() {
    let app = spawn_app().await;
    let event = app.open_event(10).await;
    for (body, field) in [
        (json!({ "daily_limit": 0 }), "daily_limit"),
        (json!({ "daily_limit": -5 }), "daily_limit"),
        (json!({ "daily_limit": 100_000_001 }), "daily_limit"),
        (json!({ "daily_limit": "20" }), "daily_limit"),
        (json!({ "daily_limit": 20, "name": "x" }), "name"),
        (json!({}), "daily_limit"),
    ] {
        let (status, answer) = set_limit(&app, &event, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request");
        assert!(answer["error"]["message"].as_str().unwrap().contains(field), "{answer}");
    }
    let (status, answer) = set_limit(&app, "not-a-uuid", json!({ "daily_limit": 5 })).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );
    let unknown = uuid::Uuid::new_v4();
    let (status, answer) = set_limit(&app, &unknown.to_string(), json!({ "daily_limit": 5 })).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("event_not_found"))
    );

    let anonymous = app
        .client
        .patch(app.url(&format!("/v1/events/{event}")))
        .json(&json!({ "daily_limit": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.count(&event).await["daily_limit"], 10, "nothing changed");
}

#[tokio::test]
async fn after_sell_out_a_holder_still_gets_their_coupon_back() {
    // A long memory: every request below is answered while the day is remembered sold out.
    let app = spawn_app_with(|s| s.sold_out_memory_ms = 5_000).await;
    let event = app.open_event(3).await;
    let answers = issue_all(&app, &event, &users("holder", 3)).await;
    assert_eq!(issued(&answers).len(), 3);
    assert_eq!(app.issue(&event, "late").await.status(), StatusCode::GONE);

    for (user, _, first) in &answers {
        let again = app.issue(&event, user).await;
        assert_eq!(again.status(), StatusCode::CONFLICT, "{user} holds today's coupon");
        let body: Value = again.json().await.unwrap();
        assert_eq!(body["error"]["code"], "already_issued");
        assert_eq!(body["coupon"]["coupon_id"], first["coupon_id"], "the very same coupon");
    }
    assert_eq!(app.issue(&event, "later").await.status(), StatusCode::GONE);
}

/// Redis's limit for `event` and Postgres's.
async fn limits(app: &TestApp, event: &str) -> (u32, u32) {
    let id = EventId::parse(event).unwrap();
    let in_redis: u32 = app
        .issuer
        .connection()
        .hget(app.keys.settings(id), "daily_limit")
        .await
        .unwrap();
    let stored = store::events::get(&app.db, id).await.unwrap().unwrap();
    (in_redis, stored.daily_limit)
}

/// A publish of the event as it was read before a limit change (an instance starting up, or
/// republishing after Redis lost the event, while an admin lowers the limit) must not write
/// the old limit back over the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_publish_never_brings_an_old_limit_back() {
    let app = spawn_app().await;
    let event = app.open_event(100).await;
    let id = EventId::parse(&event).unwrap();
    let read_before = store::events::get(&app.db, id).await.unwrap().unwrap();
    assert_eq!(
        set_limit(&app, &event, json!({ "daily_limit": 10 })).await.0,
        StatusCode::OK
    );

    publish_event(
        &mut app.issuer.connection(),
        &app.keys,
        &read_before,
        app.issuer.fence(),
    )
    .await
    .unwrap();
    assert_eq!(limits(&app, &event).await, (10, 10));
    assert_eq!(issued(&issue_all(&app, &event, &users("u", 30)).await).len(), 10);
}

/// Limit changes at two instances, raises and lowerings, all at once, with publishes of copies
/// read at any moment in between: whatever order they reach Redis in, it ends with the limit
/// of the last change Postgres committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_and_publishes_leave_the_last_committed_limit() {
    let a = spawn_app_with(|s| s.sold_out_memory_ms = 300).await;
    let b = second_instance(&a, 300).await;
    let event = a.open_event(100).await;
    let id = EventId::parse(&event).unwrap();
    for round in 0..3 {
        let changes = (0..16u32).map(|i| {
            let (app, event) = (if i % 2 == 0 { &a } else { &b }, event.clone());
            // Alternately far above and far below the current limit: raises (fenced) and
            // lowerings (at once) interleave.
            let limit = if (i + round) % 2 == 0 { 500 + i } else { 10 + i };
            async move {
                tokio::time::sleep(Duration::from_millis(u64::from(i % 4) * 20)).await;
                assert_eq!(
                    set_limit(app, &event, json!({ "daily_limit": limit })).await.0,
                    StatusCode::OK
                );
            }
        });
        let publishes = (0..16u64).map(|i| {
            let app = if i % 2 == 0 { &a } else { &b };
            async move {
                // Read while the changes are being made; written from the end of the changes' fences
                // on, when a stale copy would be the last to write.
                tokio::time::sleep(Duration::from_millis(i * 5)).await;
                let read = store::events::get(&app.db, id).await.unwrap().unwrap();
                tokio::time::sleep(app.issuer.fence() + Duration::from_millis(i % 4 * 100)).await;
                publish_event(&mut app.issuer.connection(), &app.keys, &read, app.issuer.fence())
                    .await
                    .unwrap();
            }
        });
        tokio::join!(futures::future::join_all(changes), futures::future::join_all(publishes));
        let (in_redis, stored) = limits(&a, &event).await;
        assert_eq!(in_redis, stored, "round {round}: Redis has Postgres's last limit");
        let fenced: Option<i64> = a.issuer.connection().hget(a.keys.settings(id), "fenced").await.unwrap();
        assert_eq!(
            fenced.unwrap_or(0),
            0,
            "round {round}: every fence closed, written or not"
        );
    }
}
