//! The issue script (`lua/issue.lua`) and what its replies mean.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{Bucket, Coupon, CouponId, UserId, parse_day};

/// What the script decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueOutcome {
    Issued(Coupon),
    /// The user already holds this coupon today.
    AlreadyIssued(Coupon),
    SoldOut {
        day: NaiveDate,
        /// How long, by the Redis clock, until the day's window closes, when the script allows
        /// the answer to be remembered (`None` while a limit raise is fenced).
        rememberable_for: Option<Duration>,
    },
    NotOpen,
    Closed,
    /// Redis holds no settings for the event: unknown, or Redis lost its state.
    Missing,
}

/// The script answered something it never answers: a bug or a foreign script under our name.
#[derive(Debug, thiserror::Error)]
#[error("unexpected reply from the issue script: {0:?}")]
pub struct BadReply(pub Vec<String>);

impl IssueOutcome {
    /// The event day the script answered for, when it named one.
    pub fn day(&self) -> Option<NaiveDate> {
        match self {
            Self::Issued(c) | Self::AlreadyIssued(c) => Some(c.day),
            Self::SoldOut { day, .. } => Some(*day),
            Self::NotOpen | Self::Closed | Self::Missing => None,
        }
    }

    /// Reads the script's reply for `bucket` (see the `Returns` header of `lua/issue.lua`).
    pub fn from_reply(bucket: impl Into<Bucket>, user_id: &UserId, reply: Vec<String>) -> Result<Self, BadReply> {
        let bucket = bucket.into();
        let parsed = match reply.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["issued", rest @ ..] => coupon(bucket, user_id, rest).map(IssueOutcome::Issued),
            ["already_issued", rest @ ..] => coupon(bucket, user_id, rest).map(IssueOutcome::AlreadyIssued),
            ["sold_out", day, now_ms, close_ms, rememberable] => sold_out(day, now_ms, close_ms, rememberable),
            ["not_open"] => Some(IssueOutcome::NotOpen),
            ["closed"] => Some(IssueOutcome::Closed),
            ["missing"] => Some(IssueOutcome::Missing),
            _ => None,
        };
        parsed.ok_or(BadReply(reply))
    }
}

/// The day the script decided, when it answered `other_day`: the keys it was given were of
/// another day, and it changed nothing.
pub(super) fn other_day(reply: &[String]) -> Option<NaiveDate> {
    match reply {
        [answer, day] if answer == "other_day" => parse_day(day),
        _ => None,
    }
}

fn sold_out(day: &str, now_ms: &str, close_ms: &str, rememberable: &str) -> Option<IssueOutcome> {
    let left = close_ms.parse::<u64>().ok()?.checked_sub(now_ms.parse().ok()?)?;
    Some(IssueOutcome::SoldOut {
        day: parse_day(day)?,
        rememberable_for: (rememberable == "1").then(|| Duration::from_millis(left)),
    })
}

fn coupon(bucket: Bucket, user_id: &UserId, fields: &[&str]) -> Option<Coupon> {
    let [day, seq, coupon_id, issued_ms, valid_until_ms] = fields else {
        return None;
    };
    let issued_at = millis(issued_ms)?;
    Some(Coupon {
        coupon_id: CouponId::parse(coupon_id).ok()?,
        event_id: bucket.event,
        user_id: user_id.clone(),
        day: parse_day(day)?,
        shard: bucket.shard,
        seq: seq.parse().ok()?,
        issued_at,
        valid_from: issued_at,
        valid_until: millis(valid_until_ms)?,
        redeemed_at: None,
    })
}

pub(crate) fn millis(s: &str) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(s.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    use crate::domain::EventId;

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
}
