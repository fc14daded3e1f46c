//! What recording one issue request's metrics costs, on one thread and on two at once (the
//! labelled children are shared, so two threads contend on the same atomics).
//!
//!     cargo bench --bench metrics_hot_path
//!
//! Prints nanoseconds per request: the issue outcome by event, the route's latency histogram
//! and status counter, and the script's latency histogram: everything the issue path records.

use std::hint::black_box;
use std::time::{Duration, Instant};

use coupon_issuer::domain::EventId;
use coupon_issuer::metrics::Metrics;

const N: u32 = 2_000_000;

fn record(metrics: &Metrics, event: EventId, i: u32) {
    let outcome = if i.is_multiple_of(10) { "sold_out" } else { "issued" };
    metrics.issue_outcome(Some(black_box(event)), outcome);
    metrics.redis_script(Duration::from_micros(300 + u64::from(i % 500)), true);
    metrics.http_response("POST", "/v1/coupon/issue", "201", Duration::from_micros(450));
}

fn main() {
    let metrics = Metrics::new(4096);
    let events: Vec<EventId> = (0..20).map(|_| EventId::new()).collect();
    for threads in [1, 2] {
        let started = Instant::now();
        std::thread::scope(|s| {
            for t in 0..threads {
                let (metrics, events) = (&metrics, &events);
                s.spawn(move || {
                    for i in 0..N {
                        record(metrics, events[(i as usize + t) % events.len()], i);
                    }
                });
            }
        });
        let per_request = started.elapsed() / (N * threads as u32);
        println!(
            "metrics per issue request, {threads} thread(s): {:.0} ns ({} requests each)",
            per_request.as_nanos(),
            N
        );
    }
    let text = metrics.encode();
    let started = Instant::now();
    let _ = black_box(metrics.encode());
    println!(
        "encoding /metrics with 20 events: {:.0} µs, {} bytes",
        started.elapsed().as_micros(),
        text.len()
    );
}
