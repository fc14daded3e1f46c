//! Every format that crosses Redis, each written and read here only: the stream entry the issue
//! script appends, the user record it keeps per holder, a window as the script reads it, the
//! event settings' fields, and the scripts' replies. Key names are built in `keys`; the scripts
//! are loaded in `scripts`. The Lua side of each format is named where it is defined here.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use redis::Value;
use redis::streams::StreamId;

use crate::domain::{Bucket, Coupon, CouponId, UserId, parse_day};

#[cfg(test)]
mod tests;

/// The fields `lua/issue.lua` (step 6) appends to a bucket's stream, one entry per coupon:
/// `XADD <stream> * coupon_id <id> user_id <user> day <YYYY-MM-DD> seq <n> issued_ms <ms>
/// valid_until_ms <ms>`. The bucket is where the entry was read, not a field of it.
pub mod field {
    pub const COUPON_ID: &str = "coupon_id";
    pub const USER_ID: &str = "user_id";
    pub const DAY: &str = "day";
    pub const SEQ: &str = "seq";
    pub const ISSUED_MS: &str = "issued_ms";
    pub const VALID_UNTIL_MS: &str = "valid_until_ms";
}

/// The fields a dead letter (`<prefix>:{<event_id>}:dead`, written by the writer) adds before
/// the unreadable or refused entry's own fields, kept as they were.
pub mod dead_letter {
    /// The id the entry had in the event's stream.
    pub const SOURCE_ID: &str = "source_id";
    /// Why it could not be stored.
    pub const REASON: &str = "reason";
}

/// The fields of an event's (a bucket's) settings hash, `<prefix>:{<event_id>}:event`: written
/// by `lua/set_limit.lua` and `lua/set_share.lua`, read by `lua/issue.lua` (step 1).
pub mod settings {
    /// The daily limit (a bucket's share of it, for a sharded event).
    pub const DAILY_LIMIT: &str = "daily_limit";
    pub const VALID_UNTIL_MS: &str = "valid_until_ms";
    /// The `events.limit_revision` of the limit written: an older copy is refused.
    pub const LIMIT_REVISION: &str = "limit_revision";
    /// Above 0 while a limit raise is fenced: sold-out answers are then not to be remembered.
    pub const FENCED: &str = "fenced";
}

/// A stream entry whose fields can be read as text: the writer's own entry, or redis-rs's
/// `StreamId` (from `XRANGE`, for the restore and the reconcile snapshot).
pub trait EntryFields {
    /// A field's text (a bulk or simple string, valid UTF-8), borrowed.
    fn text(&self, name: &str) -> Option<&str>;
}

impl EntryFields for StreamId {
    fn text(&self, name: &str) -> Option<&str> {
        value_text(self.map.get(name)?)
    }
}

/// A field value's text, as `StreamId::get::<String>` reads it (a bulk or simple string, valid
/// UTF-8), borrowed.
pub fn value_text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

/// Reads a stream entry of `bucket` (see [`field`]). `Err` names what is wrong, for the
/// dead-letter stream.
pub fn coupon_from_entry(bucket: impl Into<Bucket>, entry: &impl EntryFields) -> Result<Coupon, String> {
    let bucket = bucket.into();
    // Borrowed from the reply, not converted into a `String` per field: this runs for every
    // stored coupon.
    let get = |name: &str| entry.text(name).ok_or_else(|| format!("missing field {name}"));
    let bad = |name: &str| format!("bad field {name}");
    let issued_at = millis(get(field::ISSUED_MS)?).ok_or_else(|| bad(field::ISSUED_MS))?;
    Ok(Coupon {
        coupon_id: CouponId::parse(get(field::COUPON_ID)?).map_err(|_| bad(field::COUPON_ID))?,
        event_id: bucket.event,
        user_id: UserId::parse(get(field::USER_ID)?).map_err(|_| bad(field::USER_ID))?,
        day: parse_day(get(field::DAY)?).ok_or_else(|| bad(field::DAY))?,
        shard: bucket.shard,
        seq: get(field::SEQ)?.parse().map_err(|_| bad(field::SEQ))?,
        issued_at,
        valid_from: issued_at,
        valid_until: millis(get(field::VALID_UNTIL_MS)?).ok_or_else(|| bad(field::VALID_UNTIL_MS))?,
        redeemed_at: None,
    })
}

/// The milliseconds part of a stream entry id (`<ms>-<n>`): the Redis clock at `XADD`.
pub fn entry_ms(id: &str) -> Option<i64> {
    id.split_once('-').and_then(|(ms, _)| ms.parse().ok())
}

/// A user's coupon as the issue script records it in the day's users hash (field: the user id):
/// `seq|coupon_id|issued_ms`, written by `lua/issue.lua` (step 6) and read back by it (step 4)
/// to answer `already_issued`; rewritten from Postgres by the restore and the reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub seq: u32,
    pub coupon_id: CouponId,
    pub issued_ms: i64,
}

impl UserRecord {
    /// The record the script wrote, or would have written, for `coupon`.
    pub fn of(coupon: &Coupon) -> Self {
        Self {
            seq: coupon.seq,
            coupon_id: coupon.coupon_id,
            issued_ms: coupon.issued_at.timestamp_millis(),
        }
    }

    /// Reads `seq|coupon_id|issued_ms`; `None` for anything else (or a seq of 0).
    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.split('|');
        let (seq, id, ms) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            seq: seq.parse().ok().filter(|s| *s >= 1)?,
            coupon_id: CouponId::parse(id).ok()?,
            issued_ms: ms.parse().ok()?,
        })
    }

    /// The text the script writes.
    pub fn encode(&self) -> String {
        format!("{}|{}|{}", self.seq, self.coupon_id, self.issued_ms)
    }
}

/// A daily window as a member of the event's windows sorted set (scored by `close_ms`):
/// `<day>|<open_ms>|<close_ms>|<day_start_ms>`, read by `lua/issue.lua` (step 3).
/// `day_start_ms` is 0 for the first day, which has no "yesterday".
pub fn window_member(day: NaiveDate, open_ms: i64, close_ms: i64, day_start_ms: i64) -> String {
    format!("{day}|{open_ms}|{close_ms}|{day_start_ms}")
}

/// What the issue script decided (the `Returns` header of `lua/issue.lua`).
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
pub fn other_day(reply: &[String]) -> Option<NaiveDate> {
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

/// `day, seq, coupon_id, issued_ms, valid_until_ms` of an `issued` or `already_issued` reply.
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

/// A time the scripts write as ms since the epoch.
fn millis(s: &str) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(s.parse().ok()?)
}
