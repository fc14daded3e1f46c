//! Prometheus metrics: what the service counts, and the text `GET /metrics` answers.
//!
//! Why the `prometheus` crate: its counters and histograms are plain atomics, and a labelled
//! child is found by hashing the label values under a read lock, so recording on the hot path
//! allocates nothing once a label set has been seen (event ids are formatted on the stack, see
//! [`EventLabel`]). Labels stay bounded: event ids (events are created by an admin, and an id
//! the catalog does not know is counted as `unknown`), outcome codes, route patterns, status
//! codes. Never user ids.
//!
//! Each [`crate::startup::Application`] has its own registry, so tests running side by side in
//! one process never see each other's numbers.

mod registry;
pub mod sale;

use std::sync::Arc;
use std::time::Duration;

use prometheus::{Encoder, TextEncoder};

use crate::domain::EventId;
pub(crate) use registry::ISSUE_ROUTE;
use registry::ISSUE_STATUSES;
pub(crate) use registry::Inner;

/// Every metric the service exports. Cheap to clone: all clones share one registry.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl Metrics {
    /// A fresh registry with every metric registered; `max_in_flight` is exported as the limit.
    pub fn new(max_in_flight: usize) -> Self {
        Self(Arc::new(Inner::new(max_in_flight)))
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.0
    }

    /// Counts one answer of the issue endpoint. `event` is `None` when the id was not valid or
    /// is not an event this service knows, which keeps the label set bounded.
    pub fn issue_outcome(&self, event: Option<EventId>, outcome: &'static str) {
        let mut buf = EventLabel::buffer();
        let event = event.map_or("unknown", |e| EventLabel::format(e, &mut buf));
        self.0.issue_requests.with_label_values(&[event, outcome]).inc();
    }

    /// Records one issue script run.
    pub fn redis_script(&self, took: Duration, ok: bool) {
        let (child, result) = if ok {
            (&self.0.redis_script_ok, "ok")
        } else {
            (&self.0.redis_script_error, "error")
        };
        child
            .get_or_init(|| self.0.redis_script.with_label_values(&[result]))
            .observe(took.as_secs_f64());
    }

    /// Records one HTTP answer. `method` and `route` must come from a bounded set.
    ///
    /// The issue route's series are kept once resolved (see `IssueRoute`): the hot path then
    /// records without hashing its labels under the vectors' locks. Every other route looks its
    /// children up.
    pub fn http_response(&self, method: &str, route: &str, status: &str, took: Duration) {
        let inner = &self.0;
        let secs = took.as_secs_f64();
        if method == ISSUE_ROUTE[0] && route == ISSUE_ROUTE[1] {
            let issue = &inner.issue_route;
            let labels = [method, route, status];
            issue
                .duration
                .get_or_init(|| inner.http_duration.with_label_values(&ISSUE_ROUTE))
                .observe(secs);
            match ISSUE_STATUSES.iter().position(|s| *s == status) {
                Some(i) => issue.responses[i]
                    .get_or_init(|| inner.http_responses.with_label_values(&labels))
                    .inc(),
                None => inner.http_responses.with_label_values(&labels).inc(),
            }
            return;
        }
        inner.http_duration.with_label_values(&[method, route]).observe(secs);
        inner.http_responses.with_label_values(&[method, route, status]).inc();
    }

    /// `MAX_IN_FLIGHT`.
    pub fn in_flight_limit(&self) -> i64 {
        self.0.in_flight_limit.get()
    }

    pub fn set_in_flight(&self, n: i64) {
        self.0.in_flight.set(n);
    }

    pub fn shed(&self) {
        self.0.shed.inc();
    }

    /// Records one stored writer batch.
    pub fn writer_batch(&self, batch: WriterBatch) {
        let inner = &self.0;
        inner.writer_batch_size.observe(batch.entries as f64);
        inner.writer_batch_duration.observe(batch.took.as_secs_f64());
        if let Some(lag) = batch.lag {
            inner.writer_lag.observe(lag.as_secs_f64());
        }
        let readable = batch.entries.saturating_sub(batch.dead) as u64;
        let duplicates = readable.saturating_sub(batch.inserted);
        let entries = &inner.writer_entries;
        entries.with_label_values(&["inserted"]).inc_by(batch.inserted);
        entries.with_label_values(&["duplicate"]).inc_by(duplicates);
        entries.with_label_values(&["dead"]).inc_by(batch.dead as u64);
    }

    pub fn writer_failure(&self) {
        self.0.writer_failures.inc();
    }

    /// Everything, in the Prometheus text format.
    pub fn encode(&self) -> String {
        let families = {
            let _refill = self.0.refill.lock();
            self.0.registry.gather()
        };
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding gathered families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&families, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// What one stored writer batch did.
#[derive(Debug, Clone, Copy)]
pub struct WriterBatch {
    pub entries: usize,
    pub inserted: u64,
    pub dead: usize,
    pub took: Duration,
    /// Issue to commit for the batch's oldest entry, when it could be told.
    pub lag: Option<Duration>,
}

/// An event id as a label value, formatted on the stack.
pub struct EventLabel;

impl EventLabel {
    pub fn buffer() -> [u8; uuid::fmt::Hyphenated::LENGTH] {
        [0; uuid::fmt::Hyphenated::LENGTH]
    }

    pub fn format(event: EventId, buf: &mut [u8; uuid::fmt::Hyphenated::LENGTH]) -> &str {
        event.as_uuid().hyphenated().encode_lower(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_event_and_outcome_without_user_labels() {
        let metrics = Metrics::new(10);
        let event = EventId::new();
        metrics.issue_outcome(Some(event), "issued");
        metrics.issue_outcome(Some(event), "issued");
        metrics.issue_outcome(None, "invalid_request");
        let text = metrics.encode();
        assert!(
            text.contains(&format!(
                "coupon_issue_requests_total{{event=\"{event}\",outcome=\"issued\"}} 2"
            )),
            "{text}"
        );
        assert!(text.contains("coupon_issue_requests_total{event=\"unknown\",outcome=\"invalid_request\"} 1"));
        assert!(text.contains("coupon_http_in_flight_limit 10"));
    }

    #[test]
    fn a_batch_splits_into_inserted_duplicate_and_dead() {
        let metrics = Metrics::new(1);
        metrics.writer_batch(WriterBatch {
            entries: 10,
            inserted: 7,
            dead: 1,
            took: Duration::from_millis(3),
            lag: Some(Duration::from_millis(40)),
        });
        let text = metrics.encode();
        for line in [
            "coupon_writer_entries_total{result=\"inserted\"} 7",
            "coupon_writer_entries_total{result=\"duplicate\"} 2",
            "coupon_writer_entries_total{result=\"dead\"} 1",
            "coupon_writer_batch_size_sum 10",
            "coupon_writer_lag_seconds_count 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
