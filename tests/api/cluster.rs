//! On a Redis Cluster (`scripts/cluster`: 3 primaries, 3 replicas): the rules hold with events
//! on every primary and three instances sharing the cluster and one Postgres; and a primary
//! killed mid-spike costs a short burst of 503s, never an oversold coupon or a user twice; and so
//! does the event's slot moving to another primary mid-sale (resharding).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Duration as Days;
use coupon_issuer::domain::{Bucket, EventId};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    TestApp, event_body, holders, issue_spread, issue_spread_as_clients, never_handled, noon_zone, retry_after,
    spawn_app_with, users,
};
use crate::instances::{OwnCluster, primary_port_at, shared_or_own_cluster};
use crate::sharding::sharded_event;

/// Instances of the service on the cluster at `url`, sharing one database and key prefix.
pub async fn instances(url: &str, n: usize, configure: impl Fn(&mut coupon_issuer::config::Settings)) -> Vec<TestApp> {
    let first = spawn_app_with(|s| {
        s.connections.redis_url = url.to_owned();
        s.connections.redis_cluster_nodes = None;
        configure(s);
    })
    .await;
    let mut apps = vec![];
    for _ in 1..n {
        let settings = first.settings.clone();
        apps.push(spawn_app_with(move |s| *s = settings).await);
    }
    apps.insert(0, first);
    apps
}

/// The buckets of `event` (over `n`) that each primary of the cluster at `url` serves, by port.
pub fn buckets_by_primary(url: &str, app: &TestApp, event: EventId, n: u16) -> HashMap<u16, Vec<u16>> {
    let mut by_primary: HashMap<u16, Vec<u16>> = HashMap::new();
    for shard in 0..n {
        let key = app.keys.settings(Bucket { event, shard });
        by_primary.entry(primary_port_at(url, &key)).or_default().push(shard);
    }
    by_primary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_keep_every_rule_with_events_on_every_primary() {
    let (url, _own) = shared_or_own_cluster();
    // A correctness test on a loaded machine: give Redis time rather than count 503s.
    let apps = instances(&url, 3, |s| s.redis_timeout_ms = 5000).await;
    let a = &apps[0];

    // Open events until each of the three primaries holds one.
    let mut by_primary: HashMap<u16, String> = HashMap::new();
    for _ in 0..60 {
        let event = a.open_event(100).await;
        let key = a.keys.settings(EventId::parse(&event).unwrap());
        by_primary.entry(primary_port_at(&url, &key)).or_insert(event);
        if by_primary.len() == 3 {
            break;
        }
    }
    assert_eq!(by_primary.len(), 3, "events on all three primaries");
    let events: Vec<String> = by_primary.into_values().collect();

    // And two events whose window is not open: the window is checked on the cluster too.
    let (zone, today) = noon_zone();
    let body = |window| event_body(&zone, today, today + Days::days(2), window, 100);
    let later = a.create_event(body(("14:00", "23:00"))).await;
    let earlier = a.create_event(body(("01:00", "11:00"))).await;

    // 300 users per open event, each asking twice, and 100 requests at each closed one, spread
    // over the three instances, all at once.
    let mut requests = vec![];
    for event in &events {
        for user in users(&format!("u-{}", &event[..8]), 300) {
            requests.push((event.clone(), user.clone()));
            requests.push((event.clone(), user));
        }
    }
    for user in users("early", 100) {
        requests.push((later.clone(), user.clone()));
        requests.push((earlier.clone(), user));
    }
    // A 503 is asked again, as a client would (see `issue_as_client`).
    let (answers, retries) = issue_spread_as_clients(&apps, &requests, requests.len()).await;
    println!(
        "{} requests over three instances: {retries} retries after a 503",
        requests.len()
    );

    for (event, code) in [(&later, "not_open"), (&earlier, "closed")] {
        let wrong: Vec<_> = answers
            .iter()
            .filter(|(e, ..)| e == event)
            .filter(|(_, _, s, b)| *s != StatusCode::FORBIDDEN || b["error"]["code"] != code)
            .collect();
        assert!(wrong.is_empty(), "{code}: {wrong:?}");
    }
    for event in &events {
        let answers = answers.iter().filter(|(e, ..)| e == event);
        // Each user is shown one coupon at most, in a 201 or in the 409 of another ask.
        let held = holders(answers.clone().map(|(_, u, s, b)| (u.as_str(), *s, b)));
        assert_eq!(held.len(), 100, "exactly the limit is issued on {event}");
        let created = answers.filter(|(_, _, s, _)| *s == StatusCode::CREATED).count();
        assert!(created <= 100, "{created} answered 201 on {event}");
        if retries == 0 {
            assert_eq!(created, 100, "without a 503, every coupon was answered 201");
        }
        // Every instance sees the same count: one Redis state per event, wherever asked.
        for app in &apps {
            assert_eq!(app.count(event).await["issued"], 100);
        }
        let stored = a.wait_for_stored(event, 100, Duration::from_secs(15)).await;
        let stored_ids: HashSet<&str> = stored.iter().map(|(c, _, _)| c.as_str()).collect();
        let issued_ids: HashSet<&str> = held.values().map(|c| c["coupon_id"].as_str().unwrap()).collect();
        assert_eq!(
            stored_ids, issued_ids,
            "Postgres holds exactly the coupons the users were shown"
        );
        let mut seqs: Vec<i32> = stored.iter().map(|(_, _, s)| *s).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
    }
}

/// What one user saw, retrying 503s until a final answer, and when (since the spike began).
struct Seen {
    status: StatusCode,
    body: Value,
    at: Duration,
}

/// A Redis of the test's own whose primary the spike below kills: a cluster, or a Sentinel set.
pub trait Primaries: Send + 'static {
    fn url(&self) -> String;
    /// The port of the running primary that holds `key`.
    fn primary_for_key(&self, key: &str) -> u16;
    /// `kill -9` the primary on `port`.
    fn kill_primary(&mut self, port: u16);
    /// Waits until a replica has taken over from `old`; returns the time since the kill.
    fn wait_for_failover(&self, old: u16, limit: Duration) -> Duration;
    /// Starts the killed node again, as a supervisor would; it rejoins as a replica.
    fn restart_node(&mut self, port: u16);
}

impl Primaries for OwnCluster {
    fn url(&self) -> String {
        OwnCluster::url(self)
    }
    fn primary_for_key(&self, key: &str) -> u16 {
        OwnCluster::primary_for_key(self, key)
    }
    fn kill_primary(&mut self, port: u16) {
        OwnCluster::kill_primary(self, port)
    }
    fn wait_for_failover(&self, old: u16, limit: Duration) -> Duration {
        OwnCluster::wait_for_failover(self, old, limit)
    }
    fn restart_node(&mut self, port: u16) {
        OwnCluster::restart_node(self, port)
    }
}

/// A primary killed in the middle of a spike on its event (on bucket 0's primary, for an event
/// over `shards` buckets), on a cluster of the test's own: see [`kill_the_primary_mid_spike`].
pub async fn kill_a_primary_mid_spike(wait_replicas: u32, shards: u16) -> usize {
    kill_the_primary_mid_spike(OwnCluster::start(), wait_replicas, shards).await
}

/// A primary of `redis` killed in the middle of a spike on its event (on bucket 0's primary,
/// for an event over `shards` buckets): requests that need it get 503s until the replica is
/// promoted and the client has learnt it, then issuing goes on. Checks the limit and one per
/// user, and returns how many coupons a client was shown (in a 201, or in the 409 of a retry)
/// that Postgres lacks. Prints how long the failover and the 503s lasted, and how many 201s the
/// buckets on other primaries answered meanwhile.
pub async fn kill_the_primary_mid_spike(mut cluster: impl Primaries, wait_replicas: u32, shards: u16) -> usize {
    const LIMIT: usize = 1500;
    const USERS: usize = 3000;
    /// How long after the spike began a user may still be retrying: the failover (30 s at most,
    /// see below) and the retry storm after it, with room for a loaded machine.
    const USER_DEADLINE: Duration = Duration::from_secs(180);
    let url = cluster.url();
    let apps = Arc::new(
        instances(&url, 2, |s| {
            s.redis_timeout_ms = 500;
            s.redis_wait_replicas = wait_replicas;
            // No more in flight than this debug build finishes within the Redis timeout (about
            // 1,500 requests/s x 0.5 s, less for a walk over buckets), or the 503s outlast the
            // failover by minutes (docs/scaling.md, "A retry storm can outlast the failover").
            // TEST_KILL_MAX_IN_FLIGHT overrides it, to measure another value.
            s.max_in_flight = std::env::var("TEST_KILL_MAX_IN_FLIGHT").map_or(256, |m| m.parse().unwrap());
        })
        .await,
    );
    let event = if shards == 1 {
        apps[0].open_event(LIMIT as u32).await
    } else {
        sharded_event(&apps[0], LIMIT as u32, shards).await
    };
    let id = EventId::parse(&event).unwrap();
    let primary = cluster.primary_for_key(&apps[0].keys.settings(id));
    // The buckets that go down with it; the others' primaries stay up.
    let doomed: Vec<u16> = (0..shards)
        .filter(|&shard| cluster.primary_for_key(&apps[0].keys.settings(Bucket { event: id, shard })) == primary)
        .collect();

    // Users arrive one every millisecond for 3 s; each retries a 503 as clients do, after its
    // Retry-After (1 s, plus up to as long again at random), backing off on repeated 503s. Retried after 50 ms, as before, the
    // storm outlived the failover by minutes on a loaded machine (docs/scaling.md, "A retry storm can
    // outlast the failover"): every admitted request outwaited its own timeout.
    let unavailable = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let first_503 = Arc::new(std::sync::Mutex::new(None::<(Instant, Instant)>));
    let started = Instant::now();
    let tasks: Vec<_> = users("fo", USERS)
        .into_iter()
        .enumerate()
        .map(|(i, user)| {
            let (apps, event, unavailable, window, dropped) = (
                apps.clone(),
                event.clone(),
                unavailable.clone(),
                first_503.clone(),
                dropped.clone(),
            );
            tokio::spawn(async move {
                tokio::time::sleep_until((started + Duration::from_millis(i as u64)).into()).await;
                let mut unanswered = 0u32;
                for attempt in 0.. {
                    // Bounded: a failover that never completes must fail the test, not hang it.
                    assert!(
                        started.elapsed() < USER_DEADLINE,
                        "{user}: no final answer {USER_DEADLINE:?} after the spike began"
                    );
                    let app = &apps[(i + attempt) % apps.len()];
                    let sent = app
                        .client
                        .post(app.url("/v1/coupon/issue"))
                        .json(&serde_json::json!({ "event_id": event, "user_id": user }))
                        .send()
                        .await;
                    // Asked by hand, not through `TestApp::issue`, to count these and to retry
                    // without end.
                    if never_handled(&sent) {
                        eprintln!(
                            "at {:?}: no handler reached: {:?}",
                            started.elapsed(),
                            sent.map(|r| r.status())
                        );
                        dropped.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    let response = sent.unwrap_or_else(|e| panic!("issue request not sent: {e:?}"));
                    let status = response.status();
                    let wait = (status == StatusCode::SERVICE_UNAVAILABLE).then(|| retry_after(&response));
                    let body = response.json::<Value>().await.unwrap_or(Value::Null);
                    if let Some(wait) = wait {
                        // Backing off as clients do on 503 after 503 (x2, x4, x8): honouring
                        // Retry-After alone, 3,000 users still offered a starved debug build far
                        // more than it finishes within the Redis timeout, and the 503s went on
                        // for 166 s after a 4.5 s failover.
                        let wait = wait * (1 << unanswered.min(3));
                        unanswered += 1;
                        unavailable.fetch_add(1, Ordering::Relaxed);
                        let now = Instant::now();
                        {
                            let mut w = window.lock().unwrap();
                            *w = Some(w.map_or((now, now), |(first, _)| (first, now)));
                        }
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    let at = started.elapsed();
                    return (user, Seen { status, body, at });
                }
                unreachable!()
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1000)).await;
    cluster.kill_primary(primary);
    let killed_at = started.elapsed();
    let killed_at_instant = Instant::now();
    // The cluster recovers as in production: the replica takes over, then a supervisor starts
    // the killed node again and it rejoins as the new primary's replica. (With
    // REDIS_WAIT_REPLICAS=1 the shard cannot answer a coupon until then: its new primary has no
    // replica to acknowledge it.)
    let failover = tokio::task::spawn_blocking(move || {
        let took = cluster.wait_for_failover(primary, Duration::from_secs(30));
        cluster.restart_node(primary);
        let replica_back = killed_at_instant.elapsed();
        (cluster, took, replica_back)
    });
    // A panic in any user's task or in the failover (which never came) fails the test at once:
    // awaited one after the other, the users of a primary that never came back would retry
    // their 503s until their deadline before the failover's panic were seen.
    let joined = futures::future::try_join(futures::future::try_join_all(tasks), failover).await;
    let (seen, (_cluster, failover_took, replica_back)) = joined.unwrap_or_else(|e| match e.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(e) => panic!("a spike task did not finish: {e}"),
    });

    // Every final answer is one of the expected ones.
    let mut shown: HashMap<String, String> = HashMap::new(); // user -> coupon a client was shown
    let mut created = 0;
    let mut issued_while_down = 0;
    for (user, Seen { status, body, at }) in &seen {
        match *status {
            StatusCode::CREATED => {
                created += 1;
                // A little after the kill, so that an answer already on its way does not count.
                let down = killed_at + Duration::from_millis(100)..killed_at + failover_took;
                let shard = body["shard"].as_u64().unwrap_or(0) as u16;
                issued_while_down += usize::from(down.contains(at) && !doomed.contains(&shard));
                shown.insert(user.clone(), body["coupon_id"].as_str().unwrap().to_owned());
            }
            StatusCode::CONFLICT => {
                shown.insert(user.clone(), body["coupon"]["coupon_id"].as_str().unwrap().to_owned());
            }
            StatusCode::GONE => assert_eq!(body["error"]["code"], "sold_out"),
            other => panic!("unexpected {other}: {body}"),
        }
    }

    // Let the writers store what is left (the new primary's stream included): until every coupon
    // shown is stored and Postgres has not changed for 1.5 s, or it has not changed for 5 s (a coupon lost in a failover without
    // WAIT never comes), 60 s at most. Polled: on a loaded machine a writer can pause for more
    // than a second, so "no change since the last look" alone would stop too early.
    let mut stored = apps[0].stored(&event).await;
    let (settle, mut changed) = (Instant::now(), Instant::now());
    loop {
        let ids: HashSet<&str> = stored.iter().map(|(c, _, _)| c.as_str()).collect();
        let quiet = changed.elapsed();
        if (shown.values().all(|c| ids.contains(c.as_str())) && quiet > Duration::from_millis(1500))
            || quiet > Duration::from_secs(5)
            || settle.elapsed() > Duration::from_secs(60)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = apps[0].stored(&event).await;
        if now.len() != stored.len() {
            changed = Instant::now();
        }
        stored = now;
    }
    let users_in_pg: HashSet<&str> = stored.iter().map(|(_, u, _)| u.as_str()).collect();
    assert!(stored.len() <= LIMIT, "never over the limit: {} stored", stored.len());
    assert_eq!(users_in_pg.len(), stored.len(), "no user twice in Postgres");
    let stored_ids: HashMap<&str, &str> = stored.iter().map(|(c, u, _)| (c.as_str(), u.as_str())).collect();
    let lost: Vec<_> = shown
        .iter()
        .filter(|(user, coupon)| stored_ids.get(coupon.as_str()) != Some(&user.as_str()))
        .collect();
    if !lost.is_empty() {
        // Still in a stream (the writer is late), or gone (lost)? Say which, to whoever reads
        // the failure.
        let mut conn = apps[0].issuer.connection();
        for shard in 0..shards {
            let stream = apps[0].keys.stream(Bucket { event: id, shard });
            let len: redis::RedisResult<u64> = redis::cmd("XLEN").arg(&stream).query_async(&mut conn).await;
            let pending: redis::RedisResult<redis::streams::StreamPendingReply> =
                redis::AsyncCommands::xpending(&mut conn, &stream, coupon_issuer::issuing::WRITER_GROUP).await;
            eprintln!(
                "bucket {shard}: stream length {len:?}, pending {:?}",
                pending.map(|p| p.count())
            );
        }
    }
    let burst = first_503.lock().unwrap().map(|(a, b)| b - a);
    // When the last 503 came, after the kill: the 503s end once the client has the new primary.
    let last_503 = first_503
        .lock()
        .unwrap()
        .map(|(_, b)| b.saturating_duration_since(killed_at_instant));
    println!(
        "{url}: shards={shards} REDIS_WAIT_REPLICAS={wait_replicas}: primary killed at {killed_at:.1?}, failover took {failover_took:.1?}, \
         replica back {replica_back:.1?} after the kill; \
         {} answers 503 over {burst:.1?}, the last {last_503:.1?} after the kill; {} requests dropped or timed out (408) before a handler; {created} answered 201 \
         ({issued_while_down} by the {} buckets on other primaries while it was down), {} coupons shown, {} stored, {} shown but not stored",
        unavailable.load(Ordering::Relaxed),
        dropped.load(Ordering::Relaxed),
        shards as usize - doomed.len(),
        shown.len(),
        stored.len(),
        lost.len(),
    );
    assert!(
        unavailable.load(Ordering::Relaxed) > 0,
        "the kill happened mid-spike and was felt"
    );
    lost.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_primary_killed_mid_spike_loses_no_coupon_with_a_replica_acknowledging() {
    let lost = kill_a_primary_mid_spike(1, 1).await;
    assert_eq!(
        lost, 0,
        "every coupon a client was shown is in Postgres, once, under its user"
    );
}

/// Without `REDIS_WAIT_REPLICAS` a failover may lose the last coupons the old primary answered
/// (Redis Cluster's own caveat: replication is asynchronous). Never over the limit and never a
/// user twice all the same; the loss is measured and printed, not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_primary_killed_mid_spike_without_waiting_for_replicas_never_oversells() {
    let lost = kill_a_primary_mid_spike(0, 1).await;
    println!("coupons shown but lost in the failover without WAIT: {lost}");
}

/// Resharding: the event's slot moves to another primary while requests keep coming. In the
/// middle of a move some of its keys are on each node; the moment that matters is when the keys
/// the script declares have moved and today's count and users have not. Redis then sends the
/// script to the new node (ASK), where an undeclared key not yet moved reads as empty: the day
/// would count from zero again. The day's keys are declared (lua/issue.lua, KEYS[4] and [5]),
/// so Redis answers TRYAGAIN instead, and the service 503, until the move is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slot_moved_mid_sale_gives_503s_then_the_right_answers() {
    let cluster = OwnCluster::start();
    let app = instances(&cluster.url(), 1, |s| {
        s.redis_timeout_ms = 500;
        s.sold_out_memory_ms = 0;
    })
    .await
    .remove(0);
    let event = app.open_event(20).await;
    let first = users("before", 10);
    let mut held = HashMap::new();
    for (_, user, status, body) in issue_spread(std::slice::from_ref(&app), &with_event(&event, &first)).await {
        assert_eq!(status, StatusCode::CREATED, "{user}: {body}");
        held.insert(user, body["coupon_id"].clone());
    }

    // Half-way through a move: the script's declared keys on the new node, the day's still on
    // the old one.
    let id = EventId::parse(&event).unwrap();
    let settings = app.keys.settings(id);
    let from = cluster.primary_for_key(&settings);
    let to = cluster
        .nodes()
        .into_iter()
        .find(|n| n.primary && n.port != from)
        .unwrap()
        .port;
    let slot = slot_of(&cluster, &settings);
    cluster.begin_migration(slot, from, to);
    cluster.migrate_keys(from, to, &[settings, app.keys.windows(id), app.keys.stream(id)]);

    let later = users("during", 30);
    let everyone: Vec<String> = first.iter().chain(&later).cloned().collect();
    let during = issue_spread(std::slice::from_ref(&app), &with_event(&event, &everyone)).await;
    let answered: Vec<_> = during
        .iter()
        .filter(|(_, _, s, _)| *s != StatusCode::SERVICE_UNAVAILABLE)
        .map(|(_, u, s, b)| format!("{u}: {s} {b}"))
        .collect();
    assert!(
        answered.is_empty(),
        "only 503s while the day's keys are split: {answered:?}"
    );

    // The move ends; everyone asks again until answered.
    cluster.finish_migration(slot, from, to);
    assert_eq!(cluster.primary_for_key(&app.keys.settings(id)), to);
    let mut waiting = everyone;
    let mut issued = vec![];
    let started = Instant::now();
    while !waiting.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(20), "still 503 after 20 s");
        let answers = issue_spread(std::slice::from_ref(&app), &with_event(&event, &waiting)).await;
        waiting.clear();
        for (_, user, status, body) in answers {
            match (status, held.get(&user)) {
                (StatusCode::SERVICE_UNAVAILABLE, _) => waiting.push(user),
                (StatusCode::CONFLICT, Some(coupon)) => assert_eq!(&body["coupon"]["coupon_id"], coupon, "{user}"),
                (StatusCode::CREATED, None) => issued.push(body["seq"].as_u64().unwrap()),
                (StatusCode::GONE, None) => {}
                (other, _) => panic!("{user}: {other} {body}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    issued.sort_unstable();
    assert_eq!(
        issued,
        (11..=20).collect::<Vec<u64>>(),
        "the day counted on from 10, to the limit"
    );
    let mut stored = app.stored(&event).await;
    let started = Instant::now();
    while stored.len() < 20 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stored = app.stored(&event).await;
    }
    assert_eq!(stored.len(), 20);
    assert_eq!(stored.iter().map(|(_, u, _)| u).collect::<HashSet<_>>().len(), 20);
}

fn with_event(event: &str, users: &[String]) -> Vec<(String, String)> {
    users.iter().map(|u| (event.to_owned(), u.clone())).collect()
}

pub fn slot_of(cluster: &OwnCluster, key: &str) -> u16 {
    let port = cluster.nodes()[0].port;
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "cluster", "keyslot", key])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}
