//! The sale as it stands now, read from Redis: for each event on sale around now, its current
//! day's count against the limit, and the writer's backlog on its stream.
//!
//! Gathered when `/metrics` or `/live/stats.json` is asked, not by a timer: an idle service
//! does no work for it, and what a scrape shows is never older than the scrape. It costs one
//! Redis TIME, one Postgres list of events (the cached list if Postgres is down) and two round
//! trips per event on the shared connection (per bucket of a sharded event, summed): see
//! `issuing::BucketReader::figures`.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;

use super::{EventLabel, Metrics};
use crate::catalog::Catalog;
use crate::domain::{DayStatus, Event, EventId};
use crate::issuing::{BucketFigures, Issuer};

/// The most one gathering may take; past it the scrape answers without per-event figures.
const GATHER_TIMEOUT: Duration = Duration::from_secs(2);

/// One event, now.
#[derive(Debug, Clone, Serialize)]
pub struct EventSnapshot {
    pub event_id: EventId,
    pub name: String,
    /// The day the sale is on (the current day, held within the event's first and last day).
    pub day: NaiveDate,
    pub status: DayStatus,
    pub issued: u64,
    pub daily_limit: u32,
    /// Entries in the stream: issued, not yet stored in Postgres.
    pub stream_length: u64,
    /// Entries a writer has read but not yet acknowledged.
    pub pending: u64,
    pub dead_letters: u64,
    /// Age of the oldest entry still in the stream, by the Redis clock; 0 when caught up.
    pub writer_lag_seconds: f64,
}

/// Every event on sale around now.
#[derive(Debug, Clone, Serialize)]
pub struct Sale {
    /// The Redis clock's now, the clock windows are decided by.
    pub at: DateTime<Utc>,
    pub events: Vec<EventSnapshot>,
}

/// Reads the sale from Redis.
pub async fn gather(issuer: &Issuer, catalog: &Catalog) -> anyhow::Result<Sale> {
    tokio::time::timeout(GATHER_TIMEOUT, async {
        let now = issuer.now().await?;
        let events = catalog.refresh().await;
        let mut snapshots = Vec::new();
        for event in events.iter().filter(|e| on_sale_around(e, now)) {
            snapshots.push(read_event(issuer, event, now).await?);
        }
        Ok(Sale {
            at: now,
            events: snapshots,
        })
    })
    .await
    .map_err(|_| anyhow::anyhow!("reading the sale from Redis took over {GATHER_TIMEOUT:?}"))?
}

/// Events from the day before their first day to the day after their last: the ones an
/// operator watches, and whose streams may still be draining.
fn on_sale_around(event: &Event, now: DateTime<Utc>) -> bool {
    let day = event.current_day(now);
    let one = TimeDelta::days(1);
    event.starts_on <= day + one && day <= event.ends_on + one
}

async fn read_event(issuer: &Issuer, event: &Event, now: DateTime<Utc>) -> anyhow::Result<EventSnapshot> {
    let day = event.current_day(now).clamp(event.starts_on, event.ends_on);
    let mut total = Totals::default();
    let mut reader = issuer.reader();
    // A sharded event's figures are the sum over its buckets (the lag: the oldest of them).
    for bucket in event.shards.buckets(event.id) {
        total.add(reader.figures(bucket, day).await?);
    }
    Ok(EventSnapshot {
        event_id: event.id,
        name: event.name.clone(),
        day,
        status: event.status_on(day, now, total.issued),
        issued: total.issued,
        daily_limit: event.daily_limit,
        stream_length: total.stream_length,
        pending: total.pending,
        dead_letters: total.dead_letters,
        writer_lag_seconds: total.writer_lag_seconds,
    })
}

/// A sum of buckets' figures (one bucket's: all of an unsharded event's).
#[derive(Debug, Default)]
struct Totals {
    issued: u64,
    stream_length: u64,
    pending: u64,
    dead_letters: u64,
    writer_lag_seconds: f64,
}

impl Totals {
    fn add(&mut self, bucket: BucketFigures) {
        // The lag is measured against the moment the oldest entry was seen, not `now`.
        let lag_ms = bucket.oldest_entry_ms.map_or(0, |ms| (bucket.read_ms - ms).max(0));
        self.issued += bucket.issued.unwrap_or(0);
        self.stream_length += bucket.stream_length;
        self.pending += bucket.pending;
        self.dead_letters += bucket.dead_letters;
        self.writer_lag_seconds = self.writer_lag_seconds.max(lag_ms as f64 / 1000.0);
    }
}

impl Metrics {
    /// Replaces the per-event gauges with `sale`: events no longer on sale disappear.
    pub fn set_sale(&self, sale: &Sale) {
        let m = self.inner();
        let _refill = m.refill.lock();
        m.day_issued.reset();
        m.day_limit.reset();
        m.stream_length.reset();
        m.stream_pending.reset();
        m.dead_letters.reset();
        m.stream_oldest_age.reset();
        for e in &sale.events {
            let mut buf = EventLabel::buffer();
            let event = EventLabel::format(e.event_id, &mut buf);
            let day = e.day.to_string();
            m.day_issued.with_label_values(&[event, &day]).set(e.issued as i64);
            m.day_limit
                .with_label_values(&[event, &day])
                .set(i64::from(e.daily_limit));
            m.stream_length.with_label_values(&[event]).set(e.stream_length as i64);
            m.stream_pending.with_label_values(&[event]).set(e.pending as i64);
            m.dead_letters.with_label_values(&[event]).set(e.dead_letters as i64);
            m.stream_oldest_age
                .with_label_values(&[event])
                .set(e.writer_lag_seconds);
        }
        m.refilled_at.set(sale.at.timestamp_millis() as f64 / 1000.0);
    }

    /// The per-event figures could not be read: the gauges keep their last values.
    pub fn sale_unreadable(&self) {
        self.inner().gather_failures.inc();
    }
}
