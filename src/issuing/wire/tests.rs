//! The formats read back as the scripts write them, and refused otherwise.

use std::time::Duration;

use redis::Value;
use redis::streams::StreamId;

use super::*;
use crate::domain::{Bucket, CouponId, EventId, UserId};
fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn reads_every_reply_shape() {
    let event = Bucket::from(EventId::new());
    let user = UserId::parse("alice").unwrap();
    let id = CouponId::new().to_string();
    let issued = IssueOutcome::from_reply(
        event,
        &user,
        strings(&["issued", "2026-05-01", "7", &id, "1777600800123", "1780588800000"]),
    )
    .unwrap();
    let IssueOutcome::Issued(c) = issued else {
        panic!("{issued:?}")
    };
    assert_eq!(
        (c.seq, c.coupon_id.to_string(), c.day.to_string()),
        (7, id, "2026-05-01".into())
    );
    assert_eq!(c.issued_at.timestamp_millis(), 1777600800123);
    assert_eq!(c.valid_from, c.issued_at);
    for (reply, want) in [
        (strings(&["not_open"]), IssueOutcome::NotOpen),
        (strings(&["closed"]), IssueOutcome::Closed),
        (strings(&["missing"]), IssueOutcome::Missing),
        (
            strings(&["sold_out", "2026-05-01", "1000", "4000", "1"]),
            IssueOutcome::SoldOut {
                day: "2026-05-01".parse().unwrap(),
                rememberable_for: Some(Duration::from_secs(3)),
            },
        ),
        (
            strings(&["sold_out", "2026-05-01", "1000", "4000", "0"]),
            IssueOutcome::SoldOut {
                day: "2026-05-01".parse().unwrap(),
                rememberable_for: None,
            },
        ),
    ] {
        assert_eq!(IssueOutcome::from_reply(event, &user, reply).unwrap(), want);
    }
}

#[test]
fn reads_the_other_day_answer() {
    assert_eq!(
        other_day(&strings(&["other_day", "2026-05-01"])),
        "2026-05-01".parse().ok()
    );
    for reply in [
        strings(&["other_day"]),
        strings(&["other_day", "yesterday"]),
        strings(&["not_open"]),
    ] {
        assert_eq!(other_day(&reply), None, "{reply:?}");
    }
}

#[test]
fn refuses_anything_else() {
    let event = Bucket::from(EventId::new());
    let user = UserId::parse("alice").unwrap();
    for reply in [
        vec![],
        strings(&["issued"]),
        strings(&["sold_out", "yesterday", "1000", "4000", "1"]),
        strings(&["sold_out", "2026-05-01"]),
        strings(&["sold_out", "2026-05-01", "4000", "1000", "1"]),
        strings(&["ok"]),
    ] {
        assert!(IssueOutcome::from_reply(event, &user, reply).is_err());
    }
}

fn entry(fields: &[(&str, &str)]) -> StreamId {
    StreamId {
        id: "1-0".into(),
        map: fields
            .iter()
            .map(|(k, v)| (k.to_string(), Value::BulkString(v.as_bytes().to_vec())))
            .collect(),
        ..Default::default()
    }
}

#[test]
fn reads_what_the_script_writes() {
    let id = CouponId::new().to_string();
    let e = entry(&[
        ("coupon_id", &id),
        ("user_id", "alice"),
        ("day", "2026-05-01"),
        ("seq", "3"),
        ("issued_ms", "1777600800123"),
        ("valid_until_ms", "1780588800000"),
    ]);
    let c = coupon_from_entry(EventId::new(), &e).unwrap();
    assert_eq!((c.coupon_id.to_string(), c.seq, c.user_id.as_str()), (id, 3, "alice"));
    let bucket = Bucket {
        event: EventId::new(),
        shard: 5,
    };
    assert_eq!(coupon_from_entry(bucket, &e).unwrap().shard, 5);
}

#[test]
fn names_what_is_wrong() {
    assert_eq!(
        coupon_from_entry(EventId::new(), &entry(&[])).unwrap_err(),
        "missing field issued_ms"
    );
    let e = entry(&[("issued_ms", "soon")]);
    assert_eq!(
        coupon_from_entry(EventId::new(), &e).unwrap_err(),
        "bad field issued_ms"
    );
}

#[test]
fn a_user_record_reads_back_as_written() {
    let record = UserRecord {
        seq: 7,
        coupon_id: CouponId::new(),
        issued_ms: 1777600800123,
    };
    let text = record.encode();
    assert_eq!(text, format!("7|{}|1777600800123", record.coupon_id));
    assert_eq!(UserRecord::parse(&text), Some(record));
    for bad in ["", "7", "0|x|1", "7|not-a-uuid|1", "7|x|1|extra"] {
        assert_eq!(UserRecord::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn a_window_member_is_what_the_script_matches() {
    let day = "2026-05-01".parse().unwrap();
    assert_eq!(window_member(day, 10, 20, 0), "2026-05-01|10|20|0");
}

#[test]
fn an_entry_id_starts_with_its_milliseconds() {
    assert_eq!(entry_ms("1777600800123-4"), Some(1777600800123));
    assert_eq!(entry_ms("garbage"), None);
}
