//! What the writer tells about each batch: the span fields an operator filters on, and the
//! metrics (batch size, lag, failures).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::streams::StreamId;

use crate::domain::EventId;

/// The events and days in a batch, each list joined by `,` (a batch usually holds one of
/// each), and how long ago its oldest entry was issued.
pub(super) struct BatchSummary {
    pub events: String,
    pub days: String,
    /// Entry ids begin with the Redis clock's milliseconds at XADD; measured against this
    /// host's clock, so it is only as exact as the two clocks agree.
    pub lag: Option<Duration>,
}

pub(super) fn summarize(batch: &[(String, EventId, StreamId)]) -> BatchSummary {
    let events: BTreeSet<EventId> = batch.iter().map(|(_, e, _)| *e).collect();
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
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}
