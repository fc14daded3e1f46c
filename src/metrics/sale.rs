//! The sale as it stands now, read from Redis: for each event on sale around now, its current
//! day's count against the limit, and the writer's backlog on its stream.
//!
//! Gathered when `/metrics` or `/live/stats.json` is asked, not by a timer: an idle service
//! does no work for it, and what a scrape shows is never older than the scrape. It costs one
//! Redis TIME, one Postgres list of events (the cached list if Postgres is down) and two round
//! trips per event on the shared connection (per bucket of a sharded event, summed).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use redis::AsyncCommands;
use redis::streams::{StreamPendingReply, StreamRangeReply};
use serde::Serialize;

use super::{EventLabel, Metrics};
use crate::catalog::Catalog;
use crate::domain::{Bucket, DayStatus, Event, EventId};
use crate::issuing::{Issuer, WRITER_GROUP};

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
    let mut total = BucketFigures::default();
    // A sharded event's figures are the sum over its buckets (the lag: the oldest of them).
    for bucket in event.shards.buckets(event.id) {
        total.add(read_bucket(issuer, bucket, day).await?);
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

/// One bucket's figures (all of an unsharded event's).
#[derive(Debug, Default)]
struct BucketFigures {
    issued: u64,
    stream_length: u64,
    pending: u64,
    dead_letters: u64,
    writer_lag_seconds: f64,
}

impl BucketFigures {
    fn add(&mut self, other: BucketFigures) {
        self.issued += other.issued;
        self.stream_length += other.stream_length;
        self.pending += other.pending;
        self.dead_letters += other.dead_letters;
        self.writer_lag_seconds = self.writer_lag_seconds.max(other.writer_lag_seconds);
    }
}

async fn read_bucket(issuer: &Issuer, bucket: Bucket, day: NaiveDate) -> anyhow::Result<BucketFigures> {
    let keys = issuer.keys();
    let stream = keys.stream(bucket);
    let mut conn = issuer.connection();
    let mut pipe = redis::pipe();
    pipe.get(keys.day_count(bucket, day))
        .xlen(&stream)
        .xlen(keys.dead_letters(bucket))
        .xrange_count(&stream, "-", "+", 1)
        // The clock again, in the same pipeline: entries added since `now` are not "from the
        // future", and the lag is measured against the moment the oldest entry was seen.
        .cmd("TIME");
    let (issued, stream_length, dead_letters, oldest, (secs, micros)): (
        Option<u64>,
        u64,
        u64,
        StreamRangeReply,
        (i64, i64),
    ) = pipe.query_async(&mut conn).await?;
    let seen_ms = secs * 1000 + micros / 1000;
    // Apart, because it fails (NOGROUP) while the event is being published again.
    let pending = conn
        .xpending::<_, _, StreamPendingReply>(&stream, WRITER_GROUP)
        .await
        .map_or(0, |reply| reply.count() as u64);
    // Entry ids start with the Redis clock's milliseconds at XADD.
    let oldest_ms = oldest
        .ids
        .first()
        .and_then(|entry| entry.id.split('-').next()?.parse::<i64>().ok());
    Ok(BucketFigures {
        issued: issued.unwrap_or(0),
        stream_length,
        pending,
        dead_letters,
        writer_lag_seconds: oldest_ms.map_or(0.0, |ms| (seen_ms - ms).max(0) as f64 / 1000.0),
    })
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
