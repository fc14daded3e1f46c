//! Comparing one event day's snapshot: pure, so every kind of drift has a unit test.
//!
//! The day is in order when Redis's count equals the number of users holding a coupon, each
//! holder's Redis record matches what Postgres (or the stream, on its way there) says, every
//! number 1..count has exactly one holder, and no stream entry has waited too long.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::domain::Coupon;
use crate::issuing::wire::UserRecord;

use super::snapshot::DaySnapshot;

/// Where a coupon missing from Redis was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Postgres,
    Stream,
}

/// One way the two stores disagree about a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// Redis's count is not the number of users holding a coupon.
    CountMismatch {
        redis: Option<u64>,
        held: u64,
        stored: u64,
        in_stream: u64,
        highest_seq: u64,
    },
    /// More counted than the day allows (never expected; reported, not repaired).
    OverLimit { count: u64, limit: u32 },
    /// A stored (or streamed) coupon whose user Redis does not know: that user could be issued
    /// a second coupon.
    MissingInRedis { coupon: Box<Coupon>, found: Found },
    /// A user Redis says holds a coupon that is neither in Postgres nor in the stream: promised,
    /// and lost on its way.
    MissingInPostgres { user: String, record: UserRecord },
    /// Redis and Postgres name a different coupon for the same user.
    RecordDiffers {
        user: String,
        redis: String,
        postgres: Box<Coupon>,
    },
    /// A Redis user record that cannot be read.
    BadRecord { user: String, record: String },
    /// Numbers `from..=to` were counted but nobody holds them.
    SeqGap { from: u64, to: u64 },
    /// One number held by several users.
    DuplicateSeq { seq: u64, users: Vec<String> },
    /// A stream entry waiting longer than the threshold: pending at a writer that does not
    /// acknowledge it, or never read.
    StuckEntry {
        entry_id: String,
        consumer: Option<String>,
        waiting_ms: u64,
    },
}

impl Difference {
    /// Stable name of the kind, as the report prints it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CountMismatch { .. } => "count_mismatch",
            Self::OverLimit { .. } => "over_limit",
            Self::MissingInRedis { .. } => "missing_in_redis",
            Self::MissingInPostgres { .. } => "missing_in_postgres",
            Self::RecordDiffers { .. } => "record_differs",
            Self::BadRecord { .. } => "bad_record",
            Self::SeqGap { .. } => "seq_gap",
            Self::DuplicateSeq { .. } => "duplicate_seq",
            Self::StuckEntry { .. } => "stuck_entry",
        }
    }

    /// What it is about: a user, a number, an entry.
    pub fn subject(&self) -> String {
        match self {
            Self::CountMismatch { .. } | Self::OverLimit { .. } => "count".into(),
            Self::MissingInRedis { coupon, .. } => format!("user {}", coupon.user_id.as_str()),
            Self::MissingInPostgres { user, .. } | Self::RecordDiffers { user, .. } | Self::BadRecord { user, .. } => {
                format!("user {user}")
            }
            Self::SeqGap { from, to } if from == to => format!("seq {from}"),
            Self::SeqGap { from, to } => format!("seq {from}-{to}"),
            Self::DuplicateSeq { seq, .. } => format!("seq {seq}"),
            Self::StuckEntry { entry_id, .. } => format!("entry {entry_id}"),
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Self::CountMismatch {
                redis,
                held,
                stored,
                in_stream,
                highest_seq,
            } => format!(
                "redis count {}, held {held} (postgres {stored}, stream {in_stream}), highest seq {highest_seq}",
                redis.map_or("missing".into(), |n| n.to_string())
            ),
            Self::OverLimit { count, limit } => format!("count {count} is over the daily limit {limit}"),
            Self::MissingInRedis { coupon, found } => format!(
                "seq {} coupon {} is in {} but not in redis",
                coupon.seq,
                coupon.coupon_id,
                if *found == Found::Postgres {
                    "postgres"
                } else {
                    "the stream"
                }
            ),
            Self::MissingInPostgres { record, .. } => format!(
                "seq {} coupon {} is in redis, in neither postgres nor the stream: lost",
                record.seq, record.coupon_id
            ),
            Self::RecordDiffers { redis, postgres, .. } => {
                format!("redis {redis}, postgres {}", UserRecord::of(postgres).encode())
            }
            Self::BadRecord { record, .. } => format!("unreadable record {record:?}"),
            Self::SeqGap { .. } => "counted, held by nobody".into(),
            Self::DuplicateSeq { users, .. } => format!("held by {}", users.join(", ")),
            Self::StuckEntry {
                consumer, waiting_ms, ..
            } => match consumer {
                Some(c) => format!("pending at {c} for {} s", waiting_ms / 1000),
                None => format!("not read for {} s", waiting_ms / 1000),
            },
        }
    }
}

/// Every difference in `snap`.
///
/// A coupon the script issued after the Redis read (at or after `taken_ms`, the same clock)
/// may already be in the stream or Postgres; Redis's answer could not include it, so it is
/// left out unless Redis does know its user. Redis records are looked up in everything read,
/// since what Redis knew was issued before.
pub fn compare(snap: &DaySnapshot, stuck_after_ms: u64) -> Vec<Difference> {
    let after_snapshot = |c: &Coupon| c.issued_at.timestamp_millis() >= snap.taken_ms;
    let stored: HashMap<&str, &Coupon> = snap.postgres.iter().map(|c| (c.user_id.as_str(), c)).collect();
    let streamed: HashMap<&str, &Coupon> = snap
        .stream
        .iter()
        .filter_map(|e| e.coupon.as_ref().ok())
        .map(|c| (c.user_id.as_str(), c))
        .collect();

    let mut found = Vec::new();
    // Number -> users holding it, from every store.
    let mut holders: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
    let mut users: BTreeSet<&str> = BTreeSet::new();

    for (user, raw) in &snap.redis_users {
        users.insert(user);
        let Some(record) = UserRecord::parse(raw) else {
            found.push(Difference::BadRecord {
                user: user.clone(),
                record: raw.clone(),
            });
            continue;
        };
        holders.entry(u64::from(record.seq)).or_default().insert(user);
        match stored.get(user.as_str()) {
            Some(c) if c.coupon_id != record.coupon_id || c.seq != record.seq => {
                found.push(Difference::RecordDiffers {
                    user: user.clone(),
                    redis: raw.clone(),
                    postgres: Box::new((*c).clone()),
                });
            }
            Some(_) => {}
            None if streamed.contains_key(user.as_str()) => {}
            None => found.push(Difference::MissingInPostgres {
                user: user.clone(),
                record,
            }),
        }
    }
    let elsewhere = stored.iter().map(|(u, c)| (u, c, Found::Postgres)).chain(
        streamed
            .iter()
            .filter(|(u, _)| !stored.contains_key(*u))
            .map(|(u, c)| (u, c, Found::Stream)),
    );
    for (user, coupon, where_) in elsewhere {
        let known = snap.redis_users.contains_key(*user);
        if !known && after_snapshot(coupon) {
            continue;
        }
        users.insert(user);
        holders.entry(u64::from(coupon.seq)).or_default().insert(user);
        if !known {
            found.push(Difference::MissingInRedis {
                coupon: Box::new((*coupon).clone()),
                found: where_,
            });
        }
    }

    let held = users.len() as u64;
    let highest_seq = holders.keys().next_back().copied().unwrap_or(0);
    let in_stream = streamed
        .keys()
        .filter(|u| users.contains(*u) && !stored.contains_key(*u))
        .count() as u64;
    if snap.redis_count.unwrap_or(0) != held {
        found.push(Difference::CountMismatch {
            redis: snap.redis_count,
            held,
            stored: stored.keys().filter(|u| users.contains(*u)).count() as u64,
            in_stream,
            highest_seq,
        });
    }
    let count = snap.redis_count.unwrap_or(0);
    if count > u64::from(snap.daily_limit) {
        found.push(Difference::OverLimit {
            count,
            limit: snap.daily_limit,
        });
    }
    for (seq, who) in &holders {
        if who.len() > 1 {
            found.push(Difference::DuplicateSeq {
                seq: *seq,
                users: who.iter().map(|u| u.to_string()).collect(),
            });
        }
    }
    found.extend(gaps(&holders, count.max(highest_seq)));
    for entry in &snap.stream {
        let (consumer, waiting_ms) = match &entry.pending {
            Some((consumer, idle)) => (Some(consumer.clone()), *idle),
            None => (None, entry.age_ms),
        };
        if waiting_ms >= stuck_after_ms {
            found.push(Difference::StuckEntry {
                entry_id: entry.id.clone(),
                consumer,
                waiting_ms,
            });
        }
    }
    found
}

/// Runs of numbers in 1..=top that nobody holds. Walks the holders, not the numbers, so a
/// corrupt count cannot make it loop for long.
fn gaps(holders: &BTreeMap<u64, BTreeSet<&str>>, top: u64) -> Vec<Difference> {
    let mut found = Vec::new();
    let mut next = 1;
    for &seq in holders.keys().take_while(|s| **s <= top) {
        if seq > next {
            found.push(Difference::SeqGap {
                from: next,
                to: seq - 1,
            });
        }
        next = next.max(seq + 1);
    }
    if next <= top {
        found.push(Difference::SeqGap { from: next, to: top });
    }
    found
}
