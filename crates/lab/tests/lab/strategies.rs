//! The strategy lab: each safe strategy holds the rule (exactly N issued, nobody twice) under a
//! spike of concurrent requests; `naive` demonstrably oversells and double-issues.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{ADMIN_TOKEN, RETRIES_PER_REQUEST, TestLab, spawn_lab, spawn_lab_with, users};

const N: u64 = 50;
const USERS: usize = 1000;
/// Each user's requests, sent back to back so that they are in flight together (a double click).
const REPEATS: usize = 2;
/// Bounded, like a real client pool; also keeps Postgres pool waits under their 2 s timeout on
/// a loaded machine.
const CONCURRENCY: usize = 64;

async fn lab_app(naive_delay_ms: u64) -> TestLab {
    spawn_lab_with(|s| s.strategies.naive_delay_ms = naive_delay_ms).await
}

/// Sets up a fresh lab coupon with `quantity` units.
async fn lab_coupon(app: &TestLab, quantity: u64) -> Uuid {
    let coupon = Uuid::new_v4();
    let response = app
        .client
        .put(app.url(&format!("/v1/lab/coupons/{coupon}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "quantity": quantity }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    coupon
}

async fn give(app: &TestLab, strategy: &str, coupon: Uuid, user: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(&format!("/v1/lab/{strategy}/{coupon}/give")))
        .json(&json!({ "user_id": user }))
        .send()
        .await
        .expect("give request sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Every user `REPEATS` times, at most `CONCURRENCY` requests in flight: `(user, status)`.
async fn spike(app: &TestLab, strategy: &str, coupon: Uuid, users: &[String]) -> Vec<(String, StatusCode)> {
    let requests = users.iter().flat_map(|u| std::iter::repeat_n(u, REPEATS));
    futures::stream::iter(requests)
        .map(|user| async move { (user.clone(), give(app, strategy, coupon, user).await.0) })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

/// One user's request as a client sends it: a 503 (the strategy's back-pressure: a pool, lock or
/// Redis wait too long on a loaded machine) is asked again after its `Retry-After` (1 s, plus up
/// to as long again at random), at most `RETRIES_PER_REQUEST` times. Returns every status heard,
/// the 503s included, the final answer last.
async fn give_as_client(app: &TestLab, strategy: &str, coupon: Uuid, user: &str) -> Vec<StatusCode> {
    let mut heard = Vec::new();
    for _ in 0..=RETRIES_PER_REQUEST {
        let (status, _) = give(app, strategy, coupon, user).await;
        heard.push(status);
        if status != StatusCode::SERVICE_UNAVAILABLE {
            return heard;
        }
        tokio::time::sleep(Duration::from_secs(1).mul_f64(1.0 + rand::random::<f64>())).await;
    }
    panic!("{strategy}: {user} heard only 503s: {heard:?}");
}

/// As [`spike`], every request retried after a 503 as a client does (see [`give_as_client`]):
/// `(user, every status heard)`.
async fn spike_as_clients(
    app: &TestLab,
    strategy: &str,
    coupon: Uuid,
    users: &[String],
) -> Vec<(String, Vec<StatusCode>)> {
    let requests = users.iter().flat_map(|u| std::iter::repeat_n(u, REPEATS));
    futures::stream::iter(requests)
        .map(|user| async move { (user.clone(), give_as_client(app, strategy, coupon, user).await) })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

async fn report(app: &TestLab, coupon: Uuid) -> Value {
    let (status, body) = app.get_json(&format!("/v1/lab/coupons/{coupon}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn wins_per_user(answers: &[(String, StatusCode)]) -> HashMap<&str, u64> {
    let mut wins = HashMap::new();
    for (user, status) in answers {
        if *status == StatusCode::CREATED {
            *wins.entry(user.as_str()).or_default() += 1;
        }
    }
    wins
}

/// Exactly N handed out, to N different users, and the store agrees; never a user twice.
async fn holds_the_rule(strategy: &str) {
    let app = lab_app(0).await;
    let coupon = lab_coupon(&app, N).await;
    let heard = spike_as_clients(&app, strategy, coupon, &users(strategy, USERS)).await;

    // A 503 is a strategy's back-pressure (a pool, lock or Redis wait too long on a loaded
    // machine): clients ask again after its Retry-After, so each request's last answer is final.
    let retries: usize = heard.iter().map(|(_, h)| h.len() - 1).sum();
    println!("{strategy}: {} requests, {retries} retries after a 503", heard.len());
    let answers: Vec<(String, StatusCode)> = heard.iter().map(|(u, h)| (u.clone(), *h.last().unwrap())).collect();
    let unexpected: Vec<_> = answers
        .iter()
        .filter(|(_, s)| ![StatusCode::CREATED, StatusCode::CONFLICT, StatusCode::GONE].contains(s))
        .collect();
    assert!(unexpected.is_empty(), "{strategy}: unexpected answers {unexpected:?}");
    let wins = wins_per_user(&answers);
    assert!(wins.values().all(|&w| w == 1), "{strategy}: a user won twice");
    // A 503 may come after the unit was taken (the strategy's Redis call outlived the timeout);
    // its retry then hears 409 and that user's unit shows in no 201. Only such users may be
    // missing from the 201s, so with none of them, exactly N answered 201.
    let retried_without_a_win: HashSet<&str> = heard
        .iter()
        .filter(|(u, h)| h.len() > 1 && !wins.contains_key(u.as_str()))
        .map(|(u, _)| u.as_str())
        .collect();
    let won = wins.len() as u64;
    assert!(
        won <= N && won + retried_without_a_win.len() as u64 >= N,
        "{strategy}: {won} users with a 201, {} retried without one",
        retried_without_a_win.len()
    );

    let store = report(&app, coupon).await;
    if strategy == "redis-lua" {
        assert_eq!(store["redis"]["quantity"], 0, "{store}");
        assert_eq!(store["redis"]["claims"], N, "{store}");
    } else {
        assert_eq!(store["postgres"]["quantity"], 0, "{store}");
        assert_eq!(store["postgres"]["claims"], N, "{store}");
        assert_eq!(store["postgres"]["users"], N, "{store}");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn pg_for_update_holds_the_rule() {
    holds_the_rule("pg-for-update").await;
}

#[tokio::test]
async fn pg_function_holds_the_rule() {
    holds_the_rule("pg-function").await;
}

#[tokio::test]
async fn pg_conditional_update_holds_the_rule() {
    holds_the_rule("pg-conditional-update").await;
}

#[tokio::test]
async fn pg_optimistic_holds_the_rule() {
    holds_the_rule("pg-optimistic").await;
}

#[tokio::test]
async fn queue_holds_the_rule() {
    holds_the_rule("queue").await;
}

#[tokio::test]
async fn redis_lock_holds_the_rule() {
    holds_the_rule("redis-lock").await;
}

#[tokio::test]
async fn redis_lua_holds_the_rule() {
    holds_the_rule("redis-lua").await;
}

/// With a 20 ms pause between its read and its write, every request in flight reads the same
/// quantity: far more than N are handed out, and a user's two clicks both win. Not luck: the
/// delay makes every concurrent read precede every write.
#[tokio::test]
async fn naive_oversells_and_issues_twice_with_a_delay() {
    let app = lab_app(20).await;
    let n = 10;
    let coupon = lab_coupon(&app, n).await;
    let answers = spike(&app, "naive", coupon, &users("naive", 100)).await;

    let wins = wins_per_user(&answers);
    let issued: u64 = wins.values().sum();
    assert!(issued > n, "naive issued {issued} of {n}: expected an oversell");
    let store = report(&app, coupon).await;
    let claims = store["postgres"]["claims"].as_u64().unwrap();
    assert!(claims > n, "{store}");
    assert!(
        store["postgres"]["users_with_two_or_more"].as_u64().unwrap() > 0,
        "{store}"
    );
    // The lost updates: far more claims than units ever taken off the quantity.
    let quantity = store["postgres"]["quantity"].as_u64().unwrap();
    assert!(n - quantity < claims, "{store}");
    app.stop().await.unwrap();
}

/// A full queue answers 503 at once instead of growing without bound, and still never oversells.
#[tokio::test]
async fn a_full_queue_answers_503() {
    let app = spawn_lab_with(|s| s.strategies.queue_capacity = 1).await;
    let coupon = lab_coupon(&app, N).await;
    let answers = spike(&app, "queue", coupon, &users("q", 500)).await;
    let busy = answers
        .iter()
        .filter(|(_, s)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(busy > 0, "no 503 from a queue of capacity 1 under 1,000 requests");
    assert!(wins_per_user(&answers).values().all(|&w| w == 1));
    assert!(report(&app, coupon).await["postgres"]["claims"].as_u64().unwrap() <= N);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn every_strategy_answers_the_rule_one_request_at_a_time() {
    let app = lab_app(0).await;
    for strategy in [
        "naive",
        "pg-for-update",
        "pg-function",
        "pg-conditional-update",
        "pg-optimistic",
        "queue",
        "redis-lock",
        "redis-lua",
    ] {
        let coupon = lab_coupon(&app, 1).await;
        let code = |v: Value| v["error"]["code"].as_str().unwrap_or_default().to_owned();
        let (status, body) = give(&app, strategy, coupon, "alice").await;
        assert_eq!(status, StatusCode::CREATED, "{strategy}: {body}");
        let (status, body) = give(&app, strategy, coupon, "alice").await;
        assert_eq!(
            (status, code(body)),
            (StatusCode::CONFLICT, "already_issued".into()),
            "{strategy}"
        );
        let (status, body) = give(&app, strategy, coupon, "bob").await;
        assert_eq!(
            (status, code(body)),
            (StatusCode::GONE, "sold_out".into()),
            "{strategy}"
        );
        let (status, body) = give(&app, strategy, Uuid::new_v4(), "bob").await;
        assert_eq!(
            (status, code(body)),
            (StatusCode::NOT_FOUND, "lab_coupon_not_found".into()),
            "{strategy}"
        );
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn bad_lab_requests_get_clear_errors() {
    let app = lab_app(0).await;
    let coupon = lab_coupon(&app, 1).await;
    let code = |v: Value| v["error"]["code"].as_str().unwrap_or_default().to_owned();

    let (status, body) = give(&app, "optimistic-ish", coupon, "alice").await;
    assert_eq!((status, code(body)), (StatusCode::NOT_FOUND, "not_found".into()));
    let (status, body) = give(&app, "naive", coupon, "al ice").await;
    assert_eq!(
        (status, code(body)),
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let response = app
        .client
        .post(app.url("/v1/lab/naive/not-a-uuid/give"))
        .json(&json!({ "user_id": "alice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = app
        .client
        .put(app.url(&format!("/v1/lab/coupons/{coupon}")))
        .json(&json!({ "quantity": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = app.get_json(&format!("/v1/lab/coupons/{}", Uuid::new_v4())).await;
    assert_eq!(
        (status, code(body)),
        (StatusCode::NOT_FOUND, "lab_coupon_not_found".into())
    );
    app.stop().await.unwrap();
}

/// What is not a lab route answers the same JSON 404 as an unknown strategy; the probes answer.
#[tokio::test]
async fn other_paths_are_not_found_and_the_probes_answer() {
    let app = spawn_lab().await;
    let (status, body) = app.get_json("/v1/coupon/count?event_id=x").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert_eq!(app.get_json("/healthz").await.0, StatusCode::OK);
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.stop().await.unwrap();
}
