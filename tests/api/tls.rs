//! TLS to Redis: servers of the tests' own that speak TLS only (`--port 0 --tls-port`), with a CA
//! and certificates each test generates (crates/test-support/src/tls.rs). Every path that connects to
//! Redis is driven over TLS: the issue path, the writer, restore, reconcile and the admin CLI,
//! on one server and on a 3-primary TLS cluster; then mutual TLS, ACL users, a certificate from
//! another CA, the insecure setting, and settings that cannot work.

use std::process::Output;
use std::time::Duration;

use coupon_issuer::config::Settings;
use coupon_issuer::reconcile;
use coupon_issuer::redis_target::RedisTls;
use reqwest::StatusCode;
use serde_json::Value;

use crate::cli::{cli, stdout};
use crate::helpers::{TestApp, everyone_gets_one, issue_all, spawn_app_with, test_settings, users, wait_until_ready};
use crate::instances::{OwnCluster, OwnRedis, Service, TestCerts, service_env, start_service};
use crate::recovery::hammer_until_answered;

/// A `redis-server` that speaks TLS only, with `certs`' server certificate; `extra` may add
/// arguments (a later one wins, e.g. `--tls-auth-clients yes`).
fn tls_redis(certs: &TestCerts, extra: &[&str]) -> OwnRedis {
    OwnRedis::start_tls(|port| certs.server_args(port), certs.cli_args(), extra)
}

/// `redis-cli` over TLS to the server on `port`; its reply, trimmed.
fn redis_cli(certs: &TestCerts, port: u16, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(certs.cli_args())
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Settings that trust `certs`' CA (on top of the system's roots).
fn trusting(certs: &TestCerts) -> RedisTls {
    RedisTls {
        ca_file: Some(certs.ca()),
        ..RedisTls::default()
    }
}

/// The service on Redis at `url` with `tls`, its writer running.
async fn spawn_on(url: String, tls: RedisTls) -> TestApp {
    spawn_app_with(|s| {
        s.connections.redis_url = url;
        s.connections.redis_cluster_nodes = None;
        s.connections.redis_tls = tls;
    })
    .await
}

async fn readyz(app: &TestApp) -> StatusCode {
    app.get_json("/readyz").await.0
}

/// Sells `n` coupons of a new event with room for `limit` to `n` users, checks who got one, and
/// that the writer stored exactly those in Postgres. Returns the event.
async fn sell_and_store(app: &TestApp, limit: u32, n: usize) -> String {
    let event = app.open_event(limit).await;
    let answers = issue_all(app, &event, &users("buyer", n)).await;
    let issued = answers.iter().filter(|(_, s, _)| *s == StatusCode::CREATED).count();
    let sold_out = answers.iter().filter(|(_, s, _)| *s == StatusCode::GONE).count();
    assert_eq!((issued, sold_out), (limit as usize, n - limit as usize), "{answers:?}");
    let stored = app.wait_for_stored(&event, issued, Duration::from_secs(20)).await;
    assert_eq!(stored.len(), issued, "the writer stored every coupon");
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issue_path_and_the_writer_work_over_tls() {
    let certs = TestCerts::generate("single");
    let redis = tls_redis(&certs, &[]);
    assert!(redis.url().starts_with("rediss://"));
    let app = spawn_on(redis.url(), trusting(&certs)).await;
    assert_eq!(readyz(&app).await, StatusCode::OK);
    sell_and_store(&app, 10, 14).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_rebuilds_a_wiped_redis_over_tls() {
    let certs = TestCerts::generate("restore");
    let redis = tls_redis(&certs, &[]);
    let app = spawn_on(redis.url(), trusting(&certs)).await;
    let event = app.open_event(30).await;
    let first = users("early", 20);
    everyone_gets_one(&app, &event, &first).await;
    assert_eq!(app.wait_for_stored(&event, 20, Duration::from_secs(20)).await.len(), 20);

    // The server is this test's own: it may lose everything.
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut app.issuer.connection())
        .await
        .unwrap();

    let mut everyone = users("late", 20);
    everyone.extend(first.iter().cloned());
    let (issued, _) = hammer_until_answered(&app, &event, &first, everyone).await;
    assert_eq!(issued.len(), 10, "only what was left of the day, rebuilt from Postgres");
    assert!(issued.iter().all(|u| u.starts_with("late-")), "{issued:?}");
    assert_eq!(app.wait_for_stored(&event, 30, Duration::from_secs(20)).await.len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_and_the_cli_work_over_tls() {
    let certs = TestCerts::generate("admin");
    let redis = tls_redis(&certs, &[]);
    let app = spawn_on(redis.url(), trusting(&certs)).await;
    let event = sell_and_store(&app, 4, 4).await;

    let report = reconcile::run(&crate::reconcile::args_for(app.settings.clone()))
        .await
        .unwrap();
    assert!(!report.days.is_empty());
    assert_eq!(report.exit_code(), 0, "the stores agree");

    // The binary, as an operator runs it, with the TLS settings in its environment.
    let env = cli_env(&app.settings);
    let table = cli(&env, &["reconcile", "--event", &event]).await;
    assert_eq!(
        table.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let inspected: Value = serde_json::from_str(&stdout(&cli(&env, &["inspect", &event, "--json"]).await)).unwrap();
    assert_eq!(inspected["issued"], 4, "{inspected}");
    let listed = stdout(&cli(&env, &["events", "list", "--json"]).await);
    assert!(listed.contains(&event), "{listed}");
}

/// What the CLI needs to reach an app's Redis (over TLS) and database.
fn cli_env(s: &Settings) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DATABASE_URL", s.connections.database.url.clone()),
        ("REDIS_URL", s.connections.redis_url.clone()),
        ("REDIS_KEY_PREFIX", s.connections.redis_key_prefix.clone()),
    ];
    if let Some(ca) = &s.connections.redis_tls.ca_file {
        env.push(("REDIS_TLS_CA_FILE", ca.display().to_string()));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issue_path_and_the_writer_work_on_a_tls_cluster_as_an_acl_user() {
    let certs = TestCerts::generate("cluster");
    let cluster = OwnCluster::start_tls(&certs.dir.0);
    assert!(cluster.url().starts_with("rediss+cluster://"), "{}", cluster.url());
    // ACL users are per node: every node learns the user, replicas too (they may be promoted).
    for port in cluster.ports() {
        let reply = redis_cli(
            &certs,
            port,
            &["ACL", "SETUSER", "shop", "on", ">s3cret", "~*", "&*", "+@all"],
        );
        assert_eq!(reply, "OK", "on {port}");
    }
    let url = cluster
        .url()
        .replace("rediss+cluster://", "rediss+cluster://shop:s3cret@");
    let app = spawn_on(url, trusting(&certs)).await;
    assert_eq!(readyz(&app).await, StatusCode::OK);
    sell_and_store(&app, 20, 25).await;

    // The service's connections, the ones the cluster client opened to nodes it learned of
    // included, are logged in as the ACL user.
    let as_shop: usize = cluster
        .ports()
        .into_iter()
        .map(|port| {
            redis_cli(&certs, port, &["CLIENT", "LIST"])
                .matches(" user=shop ")
                .count()
        })
        .sum();
    assert!(as_shop >= 3, "one connection per primary at least, got {as_shop}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_and_password_in_the_url_work_over_tls() {
    let certs = TestCerts::generate("acl");
    let redis = tls_redis(&certs, &[]);
    let setup = [
        &["ACL", "SETUSER", "shop", "on", ">s3cret", "~*", "&*", "+@all"][..],
        // No other way in: the service must log in as `shop`.
        &["ACL", "SETUSER", "default", "off"],
    ];
    for command in setup {
        assert_eq!(redis_cli(&certs, redis.port, command), "OK", "{command:?}");
    }
    let with_user = |password: &str| format!("rediss://shop:{password}@127.0.0.1:{}", redis.port);

    let wrong = spawn_on(with_user("wrong"), trusting(&certs)).await;
    assert_eq!(readyz(&wrong).await, StatusCode::SERVICE_UNAVAILABLE);

    let app = spawn_on(with_user("s3cret"), trusting(&certs)).await;
    assert_eq!(readyz(&app).await, StatusCode::OK);
    sell_and_store(&app, 3, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_the_client_certificate() {
    let certs = TestCerts::generate("mtls");
    let redis = tls_redis(&certs, &["--tls-auth-clients", "yes"]);

    let without = spawn_on(redis.url(), trusting(&certs)).await;
    assert_eq!(readyz(&without).await, StatusCode::SERVICE_UNAVAILABLE);

    let with = RedisTls {
        client_cert: Some(certs.client_cert()),
        client_key: Some(certs.client_key()),
        ..trusting(&certs)
    };
    let app = spawn_on(redis.url(), with).await;
    assert_eq!(readyz(&app).await, StatusCode::OK);
    sell_and_store(&app, 2, 3).await;
}

/// The service as a process on `redis` with `extra` settings, sharing this run's Postgres.
fn service_on(redis: &OwnRedis, extra: &[(&'static str, String)]) -> Service {
    let s = test_settings();
    let mut env = service_env(
        &redis.url(),
        &s.connections.database.url,
        &s.connections.redis_key_prefix,
    );
    env.extend(extra.iter().cloned());
    start_service(&env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_another_ca_is_refused_in_one_line() {
    let (ours, theirs) = (TestCerts::generate("ours"), TestCerts::generate("theirs"));
    let redis = tls_redis(&theirs, &[]);
    let trust_ours = ("REDIS_TLS_CA_FILE", ours.ca().display().to_string());
    let service = service_on(&redis, std::slice::from_ref(&trust_ours));
    assert_refused_with_one_line(&service).await;

    // The cluster form says it too, though its client retries quietly until requests time out:
    // the server is refused before the client could learn it is no cluster.
    let as_cluster = ("REDIS_URL", redis.url().replace("rediss://", "rediss+cluster://"));
    let service = service_on(&redis, &[trust_ours, as_cluster]);
    assert_refused_with_one_line(&service).await;
}

/// Not ready, 503 on issue, and the log says in one line, at start, that TLS verification of
/// Redis failed, with the cause.
async fn assert_refused_with_one_line(service: &Service) {
    let client = reqwest::Client::new();

    let ready = client.get(service.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    // An event can be created (it lives in Postgres), but nothing is issued for it.
    let event = crate::instances::create_open_event(&client, service, 5).await;
    let issue = client
        .post(service.url("/v1/coupon/issue"))
        .json(&serde_json::json!({ "event_id": event, "user_id": "u-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(issue.status(), StatusCode::SERVICE_UNAVAILABLE);

    let log = service.log();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("TLS verification of Redis failed"))
        .collect();
    assert!(!said.is_empty(), "the log says why:\n{log}");
    assert!(
        said.iter().all(|l| l.contains("invalid peer certificate")),
        "with the cause, on the same line:\n{log}"
    );
    assert!(said[0].contains("ERROR"), "said at start, as an error:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_insecure_setting_connects_to_any_certificate_and_warns() {
    let theirs = TestCerts::generate("anyone");
    let redis = tls_redis(&theirs, &[]);
    let service = service_on(&redis, &[("REDIS_TLS_INSECURE", "true".to_owned())]);
    let client = reqwest::Client::new();
    wait_until_ready(&client, &service.url("")).await;
    let log = service.log();
    let warned: Vec<&str> = log.lines().filter(|l| l.contains("REDIS_TLS_INSECURE=true")).collect();
    assert_eq!(warned.len(), 1, "one warning at start:\n{log}");
    assert!(
        warned[0].contains("WARN") && warned[0].contains("NOT verified"),
        "{log}"
    );
}

/// Runs the binary with `env` and nothing else that could change what it prints (no backtrace
/// asked for, the default log level).
async fn run_bare(args: &[&str], env: &[(&str, String)]) -> Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_coupon-issuer"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("finished within 30 s")
        .expect("started")
}

#[tokio::test]
async fn a_missing_or_broken_tls_file_stops_the_start_with_one_line() {
    let certs = TestCerts::generate("files");
    let junk = certs.dir.0.join("junk.pem");
    std::fs::write(&junk, "not PEM at all\n").unwrap();
    let path = |p: &std::path::Path| p.display().to_string();
    type Case<'a> = (&'a [(&'a str, String)], &'a str, &'a str);
    let cases: [Case; 4] = [
        (
            &[("REDIS_TLS_CA_FILE", "/nonexistent/ca.pem".into())],
            "REDIS_TLS_CA_FILE",
            "REDIS_TLS_CA_FILE: /nonexistent/ca.pem: no such file",
        ),
        (
            &[("REDIS_TLS_CA_FILE", path(&junk))],
            "REDIS_TLS_CA_FILE",
            "no PEM certificate in it",
        ),
        (
            &[
                ("REDIS_TLS_CLIENT_CERT", path(&certs.client_cert())),
                ("REDIS_TLS_CLIENT_KEY", path(&junk)),
            ],
            "REDIS_TLS_CLIENT_KEY",
            "no PEM private key in it",
        ),
        (
            &[
                ("REDIS_TLS_CLIENT_CERT", path(&certs.server_key())),
                ("REDIS_TLS_CLIENT_KEY", path(&certs.client_key())),
            ],
            "REDIS_TLS_CLIENT_CERT",
            "no PEM certificate in it",
        ),
    ];
    // Nothing listens on either: the settings are refused before any connection is tried.
    let base = [
        ("REDIS_URL", "rediss://127.0.0.1:1".to_owned()),
        ("DATABASE_URL", "postgres://nobody@127.0.0.1:1/nothing".to_owned()),
    ];
    for (settings, setting, message) in cases {
        let env: Vec<(&str, String)> = base.iter().chain(settings).cloned().collect();
        for command in [&["serve"][..], &["events", "list"], &["reconcile"]] {
            let out = run_bare(command, &env).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command:?} with {settings:?}: {stderr}");
            let naming: Vec<&str> = stderr.lines().filter(|l| l.contains(setting)).collect();
            assert_eq!(naming.len(), 1, "{command:?}: one line names {setting}:\n{stderr}");
            assert!(naming[0].contains(message), "{command:?}: {message:?} in:\n{stderr}");
            assert!(
                !stderr.contains("panicked") && !stderr.to_lowercase().contains("backtrace"),
                "{command:?}: {stderr}"
            );
        }
    }
}
