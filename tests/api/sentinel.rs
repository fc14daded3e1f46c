//! Behind Redis Sentinel (`scripts/sentinel`: one primary, one replica, three sentinels): the
//! service finds the primary through the sentinels, issues and stores; refuses to start, in one
//! line, when the sentinels know no such master; and follows a failover of a primary killed
//! mid-spike with nothing oversold, no user twice and, with `REDIS_WAIT_REPLICAS=1`, no coupon
//! a client saw lost.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;

use crate::cluster::{Primaries, kill_the_primary_mid_spike};
use crate::helpers::{issue_all, spawn_app_with, test_settings, users};
use crate::instances::{OwnSentinels, TestCerts, free_port};

impl Primaries for OwnSentinels {
    fn url(&self) -> String {
        OwnSentinels::url(self)
    }
    fn primary_for_key(&self, _key: &str) -> u16 {
        self.primary()
    }
    fn kill_primary(&mut self, port: u16) {
        OwnSentinels::kill_primary(self, port)
    }
    fn wait_for_failover(&self, old: u16, limit: Duration) -> Duration {
        OwnSentinels::wait_for_failover(self, old, limit)
    }
    fn restart_node(&mut self, port: u16) {
        OwnSentinels::restart_node(self, port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issues_and_stores_through_the_sentinels_primary() {
    let sentinels = OwnSentinels::start();
    let app = spawn_app_with(|s| {
        s.connections.redis_url = sentinels.url();
        s.connections.redis_cluster_nodes = None;
        // A correctness test on a loaded machine: give Redis time rather than count 503s.
        s.redis_timeout_ms = 5000;
        s.redis_wait_replicas = 1;
    })
    .await;
    let event = app.open_event(10).await;
    let answers = issue_all(&app, &event, &users("s", 15)).await;
    let issued: HashSet<&str> = answers
        .iter()
        .filter(|(_, s, _)| *s == StatusCode::CREATED)
        .map(|(_, _, b)| b["coupon_id"].as_str().unwrap())
        .collect();
    assert_eq!(issued.len(), 10, "exactly the limit: {answers:?}");
    assert!(
        answers
            .iter()
            .all(|(_, s, _)| *s == StatusCode::CREATED || *s == StatusCode::GONE),
        "{answers:?}"
    );
    let stored = app.wait_for_stored(&event, 10, Duration::from_secs(15)).await;
    let stored: HashSet<&str> = stored.iter().map(|(c, _, _)| c.as_str()).collect();
    assert_eq!(stored, issued, "the writer stored what the primary issued");

    // The day's count is on the primary the sentinels name.
    let primary = sentinels.primary();
    let count_on = |port: u16| {
        let key = app.keys.day_count(
            coupon_issuer::domain::Bucket {
                event: coupon_issuer::domain::EventId::parse(&event).unwrap(),
                shard: 0,
            },
            crate::helpers::today_utc(),
        );
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "get", &key])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(count_on(primary), "10");
}

/// `REDIS_URL` naming a master no sentinel knows, or sentinels that do not answer: the service
/// exits non-zero at once, with one line that names the setting, and no panic.
#[tokio::test]
async fn an_unknown_master_or_no_sentinel_stops_the_start_in_one_line() {
    let sentinels = OwnSentinels::start();
    let settings = test_settings();
    let nobody = format!(
        "redis+sentinel://127.0.0.1:{},127.0.0.1:{}/coupons",
        free_port(),
        free_port()
    );
    for (url, says) in [
        (sentinels.url_for("nope"), "knows a master named \"nope\""),
        (nobody, "answered"),
    ] {
        let database_url = settings.connections.database.url.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_coupon-issuer"))
                .arg("serve")
                .env("REDIS_URL", &url)
                .env_remove("REDIS_CLUSTER_NODES")
                .env("DATABASE_URL", database_url)
                .env("LISTEN_ADDR", "127.0.0.1:0")
                .env("RUST_LOG", "warn")
                // The default: a backtrace is only printed when asked for.
                .env_remove("RUST_BACKTRACE")
                .env_remove("RUST_LIB_BACKTRACE")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "it started: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("REDIS_URL")).collect();
        assert_eq!(lines.len(), 1, "one line names REDIS_URL: {stderr}");
        assert!(lines[0].contains(says), "{stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{stderr}"
        );
    }
}

/// The primary `kill -9`ed one second into a spike of 3,000 users on 1,500 coupons, through two
/// instances, with `REDIS_WAIT_REPLICAS=1`: the sentinels promote the replica, the service finds
/// it by itself, and the old node comes back as its replica. Never over the limit, no user twice,
/// and every coupon a client saw is in Postgres, once, under its user: the writers stored it,
/// from the old primary or the new one. How long the failover and the 503s lasted is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_primary_killed_mid_spike_fails_over_and_loses_no_coupon() {
    let lost = kill_the_primary_mid_spike(OwnSentinels::start(), 1, 1).await;
    assert_eq!(
        lost, 0,
        "every coupon a client was shown is in Postgres, once, under its user"
    );
}

/// An ACL user and password in the URL (`redis+sentinel://user:password@…/<master>`) are used on
/// the data node the sentinels name: the service issues and stores as that user.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_acl_user_in_the_url_is_used_on_the_named_primary() {
    let sentinels = OwnSentinels::start();
    let primary = sentinels.primary();
    let acl = Command::new("redis-cli")
        .args(["-p", &primary.to_string()])
        .args(["acl", "setuser", "shop", "on", ">shop-secret", "~*", "&*", "+@all"])
        .output()
        .unwrap();
    assert!(acl.status.success(), "{acl:?}");
    let url = sentinels
        .url()
        .replacen("redis+sentinel://", "redis+sentinel://shop:shop-secret@", 1);
    let app = spawn_app_with(|s| {
        s.connections.redis_url = url;
        s.connections.redis_cluster_nodes = None;
        s.redis_timeout_ms = 5000;
    })
    .await;
    let event = app.open_event(5).await;
    let answers = issue_all(&app, &event, &users("acl", 5)).await;
    assert!(answers.iter().all(|(_, s, _)| *s == StatusCode::CREATED), "{answers:?}");
    app.wait_for_stored(&event, 5, Duration::from_secs(15)).await;
    let clients = Command::new("redis-cli")
        .args(["-p", &primary.to_string(), "client", "list"])
        .output()
        .unwrap();
    let clients = String::from_utf8_lossy(&clients.stdout);
    assert!(clients.contains("user=shop"), "the service connects as shop: {clients}");
}

/// `rediss+sentinel://` with `REDIS_TLS_CA_FILE`: the sentinels and the primary they name are
/// reached over TLS only (`scripts/sentinel --tls`), verified against the test's own CA; the
/// service issues and stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issues_and_stores_through_sentinels_over_tls() {
    let certs = TestCerts::generate("sentinel");
    let sentinels = OwnSentinels::start_tls(&certs.dir.0);
    assert!(sentinels.url().starts_with("rediss+sentinel://"), "{}", sentinels.url());
    let app = spawn_app_with(|s| {
        s.connections.redis_url = sentinels.url();
        s.connections.redis_cluster_nodes = None;
        s.connections.redis_tls.ca_file = Some(certs.ca());
        s.redis_timeout_ms = 5000;
    })
    .await;
    let event = app.open_event(5).await;
    let answers = issue_all(&app, &event, &users("tls", 5)).await;
    assert!(answers.iter().all(|(_, s, _)| *s == StatusCode::CREATED), "{answers:?}");
    app.wait_for_stored(&event, 5, Duration::from_secs(15)).await;
}
