//! Bad input from outside, generated (proptest): over HTTP nothing panics, nothing answers 500,
//! no error echoes internals, and only accepted issues change a count. The issue script itself,
//! called directly with arbitrary user strings, never fails and never passes the limit.
//!
//! Inputs are generated up front and then sent, so the async tests need no runtime tricks;
//! proptest's shrinking is given up for that. Case counts are fixed and small enough for CI.

use std::collections::HashSet;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{ADMIN_TOKEN, TestApp, event_body, spawn_app, today_utc};

const CASES: usize = 300;

/// `n` values drawn from `strategy`.
fn sample<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[a-z0-9_.@:-]{1,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::hash_map("[a-z_]{1,12}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Percent-encodes a path segment or query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What every answer to bad input must be: a client error or success, in the API's JSON shape,
/// naming nothing internal.
async fn check(response: reqwest::Response, what: &str) -> StatusCode {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.as_u16() < 500, "{what}: {status} {text}");
    if status.is_client_error() {
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
        assert!(body["error"]["code"].is_string(), "{what}: {text}");
    }
    let lower = text.to_lowercase();
    for internal in [
        "sqlx",
        "database",
        "redis",
        "lua",
        "script",
        "panicked",
        "backtrace",
        "constraint",
        "err ",
    ] {
        assert!(!lower.contains(internal), "{what}: {internal:?} echoed: {text}");
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_over_http_is_never_a_500_and_never_counted() {
    let app = spawn_app().await;
    let event = app.open_event(1_000_000).await;
    let mut issued = 0;

    // Issue bodies: raw bytes, JSON of any shape, and the right shape with any values.
    let shaped = (json_value(), json_value()).prop_map(|(e, u)| json!({ "event_id": e, "user_id": u }).to_string());
    let with_event = any::<String>().prop_map(|u| json!({ "event_id": "EVENT", "user_id": u }).to_string());
    let bodies = sample(
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            json_value().prop_map(|v| v.to_string()),
            shaped,
            with_event,
        ],
        CASES,
    );
    for body in bodies {
        let body = body.replace("EVENT", &event);
        let response = app
            .client
            .post(app.url("/v1/coupon/issue"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        if check(response, &body).await == StatusCode::CREATED {
            issued += 1;
        }
    }

    // Query strings of count; path ids of the user, redeem and admin routes.
    let strings = sample(any::<String>(), CASES);
    for s in &strings {
        let e = encode(s);
        for path in [
            format!("/v1/coupon/count?{s}"),
            format!("/v1/coupon/count?event_id={e}"),
            format!("/v1/coupon/count?event_id={event}&day={e}"),
            format!("/v1/users/{e}/coupons"),
        ] {
            let response = app.client.get(app.url(&path)).send().await.unwrap();
            check(response, &path).await;
        }
        let redeem = app
            .client
            .post(app.url(&format!("/v1/coupons/{e}/redeem")))
            .json(&json!({ "user_id": s }))
            .send()
            .await
            .unwrap();
        check(redeem, s).await;
        let show = app
            .client
            .get(app.url(&format!("/v1/events/{e}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        check(show, s).await;
    }

    // Event definitions: the right fields with any values, and any zone, dates and times.
    let definitions = sample(
        prop_oneof![
            prop::collection::hash_map(
                prop::sample::select(vec![
                    "name",
                    "timezone",
                    "starts_on",
                    "ends_on",
                    "daily_open",
                    "daily_close",
                    "daily_limit",
                    "valid_days_after_end",
                    "discount",
                ]),
                json_value(),
                0..10
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
            (
                prop_oneof![
                    Just("Asia/Seoul".to_owned()),
                    Just("Europe/London".to_owned()),
                    any::<String>()
                ],
                -40_000i64..40_000,
                0i64..500,
                "[0-9]{2}:[0-9]{2}",
                "[0-9]{2}:[0-9]{2}",
                any::<i64>(),
            )
                .prop_map(|(tz, from, days, open, close, limit)| {
                    let start = today_utc() + chrono::Duration::days(from);
                    let mut body = event_body(&tz, start, start + chrono::Duration::days(days), (&open, &close), 1);
                    body["daily_limit"] = json!(limit);
                    body
                }),
        ],
        CASES,
    );
    for definition in definitions {
        check(app.post_event(&definition).await, &definition.to_string()).await;
    }

    assert_eq!(
        app.count(&event).await["issued"],
        issued,
        "only accepted issues counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_authorization_header_is_a_401_in_jwt_mode() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.auth_mode = coupon_issuer::config::AuthMode::Jwt;
        s.jwt_secret = Some("a-test-secret-of-at-least-32-bytes!!".into());
    })
    .await;
    let event = app.open_event(10).await;
    let headers = sample(
        prop_oneof![
            "[ -~]{0,300}",
            "Bearer [A-Za-z0-9_.-]{0,300}",
            prop::collection::vec("[A-Za-z0-9_-]{0,80}", 3).prop_map(|p| format!("Bearer {}", p.join("."))),
        ],
        CASES,
    );
    for header in headers {
        let response = app
            .client
            .post(app.url("/v1/coupon/issue"))
            .header("authorization", header.clone())
            .json(&json!({ "event_id": event }))
            .send()
            .await
            .unwrap();
        assert_eq!(check(response, &header).await, StatusCode::UNAUTHORIZED, "{header}");
    }
    assert_eq!(app.count(&event).await["issued"], 0);
}

/// Calls `lua/issue.lua` as the service does, with `user` as ARGV[1].
async fn call_script(app: &TestApp, event: Uuid, user: &[u8]) -> Result<Vec<String>, redis::RedisError> {
    let id = coupon_issuer::domain::EventId::from(event);
    let mut conn = app.issuer.connection();
    redis::Script::new(include_str!("../../lua/issue.lua"))
        .key(app.keys.settings(id))
        .key(app.keys.windows(id))
        .key(app.keys.stream(id))
        .key(app.keys.day_count(id, today_utc()))
        .key(app.keys.day_users(id, today_utc()))
        .arg(user)
        .arg(Uuid::now_v7().to_string())
        .arg(app.keys.event_prefix(id))
        .arg(3_600_000)
        .invoke_async(&mut conn)
        .await
}

/// ARGV[1] is the only script argument that comes from outside (the service builds the others:
/// a fresh UUID, the key prefix, a TTL). Any bytes there, even ones `UserId` refuses: no error,
/// a documented reply, at most one coupon per distinct user, and never more than the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issue_script_takes_any_user_string() {
    let app = spawn_app().await;
    let limit = 50;
    let event: Uuid = app.open_event(limit).await.parse().unwrap();
    let users = sample(
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            "[|:{}\\-0-9a-z ]{0,20}".prop_map(String::into_bytes),
            Just(b"a|1|x".to_vec()),
            Just(Vec::new()),
        ],
        CASES,
    );
    let mut holders = HashSet::new();
    for user in &users {
        let reply = call_script(&app, event, user)
            .await
            .unwrap_or_else(|e| panic!("{user:?}: {e}"));
        match reply.first().map(String::as_str) {
            Some("issued") => assert!(holders.insert(user.clone()), "{user:?} issued twice"),
            Some("already_issued") => assert!(holders.contains(user), "{user:?}: {reply:?}"),
            Some("sold_out") => assert_eq!(holders.len(), limit as usize),
            _ => panic!("{user:?}: undocumented reply {reply:?}"),
        }
        // A repeat always gets the same answer back, never a second coupon.
        let again = call_script(&app, event, user).await.unwrap();
        assert_ne!(again.first().map(String::as_str), Some("issued"), "{user:?}");
    }
    let (day, id) = (today_utc(), coupon_issuer::domain::EventId::from(event));
    let mut conn = app.issuer.connection();
    let count: u64 = redis::cmd("GET")
        .arg(app.keys.day_count(id, day))
        .query_async(&mut conn)
        .await
        .unwrap();
    let recorded: u64 = redis::cmd("HLEN")
        .arg(app.keys.day_users(id, day))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!((count, recorded), (holders.len() as u64, holders.len() as u64));
    assert!(count <= u64::from(limit));
}
