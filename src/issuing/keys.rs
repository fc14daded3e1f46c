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

use chrono::NaiveDate;

use crate::domain::EventId;

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

    /// The part shared by all of an event's keys, ending in `:`. The issue script appends
    /// `<day>:count` and `<day>:users` to it (see `day_count`, `day_users`).
    pub fn event_prefix(&self, event: EventId) -> String {
        format!("{}:{{{event}}}:", self.prefix)
    }

    pub fn settings(&self, event: EventId) -> String {
        format!("{}event", self.event_prefix(event))
    }

    pub fn windows(&self, event: EventId) -> String {
        format!("{}windows", self.event_prefix(event))
    }

    pub fn stream(&self, event: EventId) -> String {
        format!("{}stream", self.event_prefix(event))
    }

    pub fn dead_letters(&self, event: EventId) -> String {
        format!("{}dead", self.event_prefix(event))
    }

    pub fn day_count(&self, event: EventId, day: NaiveDate) -> String {
        format!("{}{day}:count", self.event_prefix(event))
    }

    pub fn day_users(&self, event: EventId, day: NaiveDate) -> String {
        format!("{}{day}:users", self.event_prefix(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
