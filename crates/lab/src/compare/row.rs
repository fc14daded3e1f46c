//! One strategy's line of the comparison, from the answers and the store's report.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use super::drive::Spike;
use crate::{Report, Store, Strategy};

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub strategy: &'static str,
    pub store: Store,
    pub requests: usize,
    pub seconds: f64,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answered 201.
    pub issued: u64,
    /// Issued beyond N: by the answers or by the store, whichever says more.
    pub oversold: u64,
    /// Users holding more than one: by the answers or by the store, whichever says more.
    pub duplicates: u64,
    /// Neither 201, 409 nor 410: 503s (the strategy's back-pressure), other statuses, no answer.
    pub errors: u64,
    /// Of the errors, 503s.
    pub unavailable: u64,
    pub already_issued: u64,
    pub sold_out: u64,
    /// Claims recorded in the strategy's store.
    pub stored: i64,
    /// Units left in the strategy's store.
    pub final_quantity: Option<i64>,
    /// Mean tries per request (optimistic attempts, lock acquisitions tried).
    pub tries_per_request: f64,
    pub n: u32,
}

impl Row {
    pub fn new(strategy: Strategy, n: u32, spike: &Spike, report: &Report) -> Self {
        let count = |status: u16| spike.samples.iter().filter(|s| s.status == status).count() as u64;
        let (issued, already_issued, sold_out, unavailable) = (count(201), count(409), count(410), count(503));
        let requests = spike.samples.len();
        let mut wins: HashMap<u32, u64> = HashMap::new();
        for s in spike.samples.iter().filter(|s| s.status == 201) {
            *wins.entry(s.user).or_default() += 1;
        }
        let twice_by_answers = wins.values().filter(|&&w| w > 1).count() as u64;
        let (stored, twice_in_store, final_quantity) = match strategy.store() {
            Store::Postgres => (
                report.postgres.claims,
                report.postgres.users_with_two_or_more as u64,
                Some(i64::from(report.postgres.quantity)),
            ),
            // A hash holds a user once: duplicates there can only show in the answers.
            Store::Redis => (report.redis.claims, 0, report.redis.quantity),
        };
        let mut latencies: Vec<Duration> = spike.samples.iter().map(|s| s.latency).collect();
        latencies.sort_unstable();
        let seconds = spike.elapsed.as_secs_f64();
        let tries: u64 = spike.samples.iter().map(|s| u64::from(s.attempts)).sum();
        Row {
            strategy: strategy.name(),
            store: strategy.store(),
            requests,
            seconds,
            requests_per_sec: requests as f64 / seconds.max(1e-9),
            p50_ms: millis(percentile(&latencies, 0.50)),
            p99_ms: millis(percentile(&latencies, 0.99)),
            issued,
            oversold: issued.max(stored.max(0) as u64).saturating_sub(u64::from(n)),
            duplicates: twice_by_answers.max(twice_in_store),
            errors: requests as u64 - issued - already_issued - sold_out,
            unavailable,
            already_issued,
            sold_out,
            stored,
            final_quantity,
            tries_per_request: tries as f64 / requests.max(1) as f64,
            n,
        }
    }
}

/// Nearest-rank percentile of sorted values. A sort of a few thousand durations per strategy is
/// all this needs; a histogram crate would buy nothing here.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&v[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
