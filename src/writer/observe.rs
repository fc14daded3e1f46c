//! What the writer tells about each batch: the span fields an operator filters on, and the
//! metrics (batch size, lag, failures).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::read::{StreamBatch, count};
use super::{Outcome, WriterError};
use crate::domain::EventId;
use crate::issuing::wire;
use crate::metrics::{Metrics, WriterBatch};

/// Records a stored batch into the current `writer_batch` span and the metrics.
pub(super) fn stored(metrics: &Metrics, batch: &[StreamBatch], inserted: u64, dead: usize, took: Duration) {
    let entries = count(batch);
    let lag = lag(batch);
    let span = tracing::Span::current();
    // The span is off below INFO for target `writer` (RUST_LOG=warn): then its fields, a
    // string per batch and a look at every entry's day, are not worth building.
    if !span.is_disabled() {
        let summary = summarize(batch);
        span.record("entries", entries);
        span.record("inserted", inserted);
        span.record("event_id", summary.events.as_str());
        span.record("day", summary.days.as_str());
        span.record("latency_ms", millis(took));
        if let Some(lag) = lag {
            span.record("lag_ms", lag.as_millis() as u64);
        }
    }
    metrics.writer_batch(WriterBatch {
        entries,
        inserted,
        dead,
        took,
        lag,
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
/// each).
struct BatchSummary {
    events: String,
    days: String,
}

fn summarize(batch: &[StreamBatch]) -> BatchSummary {
    let events: BTreeSet<EventId> = batch.iter().map(|s| s.bucket.event).collect();
    let days: BTreeSet<&str> = batch
        .iter()
        .flat_map(|s| &s.entries)
        .filter_map(|entry| entry.text(wire::field::DAY))
        .collect();
    BatchSummary {
        events: join(events.iter()),
        days: join(days.iter()),
    }
}

/// How long ago the batch's oldest entry was issued. Entry ids begin with the Redis clock's
/// milliseconds at XADD; measured against this host's clock, so it is only as exact as the two
/// clocks agree. A stream's entries come in id order, so each stream's first is its oldest.
fn lag(batch: &[StreamBatch]) -> Option<Duration> {
    let oldest_ms = batch
        .iter()
        .filter_map(|s| s.entries.first()?.id.split('-').next()?.parse::<u64>().ok())
        .min()?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Some(Duration::from_millis(now_ms.saturating_sub(oldest_ms)))
}

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

/// Milliseconds with microsecond precision, for log fields.
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}
