//! An issued coupon.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::ids::{CouponId, EventId, UserId};

/// A coupon as the issue script created it and as Postgres stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({
    "coupon_id": "019a2b3c-4d5e-7f60-8a9b-0c1d2e3f4a5b",
    "event_id": "0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10",
    "user_id": "alice",
    "day": "2026-05-01",
    "shard": 0,
    "seq": 17,
    "issued_at": "2026-05-01T04:00:00.123Z",
    "valid_from": "2026-05-01T04:00:00.123Z",
    "valid_until": "2026-06-04T15:00:00Z",
    "redeemed_at": null
}))]
pub struct Coupon {
    pub coupon_id: CouponId,
    pub event_id: EventId,
    pub user_id: UserId,
    /// The event day the coupon belongs to (the local date its window opened on).
    #[serde(serialize_with = "text::day")]
    pub day: NaiveDate,
    /// The bucket that issued it: always 0 for an unsharded event (see `shards` on the event).
    pub shard: u16,
    /// 1-based order of arrival on that day, within its bucket.
    pub seq: u32,
    /// When the Redis clock issued it.
    #[serde(serialize_with = "text::instant")]
    pub issued_at: DateTime<Utc>,
    /// A coupon is usable from the moment it is issued.
    #[serde(serialize_with = "text::instant")]
    pub valid_from: DateTime<Utc>,
    /// Usable until this instant (exclusive).
    #[serde(serialize_with = "text::instant")]
    pub valid_until: DateTime<Utc>,
    /// Null until the coupon is used.
    #[serde(serialize_with = "text::maybe_instant")]
    pub redeemed_at: Option<DateTime<Utc>>,
}

/// The coupon's dates and instants as chrono's serde writes them, byte for byte, but formatted
/// into one string first: chrono hands serde_json its `Display`, whose many small writes each
/// pass through JSON string escaping, and that was a tenth of the issue path's instructions
/// (docs/performance.md).
mod text {
    use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
    use serde::Serializer;

    pub fn day<S: Serializer>(day: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&day.to_string())
    }

    /// What chrono's `Serialize for DateTime` writes: RFC 3339, `Z`, and 0, 3, 6 or 9 digits
    /// of fraction, as many as the instant needs.
    pub fn instant<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn maybe_instant<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => instant(at, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// The hand-formatted fields must be exactly what chrono's serde would write.
    #[test]
    fn serializes_as_chrono_does() {
        let day = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        for nanos in [0, 123_000_000, 123_456_000, 123_456_789, 1_000] {
            let at = Utc.with_ymd_and_hms(2026, 5, 1, 4, 0, 0).unwrap() + chrono::Duration::nanoseconds(nanos);
            let coupon = Coupon {
                coupon_id: CouponId::new(),
                event_id: EventId::new(),
                user_id: UserId::parse("alice").unwrap(),
                day,
                shard: 3,
                seq: 17,
                issued_at: at,
                valid_from: at,
                valid_until: at + chrono::Duration::days(30),
                redeemed_at: (nanos % 2 == 0).then_some(at),
            };
            let ours = serde_json::to_value(&coupon).unwrap();
            let chrono_s = |t: DateTime<Utc>| serde_json::to_value(t).unwrap();
            assert_eq!(ours["day"], serde_json::to_value(day).unwrap());
            assert_eq!(ours["issued_at"], chrono_s(at));
            assert_eq!(ours["valid_from"], chrono_s(at));
            assert_eq!(ours["valid_until"], chrono_s(at + chrono::Duration::days(30)));
            assert_eq!(ours["redeemed_at"], serde_json::to_value(coupon.redeemed_at).unwrap());
        }
    }
}
