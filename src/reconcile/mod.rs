//! `coupon-issuer reconcile`: compare Redis with Postgres for each event day, report every
//! difference, and with `--repair` bring the two back into agreement.
//!
//! - [`snapshot`]: reads both stores for one day, in an order that is fair while the service runs.
//! - [`diff`]: the comparison, pure: count, users on either side, numbers 1..count, stuck entries.
//! - [`repair`]: which side wins for each kind of difference, and why.
//! - [`report`]: the tables it prints.

pub mod diff;
pub mod repair;
pub mod report;
pub mod snapshot;

#[cfg(test)]
mod tests;

use chrono::{NaiveDate, Utc};
use clap::Args;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::config::Connections;
use crate::domain::{Event, EventId, parse_day};
use crate::issuing::Keys;
use crate::store;

pub use diff::Difference;
pub use repair::Action;

/// What `reconcile` reads and how. The connection settings are those of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ReconcileArgs {
    /// Only this event (default: every event with a day whose Redis keys are still alive).
    #[arg(long, value_parser = |s: &str| EventId::parse(s))]
    pub event: Option<EventId>,

    /// Only this day, "YYYY-MM-DD" (default: every day that has opened and whose keys are alive).
    #[arg(long, value_parser = |s: &str| parse_day(s).ok_or("must be a date \"YYYY-MM-DD\""))]
    pub day: Option<NaiveDate>,

    /// Repair what can be repaired safely (see docs/operations.md, "Reconciliation"), then compare again.
    #[arg(long)]
    pub repair: bool,

    /// A stream entry waiting this long (pending at a writer, or never read) counts as stuck, in s.
    #[arg(long, env = "RECONCILE_STUCK_SECS", default_value_t = 60)]
    pub stuck_after_secs: u64,

    /// Where the data is, as for `serve`.
    #[command(flatten)]
    pub connections: Connections,

    /// Must match the service's: keys created by a repair get the same expiry.
    #[arg(long, env = "DAY_KEY_TTL_HOURS", default_value_t = 72)]
    pub day_key_ttl_hours: u64,
}

/// One event day: what was found, what was done, what is left.
#[derive(Debug, Clone)]
pub struct DayReport {
    pub event: EventId,
    pub day: NaiveDate,
    /// The bucket compared (0 for an unsharded event).
    pub shard: u16,
    pub before: snapshot::DaySnapshot,
    pub found: Vec<Difference>,
    pub actions: Vec<Action>,
    /// After a repair, the differences still there; without one, the same as `found`.
    pub remaining: Vec<Difference>,
    /// Why the day was not compared, when it was not.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub days: Vec<DayReport>,
}

impl Report {
    /// 0 when the stores agree (after the repair, with `--repair`), 3 when differences remain:
    /// not 1 (an error, from `main`) nor 2 (a usage error, from clap), so a script can tell.
    pub fn exit_code(&self) -> i32 {
        if self.days.iter().any(|d| !d.remaining.is_empty()) {
            3
        } else {
            0
        }
    }
}

/// Compares (and with `repair`, repairs) every selected event day.
pub async fn run(args: &ReconcileArgs) -> anyhow::Result<Report> {
    let database = args.connections.database.parse()?;
    let redis = args.connections.redis_target()?;
    // Not store::connect: a mistyped DATABASE_URL must fail, not create an empty database.
    let db = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_with(database.options().clone())
        .await
        .map_err(crate::store::ConnectError::from)?;
    let mut redis = redis.multiplexed(std::time::Duration::from_secs(5))?;
    let keys = Keys::new(&args.connections.redis_key_prefix);
    let ttl = chrono::Duration::hours(args.day_key_ttl_hours as i64);
    let stuck_ms = args.stuck_after_secs * 1000;

    let mut report = Report::default();
    // A sharded event is compared bucket by bucket: each is an event of its own in Redis, with
    // its share of the limit, its numbers and its stream.
    let selected = events(&db, args.event).await?;
    let buckets = selected
        .iter()
        .flat_map(|event| event.shards.buckets(event.id).map(move |bucket| (event, bucket)));
    for (event, bucket) in buckets {
        for day in days(event, args.day, ttl) {
            let before = snapshot::take(&mut redis, &db, &keys, event, bucket, day).await?;
            let expired = event.window_on(day).is_none_or(|w| w.close + ttl <= Utc::now());
            let (found, actions, remaining, note) = if expired {
                // Its keys have expired (or it is not a day of the event): Postgres is the whole
                // record, and nothing in Redis can disagree with it any more.
                let note = "no window, or its Redis keys have expired: nothing to compare";
                (Vec::new(), Vec::new(), Vec::new(), Some(note.to_owned()))
            } else {
                let found = diff::compare(&before, stuck_ms);
                let (actions, remaining) = if args.repair && !found.is_empty() {
                    let actions = repair::repair(&mut redis, &db, &keys, event, &before, &found, ttl).await?;
                    let after = snapshot::take(&mut redis, &db, &keys, event, bucket, day).await?;
                    (actions, diff::compare(&after, stuck_ms))
                } else {
                    (Vec::new(), found.clone())
                };
                tracing::info!(event_id = %event.id, shard = bucket.shard, %day, found = found.len(), remaining = remaining.len(), "reconciled");
                (found, actions, remaining, None)
            };
            report.days.push(DayReport {
                event: event.id,
                day,
                shard: bucket.shard,
                before,
                found,
                actions,
                remaining,
                note,
            });
        }
    }
    Ok(report)
}

async fn events(db: &PgPool, only: Option<EventId>) -> anyhow::Result<Vec<Event>> {
    match only {
        Some(id) => store::events::get(db, id)
            .await?
            .map(|e| vec![e])
            .ok_or_else(|| anyhow::anyhow!("no event {id}")),
        None => Ok(store::events::list(db).await?),
    }
}

/// The given day, or every day that has opened and whose keys have not expired yet.
fn days(event: &Event, only: Option<NaiveDate>, ttl: chrono::Duration) -> Vec<NaiveDate> {
    if let Some(day) = only {
        return vec![day];
    }
    let now = Utc::now();
    event
        .windows()
        .into_iter()
        .filter(|w| w.open <= now && w.close + ttl > now)
        .map(|w| w.day)
        .collect()
}
