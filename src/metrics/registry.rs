//! Every metric's name, help, labels and buckets, registered in one registry per app.

use std::sync::{Mutex, OnceLock};

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

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

/// The issue route's labels, `method` and `route`: its series are kept resolved (`IssueRoute`).
pub(crate) const ISSUE_ROUTE: [&str; 2] = ["POST", "/v1/coupon/issue"];

/// The statuses the issue route answers with, whose response counters `IssueRoute` keeps.
pub(super) const ISSUE_STATUSES: [&str; 13] = [
    "201", "400", "401", "403", "404", "405", "409", "410", "413", "415", "429", "500", "503",
];

/// The issue route's children of `http_duration` and `http_responses`, each resolved on its
/// first use (so a series appears when first recorded, as for every other route) and kept.
#[derive(Default)]
pub(crate) struct IssueRoute {
    pub(crate) duration: OnceLock<Histogram>,
    /// One per `ISSUE_STATUSES`, in its order.
    pub(crate) responses: [OnceLock<IntCounter>; ISSUE_STATUSES.len()],
}

/// The registry and every metric in it; `Metrics` shares one behind an `Arc`.
pub(crate) struct Inner {
    pub(crate) registry: Registry,
    /// `coupon_issue_requests_total{event, outcome}`: every answer of `POST /v1/coupon/issue`
    /// whose body was read, by its outcome code (`issued` or the error code).
    pub(crate) issue_requests: IntCounterVec,
    /// `coupon_http_request_duration_seconds{method, route}`: per route pattern, not raw path.
    pub(crate) http_duration: HistogramVec,
    /// `coupon_http_responses_total{method, route, status}`.
    pub(crate) http_responses: IntCounterVec,
    pub(crate) issue_route: IssueRoute,
    /// Requests being handled now; set from the in-flight semaphore at each scrape.
    pub(crate) in_flight: IntGauge,
    pub(crate) in_flight_limit: IntGauge,
    /// Requests answered 503 at once because `MAX_IN_FLIGHT` were already being handled.
    pub(crate) shed: IntCounter,
    /// `coupon_redis_script_duration_seconds{result}`: one EVALSHA of the issue script.
    pub(crate) redis_script: HistogramVec,
    /// Its two children, `ok` and `error`, each resolved on its first use (so a series appears
    /// when first recorded, as before) and kept: a request then records without a label lookup.
    pub(crate) redis_script_ok: OnceLock<Histogram>,
    pub(crate) redis_script_error: OnceLock<Histogram>,
    pub(crate) writer_batch_size: Histogram,
    pub(crate) writer_batch_duration: Histogram,
    /// Issue (Redis clock, from the stream entry id) to commit (this host's clock), for the
    /// oldest entry of each batch.
    pub(crate) writer_lag: Histogram,
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

impl Inner {
    /// A fresh registry with every metric registered; `max_in_flight` is exported as the limit.
    pub(super) fn new(max_in_flight: usize) -> Self {
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
            issue_route: IssueRoute::default(),
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
            redis_script_ok: OnceLock::new(),
            redis_script_error: OnceLock::new(),
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
        inner
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
