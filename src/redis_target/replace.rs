//! A shared connection that is swapped for a fresh one when it keeps failing: the one mechanism
//! behind both the cluster's stuck-connection replacement and Sentinel's re-resolution of the
//! primary. Every clone of a handle loads the current connection for each command, so a swap
//! reaches every user at its next command; commands already sent finish on the old one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use redis::{RedisError, RedisResult};

/// When a failing connection is replaced.
#[derive(Clone, Copy, Debug)]
pub(super) struct Policy {
    /// How long commands must have failed, with none succeeding, before it is.
    pub failing_for: Duration,
    /// The least time between two replacements.
    pub between: Duration,
}

pub(super) struct Replaceable<C> {
    conn: ArcSwap<C>,
    policy: Policy,
    /// Since when every command failed, and when the connection was last replaced.
    health: Mutex<(Option<Instant>, Instant)>,
    /// Whether `health` counts a failure: lets a success, every command of a healthy
    /// connection, pass without taking the lock.
    failing: AtomicBool,
}

impl<C> Replaceable<C> {
    pub fn new(conn: C, policy: Policy) -> Self {
        Self {
            conn: ArcSwap::from_pointee(conn),
            policy,
            health: Mutex::new((None, Instant::now())),
            failing: AtomicBool::new(false),
        }
    }

    pub fn current(&self) -> Arc<C> {
        self.conn.load_full()
    }

    /// Counts `result` of a command sent over `used`; replaces the connection with `fresh()`
    /// when the policy says so. Only errors `broken` accepts count, and only results of the
    /// current connection: a late failure of one already replaced says nothing of the new one.
    pub fn observe<T>(
        &self,
        used: &Arc<C>,
        result: &RedisResult<T>,
        broken: impl Fn(&RedisError) -> bool,
        fresh: impl FnOnce() -> C,
        what: &str,
    ) {
        let error = match result {
            Ok(_) if !self.failing.load(Ordering::Relaxed) => return,
            Err(e) if !broken(e) => return,
            Ok(_) => None,
            Err(e) => Some(e),
        };
        if !Arc::ptr_eq(used, &self.conn.load()) {
            return;
        }
        let Ok(mut health) = self.health.lock() else {
            return;
        };
        match error {
            None => {
                health.0 = None;
                self.failing.store(false, Ordering::Relaxed);
            }
            Some(e) => {
                self.failing.store(true, Ordering::Relaxed);
                let since = *health.0.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.policy.failing_for && health.1.elapsed() >= self.policy.between {
                    tracing::warn!(failing_for = ?since.elapsed(), error = %e, "{what}");
                    self.conn.store(Arc::new(fresh()));
                    *health = (None, Instant::now());
                    self.failing.store(false, Ordering::Relaxed);
                }
            }
        }
    }
}

/// An error that says the connection (not the command) failed.
pub(super) fn connection_failed(e: &RedisError) -> bool {
    e.is_timeout() || e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()
}
