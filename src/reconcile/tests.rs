//! The comparison on hand-made snapshots: each kind of drift, and a clean day.

use chrono::{DateTime, NaiveDate};

use super::diff::{Difference, Found, compare};
use super::snapshot::{DaySnapshot, StreamEntry};
use crate::domain::{Coupon, CouponId, EventId, UserId};
use crate::issuing::wire::UserRecord;

const T: i64 = 1_777_600_800_000;

fn coupon(user: &str, seq: u32) -> Coupon {
    let at = DateTime::from_timestamp_millis(T - 1000 + i64::from(seq)).unwrap();
    Coupon {
        coupon_id: CouponId::new(),
        event_id: EventId::new(),
        user_id: UserId::parse(user).unwrap(),
        day: NaiveDate::from_ymd_opt(2026, 5, 1).unwrap(),
        shard: 0,
        seq,
        issued_at: at,
        valid_from: at,
        valid_until: at,
        redeemed_at: None,
    }
}

/// A day with `n` coupons, all in Redis and Postgres.
fn clean(n: u32) -> DaySnapshot {
    let stored: Vec<Coupon> = (1..=n).map(|i| coupon(&format!("u{i}"), i)).collect();
    DaySnapshot {
        day: NaiveDate::from_ymd_opt(2026, 5, 1).unwrap(),
        shard: 0,
        daily_limit: 10,
        taken_ms: T,
        redis_count: Some(u64::from(n)),
        redis_users: stored
            .iter()
            .map(|c| (c.user_id.as_str().to_owned(), UserRecord::of(c).encode()))
            .collect(),
        stream: Vec::new(),
        postgres: stored,
    }
}

fn kinds(found: &[Difference]) -> Vec<&'static str> {
    let mut k: Vec<_> = found.iter().map(Difference::kind).collect();
    k.sort();
    k
}

#[test]
fn a_clean_day_has_no_differences() {
    assert_eq!(compare(&clean(5), 60_000), vec![]);
    let empty = DaySnapshot {
        redis_count: None,
        ..clean(0)
    };
    assert_eq!(compare(&empty, 60_000), vec![]);
}

#[test]
fn coupons_on_their_way_are_not_differences() {
    let mut snap = clean(5);
    let moving = snap.postgres.pop().unwrap();
    snap.stream.push(StreamEntry {
        id: "1-0".into(),
        coupon: Ok(moving),
        pending: None,
        age_ms: 10,
    });
    assert_eq!(compare(&snap, 60_000), vec![]);
}

#[test]
fn coupons_issued_after_the_snapshot_are_left_out() {
    let mut snap = clean(5);
    let mut late = coupon("late", 6);
    late.issued_at = DateTime::from_timestamp_millis(T + 5).unwrap();
    snap.postgres.push(late);
    assert_eq!(compare(&snap, 60_000), vec![]);
}

#[test]
fn a_user_missing_from_redis() {
    let mut snap = clean(5);
    snap.redis_users.remove("u3");
    let found = compare(&snap, 60_000);
    // The count still covers u3: only the record is missing.
    assert_eq!(kinds(&found), ["missing_in_redis"]);
    assert!(found.iter().any(|d| matches!(
        d,
        Difference::MissingInRedis {
            found: Found::Postgres,
            ..
        }
    )));
}

#[test]
fn a_lost_coupon() {
    let mut snap = clean(5);
    snap.postgres.retain(|c| c.user_id.as_str() != "u2");
    assert_eq!(kinds(&compare(&snap, 60_000)), ["missing_in_postgres"]);
}

#[test]
fn a_count_behind_and_a_gap() {
    let mut snap = clean(5);
    snap.redis_count = Some(3);
    assert_eq!(kinds(&compare(&snap, 60_000)), ["count_mismatch"]);

    let mut snap = clean(5);
    snap.redis_users.remove("u2");
    snap.postgres.retain(|c| c.user_id.as_str() != "u2");
    let found = compare(&snap, 60_000);
    assert_eq!(kinds(&found), ["count_mismatch", "seq_gap"]);
    assert!(found.contains(&Difference::SeqGap { from: 2, to: 2 }));
}

#[test]
fn numbers_counted_above_every_holder_are_a_gap() {
    let mut snap = clean(3);
    snap.redis_count = Some(6);
    let found = compare(&snap, 60_000);
    assert!(found.contains(&Difference::SeqGap { from: 4, to: 6 }), "{found:?}");
}

#[test]
fn a_corrupt_count_is_over_the_limit_and_does_not_loop() {
    let mut snap = clean(3);
    snap.redis_count = Some(u64::MAX / 2);
    let found = compare(&snap, 60_000);
    assert_eq!(kinds(&found), ["count_mismatch", "over_limit", "seq_gap"]);
}

#[test]
fn records_that_differ_or_cannot_be_read() {
    let mut snap = clean(3);
    snap.redis_users
        .insert("u1".into(), format!("1|{}|{T}", CouponId::new()));
    snap.redis_users.insert("u2".into(), "garbage".into());
    assert_eq!(kinds(&compare(&snap, 60_000)), ["bad_record", "record_differs"]);
}

#[test]
fn one_number_held_twice() {
    let mut snap = clean(3);
    let twin = coupon("twin", 2);
    snap.redis_users.insert("twin".into(), UserRecord::of(&twin).encode());
    snap.postgres.push(twin);
    snap.redis_count = Some(4);
    let found = compare(&snap, 60_000);
    assert!(kinds(&found).contains(&"duplicate_seq"), "{found:?}");
}

#[test]
fn entries_waiting_too_long_are_stuck() {
    let mut snap = clean(3);
    let c = snap.postgres.pop().unwrap();
    snap.stream.push(StreamEntry {
        id: "1-0".into(),
        coupon: Ok(c.clone()),
        pending: Some(("writer-dead".into(), 120_000)),
        age_ms: 130_000,
    });
    snap.stream.push(StreamEntry {
        id: "2-0".into(),
        coupon: Ok(c),
        pending: None,
        age_ms: 90_000,
    });
    let found = compare(&snap, 60_000);
    assert_eq!(kinds(&found), ["stuck_entry", "stuck_entry"]);
    assert!(compare(&snap, 200_000).is_empty());
}

#[test]
fn records_read_as_the_script_writes_them() {
    let id = CouponId::new();
    assert_eq!(
        UserRecord::parse(&format!("7|{id}|{T}")),
        Some(UserRecord {
            seq: 7,
            coupon_id: id,
            issued_ms: T
        })
    );
    for bad in [
        "",
        "7",
        "7|x|1",
        &format!("0|{id}|{T}"),
        &format!("7|{id}|{T}|x"),
        &format!("-1|{id}|{T}"),
    ] {
        assert_eq!(UserRecord::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn the_millisecond_of_the_snapshot_cuts_both_ways() {
    // Issued in the same ms as the Redis read, before it: Redis knows it, and so does Postgres.
    let mut snap = clean(2);
    let mut edge = coupon("edge", 3);
    edge.issued_at = DateTime::from_timestamp_millis(T).unwrap();
    snap.redis_users.insert("edge".into(), UserRecord::of(&edge).encode());
    snap.redis_count = Some(3);
    snap.postgres.push(edge);
    assert_eq!(compare(&snap, 60_000), vec![]);

    // Issued in that ms after the read: Redis cannot know it yet.
    let mut snap = clean(2);
    let mut late = coupon("late", 3);
    late.issued_at = DateTime::from_timestamp_millis(T).unwrap();
    snap.stream.push(StreamEntry {
        id: format!("{T}-0"),
        coupon: Ok(late),
        pending: None,
        age_ms: 0,
    });
    assert_eq!(compare(&snap, 60_000), vec![]);
}
