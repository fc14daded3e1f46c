//! A stream entry, as the issue script writes it, turned back into a coupon.

use redis::streams::StreamId;

use super::reply::{Entry, value_text};
use crate::domain::{Bucket, Coupon, CouponId, UserId, parse_day};
use crate::issuing::millis;

/// A stream entry whose fields can be read as text: the writer's own [`Entry`], or redis-rs's
/// `StreamId` (from `XRANGE`, for the restore and the reconcile snapshot).
pub trait EntryFields {
    /// A field's text (a bulk or simple string, valid UTF-8), borrowed.
    fn text(&self, name: &str) -> Option<&str>;
}

impl EntryFields for Entry {
    fn text(&self, name: &str) -> Option<&str> {
        Entry::text(self, name)
    }
}

impl EntryFields for StreamId {
    fn text(&self, name: &str) -> Option<&str> {
        value_text(self.map.get(name)?)
    }
}

/// Reads the fields `lua/issue.lua` appends (step 6) to `bucket`'s stream: the bucket is where
/// the entry was read, not a field of it. `Err` names what is wrong, for the dead-letter stream.
pub fn coupon_from_entry(bucket: impl Into<Bucket>, entry: &impl EntryFields) -> Result<Coupon, String> {
    let bucket = bucket.into();
    // Borrowed from the reply, not converted into a `String` per field: this runs for every
    // stored coupon.
    let field = |name: &str| entry.text(name).ok_or_else(|| format!("missing field {name}"));
    let bad = |name: &str| format!("bad field {name}");
    let issued_at = millis(field("issued_ms")?).ok_or_else(|| bad("issued_ms"))?;
    Ok(Coupon {
        coupon_id: CouponId::parse(field("coupon_id")?).map_err(|_| bad("coupon_id"))?,
        event_id: bucket.event,
        user_id: UserId::parse(field("user_id")?).map_err(|_| bad("user_id"))?,
        day: parse_day(field("day")?).ok_or_else(|| bad("day"))?,
        shard: bucket.shard,
        seq: field("seq")?.parse().map_err(|_| bad("seq"))?,
        issued_at,
        valid_from: issued_at,
        valid_until: millis(field("valid_until_ms")?).ok_or_else(|| bad("valid_until_ms"))?,
        redeemed_at: None,
    })
}

#[cfg(test)]
mod tests {
    use redis::Value;

    use super::*;
    use crate::domain::EventId;

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
}
