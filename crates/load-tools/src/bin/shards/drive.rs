//! The closed-loop driver: `concurrency` tasks, each calling `Issuer::issue` (the walk over the
//! event's buckets) again as soon as its last call answered, a fresh user id every call, so every
//! call is a first-time issue and the event never sells out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use coupon_issuer::domain::{EventId, Shards, UserId};
use coupon_issuer::issuing::{IssueOutcome, Issuer};
use hdrhistogram::Histogram;

/// What one measured window saw.
pub struct Measured {
    pub calls: u64,
    /// Calls answered anything but `issued` (never expected: the limit is out of reach).
    pub not_issued: u64,
    pub errors: u64,
    /// Microseconds, per call.
    pub latency: Histogram<u64>,
}

/// One task's loop. Calls that end before `measure_from` warm the connections up and are not
/// counted; the task stops once `stop` is set, and the call in flight then is not counted
/// either, so the counts cover exactly [measure_from, the moment `stop` was set].
pub async fn task(
    issuer: Issuer,
    event: EventId,
    shards: Shards,
    user_prefix: String,
    measure_from: Instant,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Measured> {
    let mut measured = Measured {
        calls: 0,
        not_issued: 0,
        errors: 0,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
    };
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let user = UserId::parse(&format!("{user_prefix}-{n}")).map_err(anyhow::Error::msg)?;
        let sent = Instant::now();
        let outcome = issuer.issue(event, shards, &user, Utc::now().date_naive()).await;
        if sent < measure_from || stop.load(Ordering::Relaxed) {
            continue;
        }
        measured.calls += 1;
        measured
            .latency
            .saturating_record(sent.elapsed().as_micros().max(1) as u64);
        match outcome {
            Ok(IssueOutcome::Issued(_)) => {}
            Ok(_) => measured.not_issued += 1,
            Err(_) => measured.errors += 1,
        }
    }
    Ok(measured)
}

/// Runs `concurrency` tasks for `warmup + secs`; the caller samples CPU around the window.
pub struct Run {
    pub measure_from: Instant,
    pub stop: Arc<AtomicBool>,
    pub tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Measured>>>,
}

impl Run {
    pub fn start(
        issuer: &Issuer,
        event: EventId,
        shards: Shards,
        concurrency: usize,
        run_tag: &str,
        warmup: Duration,
    ) -> Self {
        let measure_from = Instant::now() + warmup;
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..concurrency)
            .map(|i| {
                tokio::spawn(task(
                    issuer.clone(),
                    event,
                    shards,
                    format!("{run_tag}-{i}"),
                    measure_from,
                    stop.clone(),
                ))
            })
            .collect();
        Self {
            measure_from,
            stop,
            tasks,
        }
    }

    /// Sets the stop flag and merges what every task measured.
    pub async fn finish(self) -> anyhow::Result<Measured> {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Measured {
            calls: 0,
            not_issued: 0,
            errors: 0,
            latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        };
        for t in self.tasks {
            let m = t.await??;
            total.calls += m.calls;
            total.not_issued += m.not_issued;
            total.errors += m.errors;
            total.latency.add(&m.latency)?;
        }
        Ok(total)
    }
}
