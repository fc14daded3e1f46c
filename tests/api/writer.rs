//! The writer: every issued coupon reaches Postgres exactly once, whatever stops in between.

use std::time::Duration;

use coupon_issuer::domain::EventId;
use coupon_issuer::issuing::WRITER_GROUP;
use coupon_issuer::issuing::wire::coupon_from_entry;
use coupon_issuer::store;
use coupon_issuer::writer::{Outcome, Writer};
use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use reqwest::StatusCode;

use crate::helpers::{TestApp, everyone_gets_one, issue_all, spawn_app_with, spawn_app_without_writer, users};
use crate::proxy::{Proxy, database_url_via_port, postgres_addr};

/// Steps the writer until it has nothing left; returns the rows it inserted.
async fn drain(writer: &mut Writer) -> u64 {
    let mut inserted = 0;
    for _ in 0..100 {
        match writer.process_batch().await.expect("writer step") {
            Outcome::Stored { inserted: n, .. } => inserted += n,
            Outcome::Idle => return inserted,
        }
    }
    panic!("the writer never ran dry");
}

async fn stream_len(app: &TestApp, event: &str) -> u64 {
    let mut redis = app.issuer.connection();
    redis
        .xlen(app.keys.stream(EventId::parse(event).unwrap()))
        .await
        .unwrap()
}

#[tokio::test]
async fn coupons_wait_in_the_stream_until_the_writer_runs() {
    let mut app = spawn_app_without_writer().await;
    let event = app.open_event(100).await;
    everyone_gets_one(&app, &event, &users("u", 60)).await;
    assert_eq!(
        app.stored(&event).await.len(),
        0,
        "nothing stored while the writer is stopped"
    );
    assert_eq!(stream_len(&app, &event).await, 60, "the stream holds them");

    let mut writer = app.writer.take().unwrap();
    assert_eq!(drain(&mut writer).await, 60);

    let stored = app.stored(&event).await;
    assert_eq!(
        stored.iter().map(|r| r.2).collect::<Vec<_>>(),
        (1..=60).collect::<Vec<_>>()
    );
    assert_eq!(stream_len(&app, &event).await, 0, "stored entries leave the stream");
    assert_eq!(drain(&mut writer).await, 0, "and are not stored again");
}

/// An instance read a batch, committed it, and died before acknowledging: the entries stay
/// pending, another writer claims them, and storing them again inserts nothing.
#[tokio::test]
async fn a_crash_between_commit_and_ack_stores_nothing_twice() {
    let mut app = spawn_app_with(|s| {
        s.writer_enabled = false;
        s.writer_claim_idle_ms = 0;
    })
    .await;
    let event = app.open_event(100).await;
    everyone_gets_one(&app, &event, &users("c", 40)).await;
    let event_id = EventId::parse(&event).unwrap();
    let stream = app.keys.stream(event_id);

    // The doomed instance: reads 25 entries as consumer "crashed" and commits them.
    let mut redis = app.issuer.connection();
    let opts = StreamReadOptions::default().group(WRITER_GROUP, "crashed").count(25);
    let read: StreamReadReply = redis.xread_options(&[&stream], &[">"], &opts).await.unwrap();
    let coupons: Vec<_> = read.keys[0]
        .ids
        .iter()
        .map(|e| coupon_from_entry(event_id, e).unwrap())
        .collect();
    assert_eq!(store::coupons::insert_batch(&app.db, &coupons).await.unwrap(), 25);

    let mut writer = app.writer.take().unwrap();
    let inserted = drain(&mut writer).await;
    // The survivor may claim before or after reading the rest; either way nothing is doubled.
    assert_eq!(inserted, 15, "only the 15 never stored are inserted");
    assert_eq!(app.stored(&event).await.len(), 40);
    let pending: redis::streams::StreamPendingReply = redis.xpending(&stream, WRITER_GROUP).await.unwrap();
    assert_eq!(pending.count(), 0, "everything acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issuing_goes_on_while_postgres_is_down_and_the_writer_catches_up() {
    let proxy = Proxy::start(postgres_addr(&crate::helpers::test_settings().connections.database.url)).await;
    let app =
        spawn_app_with(|s| s.connections.database.url = database_url_via_port(&s.connections.database.url, proxy.port))
            .await;
    let event = app.open_event(1000).await;
    everyone_gets_one(&app, &event, &users("before", 20)).await;
    assert_eq!(app.wait_for_stored(&event, 20, Duration::from_secs(10)).await.len(), 20);

    proxy.cut();
    // Issuing does not need Postgres: every user ends up with a coupon while it is cut off (a
    // 503 on the way is Redis later than its timeout on a loaded machine, asked again).
    everyone_gets_one(&app, &event, &users("during", 100)).await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let report: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        (
            report["checks"]["postgres"]["ok"].as_bool(),
            report["checks"]["redis"]["ok"].as_bool()
        ),
        (Some(false), Some(true))
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    proxy.restore();
    let stored = app.wait_for_stored(&event, 120, Duration::from_secs(30)).await;
    assert_eq!(stored.len(), 120, "every coupon issued during the outage is stored");
    let mut seqs: Vec<i32> = stored.iter().map(|r| r.2).collect();
    seqs.dedup();
    assert_eq!(seqs, (1..=120).collect::<Vec<_>>(), "exactly once each");
    assert_eq!(
        app.client.get(app.url("/readyz")).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_unreadable_entry_goes_to_the_dead_letters_without_blocking_the_rest() {
    let mut app = spawn_app_without_writer().await;
    let event = app.open_event(100).await;
    let event_id = EventId::parse(&event).unwrap();
    issue_all(&app, &event, &users("ok", 5)).await;
    let mut redis = app.issuer.connection();
    let _: String = redis
        .xadd(app.keys.stream(event_id), "*", &[("coupon_id", "not-a-uuid")])
        .await
        .unwrap();
    issue_all(&app, &event, &users("ok2", 5)).await;

    let mut writer = app.writer.take().unwrap();
    assert_eq!(drain(&mut writer).await, 10);
    assert_eq!(app.stored(&event).await.len(), 10);
    let dead: u64 = redis.xlen(app.keys.dead_letters(event_id)).await.unwrap();
    assert_eq!(dead, 1);
    assert_eq!(stream_len(&app, &event).await, 0);
}
