//! `coupon-issuer inspect EVENT [--day DAY]`: one event day as Redis and Postgres see it, so an
//! operator never has to type Redis commands on a sale day.

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use serde::Serialize;

use super::{Connection, Session, print_json, table};
use crate::domain::{DayStatus, Event, EventId, parse_day};
use crate::issuing::BucketFigures;
use crate::store;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The event id.
    event: String,
    /// The event day, YYYY-MM-DD; default: the day on now, by the Redis clock.
    #[arg(long)]
    day: Option<String>,
}

/// What `inspect` reports.
#[derive(Debug, Serialize)]
struct Inspection {
    event_id: EventId,
    name: String,
    day: NaiveDate,
    /// The Redis clock, which decides the windows.
    now: DateTime<Utc>,
    status: DayStatus,
    /// `None` when the event has no window that day.
    window_open: Option<DateTime<Utc>>,
    window_close: Option<DateTime<Utc>>,
    /// The day's counter in Redis; `None` when Redis has none (nothing issued yet, or its keys
    /// have expired after the day).
    issued: Option<u64>,
    daily_limit: u32,
    remaining: u64,
    /// Users holding the day's coupon, by Redis (equals `issued`).
    users: u64,
    /// Coupons of the day stored in Postgres.
    stored: u64,
    /// Entries in the event's stream not yet stored (all days).
    stream_length: u64,
    /// Entries read by a writer and not yet acknowledged.
    pending: u64,
    /// Entries the writer could not read.
    dead_letters: u64,
    /// Age of the oldest entry still in the stream: how far the writer is behind. 0 when the
    /// stream is empty.
    writer_lag_ms: i64,
    /// Whether Redis holds the event's settings (the issue script refuses without them), in
    /// every bucket.
    published: bool,
    /// How many buckets the day's stock is split over (1: unsharded).
    shards: u16,
    /// What each bucket's Redis keys start with, bucket 0 first: the day's are
    /// `<prefix><day>:count` and `<prefix><day>:users` (see `issuing::keys`).
    key_prefixes: Vec<String>,
}

/// What Redis holds for the event: its buckets' figures, summed.
#[derive(Debug, Default)]
struct RedisFigures {
    published: bool,
    issued: Option<u64>,
    users: u64,
    stream_length: u64,
    dead_letters: u64,
    pending: u64,
    writer_lag_ms: i64,
}

impl RedisFigures {
    /// Adds one bucket's figures; its lag measured against `now`.
    fn add(&mut self, other: BucketFigures, now: DateTime<Utc>) {
        self.published &= other.published;
        self.issued = match (self.issued, other.issued) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        self.users += other.users;
        self.stream_length += other.stream_length;
        self.dead_letters += other.dead_letters;
        self.pending += other.pending;
        let lag_ms = other
            .oldest_entry_ms
            .map_or(0, |added_ms| (now.timestamp_millis() - added_ms).max(0));
        self.writer_lag_ms = self.writer_lag_ms.max(lag_ms);
    }
}

pub async fn run_inspect(connection: &Connection, args: InspectArgs) -> anyhow::Result<()> {
    let id = EventId::parse(&args.event).map_err(|e| anyhow::anyhow!("event id: {e}"))?;
    let day = args
        .day
        .as_deref()
        .map(|d| parse_day(d).context("--day: must be a date \"YYYY-MM-DD\""))
        .transpose()?;
    let ctx = connection.open().await?;
    let event = ctx.catalog.get(id).await?.context("no such event")?;
    let inspection = inspect(&ctx, &event, day).await?;
    if ctx.json {
        print_json(&inspection)
    } else {
        print_table(&event, &inspection);
        Ok(())
    }
}

async fn inspect(ctx: &Session, event: &Event, day: Option<NaiveDate>) -> anyhow::Result<Inspection> {
    let now = ctx.issuer.now().await?;
    let day = day.unwrap_or_else(|| event.current_day(now));
    let mut redis = RedisFigures {
        published: true,
        ..RedisFigures::default()
    };
    // A sharded event: every bucket's figures, summed (the lag: the oldest entry of any).
    let mut reader = ctx.issuer.reader();
    for bucket in event.shards.buckets(event.id) {
        redis.add(reader.figures(bucket, day).await.context("reading Redis")?, now);
    }
    let RedisFigures {
        published,
        issued,
        users,
        stream_length,
        dead_letters,
        pending,
        writer_lag_ms,
    } = redis;
    let stored = store::coupons::count_day(&ctx.db, event.id, day).await?;

    let window = event.window_on(day);
    let counted = issued.unwrap_or(stored);
    Ok(Inspection {
        event_id: event.id,
        name: event.name.clone(),
        day,
        now,
        status: event.status_on(day, now, counted),
        window_open: window.map(|w| w.open),
        window_close: window.map(|w| w.close),
        issued,
        daily_limit: event.daily_limit,
        remaining: u64::from(event.daily_limit).saturating_sub(counted),
        users,
        stored,
        stream_length,
        pending,
        dead_letters,
        writer_lag_ms,
        published,
        shards: event.shards.get(),
        key_prefixes: event
            .shards
            .buckets(event.id)
            .map(|bucket| ctx.issuer.keys().event_prefix(bucket))
            .collect(),
    })
}

/// The status as the API spells it (`not_open`, `sold_out`, ...).
fn status_name(status: DayStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn print_table(event: &Event, i: &Inspection) {
    let tz = event.timezone;
    let local = |t: DateTime<Utc>| {
        let here = t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z");
        if tz == chrono_tz::UTC {
            here.to_string()
        } else {
            format!("{here} ({} UTC)", t.format("%H:%M:%S"))
        }
    };
    let window = match (i.window_open, i.window_close) {
        (Some(open), Some(close)) => format!("{} .. {}", local(open), local(close)),
        _ => "no window this day".to_string(),
    };
    let issued = match i.issued {
        Some(n) => n.to_string(),
        None => format!("none in Redis (Postgres has {})", i.stored),
    };
    let mut t = table(&["", &format!("{} ({})", i.event_id, i.name)]);
    let rows = [
        ("day", i.day.to_string()),
        ("now (Redis clock)", local(i.now)),
        ("window", window),
        ("status", status_name(i.status)),
        ("issued", issued),
        ("daily limit", i.daily_limit.to_string()),
        ("shards", i.shards.to_string()),
        ("keys", i.key_prefixes.join("\n")),
        ("remaining", i.remaining.to_string()),
        ("users holding one", i.users.to_string()),
        ("stored in Postgres", i.stored.to_string()),
        ("stream length", i.stream_length.to_string()),
        ("pending (read, not acked)", i.pending.to_string()),
        ("dead letters", i.dead_letters.to_string()),
        ("writer lag", format!("{} ms", i.writer_lag_ms)),
        (
            "published to Redis",
            if i.published {
                "yes"
            } else {
                "NO: requests answer 503 until it is"
            }
            .to_string(),
        ),
    ];
    for (field, value) in rows {
        t.add_row(vec![field.to_string(), value]);
    }
    println!("{t}");
}
