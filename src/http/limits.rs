//! Rate limits per client (peer IP) and per user, so that a bot retrying in a tight loop is
//! answered 429 cheaply and everyone else is served as before.
//!
//! governor's keyed GCRA limiters (one small state per key in a `DashMap`) do the counting: a
//! check is a hash lookup and a compare-and-swap, cheap enough for the hot path, where the user
//! limit runs before the Redis script. Keys that have been quiet long enough to be back at a
//! full burst are dropped every `RETAIN_EVERY` (`retain_recent`), so memory follows the number of
//! recently active clients and users, not everyone ever seen.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use actix_web::dev::ServiceRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};

use super::error::ApiError;
use crate::config::Settings;
use crate::domain::UserId;

/// How often idle keys are dropped.
const RETAIN_EVERY: Duration = Duration::from_secs(30);

type Keyed<K> = DefaultKeyedRateLimiter<K>;

pub struct RateLimits {
    /// Per peer IP (or forwarded client IP); `None` when off.
    client: Option<Keyed<IpAddr>>,
    /// Per user, on the requests that act for a user; `None` when off.
    user: Option<Keyed<UserId>>,
    /// Take the client IP from the last `X-Forwarded-For` entry (the one the trusted proxy in
    /// front appended), not from the socket.
    trust_forwarded_for: bool,
    /// The limiters' clock, to turn a refusal into a `Retry-After`.
    clock: DefaultClock,
}

impl RateLimits {
    pub fn from_settings(settings: &Settings) -> Self {
        let clock = DefaultClock::default();
        Self {
            client: keyed(
                &clock,
                settings.rate_limit_client_per_sec,
                settings.rate_limit_client_burst,
            ),
            user: keyed(&clock, settings.rate_limit_user_per_sec, settings.rate_limit_user_burst),
            trust_forwarded_for: settings.trust_x_forwarded_for,
            clock,
        }
    }

    /// Counts one request for `user`; 429 when over the limit.
    pub fn check_user(&self, user: &UserId) -> Result<(), ApiError> {
        match &self.user {
            Some(limiter) => limiter.check_key(user).map_err(|refused| self.refusal(refused)),
            None => Ok(()),
        }
    }

    /// Counts one request for its client (see `admit`); 429 when over the limit.
    pub(super) fn check_client(&self, req: &ServiceRequest) -> Result<(), ApiError> {
        let Some(limiter) = &self.client else {
            return Ok(());
        };
        match self.client_ip(req) {
            Some(ip) => limiter.check_key(&ip).map_err(|refused| self.refusal(refused)),
            None => Ok(()),
        }
    }

    fn client_ip(&self, req: &ServiceRequest) -> Option<IpAddr> {
        let forwarded = self
            .trust_forwarded_for
            .then(|| {
                req.headers()
                    .get("x-forwarded-for")?
                    .to_str()
                    .ok()?
                    .rsplit(',')
                    .next()?
                    .trim()
                    .parse()
                    .ok()
            })
            .flatten();
        forwarded.or_else(|| req.peer_addr().map(|a| a.ip()))
    }

    fn refusal(&self, refused: NotUntil<<DefaultClock as Clock>::Instant>) -> ApiError {
        let wait = refused.wait_time_from(self.clock.now());
        // Whole seconds, rounded up and at least 1: a client told 0 would retry at once.
        ApiError::RateLimited(wait.as_secs_f64().ceil().max(1.0) as u64)
    }

    /// Drops keys back at a full burst; memory stays bounded by recent activity.
    pub fn retain_recent(&self) {
        if let Some(l) = &self.client {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.user {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Keys held right now: (clients, users).
    pub fn len(&self) -> (usize, usize) {
        (
            self.client.as_ref().map_or(0, |l| l.len()),
            self.user.as_ref().map_or(0, |l| l.len()),
        )
    }

    /// Runs `retain_recent` every `RETAIN_EVERY` until the limits are dropped with the app.
    pub fn spawn_janitor(limits: &Arc<Self>) {
        if limits.client.is_none() && limits.user.is_none() {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(limits);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RETAIN_EVERY).await;
                match weak.upgrade() {
                    Some(limits) => limits.retain_recent(),
                    None => return,
                }
            }
        });
    }
}

/// A limiter of `per_sec` with bursts of `burst` (0: the rate); `None` when `per_sec` is 0.
fn keyed<K: Clone + std::hash::Hash + Eq>(clock: &DefaultClock, per_sec: u32, burst: u32) -> Option<Keyed<K>> {
    let rate = NonZeroU32::new(per_sec)?;
    let quota = Quota::per_second(rate).allow_burst(NonZeroU32::new(burst).unwrap_or(rate));
    Some(RateLimiter::dashmap_with_clock(quota, clock.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_sec: u32, burst: u32) -> RateLimits {
        let mut settings = Settings::from_env();
        settings.rate_limit_user_per_sec = per_sec;
        settings.rate_limit_user_burst = burst;
        RateLimits::from_settings(&settings)
    }

    #[test]
    fn a_user_gets_the_burst_then_waits_at_least_a_second() {
        let limits = limits(1, 2);
        let user = UserId::parse("bot").unwrap();
        assert!(limits.check_user(&user).is_ok());
        assert!(limits.check_user(&user).is_ok());
        match limits.check_user(&user) {
            Err(ApiError::RateLimited(secs)) => assert_eq!(secs, 1),
            other => panic!("{other:?}"),
        }
        assert!(limits.check_user(&UserId::parse("someone-else").unwrap()).is_ok());
    }

    #[test]
    fn off_means_off() {
        let limits = limits(0, 0);
        let user = UserId::parse("bot").unwrap();
        assert!((0..10_000).all(|_| limits.check_user(&user).is_ok()));
        assert_eq!(limits.len(), (0, 0));
    }

    #[test]
    fn quiet_keys_are_forgotten() {
        let limits = limits(1000, 1);
        for i in 0..10_000 {
            let _ = limits.check_user(&UserId::parse(&format!("u{i}")).unwrap());
        }
        assert_eq!(limits.len().1, 10_000);
        std::thread::sleep(Duration::from_millis(20));
        limits.retain_recent();
        assert_eq!(limits.len().1, 0, "every key is back at a full burst");
    }
}
