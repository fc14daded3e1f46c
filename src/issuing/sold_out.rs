//! Remembering, for a moment, that a day is sold out.
//!
//! A sale ends in a storm: the last coupon goes in the first second and tens of thousands of
//! requests keep arriving. Each would cost a script call to learn what the last one learned.
//! So when the script answers `sold_out`, the instance remembers it and answers the same for a
//! short while (`SOLD_OUT_MEMORY_MS`) without asking Redis.
//!
//! A remembered answer must never refuse a coupon that Redis would still issue. A day that is
//! sold out stays sold out unless one of three things happens, and each is covered:
//!
//! 1. **The window closes** (and the next day opens later). An entry is kept at most until the
//!    window's close, measured from the moment the request was *sent*: the script ran after
//!    that moment, so by the Redis clock the close is at least that far away.
//! 2. **An admin raises the limit.** A raise is fenced (see `publish::set_limit`): it first
//!    marks the event `fenced`, so no instance remembers a new sold-out; then waits for
//!    [`SoldOutMemory::fence`], longer than any entry made before the mark can live (an entry
//!    lives at most `REDIS_TIMEOUT_MS` from its send, since a later reply is dropped, plus
//!    `SOLD_OUT_MEMORY_MS`); only then writes the new limit. So when the new limit is in force,
//!    no instance remembers the old one. A lowered limit needs no fence: it only refuses more.
//! 3. **Redis loses its state** and the day is rebuilt lower (coupons lost before they reached
//!    Postgres). Republishing a lost event waits for the same fence before the settings return.
//!
//! What it costs: a user who already holds today's coupon and asks again within that moment is
//! answered `sold_out` instead of `already_issued` (their coupon is still theirs, and listed by
//! `GET /v1/users/{id}/coupons`).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use chrono::NaiveDate;

use crate::domain::EventId;

/// The sold-out days this instance remembers, one per event.
pub struct SoldOutMemory {
    /// How long an answer is remembered at most; zero turns remembering off.
    ttl: Duration,
    /// The most a request waits for Redis: a reply can arrive this long after its send.
    redis_timeout: Duration,
    days: RwLock<HashMap<EventId, Remembered>>,
}

#[derive(Clone, Copy)]
struct Remembered {
    day: NaiveDate,
    until: Instant,
}

impl SoldOutMemory {
    pub fn new(ttl: Duration, redis_timeout: Duration) -> Self {
        Self {
            ttl,
            redis_timeout,
            days: RwLock::default(),
        }
    }

    /// The day `event` is known to be sold out, if that is still certain.
    pub fn recall(&self, event: EventId) -> Option<NaiveDate> {
        if self.ttl.is_zero() {
            return None;
        }
        let days = self.days.read().ok()?;
        let remembered = days.get(&event)?;
        (Instant::now() < remembered.until).then_some(remembered.day)
    }

    /// Remembers the script's sold-out answer to a request sent at `sent`, when the day's
    /// window had `window_left` to run by the Redis clock.
    pub fn remember(&self, event: EventId, day: NaiveDate, sent: Instant, window_left: Duration) {
        if self.ttl.is_zero() {
            return;
        }
        let until = (Instant::now() + self.ttl).min(sent + window_left);
        if let Ok(mut days) = self.days.write() {
            days.insert(event, Remembered { day, until });
        }
    }

    /// How long a limit raise (or a lost event's return) waits so that no instance still
    /// remembers a sold-out answer given before it began. Zero when remembering is off.
    pub fn fence(&self) -> Duration {
        if self.ttl.is_zero() {
            return Duration::ZERO;
        }
        // The margin covers clocks that run at slightly different rates on two machines.
        self.ttl + self.redis_timeout + Duration::from_millis(100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        "2026-05-01".parse().unwrap()
    }

    #[test]
    fn recalls_until_the_ttl() {
        let memory = SoldOutMemory::new(Duration::from_millis(50), Duration::from_secs(1));
        let event = EventId::new();
        assert_eq!(memory.recall(event), None);
        memory.remember(event, day(), Instant::now(), Duration::from_secs(60));
        assert_eq!(memory.recall(event), Some(day()));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(memory.recall(event), None);
    }

    #[test]
    fn never_past_the_window_close_counted_from_the_send() {
        let memory = SoldOutMemory::new(Duration::from_secs(60), Duration::from_secs(1));
        let event = EventId::new();
        let sent = Instant::now() - Duration::from_millis(30);
        memory.remember(event, day(), sent, Duration::from_millis(30));
        assert_eq!(memory.recall(event), None, "the window closed 30 ms after the send");
    }

    #[test]
    fn off_when_the_ttl_is_zero() {
        let memory = SoldOutMemory::new(Duration::ZERO, Duration::from_secs(1));
        let event = EventId::new();
        memory.remember(event, day(), Instant::now(), Duration::from_secs(60));
        assert_eq!(memory.recall(event), None);
        assert_eq!(memory.fence(), Duration::ZERO);
    }

    #[test]
    fn the_fence_outlasts_any_entry() {
        let memory = SoldOutMemory::new(Duration::from_millis(500), Duration::from_millis(1000));
        assert!(memory.fence() > Duration::from_millis(1500));
    }
}
