//! `coupon-issuer reconcile` on states broken on purpose: what it finds, what `--repair` does,
//! and what it must leave alone.

use std::process::Command;
use std::time::Duration;

use coupon_issuer::config::Settings;
use coupon_issuer::domain::EventId;
use coupon_issuer::issuing::{WRITER_GROUP, ensure_writer_group};
use coupon_issuer::reconcile::{self, ReconcileArgs, Report};
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, issue_all, spawn_app_with, today_utc, users};

/// An app, and reconcile arguments pointing at its database and key prefix.
pub async fn app_and_args(writer: bool) -> (TestApp, ReconcileArgs) {
    let mut captured: Option<Settings> = None;
    let app = spawn_app_with(|s| {
        s.writer_enabled = writer;
        captured = Some(s.clone());
    })
    .await;
    let args = args_for(captured.expect("settings seen"));
    (app, args)
}

/// Reconcile arguments for what an app was started with: its Redis (and TLS settings),
/// database and key prefix.
pub fn args_for(s: Settings) -> ReconcileArgs {
    ReconcileArgs {
        event: None,
        day: None,
        repair: false,
        stuck_after_secs: 60,
        connections: s.connections,
        day_key_ttl_hours: s.day_key_ttl_hours,
    }
}

fn kinds(report: &Report) -> Vec<&'static str> {
    let mut k: Vec<_> = report
        .days
        .iter()
        .flat_map(|d| d.remaining.iter().map(|r| r.kind()))
        .collect();
    k.sort();
    k
}

/// Runs the real binary, as an operator would, and returns (exit code, stdout).
fn run_binary(args: &ReconcileArgs, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_coupon-issuer"))
        .arg("reconcile")
        .args(extra)
        .env("REDIS_URL", &args.connections.redis_url)
        .env("DATABASE_URL", &args.connections.database.url)
        .env("REDIS_KEY_PREFIX", &args.connections.redis_key_prefix)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn sell(app: &TestApp, event: &str, n: usize) -> Vec<Value> {
    let sold = issue_all(app, event, &users("u", n)).await;
    assert!(sold.iter().all(|(_, s, _)| *s == StatusCode::CREATED), "{sold:?}");
    sold.into_iter().map(|(_, _, body)| body).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_drift_and_repairs_it_without_passing_the_limit() {
    let (app, mut args) = app_and_args(true).await;
    let event = app.open_event(10).await;
    let sold = sell(&app, &event, 6).await;
    assert_eq!(app.wait_for_stored(&event, 6, Duration::from_secs(10)).await.len(), 6);
    let (day, keys, id) = (today_utc(), &app.keys, EventId::parse(&event).unwrap());
    let mut redis = app.issuer.connection();

    // Break it: u-0's Redis record gone, u-1's stored row gone (a lost coupon), the count reset low.
    let _: () = redis.hdel(keys.day_users(id, day), "u-0").await.unwrap();
    sqlx::query("DELETE FROM coupons WHERE user_id = 'u-1'")
        .execute(&app.db)
        .await
        .unwrap();
    let _: () = redis.set(keys.day_count(id, day), 3).await.unwrap();

    args.event = Some(id);
    let found = reconcile::run(&args).await.unwrap();
    assert_eq!(
        kinds(&found),
        ["count_mismatch", "missing_in_postgres", "missing_in_redis"]
    );
    assert_eq!(found.exit_code(), 3);

    // The binary, as an operator runs it: a table, exit 3; then --repair, exit 0.
    let (code, table) = run_binary(&args, &["--event", &event]);
    assert_eq!(code, 3, "{table}");
    for kind in [
        "count_mismatch",
        "missing_in_postgres",
        "missing_in_redis",
        "user u-0",
        "user u-1",
    ] {
        assert!(table.contains(kind), "{kind} in:\n{table}");
    }
    let (code, table) = run_binary(&args, &["--event", &event, "--repair"]);
    assert_eq!(code, 0, "{table}");
    assert!(table.contains("count raised from 3 to 6"), "{table}");
    assert!(reconcile::run(&args).await.unwrap().days[0].remaining.is_empty());

    // Each repair took: u-0 is known again (same coupon), u-1's coupon is stored as it was issued.
    let again = app.issue(&event, "u-0").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let held: Value = again.json().await.unwrap();
    assert_eq!(held["coupon"]["coupon_id"], sold[0]["coupon_id"]);
    let stored: Vec<(String, String, i32)> = app.stored(&event).await;
    let u1 = (
        sold[1]["coupon_id"].as_str().unwrap().to_owned(),
        "u-1".to_owned(),
        sold[1]["seq"].as_i64().unwrap() as i32,
    );
    assert!(stored.contains(&u1), "{stored:?}");
    // The count went on from 6: four more, numbered 7..10, then sold out.
    let more = issue_all(&app, &event, &users("late", 8)).await;
    let mut seqs: Vec<u64> = more.iter().filter_map(|(_, _, b)| b["seq"].as_u64()).collect();
    seqs.sort();
    assert_eq!(seqs, [7, 8, 9, 10]);
    assert_eq!(more.iter().filter(|(_, s, _)| *s == StatusCode::GONE).count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_is_reported_and_never_filled() {
    let (app, mut args) = app_and_args(true).await;
    let event = app.open_event(10).await;
    let sold = sell(&app, &event, 5).await;
    let gap = sold.iter().find(|c| c["user_id"] == "u-2").unwrap()["seq"].clone();
    assert_eq!(app.wait_for_stored(&event, 5, Duration::from_secs(10)).await.len(), 5);
    let (day, id) = (today_utc(), EventId::parse(&event).unwrap());
    let mut redis = app.issuer.connection();
    // u-2 vanished from both stores: its number was handed out and nobody holds it.
    let _: () = redis.hdel(app.keys.day_users(id, day), "u-2").await.unwrap();
    sqlx::query("DELETE FROM coupons WHERE user_id = 'u-2'")
        .execute(&app.db)
        .await
        .unwrap();

    args.event = Some(id);
    args.day = Some(day);
    args.repair = true;
    let report = reconcile::run(&args).await.unwrap();
    assert_eq!(kinds(&report), ["count_mismatch", "seq_gap"], "left as found");
    assert_eq!(report.exit_code(), 3);
    let count: u64 = redis.get(app.keys.day_count(id, day)).await.unwrap();
    assert_eq!(count, 5, "never lowered: the lost number is not handed out again");
    assert!(
        report.render(true).contains(&format!("seq {gap} ")),
        "{}",
        report.render(true)
    );

    // A day outside the event (or long expired) is not compared: Postgres is its whole record.
    args.day = Some(day - chrono::Duration::days(30));
    let report = reconcile::run(&args).await.unwrap();
    assert!(report.days[0].note.is_some());
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_entries_are_reported_then_stored() {
    let (app, mut args) = app_and_args(false).await;
    let event = app.open_event(10).await;
    sell(&app, &event, 4).await;
    let id = EventId::parse(&event).unwrap();
    let stream = app.keys.stream(id);
    let mut redis = app.issuer.connection();
    // A writer read them and died before acknowledging.
    ensure_writer_group(&mut redis, &stream).await.unwrap();
    let read: redis::streams::StreamReadReply = redis
        .xread_options(
            &[&stream],
            &[">"],
            &redis::streams::StreamReadOptions::default().group(WRITER_GROUP, "crashed"),
        )
        .await
        .unwrap();
    assert_eq!(read.keys[0].ids.len(), 4);

    args.event = Some(id);
    args.stuck_after_secs = 0;
    let report = reconcile::run(&args).await.unwrap();
    assert_eq!(kinds(&report), ["stuck_entry"; 4]);
    assert!(report.render(false).contains("pending at crashed"));

    args.repair = true;
    let report = reconcile::run(&args).await.unwrap();
    assert_eq!(report.exit_code(), 0, "{}", report.render(true));
    assert_eq!(app.stored(&event).await.len(), 4);
    let left: usize = redis.xlen(&stream).await.unwrap();
    assert_eq!(left, 0);
}

/// While the service issues and the writer stores, a healthy day shows no differences: the
/// snapshot order leaves nothing in transit unseen and nothing issued later half-seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_false_alarms_while_the_sale_runs() {
    let (app, mut args) = app_and_args(true).await;
    let event = app.open_event(10_000).await;
    args.event = Some(EventId::parse(&event).unwrap());
    args.day = Some(today_utc());
    let selling = async {
        for wave in 0..10 {
            issue_all(&app, &event, &users(&format!("w{wave}"), 100)).await;
        }
    };
    let checking = async {
        let mut reports = Vec::new();
        for _ in 0..10 {
            reports.push(reconcile::run(&args).await.unwrap());
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        reports
    };
    let ((), reports) = tokio::join!(selling, checking);
    for report in &reports {
        assert_eq!(report.exit_code(), 0, "{}", report.render(false));
    }
    let mid_sale = |r: &Report| r.days[0].before.redis_count.is_some_and(|n| n > 0 && n < 1000);
    assert!(reports.iter().any(mid_sale), "some checks ran mid-sale");
    assert_eq!(app.count(&event).await["issued"], 1000);
}
