//! Publishing an event to Redis without ever resetting its counters.
//!
//! Redis can lose its memory (a restart without persistence, a flush, a failover to an empty
//! replica). Publishing the event again would then let each day count from zero and oversell.
//! So when an event's settings are missing, the counters and user records of every day whose
//! keys would still be alive are first rebuilt from Postgres, plus whatever is still in the
//! event's stream (issued, not yet stored), and only then is the event published, settings
//! last. Until they exist the issue script answers "missing" and requests get 503: the
//! service waits rather than guesses.
//!
//! A sharded event is restored bucket by bucket: on a cluster one node can lose its memory while
//! the others keep theirs. Each bucket whose settings are missing is rebuilt from the Postgres
//! rows of its shard and its own stream, never lowering a count that is still there. A bucket
//! that some holder of another bucket walked past was dry, and is rebuilt dry (its count raised
//! to its share), whatever of its own coupons were lost with it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

use crate::domain::{Bucket, Coupon, Event, UserId};
use crate::issuing::wire::coupon_from_entry;
use crate::issuing::{Issuer, publish_event};
use crate::store;

/// Whether the event is being published for the first time, or again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Just created: nothing of it can be in Redis, or remembered by any instance.
    New,
    /// At start-up, or because the issue script found it missing.
    Again,
}

/// Publishes `event`, first rebuilding its day state if Redis has lost it.
#[tracing::instrument(skip_all, fields(event_id = %event.id))]
pub async fn ensure_published(issuer: &Issuer, db: &PgPool, event: &Event, publish: Publish) -> anyhow::Result<()> {
    let mut reader = issuer.reader();
    let mut missing = Vec::new();
    for bucket in event.shards.buckets(event.id) {
        if !reader.is_published(bucket).await? {
            missing.push(bucket);
        }
    }
    // A new event has no settings yet either, and nothing to rebuild: only warn when something
    // was actually lost.
    let rebuilt = if missing.is_empty() {
        0
    } else {
        rebuild_days(issuer, db, event, &missing).await?
    };
    if rebuilt > 0 {
        tracing::warn!(
            users = rebuilt,
            "event state was missing from Redis; rebuilt it from Postgres and the stream"
        );
    }
    // A lost event may come back with fewer coupons counted than it had (coupons lost with
    // Redis before reaching Postgres): instances that remember it sold out must forget first.
    let may_issue = event.windows().last().is_some_and(|w| w.close > Utc::now());
    if !missing.is_empty() && publish == Publish::Again && may_issue {
        tokio::time::sleep(issuer.fence()).await;
    }
    publish_event(&mut issuer.connection(), issuer.keys(), event, issuer.fence()).await?;
    Ok(())
}

/// Rebuilds every live day's count and user records of each of `buckets`, from one read of
/// Postgres; returns how many users it restored.
async fn rebuild_days(issuer: &Issuer, db: &PgPool, event: &Event, buckets: &[Bucket]) -> anyhow::Result<usize> {
    let ttl = chrono::Duration::from_std(issuer.day_key_ttl())?;
    let now = Utc::now();
    // Days whose keys would still exist; older ones expired anyway and cannot issue.
    let live: HashMap<NaiveDate, DateTime<Utc>> = event
        .windows()
        .into_iter()
        .filter(|w| w.close + ttl > now)
        .map(|w| (w.day, w.close + ttl))
        .collect();
    let Some(first_day) = live.keys().min().copied() else {
        return Ok(0);
    };

    let stored = store::coupons::for_event_since(db, event.id, first_day).await?;
    let holders = if event.shards.is_sharded() {
        holders_by_day(issuer, event, buckets, &live, &stored).await?
    } else {
        HashMap::new()
    };
    let mut rebuilt = 0;
    for &bucket in buckets {
        let mine = stored.iter().filter(|c| c.shard == bucket.shard).cloned().collect();
        // A user served by a later bucket of their walk found this one dry that day, and a dry
        // bucket must stay dry: were it rebuilt wet (its unstored coupons lost with it), that
        // user's next request would start their walk here and be issued a second coupon.
        let dry: HashSet<NaiveDate> = holders
            .iter()
            .filter(|(_, held)| {
                held.iter()
                    .any(|(user, served)| event.shards.walked_past(user, bucket.shard, *served))
            })
            .map(|(day, _)| *day)
            .collect();
        let share = event.shards.share(event.daily_limit, bucket.shard);
        rebuilt += rebuild_bucket(issuer, bucket, &live, mine, &dry, share).await?;
    }
    Ok(rebuilt)
}

/// Who holds a coupon of each live day, and from which bucket: every bucket's rows in Postgres,
/// plus the user records of the buckets Redis still has, which also name the holders whose
/// coupons are not stored yet.
async fn holders_by_day(
    issuer: &Issuer,
    event: &Event,
    lost: &[Bucket],
    live: &HashMap<NaiveDate, DateTime<Utc>>,
    stored: &[Coupon],
) -> anyhow::Result<HashMap<NaiveDate, Vec<(UserId, u16)>>> {
    let mut holders: HashMap<NaiveDate, Vec<(UserId, u16)>> = HashMap::new();
    for coupon in stored.iter().filter(|c| live.contains_key(&c.day)) {
        holders
            .entry(coupon.day)
            .or_default()
            .push((coupon.user_id.clone(), coupon.shard));
    }
    let mut reader = issuer.reader();
    for bucket in event.shards.buckets(event.id).filter(|b| !lost.contains(b)) {
        for &day in live.keys() {
            let users = reader.holders(bucket, day).await?;
            let held = holders.entry(day).or_default();
            held.extend(
                users
                    .iter()
                    .filter_map(|u| UserId::parse(u).ok())
                    .map(|u| (u, bucket.shard)),
            );
        }
    }
    Ok(holders)
}

/// One bucket: its coupons in Postgres (`coupons`) plus those still in its stream, written back
/// as each live day's user records and count; on the `dry` days, the count is raised to at
/// least the bucket's `share`, so that it stays sold out.
async fn rebuild_bucket(
    issuer: &Issuer,
    bucket: Bucket,
    live: &HashMap<NaiveDate, DateTime<Utc>>,
    mut coupons: Vec<Coupon>,
    dry: &HashSet<NaiveDate>,
    share: u32,
) -> anyhow::Result<usize> {
    let pending = issuer.reader().stream_entries(bucket).await?;
    coupons.extend(pending.iter().filter_map(|entry| coupon_from_entry(bucket, entry).ok()));

    let mut by_day: HashMap<NaiveDate, Vec<Coupon>> = HashMap::new();
    for coupon in coupons.into_iter().filter(|c| live.contains_key(&c.day)) {
        by_day.entry(coupon.day).or_default().push(coupon);
    }
    // A dry day whose every coupon was lost with the bucket still needs its count.
    for &day in dry {
        by_day.entry(day).or_default();
    }
    let mut rebuilt = 0;
    for (day, coupons) in by_day {
        // The numbers handed out: never lower than what Redis still counts, nor than any seq
        // seen. Raised atomically, because another instance may be rebuilding the same day, or
        // may already have finished and be issuing again (see lua/raise_count.lua).
        let highest_seq = coupons.iter().map(|c| u64::from(c.seq)).max().unwrap_or(0);
        let floor = if dry.contains(&day) {
            highest_seq.max(u64::from(share))
        } else {
            highest_seq
        };
        let expire_at = live[&day].timestamp_millis();

        let mut writer = issuer.writer();
        writer.put_records(bucket, day, &coupons, expire_at).await?;
        let count = writer.raise_count(bucket, day, floor, None, Some(expire_at)).await?;
        let walked_past = dry.contains(&day);
        tracing::info!(%day, shard = bucket.shard, users = coupons.len(), count, walked_past, "rebuilt day state");
        rebuilt += coupons.len();
    }
    Ok(rebuilt)
}
