//! Faults 1 and 6, on the service as real processes: one of two instances killed with SIGKILL
//! mid-spike, and far more connections than the service admits.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use coupon_issuer::domain::EventId;
use coupon_issuer::issuing::{Keys, WRITER_GROUP};
use coupon_issuer::redis_target::{RedisConnection, RedisTarget};
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{test_settings, today_utc, users};
use crate::instances::{create_open_event, service_env, start_service};
use crate::proxy::{Proxy, database_url_via_port, postgres_addr};

/// One user's request to `service`: `None` when the connection failed (the instance is dead).
async fn issue(client: &reqwest::Client, service_url: &str, event: &str, user: &str) -> Option<(StatusCode, Value)> {
    let body = json!({ "event_id": event, "user_id": user });
    let response = client.post(service_url).json(&body).send().await.ok()?;
    let status = response.status();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_one_of_two_instances_mid_spike_loses_nothing_and_oversells_nothing() {
    const LIMIT: usize = 400;
    let settings = test_settings();
    let mut env = service_env(
        &settings.connections.redis_url,
        &settings.connections.database.url,
        &settings.connections.redis_key_prefix,
    );
    // The survivor claims what the dead one read but did not acknowledge after 1 s, not 30.
    env.push(("WRITER_CLAIM_IDLE_MS", "1000".into()));
    // Reading again at once after each small batch, the doomed writer surely holds entries it
    // read and cannot store when it dies (with the default linger it may be between reads).
    env.push(("WRITER_LINGER_MS", "0".into()));
    // The doomed instance reaches Postgres through a proxy cut as the spike begins, so that its
    // writer is sure to die holding entries it read and could not store: the case to prove.
    let proxy = Proxy::start(postgres_addr(&settings.connections.database.url)).await;
    let mut doomed_env = env.clone();
    doomed_env.push((
        "DATABASE_URL",
        database_url_via_port(&settings.connections.database.url, proxy.port),
    ));
    let mut doomed = start_service(&doomed_env);
    let survivor = start_service(&env);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let event = create_open_event(&client, &doomed, LIMIT as u32).await;
    let urls = [doomed.url("/v1/coupon/issue"), survivor.url("/v1/coupon/issue")];
    // Its writer's consumer name starts with this (see startup.rs).
    let doomed_consumer = format!("writer-{}-", doomed.pid());

    // 1,200 users for 400 coupons, half of them sent to each instance; a user whose request
    // fails (cut off by the kill, or 503) retries on the other instance until answered.
    let everyone = users("k", 1200);
    let spike = everyone.iter().enumerate().map(|(i, user)| {
        let (client, urls, event) = (client.clone(), urls.clone(), event.clone());
        async move {
            let mut target = i % 2;
            let mut heard = Vec::new();
            for _ in 0..200 {
                match issue(&client, &urls[target], &event, user).await {
                    Some((status, body)) if status != StatusCode::SERVICE_UNAVAILABLE => {
                        heard.push((status, body));
                        return (user.clone(), heard);
                    }
                    _ => target = 1, // the survivor
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("{user} never got an answer");
        }
    });
    let event_id = EventId::parse(&event).unwrap();
    let keys = Keys::new(&settings.connections.redis_key_prefix);
    // The project's own connection type, so that the test also runs with REDIS_URL naming a
    // cluster.
    let mut redis = RedisTarget::parse(&settings.connections.redis_url, None, &settings.connections.redis_tls)
        .unwrap()
        .multiplexed(Duration::from_secs(5))
        .unwrap();
    let stream = keys.stream(event_id);
    // The proxy is cut as the spike begins; the kill comes once the doomed writer holds entries
    // it read and cannot store (at most 5 s later), and returns how many it held as it died. They
    // are counted at that moment: the survivor claims them WRITER_CLAIM_IDLE_MS later, and on a
    // loaded machine the spike outlasts that, so at its end there would be nothing left to count.
    let kill = {
        let mut redis = redis.clone();
        let (doomed, proxy, stream) = (&mut doomed, &proxy, stream.clone());
        async move {
            proxy.cut();
            let started = Instant::now();
            while held_by(&mut redis, &stream, &doomed_consumer).await == 0
                && started.elapsed() < Duration::from_secs(5)
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            doomed.kill();
            held_by(&mut redis, &stream, &doomed_consumer).await
        }
    };
    let (answers, orphaned) = tokio::join!(futures::future::join_all(spike), kill);

    let mut issued: HashMap<String, String> = HashMap::new(); // user -> coupon seen as 201
    let mut held: HashMap<String, String> = HashMap::new(); // user -> coupon seen in a 409
    for (user, heard) in &answers {
        for (status, body) in heard {
            match *status {
                StatusCode::CREATED => issued.insert(user.clone(), body["coupon_id"].as_str().unwrap().to_owned()),
                StatusCode::CONFLICT => {
                    held.insert(user.clone(), body["coupon"]["coupon_id"].as_str().unwrap().to_owned())
                }
                StatusCode::GONE => None,
                other => panic!("{user}: {other} {body}"),
            };
        }
    }
    let stored = stored_after(&settings.connections.database.url, &event, LIMIT).await;
    eprintln!(
        "kill -9 mid-spike: {} answered 201, {} got their coupon in a 409 after a cut-off request, \
         {orphaned} read by the dead instance's writer and not acknowledged, {} stored",
        issued.len(),
        held.len(),
        stored.len()
    );
    assert!(orphaned > 0, "the dead instance left entries pending");
    assert!(issued.len() <= LIMIT, "never over the limit");
    assert_eq!(stored.len(), LIMIT, "sold out, every coupon stored");
    let by_coupon: HashMap<&str, &str> = stored.iter().map(|(c, u)| (c.as_str(), u.as_str())).collect();
    let holders: HashSet<&str> = stored.iter().map(|(_, u)| u.as_str()).collect();
    assert_eq!(holders.len(), LIMIT, "no user twice");
    for (user, coupon) in issued.iter().chain(&held) {
        assert_eq!(
            by_coupon.get(coupon.as_str()),
            Some(&user.as_str()),
            "{user}'s coupon is stored, once"
        );
    }
    let count: u64 = redis.get(keys.day_count(event_id, today_utc())).await.unwrap();
    assert_eq!(count as usize, LIMIT);
    let started = Instant::now();
    loop {
        let pending: redis::streams::StreamPendingReply = redis.xpending(&stream, WRITER_GROUP).await.unwrap();
        if pending.count() == 0 {
            break;
        }
        // A deadline on the survivor's writer (polled), which a loaded machine slows.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the survivor claimed what was pending"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many entries of `stream` the consumers whose names start with `consumer` have read and
/// not acknowledged.
async fn held_by(redis: &mut RedisConnection, stream: &str, consumer: &str) -> usize {
    let pending: redis::streams::StreamPendingCountReply = redis
        .xpending_count(stream, WRITER_GROUP, "-", "+", 100_000)
        .await
        .unwrap_or_default();
    pending.ids.iter().filter(|p| p.consumer.starts_with(consumer)).count()
}

/// (coupon_id, user_id) of the event's stored coupons, once `n` are there (or after 60 s: a
/// deadline on the writers, polled, generous for a loaded machine).
async fn stored_after(database_url: &str, event: &str, n: usize) -> Vec<(String, String)> {
    let db = sqlx::PgPool::connect(database_url).await.unwrap();
    let started = Instant::now();
    loop {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT coupon_id::text, user_id FROM coupons WHERE event_id = $1::uuid")
                .bind(event)
                .fetch_all(&db)
                .await
                .unwrap();
        if rows.len() >= n || started.elapsed() > Duration::from_secs(60) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overload_is_shed_with_503_and_retry_after_while_admitted_requests_stay_fast() {
    const CONNECTIONS: usize = 1000;
    let settings = test_settings();
    let mut env = service_env(
        &settings.connections.redis_url,
        &settings.connections.database.url,
        &settings.connections.redis_key_prefix,
    );
    env.push(("MAX_IN_FLIGHT", "16".into()));
    let service = start_service(&env);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();
    let event = create_open_event(&client, &service, 10_000_000).await;
    let rss_before = service.rss_kib();

    // 1,000 clients, each sending request after request for 4 s: far more than the 16 admitted.
    let url = service.url("/v1/coupon/issue");
    let load = (0..CONNECTIONS).map(|c| {
        let (client, url, event) = (client.clone(), url.clone(), event.clone());
        async move {
            let mut seen = Vec::new();
            let started = Instant::now();
            let mut i = 0;
            while started.elapsed() < Duration::from_secs(4) {
                let sent = Instant::now();
                let body = json!({ "event_id": event, "user_id": format!("o{c}-{i}") });
                let response = client.post(&url).json(&body).send().await.expect("answered, not hung");
                let retry_after = response.headers().contains_key("retry-after");
                seen.push((response.status(), retry_after, sent.elapsed()));
                i += 1;
            }
            seen
        }
    });
    let answers: Vec<_> = futures::future::join_all(load).await.into_iter().flatten().collect();
    let rss_after = service.rss_kib();

    let shed: Vec<_> = answers
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    let mut admitted: Vec<Duration> = answers
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::CREATED)
        .map(|(_, _, t)| *t)
        .collect();
    admitted.sort();
    let others: Vec<_> = answers
        .iter()
        .filter(|(s, _, _)| ![StatusCode::CREATED, StatusCode::SERVICE_UNAVAILABLE].contains(s))
        .collect();
    let pct = |p: usize| admitted.get(admitted.len() * p / 100).copied().unwrap_or_default();
    eprintln!(
        "overload, {CONNECTIONS} connections, MAX_IN_FLIGHT 16, 4 s: {} requests, {} admitted \
         (p50 {:?}, p99 {:?}, max {:?}), {} shed; RSS {rss_before} -> {rss_after} KiB",
        answers.len(),
        admitted.len(),
        pct(50),
        pct(99),
        admitted.last().copied().unwrap_or_default(),
        shed.len()
    );
    assert!(others.is_empty(), "only 201 or 503: {others:?}");
    assert!(!shed.is_empty(), "the excess is shed");
    assert!(
        shed.iter().all(|(_, retry_after, _)| *retry_after),
        "every 503 says when to retry"
    );
    assert!(admitted.len() > 100, "the service keeps serving under overload");
    assert!(
        pct(99) < Duration::from_secs(5),
        "admitted requests are not queued behind the excess"
    );
    assert!(
        rss_after < 256 * 1024,
        "memory stays bounded: {rss_before} -> {rss_after} KiB"
    );
}
