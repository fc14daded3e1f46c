//! Remembering, for a moment, that a day is sold out (in one bucket).
//!
//! A sale ends in a storm: the last coupon goes in the first second and tens of thousands of
//! requests keep arriving. Each would cost a script call to learn what the last one learned.
//! So when the script answers `sold_out`, the instance remembers it for a short while
//! (`SOLD_OUT_MEMORY_MS`), with the day's holders: while a day is sold out nobody can join them,
//! so one HKEYS read after the sold-out answer holds for the whole moment. A holder is sent on
//! to the script and gets their coupon back (`already_issued`) as before; anyone else is
//! answered sold out without a round trip. Until the holders are read (or when there are more
//! than [`MAX_HOLDERS`]), one HEXISTS per request asks instead.
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
//! A holder's answer is unchanged. The holders read after the sold-out answer include everyone
//! who held a coupon then; nobody can be added while the day stays sold out, and the memory
//! ends before a raise could add anyone (point 2).
//!
//! A sharded event is remembered bucket by bucket: each bucket sells out on its own, with its
//! own holders. Its limit is never raised (point 2 cannot happen; see `walk`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::NaiveDate;

use crate::domain::Bucket;

/// The sold-out days this instance remembers, one per bucket (an event, unless sharded).
pub struct SoldOutMemory {
    /// How long an answer is remembered at most; zero turns remembering off.
    ttl: Duration,
    /// The most a request waits for Redis: a reply can arrive this long after its send.
    redis_timeout: Duration,
    days: RwLock<HashMap<Bucket, Remembered>>,
}

/// The most holders kept in memory per bucket (a few MiB); a bigger day asks HEXISTS instead.
pub const MAX_HOLDERS: usize = 50_000;

/// Today's holders of a sold-out day, as read once after it sold out.
pub type Holders = Arc<HashSet<String>>;

struct Remembered {
    day: NaiveDate,
    until: Instant,
    /// `None` until read (or when too many to keep).
    holders: Option<Holders>,
    /// A read of the holders is under way: a storm of sold-out answers starts one, not many.
    reading: bool,
}

impl SoldOutMemory {
    pub fn new(ttl: Duration, redis_timeout: Duration) -> Self {
        Self {
            ttl,
            redis_timeout,
            days: RwLock::default(),
        }
    }

    /// The day `event` is known to be sold out, if that is still certain, with its holders if
    /// they have been read.
    pub fn recall(&self, event: Bucket) -> Option<(NaiveDate, Option<Holders>)> {
        if self.ttl.is_zero() {
            return None;
        }
        let days = self.days.read().ok()?;
        let remembered = days.get(&event)?;
        (Instant::now() < remembered.until).then(|| (remembered.day, remembered.holders.clone()))
    }

    /// Remembers the script's sold-out answer to a request sent at `sent`, when the day's
    /// window had `window_left` to run by the Redis clock. True when the caller should read the
    /// day's holders (and hand them to [`Self::holders_read`]): nobody else is reading them.
    pub fn remember(&self, event: Bucket, day: NaiveDate, sent: Instant, window_left: Duration) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let until = (Instant::now() + self.ttl).min(sent + window_left);
        let Ok(mut days) = self.days.write() else {
            return false;
        };
        match days.get_mut(&event) {
            // A read for this very answer is under way: keep it, and its flag.
            Some(r) if r.day == day && r.reading => {
                r.until = until;
                false
            }
            // Holders read for an earlier moment may have changed since (a raise): read again.
            _ => {
                let fresh = Remembered {
                    day,
                    until,
                    holders: None,
                    reading: true,
                };
                days.insert(event, fresh);
                true
            }
        }
    }

    /// The holders read after `day` sold out; `None` when the read failed or found too many.
    pub fn holders_read(&self, event: Bucket, day: NaiveDate, holders: Option<HashSet<String>>) {
        if let Ok(mut days) = self.days.write()
            && let Some(r) = days.get_mut(&event)
            && r.day == day
        {
            r.holders = holders.map(Arc::new);
            r.reading = false;
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
        let event = Bucket::from(crate::domain::EventId::new());
        assert_eq!(memory.recall(event), None);
        assert!(memory.remember(event, day(), Instant::now(), Duration::from_secs(60)));
        assert_eq!(memory.recall(event).map(|(d, _)| d), Some(day()));
        std::thread::sleep(Duration::from_millis(60));
        assert!(memory.recall(event).is_none());
    }

    #[test]
    fn never_past_the_window_close_counted_from_the_send() {
        let memory = SoldOutMemory::new(Duration::from_secs(60), Duration::from_secs(1));
        let event = Bucket::from(crate::domain::EventId::new());
        let sent = Instant::now() - Duration::from_millis(30);
        memory.remember(event, day(), sent, Duration::from_millis(30));
        assert!(memory.recall(event).is_none(), "the window closed 30 ms after the send");
    }

    #[test]
    fn off_when_the_ttl_is_zero() {
        let memory = SoldOutMemory::new(Duration::ZERO, Duration::from_secs(1));
        let event = Bucket::from(crate::domain::EventId::new());
        assert!(!memory.remember(event, day(), Instant::now(), Duration::from_secs(60)));
        assert!(memory.recall(event).is_none());
        assert_eq!(memory.fence(), Duration::ZERO);
    }

    #[test]
    fn one_read_of_the_holders_per_sold_out_moment() {
        let memory = SoldOutMemory::new(Duration::from_secs(60), Duration::from_secs(1));
        let event = Bucket::from(crate::domain::EventId::new());
        let now = Instant::now();
        assert!(
            memory.remember(event, day(), now, Duration::from_secs(60)),
            "the first reads"
        );
        assert!(
            !memory.remember(event, day(), now, Duration::from_secs(60)),
            "the next do not"
        );
        assert!(memory.recall(event).is_some_and(|(_, h)| h.is_none()));
        memory.holders_read(event, day(), Some(HashSet::from(["alice".to_owned()])));
        let (_, holders) = memory.recall(event).unwrap();
        assert!(holders.unwrap().contains("alice"));
    }

    #[test]
    fn the_fence_outlasts_any_entry() {
        let memory = SoldOutMemory::new(Duration::from_millis(500), Duration::from_millis(1000));
        assert!(memory.fence() > Duration::from_millis(1500));
    }
}
