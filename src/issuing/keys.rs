//! Every Redis key name, built here and nowhere else.
//!
//! All keys of one event carry the event id as a hash tag (`{...}`), so they live in one slot
//! and the issue script can touch them all on Redis Cluster. The layout, with the default
//! prefix `coupon`:
//!
//! | key                                   | type   | holds                                   |
//! |---------------------------------------|--------|-----------------------------------------|
//! | `coupon:{<event>}:event`              | hash   | `daily_limit`, `valid_until_ms`, ...    |
//! | `coupon:{<event>}:windows`            | zset   | each day's window as instants           |
//! | `coupon:{<event>}:<day>:count`        | string | coupons issued that day                 |
//! | `coupon:{<event>}:<day>:users`        | hash   | user id -> `seq|coupon_id|issued_ms`    |
//! | `coupon:{<event>}:stream`             | stream | issued coupons on their way to Postgres |
//! | `coupon:{<event>}:dead`               | stream | entries the writer could not store      |
//!
//! That is bucket 0 of an event, which is all of an unsharded one. A sharded event
//! (`shards: N`) has N buckets, each with every key above under its own hash tag, so that the
//! buckets spread over the cluster's slots: bucket `b >= 1` is `coupon:{<tag>}:<event>:<b>:...`,
//! the tag chosen to put the bucket on its place around the slot ring (see `slots`). Its
//! settings hold its share of the limit (see `walk`). Every method takes a bucket, or an event
//! id, which means bucket 0: the unsharded layout is byte for byte the same as before sharding.

use chrono::NaiveDate;

use super::slots::bucket_tag;
use crate::domain::{Bucket, day_text};

/// The consumer group through which writers read every event stream.
pub const WRITER_GROUP: &str = "writer";

/// Builds key names under one prefix, so that several deployments (or test runs) can share a
/// Redis without seeing each other.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    /// The prefix every key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The part shared by all of a bucket's keys, ending in `:`. The issue script appends
    /// `<day>:count` and `<day>:users` to it (see `day_count`, `day_users`).
    pub fn event_prefix(&self, bucket: impl Into<Bucket>) -> String {
        match bucket.into() {
            // Every unsharded issue request builds this one: the id is encoded on the stack and
            // the parts joined at the right size, rather than through `format!` and `Display`.
            Bucket { event, shard: 0 } => {
                let mut id = uuid::Uuid::encode_buffer();
                let id = event.as_uuid().hyphenated().encode_lower(&mut id);
                [self.prefix.as_str(), ":{", id, "}:"].concat()
            }
            Bucket { event, shard } => format!("{}:{{{}}}:{event}:{shard}:", self.prefix, bucket_tag(event, shard)),
        }
    }

    pub fn settings(&self, event: impl Into<Bucket>) -> String {
        under(&self.event_prefix(event), "event")
    }

    pub fn windows(&self, event: impl Into<Bucket>) -> String {
        under(&self.event_prefix(event), "windows")
    }

    /// The pub/sub channel on which a new event's id is announced to every instance (see
    /// `announce`). A channel, not a key: nothing is stored under it.
    pub fn new_events(&self) -> String {
        format!("{}:new-events", self.prefix)
    }

    pub fn stream(&self, event: impl Into<Bucket>) -> String {
        under(&self.event_prefix(event), "stream")
    }

    pub fn dead_letters(&self, event: impl Into<Bucket>) -> String {
        under(&self.event_prefix(event), "dead")
    }

    pub fn day_count(&self, event: impl Into<Bucket>, day: NaiveDate) -> String {
        day_key(&self.event_prefix(event), &day.to_string(), ":count")
    }

    pub fn day_users(&self, event: impl Into<Bucket>, day: NaiveDate) -> String {
        day_key(&self.event_prefix(event), &day.to_string(), ":users")
    }

    /// Everything one call of the issue script is given, from one formatting of the bucket's
    /// prefix and of the day: the hot path builds these on every request, and formatting the
    /// event id seven times was a measurable part of its cost (docs/performance.md).
    pub fn script_keys(&self, bucket: impl Into<Bucket>, day: NaiveDate) -> ScriptKeys {
        ScriptKeys {
            prefix: self.event_prefix(bucket),
            day: day_text(day),
        }
    }
}

/// The keys of one issue script call, in the order of its `KEYS` (see `lua/issue.lua`), and the
/// bucket's prefix, its `ARGV[3]`: the prefix and the day formatted once, and each key written
/// straight into the command (see `write_keys`), not built as a string of its own.
pub struct ScriptKeys {
    pub prefix: String,
    day: [u8; 10],
}

impl ScriptKeys {
    /// The day as the keys carry it (`2026-05-01`).
    fn day(&self) -> &[u8] {
        &self.day
    }

    /// Writes the five `KEYS`, in the script's order, as five arguments of `out`.
    pub fn write_keys(&self, out: &mut impl redis::RedisWrite) {
        let prefix = self.prefix.as_bytes();
        for parts in [
            [prefix, b"event", b""],
            [prefix, b"windows", b""],
            [prefix, b"stream", b""],
            [prefix, self.day(), b":count"],
            [prefix, self.day(), b":users"],
        ] {
            let mut arg = out.writer_for_next_arg();
            for part in parts {
                // Writing into the command's buffer cannot fail.
                let _ = std::io::Write::write_all(&mut arg, part);
            }
        }
    }

    /// The five keys as strings, for tests.
    #[cfg(test)]
    fn keys(&self) -> Vec<String> {
        let mut cmd = redis::Cmd::new();
        self.write_keys(&mut cmd);
        cmd.args_iter()
            .map(|arg| match arg {
                redis::Arg::Simple(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
                other => panic!("not a key: {other:?}"),
            })
            .collect()
    }
}

/// `prefix` + `suffix`, allocated once at the right size.
fn under(prefix: &str, suffix: &str) -> String {
    [prefix, suffix].concat()
}

/// A day's key: `<prefix><day><suffix>`, as the issue script builds it from ARGV[3].
fn day_key(prefix: &str, day: &str, suffix: &str) -> String {
    [prefix, day, suffix].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventId;

    #[test]
    fn keys_share_the_event_hash_tag_and_match_the_script() {
        let keys = Keys::new("coupon");
        let event = EventId::parse("0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10").unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        assert_eq!(
            keys.day_count(event, day),
            "coupon:{0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10}:2026-05-01:count"
        );
        // The script builds day keys as <event_prefix><day>:count; keep the two in step.
        assert_eq!(
            keys.day_count(event, day),
            format!("{}{day}:count", keys.event_prefix(event))
        );
        assert_eq!(
            keys.day_users(event, day),
            format!("{}{day}:users", keys.event_prefix(event))
        );
        assert_eq!(
            keys.stream(event),
            "coupon:{0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10}:stream"
        );
    }

    #[test]
    fn the_script_keys_are_the_keys_built_one_by_one() {
        let keys = Keys::new("coupon");
        let event = EventId::parse("0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10").unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        for bucket in [Bucket { event, shard: 0 }, Bucket { event, shard: 5 }] {
            let s = keys.script_keys(bucket, day);
            assert_eq!(
                s.keys(),
                [
                    keys.settings(bucket),
                    keys.windows(bucket),
                    keys.stream(bucket),
                    keys.day_count(bucket, day),
                    keys.day_users(bucket, day),
                ]
            );
            assert_eq!(s.prefix, keys.event_prefix(bucket));
        }
    }

    #[test]
    fn each_bucket_has_its_own_hash_tag_and_bucket_zero_is_the_unsharded_layout() {
        let keys = Keys::new("coupon");
        let event = EventId::parse("0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10").unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        let bucket = |shard| Bucket { event, shard };
        assert_eq!(keys.settings(bucket(0)), keys.settings(event));
        assert_eq!(keys.day_users(bucket(0), day), keys.day_users(event, day));
        assert_eq!(
            keys.settings(bucket(3)),
            format!(
                "coupon:{{{}}}:0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10:3:event",
                bucket_tag(event, 3)
            )
        );
        assert_eq!(
            keys.day_count(bucket(15), day),
            format!(
                "coupon:{{{}}}:0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10:15:2026-05-01:count",
                bucket_tag(event, 15)
            )
        );
        for shard in [1, 7, 63] {
            let prefix = keys.event_prefix(bucket(shard));
            for key in [
                keys.settings(bucket(shard)),
                keys.windows(bucket(shard)),
                keys.stream(bucket(shard)),
                keys.dead_letters(bucket(shard)),
                keys.day_count(bucket(shard), day),
                keys.day_users(bucket(shard), day),
            ] {
                assert!(key.starts_with(&prefix), "{key}");
            }
        }
    }
}
