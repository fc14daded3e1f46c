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

impl Coupon {
    /// The coupon's JSON: exactly the bytes `serde_json::to_vec(self)` writes (tested below
    /// against it), written straight into one buffer. The issue answer is built on every request,
    /// and serializing through serde cost about 7,800 instructions of it (docs/performance.md):
    /// every string (the ids, the dates) went through JSON escaping and the instants through
    /// chrono's formatter and an allocation each. No field here can need escaping: the ids are
    /// UUIDs, a `UserId` holds only letters, digits and `._:@-`, the dates are digits.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(320);
        let mut uuid = uuid::Uuid::encode_buffer();
        out.extend_from_slice(b"{\"coupon_id\":\"");
        out.extend_from_slice(self.coupon_id.as_uuid().hyphenated().encode_lower(&mut uuid).as_bytes());
        out.extend_from_slice(b"\",\"event_id\":\"");
        out.extend_from_slice(self.event_id.as_uuid().hyphenated().encode_lower(&mut uuid).as_bytes());
        out.extend_from_slice(b"\",\"user_id\":\"");
        // Nothing to escape: a user id is letters, digits and `._:@-` (see `UserId`).
        out.extend_from_slice(self.user_id.as_str().as_bytes());
        out.extend_from_slice(b"\",\"day\":\"");
        text::write_day(&mut out, self.day);
        out.extend_from_slice(b"\",\"shard\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.shard).as_bytes());
        out.extend_from_slice(b",\"seq\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.seq).as_bytes());
        out.extend_from_slice(b",\"issued_at\":");
        text::write_instant(&mut out, &self.issued_at);
        out.extend_from_slice(b",\"valid_from\":");
        text::write_instant(&mut out, &self.valid_from);
        out.extend_from_slice(b",\"valid_until\":");
        text::write_instant(&mut out, &self.valid_until);
        out.extend_from_slice(b",\"redeemed_at\":");
        match &self.redeemed_at {
            Some(at) => text::write_instant(&mut out, at),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
        out
    }
}

/// The coupon's dates and instants as chrono's serde writes them, byte for byte, but formatted
/// into one string first: chrono hands serde_json its `Display`, whose many small writes each
/// pass through JSON string escaping, and that was a tenth of the issue path's instructions
/// (docs/performance.md).
mod text {
    use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Timelike, Utc};
    use serde::Serializer;

    use crate::domain::day::{day_text, in_four_digits, put_digits};

    pub fn day<S: Serializer>(day: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&day.to_string())
    }

    /// What chrono's `Serialize for DateTime` writes: RFC 3339, `Z`, and 0, 3, 6 or 9 digits
    /// of fraction, as many as the instant needs.
    pub fn instant<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    /// `day` as chrono's `Display` writes it (`2026-05-01`); a year chrono writes otherwise
    /// (outside 0 to 9999) is left to chrono.
    pub fn write_day(out: &mut Vec<u8>, day: NaiveDate) {
        if in_four_digits(day.year()) {
            out.extend_from_slice(&day_text(day));
        } else {
            out.extend_from_slice(day.to_string().as_bytes());
        }
    }

    /// `at` as a JSON string, as `instant` writes it (and so as chrono does): the date, `T`,
    /// the time, the fraction (`AutoSi`: none, 3, 6 or 9 digits), `Z`. A leap second, or a
    /// year outside 0..=9999, is left to chrono.
    pub fn write_instant(out: &mut Vec<u8>, at: &DateTime<Utc>) {
        let time = at.time();
        let nanos = time.nanosecond();
        if nanos >= 1_000_000_000 || !in_four_digits(at.year()) {
            out.push(b'"');
            out.extend_from_slice(at.to_rfc3339_opts(SecondsFormat::AutoSi, true).as_bytes());
            out.push(b'"');
            return;
        }
        out.push(b'"');
        write_day(out, at.date_naive());
        out.push(b'T');
        digits(out, time.hour(), 2);
        out.push(b':');
        digits(out, time.minute(), 2);
        out.push(b':');
        digits(out, time.second(), 2);
        if nanos != 0 {
            out.push(b'.');
            if nanos.is_multiple_of(1_000_000) {
                digits(out, nanos / 1_000_000, 3);
            } else if nanos.is_multiple_of(1_000) {
                digits(out, nanos / 1_000, 6);
            } else {
                digits(out, nanos, 9);
            }
        }
        out.extend_from_slice(b"Z\"");
    }

    /// `n` in exactly `width` decimal digits, zero-padded (`n` has at most `width` digits).
    fn digits(out: &mut Vec<u8>, n: u32, width: usize) {
        let start = out.len();
        out.resize(start + width, b'0');
        put_digits(&mut out[start..], n);
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

    /// `to_json` writes exactly serde_json's bytes, for any instant, day, numbers and user id.
    mod written_by_hand {
        use proptest::prelude::*;

        use super::*;

        /// Instants from 1 BC to past 9999 (chrono writes those years differently), every
        /// precision, and leap seconds.
        fn instant() -> impl Strategy<Value = DateTime<Utc>> {
            let secs = -62_200_000_000i64..260_000_000_000;
            let nanos = prop_oneof![
                Just(0u32),
                (0u32..1000).prop_map(|ms| ms * 1_000_000),
                (0u32..1_000_000).prop_map(|us| us * 1_000),
                0u32..1_000_000_000,
                1_000_000_000u32..2_000_000_000,
            ];
            (secs, nanos).prop_filter_map("a valid instant", |(secs, nanos)| DateTime::from_timestamp(secs, nanos))
        }

        proptest! {
            #[test]
            fn as_serde_writes_it(
                user in "[A-Za-z0-9._:@-]{1,64}",
                at in instant(),
                until in instant(),
                redeemed in proptest::option::of(instant()),
                shard: u16,
                seq: u32,
            ) {
                let coupon = Coupon {
                    coupon_id: CouponId::new(),
                    event_id: EventId::new(),
                    user_id: UserId::parse(&user).unwrap(),
                    day: at.date_naive(),
                    shard,
                    seq,
                    issued_at: at,
                    valid_from: at,
                    valid_until: until,
                    redeemed_at: redeemed,
                };
                let serde = serde_json::to_vec(&coupon).unwrap();
                prop_assert_eq!(String::from_utf8(coupon.to_json()).unwrap(), String::from_utf8(serde).unwrap());
            }
        }
    }
}
