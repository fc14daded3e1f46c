//! Fault 7, a poison entry: an entry the writer reads but Postgres refuses is tried a few times,
//! then moved to the dead-letter stream, logged and counted, and never holds back the rest.

use std::time::{Duration, Instant};

use coupon_issuer::domain::{CouponId, EventId};
use coupon_issuer::issuing::WRITER_GROUP;
use coupon_issuer::writer::{MAX_ATTEMPTS, Outcome};
use redis::AsyncCommands;
use redis::streams::{StreamPendingReply, StreamRangeReply};
use reqwest::StatusCode;

use crate::helpers::{issue_all, spawn_app_without_writer, today_utc, users};

#[tokio::test]
async fn an_entry_postgres_refuses_is_retried_then_dead_lettered_without_blocking_the_rest() {
    let mut app = spawn_app_without_writer().await;
    let event = app.open_event(100).await;
    let event_id = EventId::parse(&event).unwrap();
    let stream = app.keys.stream(event_id);
    issue_all(&app, &event, &users("before", 5)).await;
    // A well-formed coupon that breaks a rule Postgres enforces: CHECK (seq >= 1).
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut redis = app.issuer.connection();
    let poison_id: String = redis
        .xadd(
            &stream,
            "*",
            &[
                ("coupon_id", CouponId::new().to_string()),
                ("user_id", "poison".into()),
                ("day", today_utc().to_string()),
                ("seq", "0".into()),
                ("issued_ms", now_ms.to_string()),
                ("valid_until_ms", (now_ms + 86_400_000).to_string()),
            ],
        )
        .await
        .unwrap();
    issue_all(&app, &event, &users("after", 5)).await;

    let mut writer = app.writer.take().unwrap();
    let stats = writer.stats();
    let first = writer.process_batch().await.expect("a refusal is not a writer failure");
    assert_eq!(
        first,
        Outcome::Stored {
            entries: 11,
            inserted: 10,
            dead: 0,
            retrying: 1
        },
        "the ten good coupons are stored at once; the refused one waits for another try"
    );
    assert_eq!(app.stored(&event).await.len(), 10);

    // While the poison entry waits, new coupons still flow.
    let more = issue_all(&app, &event, &users("meanwhile", 5)).await;
    assert!(more.iter().all(|(_, s, _)| *s == StatusCode::CREATED));
    let started = Instant::now();
    while stats.dead_lettered.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "never dead-lettered");
        writer.process_batch().await.expect("writer step");
    }
    assert_eq!(app.stored(&event).await.len(), 15, "nothing good was held back");
    assert_eq!(
        stats.refusals.load(std::sync::atomic::Ordering::Relaxed),
        u64::from(MAX_ATTEMPTS),
        "tried a few times, not once and not forever"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the tries are spaced out, so a passing refusal can clear"
    );

    let dead: StreamRangeReply = redis.xrange_all(app.keys.dead_letters(event_id)).await.unwrap();
    assert_eq!(dead.ids.len(), 1);
    let letter = &dead.ids[0];
    assert_eq!(letter.get::<String>("source_id"), Some(poison_id));
    let reason: String = letter.get("reason").unwrap();
    assert!(
        reason.contains("23514"),
        "the reason names the check violation: {reason}"
    );
    assert_eq!(letter.get::<String>("user_id").as_deref(), Some("poison"));
    let pending: StreamPendingReply = redis.xpending(&stream, WRITER_GROUP).await.unwrap();
    assert_eq!(pending.count(), 0, "nothing left pending");
    let left: u64 = redis.xlen(&stream).await.unwrap();
    assert_eq!(left, 0);

    // The service reports it.
    let (_, ready) = app.get_json("/readyz").await;
    assert_eq!(ready["writer"]["dead_lettered"], 1, "{ready}");
    assert_eq!(ready["writer"]["stored"], 15, "{ready}");
}
