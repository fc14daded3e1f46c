//! Sharded events (`shards: N`): a day's stock over N buckets, walked in a fixed order per user.
//! The invariants of the unsharded event must hold exactly: never over the limit, never one user
//! twice, every 201 stored once; and each bucket never over its share.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use coupon_issuer::domain::{Bucket, EventId, Shards, UserId};
use rand::seq::SliceRandom;
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, TestApp, event_body, everyone_gets_one, holders, issue_all, issue_spread_as_clients, spawn_app,
    spawn_app_with, today_utc, users,
};

/// An event open all day, every day from yesterday on, split over `shards` buckets.
pub async fn sharded_event(app: &TestApp, daily_limit: u32, shards: u16) -> String {
    let mut body = event_body(
        "UTC",
        today_utc() - chrono::Duration::days(1),
        today_utc() + chrono::Duration::days(3),
        ("00:00", "24:00"),
        daily_limit,
    );
    body["shards"] = json!(shards);
    app.create_event(body).await
}

fn shards(n: u16) -> Shards {
    Shards::parse(i64::from(n)).unwrap()
}

/// Users whose home bucket is `home` among `n`.
pub fn homed_at(home: u16, n: u16, how_many: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("h{home}-{i}"))
        .filter(|u| shards(n).home(&UserId::parse(u).unwrap()) == home)
        .take(how_many)
        .collect()
}

/// Per bucket: (count, users holding one) in Redis for today.
async fn redis_buckets(app: &TestApp, event: &str, n: u16) -> Vec<(u64, HashMap<String, String>)> {
    let event = EventId::parse(event).unwrap();
    let day = today_utc();
    let mut conn = app.issuer.connection();
    let mut out = Vec::new();
    for shard in 0..n {
        let bucket = Bucket { event, shard };
        let count: Option<u64> = conn.get(app.keys.day_count(bucket, day)).await.unwrap();
        let users: HashMap<String, String> = conn.hgetall(app.keys.day_users(bucket, day)).await.unwrap();
        out.push((count.unwrap_or(0), users));
    }
    out
}

/// Stored coupons: (coupon_id, user_id, shard, seq).
async fn stored(app: &TestApp, event: &str) -> Vec<(String, String, i16, i32)> {
    sqlx::query_as("SELECT coupon_id::text, user_id, shard, seq FROM coupons WHERE event_id = $1::uuid")
        .bind(event)
        .fetch_all(&app.db)
        .await
        .unwrap()
}

async fn wait_stored(app: &TestApp, event: &str, n: usize) -> Vec<(String, String, i16, i32)> {
    let started = std::time::Instant::now();
    loop {
        let rows = stored(app, event).await;
        if rows.len() >= n || started.elapsed() > Duration::from_secs(20) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn set_limit(app: &TestApp, event: &str, limit: u32) -> (StatusCode, Value) {
    let response = app
        .client
        .patch(app.url(&format!("/v1/events/{event}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "daily_limit": limit }))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

/// 3,000 users, each asking twice, shuffled, against `limit` over `n` buckets, on one instance.
async fn the_invariant_holds(n: u16, limit: u32) {
    // A debug build on a shared machine, with other tests running: a generous Redis timeout, so
    // that a slow moment is no 503 (whose outcome the client cannot know).
    let app = spawn_app_with(|s| s.redis_timeout_ms = 10_000).await;
    let event = sharded_event(&app, limit, n).await;
    the_invariant_holds_on(std::slice::from_ref(&app), &event, n, limit).await;
}

/// The invariant of a sharded `event` (`n` buckets, `limit` a day) driven through `apps`, which
/// share one Redis (or cluster), key prefix and database: 3,000 users each ask twice, shuffled,
/// spread over the instances. Checks the answers, every bucket in Redis, and Postgres.
pub async fn the_invariant_holds_on(apps: &[TestApp], event: &str, n: u16, limit: u32) {
    let app = &apps[0];
    let mut requests: Vec<(String, String)> = users("u", 3000)
        .into_iter()
        .flat_map(|u| [(event.to_owned(), u.clone()), (event.to_owned(), u)])
        .collect();
    requests.shuffle(&mut rand::rng());

    // 1,000 in flight at a time: all at once would pass the service's in-flight limit, and be
    // shed. A 503 is asked again, as a client would (see `issue_as_client`).
    let (answers, retries) = issue_spread_as_clients(apps, &requests, 1000).await;
    let answers: Vec<(String, StatusCode, Value)> = answers
        .into_iter()
        .map(|(_, user, status, body)| (user, status, body))
        .collect();
    let mut statuses: HashMap<StatusCode, usize> = HashMap::new();
    for (_, status, _) in &answers {
        *statuses.entry(*status).or_default() += 1;
    }
    println!("n={n}: {statuses:?}, {retries} retries after a 503");

    // The answers: exactly the limit issued, no user twice, a 409 carries the user's coupon
    // (the only answer showing it when the request that issued it was answered 503).
    let issued = holders(answers.iter().map(|(u, s, b)| (u.as_str(), *s, b)));
    assert_eq!(
        issued.len(),
        limit as usize,
        "n={n}: exactly the limit is issued: {statuses:?}"
    );
    let created = statuses.get(&StatusCode::CREATED).copied().unwrap_or(0);
    assert!(created <= limit as usize, "n={n}: {statuses:?}");
    if retries == 0 {
        assert_eq!(
            created, limit as usize,
            "n={n}: without a 503, each coupon was answered 201"
        );
    }

    // Redis: someone was turned away, so every bucket is dry: each at exactly its share, each
    // holder in one bucket only.
    let buckets = redis_buckets(app, event, n).await;
    let mut in_redis = HashSet::new();
    for (shard, (count, users)) in buckets.iter().enumerate() {
        let share = shards(n).share(limit, shard as u16);
        assert_eq!(*count, u64::from(share), "n={n}: bucket {shard} at its share");
        assert_eq!(users.len() as u64, *count, "n={n}: bucket {shard}");
        for user in users.keys() {
            assert!(in_redis.insert(user.clone()), "n={n}: {user} holds in two buckets");
        }
    }
    assert_eq!(in_redis.len(), limit as usize);
    // Every instance sees the same count, summed over the buckets.
    for app in apps {
        let count = app.count(event).await;
        assert_eq!(
            (count["issued"].as_u64(), count["status"].as_str()),
            (Some(u64::from(limit)), Some("sold_out"))
        );
    }

    // Postgres, once the writer has drained every bucket's stream: each 201 once, each user
    // once, each bucket numbered 1..share.
    let rows = wait_stored(app, event, limit as usize).await;
    assert_eq!(rows.len(), limit as usize, "n={n}: every coupon stored");
    let stored_ids: HashSet<&str> = rows.iter().map(|(c, ..)| c.as_str()).collect();
    let issued_ids: HashSet<&str> = issued.values().map(|b| b["coupon_id"].as_str().unwrap()).collect();
    assert_eq!(
        stored_ids, issued_ids,
        "n={n}: Postgres holds exactly the coupons the users were shown"
    );
    assert_eq!(
        rows.iter().map(|(_, u, ..)| u).collect::<HashSet<_>>().len(),
        rows.len()
    );
    for shard in 0..n {
        let mut seqs: Vec<i32> = rows.iter().filter(|r| r.2 == shard as i16).map(|r| r.3).collect();
        seqs.sort_unstable();
        let share = shards(n).share(limit, shard) as i32;
        assert_eq!(
            seqs,
            (1..=share).collect::<Vec<_>>(),
            "n={n}: bucket {shard} numbered 1..{share}"
        );
    }
    for (user, body) in &issued {
        let row = rows
            .iter()
            .find(|r| r.0 == body["coupon_id"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            (row.1.as_str(), i64::from(row.2)),
            (user.as_str(), body["shard"].as_i64().unwrap())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_invariant_holds_unsharded() {
    the_invariant_holds(1, 1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_invariant_holds_over_4_buckets() {
    the_invariant_holds(4, 1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_invariant_holds_over_16_buckets_with_a_limit_they_do_not_divide() {
    the_invariant_holds(16, 1003).await;
}

#[tokio::test]
async fn a_user_whose_home_bucket_is_dry_is_served_by_the_next() {
    let app = spawn_app().await;
    // 4 buckets of 2 coupons each.
    let event = sharded_event(&app, 8, 4).await;
    let at_zero = homed_at(0, 4, 4);
    for user in &at_zero[..2] {
        let response = app.issue(&event, user).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.json::<Value>().await.unwrap()["shard"], 0, "at home");
    }
    // Bucket 0 is dry: the third is served by bucket 1, the next in the walk.
    let third = app.issue(&event, &at_zero[2]).await;
    assert_eq!(third.status(), StatusCode::CREATED);
    let third: Value = third.json().await.unwrap();
    assert_eq!((third["shard"].as_u64(), third["seq"].as_u64()), (Some(1), Some(1)));

    // Asking again finds the coupon in the foreign bucket: the same one, in a 409.
    let again = app.issue(&event, &at_zero[2]).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(again.json::<Value>().await.unwrap()["coupon"], third);

    // Everything left goes, to anyone, then nobody gets more than the limit.
    let rest = issue_all(&app, &event, &users("rest", 20)).await;
    assert_eq!(rest.iter().filter(|(_, s, _)| *s == StatusCode::CREATED).count(), 5);
    assert_eq!(app.count(&event).await["issued"], 8);

    // The storm after the sell-out: 410 for everyone new, the holder still gets their coupon
    // back (the holder of a foreign bucket included), many times over.
    let storm: Vec<String> = users("storm", 300)
        .into_iter()
        .chain(std::iter::repeat_n(at_zero[2].clone(), 50))
        .collect();
    for (user, status, body) in issue_all(&app, &event, &storm).await {
        if user == at_zero[2] {
            assert_eq!(status, StatusCode::CONFLICT, "{body}");
            assert_eq!(body["coupon"], third);
        } else {
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (StatusCode::GONE, Some("sold_out"))
            );
        }
    }
    assert_eq!(wait_stored(&app, &event, 8).await.len(), 8);
}

#[tokio::test]
async fn a_sharded_limit_can_be_lowered_but_not_raised() {
    let app = spawn_app().await;
    let event = sharded_event(&app, 100, 4).await;

    let (status, body) = set_limit(&app, &event, 101).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("sharded_limit_raise"))
    );
    let (_, shown) = show(&app, &event).await;
    assert_eq!(
        (shown["daily_limit"].as_u64(), shown["shards"].as_u64()),
        (Some(100), Some(4))
    );

    // Lowering: every bucket gets its new share (3, 3, 2, 2), at once.
    let (status, body) = set_limit(&app, &event, 10).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = EventId::parse(&event).unwrap();
    let mut conn = app.issuer.connection();
    let mut shares = Vec::new();
    for shard in 0..4 {
        let share: u32 = conn
            .hget(app.keys.settings(Bucket { event: id, shard }), "daily_limit")
            .await
            .unwrap();
        shares.push(share);
    }
    assert_eq!(shares, [3, 3, 2, 2]);
    let answers = issue_all(&app, &event, &users("u", 40)).await;
    assert_eq!(answers.iter().filter(|(_, s, _)| *s == StatusCode::CREATED).count(), 10);
    // And after a lowering, raising back is still a raise.
    assert_eq!(set_limit(&app, &event, 11).await.0, StatusCode::CONFLICT);
    assert_eq!(
        set_limit(&app, &event, 10).await.0,
        StatusCode::OK,
        "the same limit is no raise"
    );
}

#[tokio::test]
async fn an_unsharded_event_keeps_its_one_bucket_and_its_raise() {
    let app = spawn_app_with_no_memory().await;
    let event = app.open_event(2).await;
    let (_, shown) = show(&app, &event).await;
    assert_eq!(shown["shards"], 1);
    issue_all(&app, &event, &users("u", 3)).await;
    let id = EventId::parse(&event).unwrap();
    let mut conn = app.issuer.connection();
    let other: bool = conn
        .exists(app.keys.settings(Bucket { event: id, shard: 1 }))
        .await
        .unwrap();
    assert!(!other, "no second bucket");
    assert_eq!(set_limit(&app, &event, 3).await.0, StatusCode::OK);
    assert_eq!(app.issue(&event, "late").await.status(), StatusCode::CREATED);
}

/// GET /v1/events/{id}, as the admin.
async fn show(app: &TestApp, event: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .get(app.url(&format!("/v1/events/{event}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

async fn spawn_app_with_no_memory() -> TestApp {
    spawn_app_with(|s| s.sold_out_memory_ms = 0).await
}

#[tokio::test]
async fn bad_shards_are_refused_by_field() {
    let app = spawn_app().await;
    // More shards than the daily limit: each valid alone, not together (422).
    for (shards, limit, expected) in [
        (json!(0), 100, StatusCode::BAD_REQUEST),
        (json!(65), 100, StatusCode::BAD_REQUEST),
        (json!(8), 7, StatusCode::UNPROCESSABLE_ENTITY),
        (json!("4"), 100, StatusCode::BAD_REQUEST),
    ] {
        let mut body = event_body("UTC", today_utc(), today_utc(), ("00:00", "24:00"), limit);
        body["shards"] = shards.clone();
        let response = app.post_event(&body).await;
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, expected, "{shards}: {answer}");
        let code = if expected == StatusCode::BAD_REQUEST {
            "invalid_request"
        } else {
            "invalid_combination"
        };
        assert_eq!(answer["error"]["code"], code);
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("shards"), "{shards}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_bucket_that_lost_its_memory_is_rebuilt_alone() {
    let app = spawn_app().await;
    let event = sharded_event(&app, 100, 4).await;
    let first = users("early", 60);
    everyone_gets_one(&app, &event, &first).await;
    assert_eq!(wait_stored(&app, &event, 60).await.len(), 60);

    // One node restarts empty: bucket 2's keys are gone, the other buckets keep theirs.
    let (id, day) = (EventId::parse(&event).unwrap(), today_utc());
    let lost = Bucket { event: id, shard: 2 };
    let before = redis_buckets(&app, &event, 4).await;
    assert!(before[2].0 > 0, "bucket 2 had issued some");
    let mut conn = app.issuer.connection();
    for key in [
        app.keys.settings(lost),
        app.keys.windows(lost),
        app.keys.stream(lost),
        app.keys.day_count(lost, day),
        app.keys.day_users(lost, day),
    ] {
        let _: () = conn.del(key).await.unwrap();
    }

    let mut everyone = users("late", 300);
    everyone.extend(first.iter().cloned());
    let (issued, refused) = crate::recovery::hammer_until_answered(&app, &event, &first, everyone).await;
    assert!(refused > 0, "the missing bucket was noticed");
    assert_eq!(issued.len(), 40, "only what was left of the day: 100 - 60");
    assert!(
        issued.iter().all(|u| u.starts_with("late-")),
        "no early buyer got a second"
    );
    let after = redis_buckets(&app, &event, 4).await;
    for (shard, (count, _)) in after.iter().enumerate() {
        assert_eq!(
            *count, 25,
            "bucket {shard} sold its share, numbering on from where it was"
        );
    }
    let rows = wait_stored(&app, &event, 100).await;
    assert_eq!(rows.len(), 100);
    assert_eq!(rows.iter().map(|(_, u, ..)| u).collect::<HashSet<_>>().len(), 100);
}

/// A lost bucket that holders of other buckets had walked past comes back dry, even when a coupon
/// it had issued was lost with it (answered, never stored): else each of those holders, whose
/// walk starts there, would be answered a second 201 by it. Many ask again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_bucket_that_was_walked_past_comes_back_dry() {
    // No sold-out memory: the walk must find bucket 2 dry in Redis, not in this instance's memory.
    let app = spawn_app_with_no_memory().await;
    let event = sharded_event(&app, 100, 4).await; // shares of 25
    let homed = homed_at(2, 4, 60);
    let (fill, walkers) = homed.split_at(25);
    for (user, status, body) in issue_all(&app, &event, fill).await {
        assert_eq!(
            (status, body["shard"].as_u64()),
            (StatusCode::CREATED, Some(2)),
            "{user}"
        );
    }
    let mut walked: HashMap<String, Value> = HashMap::new();
    for (user, status, body) in issue_all(&app, &event, &walkers[..20]).await {
        assert_eq!(status, StatusCode::CREATED, "{user}: {body}");
        assert_ne!(body["shard"], 2, "bucket 2 is dry: {user} walked past it");
        walked.insert(user, body);
    }
    assert_eq!(wait_stored(&app, &event, 45).await.len(), 45);

    // Bucket 2's node restarts empty, and its last coupon had not reached Postgres yet.
    let id = EventId::parse(&event).unwrap();
    let lost = Bucket { event: id, shard: 2 };
    let mut conn = app.issuer.connection();
    for key in [
        app.keys.settings(lost),
        app.keys.windows(lost),
        app.keys.stream(lost),
        app.keys.day_count(lost, today_utc()),
        app.keys.day_users(lost, today_utc()),
    ] {
        let _: () = conn.del(key).await.unwrap();
    }
    let gone = sqlx::query("DELETE FROM coupons WHERE event_id = $1::uuid AND shard = 2 AND seq = 25")
        .bind(&event)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(gone.rows_affected(), 1);

    // Every walker asks again, each several times, with new users homed at 2 among them.
    let again: Vec<String> = walked
        .keys()
        .flat_map(|u| std::iter::repeat_n(u.clone(), 3))
        .chain(walkers[20..].iter().cloned())
        .collect();
    let mut waiting = again;
    let started = std::time::Instant::now();
    let mut late_shards = Vec::new();
    while !waiting.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still restoring after 20 s"
        );
        let answers = issue_all(&app, &event, &waiting).await;
        waiting.clear();
        for (user, status, body) in answers {
            match (status, walked.get(&user)) {
                (StatusCode::SERVICE_UNAVAILABLE, _) => waiting.push(user),
                (StatusCode::CONFLICT, Some(first)) => assert_eq!(&body["coupon"], first, "{user}"),
                (StatusCode::CREATED, None) => late_shards.push(body["shard"].as_u64()),
                (other, _) => panic!("{user}: {other} {body}"),
            }
        }
    }
    assert_eq!(late_shards.len(), walkers.len() - 20);
    assert!(
        late_shards.iter().all(|s| *s != Some(2)),
        "bucket 2 stayed dry: {late_shards:?}"
    );
    let buckets = redis_buckets(&app, &event, 4).await;
    assert_eq!(
        buckets[2].0, 25,
        "counted at its share, though 24 of its coupons survived"
    );
    assert_eq!(buckets[2].1.len(), 24);
    // 24 of bucket 2's, 20 walkers', 15 late users'.
    let rows = wait_stored(&app, &event, 59).await;
    assert_eq!(rows.len(), 59);
    assert_eq!(
        rows.iter().map(|(_, u, ..)| u).collect::<HashSet<_>>().len(),
        59,
        "no user twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_compares_and_repairs_each_bucket() {
    use coupon_issuer::reconcile;
    let (app, mut args) = crate::reconcile::app_and_args(true).await;
    let event = sharded_event(&app, 40, 4).await;
    issue_all(&app, &event, &users("u", 20)).await;
    assert_eq!(wait_stored(&app, &event, 20).await.len(), 20);
    let id = EventId::parse(&event).unwrap();
    args.event = Some(id);
    args.day = Some(today_utc());

    let clean = reconcile::run(&args).await.unwrap();
    let compared: Vec<u16> = clean.days.iter().map(|d| d.shard).collect();
    assert_eq!(compared, [0, 1, 2, 3], "one report per bucket");
    assert_eq!(clean.exit_code(), 0);

    // A holder's record lost from bucket 3 only: found there, and put back there.
    let buckets = redis_buckets(&app, &event, 4).await;
    let holder = buckets[3].1.keys().next().expect("bucket 3 has a holder").clone();
    let mut conn = app.issuer.connection();
    let _: () = conn
        .hdel(app.keys.day_users(Bucket { event: id, shard: 3 }, today_utc()), &holder)
        .await
        .unwrap();
    let found = reconcile::run(&args).await.unwrap();
    let drifted: Vec<(u16, &str)> = found
        .days
        .iter()
        .flat_map(|d| d.remaining.iter().map(move |r| (d.shard, r.kind())))
        .collect();
    assert_eq!(drifted, [(3, "missing_in_redis")]);
    args.repair = true;
    assert_eq!(reconcile::run(&args).await.unwrap().exit_code(), 0);
    assert_eq!(redis_buckets(&app, &event, 4).await[3].1.len(), buckets[3].1.len());
    assert_eq!(app.issue(&event, &holder).await.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn metrics_and_inspect_add_up_the_buckets() {
    let (app, env) = crate::cli::app_and_env().await;
    let event = sharded_event(&app, 8, 4).await;
    // Six users whose homes are bucket 1: two there, then the walk fills 2 and 3.
    for user in homed_at(1, 4, 6) {
        assert_eq!(app.issue(&event, &user).await.status(), StatusCode::CREATED);
    }
    assert_eq!(wait_stored(&app, &event, 6).await.len(), 6);

    let m = crate::scrape::scrape(&app).await;
    let day = today_utc().to_string();
    let ev_day = [("event", event.as_str()), ("day", day.as_str())];
    assert_eq!(m.get("coupon_day_issued", &ev_day), 6.0);
    assert_eq!(m.get("coupon_day_limit", &ev_day), 8.0);
    assert_eq!(m.get("coupon_stream_length", &[("event", event.as_str())]), 0.0);

    let out = crate::cli::stdout(&crate::cli::cli(&env, &["inspect", &event, "--json"]).await);
    let inspected: Value = serde_json::from_str(&out).unwrap();
    for (field, expected) in [
        ("issued", 6),
        ("users", 6),
        ("stored", 6),
        ("remaining", 2),
        ("shards", 4),
    ] {
        assert_eq!(inspected[field], expected, "{field}: {inspected}");
    }
    assert_eq!(inspected["published"], true);
    let id = EventId::parse(&event).unwrap();
    let prefixes: Vec<String> = (0..4)
        .map(|shard| app.keys.event_prefix(Bucket { event: id, shard }))
        .collect();
    assert_eq!(inspected["key_prefixes"], json!(prefixes));
}

/// A walk is about one day: a bucket asked about another day than its own neither issues nor
/// answers for its own day (lua/issue.lua, ARGV[5]). Without it, a walk crossing midnight could
/// find the home bucket dry on one day and be issued the next day's coupon elsewhere.
#[tokio::test]
async fn the_script_refuses_to_issue_for_another_day_than_asked() {
    let app = spawn_app().await;
    let event = sharded_event(&app, 8, 2).await;
    let bucket = Bucket {
        event: EventId::parse(&event).unwrap(),
        shard: 1,
    };
    let script = redis::Script::new(include_str!("../../lua/issue.lua"));
    let mut conn = app.issuer.connection();
    let today = today_utc();
    let mut ask = async |day: &str| -> Vec<String> {
        let keys_day = if day.is_empty() { today } else { day.parse().unwrap() };
        script
            .key(app.keys.settings(bucket))
            .key(app.keys.windows(bucket))
            .key(app.keys.stream(bucket))
            .key(app.keys.day_count(bucket, keys_day))
            .key(app.keys.day_users(bucket, keys_day))
            .arg("walker")
            .arg(uuid::Uuid::now_v7().to_string())
            .arg(app.keys.event_prefix(bucket))
            .arg(60_000)
            .arg(day)
            .invoke_async(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(ask(&(today - chrono::Duration::days(1)).to_string()).await, ["closed"]);
    assert_eq!(
        ask(&(today + chrono::Duration::days(1)).to_string()).await,
        ["not_open"]
    );
    let issued = ask(&today.to_string()).await;
    assert_eq!(issued[..2], ["issued".to_string(), today.to_string()]);
    assert_eq!(ask("").await[0], "already_issued", "no day: whichever is current");
}
