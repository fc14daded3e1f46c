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

pub mod sale;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::domain::EventId;

/// Latency buckets, in seconds: 100 µs to 10 s. An issue takes well under a millisecond of
/// Redis time; the upper end catches timeouts.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// How long a coupon waits between its issue and its row in Postgres, in seconds.
const LAG_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Entries per writer batch.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
];

/// Every metric the service exports. Cheap to clone: all clones share one registry.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

pub(crate) struct Inner {
    registry: Registry,
    /// `coupon_issue_requests_total{event, outcome}`: every answer of `POST /v1/coupon/issue`
    /// whose body was read, by its outcome code (`issued` or the error code).
    pub(crate) issue_requests: IntCounterVec,
    /// `coupon_http_request_duration_seconds{method, route}`: per route pattern, not raw path.
    pub(crate) http_duration: HistogramVec,
    /// `coupon_http_responses_total{method, route, status}`.
    http_responses: IntCounterVec,
    /// Requests being handled now; set from the in-flight semaphore at each scrape.
    pub(crate) in_flight: IntGauge,
    in_flight_limit: IntGauge,
    /// Requests answered 503 at once because `MAX_IN_FLIGHT` were already being handled.
    pub(crate) shed: IntCounter,
    /// `coupon_redis_script_duration_seconds{result}`: one EVALSHA of the issue script.
    redis_script: HistogramVec,
    writer_batch_size: Histogram,
    writer_batch_duration: Histogram,
    /// Issue (Redis clock, from the stream entry id) to commit (this host's clock), for the
    /// oldest entry of each batch.
    writer_lag: Histogram,
    /// `coupon_writer_entries_total{result}`: `inserted`, `duplicate` (a redelivery), `dead`.
    pub(crate) writer_entries: IntCounterVec,
    pub(crate) writer_failures: IntCounter,
    /// Gathered from Redis at each scrape (see [`sale`]), for the events on sale around now.
    pub(crate) day_issued: IntGaugeVec,
    pub(crate) day_limit: IntGaugeVec,
    pub(crate) stream_length: IntGaugeVec,
    pub(crate) stream_pending: IntGaugeVec,
    pub(crate) dead_letters: IntGaugeVec,
    pub(crate) stream_oldest_age: GaugeVec,
    pub(crate) gather_failures: IntCounter,
    /// The scrape-time gauges are reset and refilled under this lock, so two scrapes at once
    /// never encode half a refill.
    pub(crate) refill: Mutex<()>,
    /// Unix time of the last successful refill, to show how fresh the gauges are.
    pub(crate) refilled_at: Gauge,
}

impl Metrics {
    /// A fresh registry with every metric registered; `max_in_flight` is exported as the limit.
    pub fn new(max_in_flight: usize) -> Self {
        let registry = Registry::new();
        let r = &registry;
        let inner = Inner {
            issue_requests: counter_vec(
                r,
                "coupon_issue_requests_total",
                "Issue requests by outcome code and event",
                &["event", "outcome"],
            ),
            http_duration: histogram_vec(
                r,
                "coupon_http_request_duration_seconds",
                "HTTP request latency by route pattern",
                &["method", "route"],
                LATENCY_BUCKETS,
            ),
            http_responses: counter_vec(
                r,
                "coupon_http_responses_total",
                "HTTP responses by route pattern and status",
                &["method", "route", "status"],
            ),
            in_flight: register(r, IntGauge::new("coupon_http_in_flight", "Requests being handled now")),
            in_flight_limit: register(
                r,
                IntGauge::new("coupon_http_in_flight_limit", "MAX_IN_FLIGHT: more are shed"),
            ),
            shed: register(
                r,
                IntCounter::new(
                    "coupon_http_shed_total",
                    "Requests answered 503 at once: the in-flight limit was reached",
                ),
            ),
            redis_script: histogram_vec(
                r,
                "coupon_redis_script_duration_seconds",
                "One run of the issue script (EVALSHA), by result",
                &["result"],
                LATENCY_BUCKETS,
            ),
            writer_batch_size: histogram(
                r,
                "coupon_writer_batch_size",
                "Entries per stored writer batch",
                BATCH_BUCKETS,
            ),
            writer_batch_duration: histogram(
                r,
                "coupon_writer_batch_duration_seconds",
                "Time to read, store and acknowledge one batch",
                LATENCY_BUCKETS,
            ),
            writer_lag: histogram(
                r,
                "coupon_writer_lag_seconds",
                "From issue to commit in Postgres, for the oldest entry of each batch",
                LAG_BUCKETS,
            ),
            writer_entries: counter_vec(
                r,
                "coupon_writer_entries_total",
                "Stream entries the writer handled, by result (inserted, duplicate, dead)",
                &["result"],
            ),
            writer_failures: register(
                r,
                IntCounter::new(
                    "coupon_writer_failures_total",
                    "Writer steps that failed (Redis or Postgres); retried",
                ),
            ),
            day_issued: int_gauge_vec(
                r,
                "coupon_day_issued",
                "Coupons issued on the event's current day",
                &["event", "day"],
            ),
            day_limit: int_gauge_vec(r, "coupon_day_limit", "The event's daily limit", &["event", "day"]),
            stream_length: int_gauge_vec(
                r,
                "coupon_stream_length",
                "Entries in the event's stream, not yet stored in Postgres",
                &["event"],
            ),
            stream_pending: int_gauge_vec(
                r,
                "coupon_stream_pending",
                "Entries read by a writer, not yet acknowledged",
                &["event"],
            ),
            dead_letters: int_gauge_vec(
                r,
                "coupon_dead_letters",
                "Entries the writer could not read, in the event's dead-letter stream",
                &["event"],
            ),
            stream_oldest_age: register(
                r,
                GaugeVec::new(
                    Opts::new(
                        "coupon_stream_oldest_entry_age_seconds",
                        "Age of the oldest entry not yet stored: the writer's lag now (0: caught up)",
                    ),
                    &["event"],
                ),
            ),
            gather_failures: register(
                r,
                IntCounter::new(
                    "coupon_metrics_gather_failures_total",
                    "Scrapes whose per-event figures could not be read from Redis",
                ),
            ),
            refill: Mutex::new(()),
            refilled_at: register(
                r,
                Gauge::new(
                    "coupon_metrics_gathered_timestamp_seconds",
                    "When the per-event figures were last read from Redis",
                ),
            ),
            registry,
        };
        inner.in_flight_limit.set(max_in_flight as i64);
        Self(Arc::new(inner))
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
        let result = if ok { "ok" } else { "error" };
        self.0
            .redis_script
            .with_label_values(&[result])
            .observe(took.as_secs_f64());
    }

    /// Records one HTTP answer. `method` and `route` must come from a bounded set.
    pub fn http_response(&self, method: &str, route: &str, status: &str, took: Duration) {
        let inner = &self.0;
        inner
            .http_duration
            .with_label_values(&[method, route])
            .observe(took.as_secs_f64());
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

fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: prometheus::Result<M>) -> M {
    // Names and label sets are constants of this file; a clash is a bug caught by every test.
    let metric = metric.expect("a valid metric definition");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(r, IntCounterVec::new(Opts::new(name, help), labels))
}

fn int_gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(r, IntGaugeVec::new(Opts::new(name, help), labels))
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    register(
        r,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec())),
    )
}

fn histogram_vec(r: &Registry, name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    register(
        r,
        HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels),
    )
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
