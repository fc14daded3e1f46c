//! `/live`: a page an operator keeps open on a sale day, and `/live/stats.json`, which it polls
//! every second.
//!
//! The page is three small files under `assets/live/`, built into the binary (nothing is
//! fetched from anywhere else). The JSON carries counters, not rates: the page works out
//! requests per second and latency percentiles from the difference between two polls, so the
//! server keeps no history.

use std::collections::BTreeMap;

use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use prometheus::core::{Collector, Metric};
use serde::Serialize;

use super::AppState;
use crate::metrics::sale::EventSnapshot;

const PAGE: &str = include_str!("../../assets/live/live.html");
const SCRIPT: &str = include_str!("../../assets/live/live.js");
const STYLE: &str = include_str!("../../assets/live/live.css");

/// The route whose latency the page shows.
use crate::metrics::ISSUE_ROUTE;

pub async fn page() -> HttpResponse {
    asset("text/html; charset=utf-8", PAGE)
}

pub async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .body(body)
}

#[derive(Serialize)]
struct Stats {
    /// The Redis clock when the figures were read; `None` when Redis did not answer.
    at: Option<DateTime<Utc>>,
    events: Vec<LiveEvent>,
    /// Issue answers so far by outcome, all events together (ids the service does not know
    /// included).
    outcomes: BTreeMap<String, u64>,
    /// The issue route's latency histogram: cumulative counts per upper bound, in seconds.
    latency: Latency,
    in_flight: i64,
    in_flight_limit: i64,
    shed: u64,
    writer_failures: u64,
}

#[derive(Serialize)]
struct LiveEvent {
    #[serde(flatten)]
    snapshot: EventSnapshot,
    /// Issue answers so far for this event, by outcome.
    outcomes: BTreeMap<String, u64>,
}

#[derive(Serialize)]
struct Latency {
    bounds: Vec<f64>,
    cumulative: Vec<u64>,
    count: u64,
    sum: f64,
}

pub async fn stats(state: web::Data<AppState>) -> HttpResponse {
    let sale = super::metrics::refresh(&state).await;
    let m = state.metrics.inner();

    let mut by_event: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for family in m.issue_requests.collect() {
        for metric in family.get_metric() {
            let label = |name: &str| {
                metric
                    .get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default()
            };
            let n = metric.get_counter().get_value() as u64;
            *outcomes.entry(label("outcome")).or_default() += n;
            *by_event
                .entry(label("event"))
                .or_default()
                .entry(label("outcome"))
                .or_default() += n;
        }
    }

    let histogram = m.http_duration.with_label_values(&ISSUE_ROUTE).metric();
    let histogram = histogram.get_histogram();
    let (bounds, cumulative) = histogram
        .get_bucket()
        .iter()
        .map(|b| (b.upper_bound(), b.cumulative_count()))
        .unzip();

    let events = sale
        .as_ref()
        .map(|s| s.events.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|snapshot| LiveEvent {
            outcomes: by_event
                .get(&snapshot.event_id.to_string())
                .cloned()
                .unwrap_or_default(),
            snapshot,
        })
        .collect();

    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(Stats {
            at: sale.as_ref().map(|s| s.at),
            events,
            outcomes,
            latency: Latency {
                bounds,
                cumulative,
                count: histogram.get_sample_count(),
                sum: histogram.get_sample_sum(),
            },
            in_flight: m.in_flight.get(),
            in_flight_limit: state.metrics.in_flight_limit(),
            shed: m.shed.get(),
            writer_failures: m.writer_failures.get(),
        })
}
