//! What the writer tells about each batch: the span fields an operator filters on, and the
//! metrics (batch size, lag, failures).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::streams::StreamId;

use super::{Outcome, WriterError};
use crate::domain::{Bucket, EventId};
use crate::metrics::{Metrics, WriterBatch};

/// Records a stored batch into the current `writer_batch` span and the metrics.
pub(super) fn stored(
    metrics: &Metrics,
    batch: &[(String, Bucket, StreamId)],
    inserted: u64,
    dead: usize,
    took: Duration,
) {
    let summary = summarize(batch);
    let span = tracing::Span::current();
    span.record("entries", batch.len());
    span.record("inserted", inserted);
    span.record("event_id", summary.events.as_str());
    span.record("day", summary.days.as_str());
    span.record("latency_ms", millis(took));
    if let Some(lag) = summary.lag {
        span.record("lag_ms", lag.as_millis() as u64);
    }
    metrics.writer_batch(WriterBatch {
        entries: batch.len(),
        inserted,
        dead,
        took,
        lag: summary.lag,
    });
}

/// Records how a step ended: `outcome` in the span, a log line for a stored batch (DEBUG,
/// target `writer`), a failure in the metrics (the loop logs the error itself).
pub(super) fn finished(result: &Result<Outcome, WriterError>, metrics: &Metrics) {
    let span = tracing::Span::current();
    match result {
        Ok(Outcome::Idle) => {
            span.record("outcome", "idle");
        }
        Ok(Outcome::Stored { .. }) => {
            span.record("outcome", "stored");
            tracing::debug!(target: "writer", "batch stored");
        }
        Err(_) => {
            span.record("outcome", "failed");
            metrics.writer_failure();
        }
    }
}

/// The events and days in a batch, each list joined by `,` (a batch usually holds one of
/// each), and how long ago its oldest entry was issued.
struct BatchSummary {
    events: String,
    days: String,
    /// Entry ids begin with the Redis clock's milliseconds at XADD; measured against this
    /// host's clock, so it is only as exact as the two clocks agree.
    lag: Option<Duration>,
}

fn summarize(batch: &[(String, Bucket, StreamId)]) -> BatchSummary {
    let events: BTreeSet<EventId> = batch.iter().map(|(_, b, _)| b.event).collect();
    let days: BTreeSet<String> = batch
        .iter()
        .filter_map(|(_, _, entry)| entry.get::<String>("day"))
        .collect();
    let oldest_ms = batch
        .iter()
        .filter_map(|(_, _, entry)| entry.id.split('-').next()?.parse::<u64>().ok())
        .min();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    BatchSummary {
        events: join(events.iter()),
        days: join(days.iter()),
        lag: oldest_ms.map(|ms| Duration::from_millis(now_ms.saturating_sub(ms))),
    }
}

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

/// Milliseconds with microsecond precision, for log fields.
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}
