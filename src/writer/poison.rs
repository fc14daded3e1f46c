//! Poison entries: stream entries the writer cannot store, moved aside so they never block the
//! rest of the stream.
//!
//! Two kinds. An entry that does not even parse as a coupon is dead-lettered at once: reading it
//! again cannot change it. An entry that parses but that Postgres refuses (a CHECK or foreign key
//! violation, a value out of range) might be refused for a passing reason, so it is left pending
//! and tried again `MAX_ATTEMPTS` times, `RETRY_AFTER` apart, while the entries after it are
//! stored; only then is it dead-lettered. Every move is logged and counted in [`WriterStats`].
//!
//! A failure that is not about the data (Postgres unreachable, a timeout, a full disk) is no
//! reason to give up on any entry: the writer backs off and retries the whole batch, forever.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::PgConnection;

use super::reply::Entry;

use crate::domain::Coupon;
use crate::issuing::wire;
use crate::store::{self, StoreError};

/// How many times Postgres may refuse an entry before it is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 3;
/// How long a refused entry waits before it is tried again.
pub const RETRY_AFTER: Duration = Duration::from_millis(500);

/// Counters an operator (or a metrics exporter) reads; plain atomics, cheap to bump.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Coupons inserted into Postgres (redeliveries of stored coupons not counted).
    pub stored: AtomicU64,
    /// Entries moved to a dead-letter stream: unreadable, or refused `MAX_ATTEMPTS` times.
    pub dead_lettered: AtomicU64,
    /// Times Postgres refused one entry (each try counts).
    pub refusals: AtomicU64,
}

impl WriterStats {
    pub fn snapshot(&self) -> WriterCounts {
        WriterCounts {
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            refusals: self.refusals.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
        }
    }
}

/// [`WriterStats`] read at one moment, as `/readyz` reports them. The fields are in the
/// alphabetical order the report has always had on the wire.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
pub struct WriterCounts {
    /// Entries moved to a dead-letter stream: unreadable, or refused by Postgres a few times.
    pub dead_lettered: u64,
    /// Times Postgres refused one entry (each try counts).
    pub refusals: u64,
    /// Coupons inserted into Postgres (redeliveries of stored coupons not counted).
    pub stored: u64,
}

/// After the batch insert was refused ([`StoreError::Refused`]: a data exception or an integrity
/// constraint violation, not an outage): stores each coupon alone, so the good ones go in and
/// the refused ones are found. Returns the rows inserted and, per refused coupon (by index), why.
pub async fn store_one_by_one(
    db: &mut PgConnection,
    coupons: &[Coupon],
) -> Result<(u64, Vec<(usize, String)>), StoreError> {
    let (mut inserted, mut refused) = (0, Vec::new());
    for (i, coupon) in coupons.iter().enumerate() {
        match store::coupons::insert_batch(&mut *db, std::slice::from_ref(coupon)).await {
            Ok(n) => inserted += n,
            Err(e @ StoreError::Refused(_)) => refused.push((i, e.refusal_reason())),
            Err(e) => return Err(e),
        }
    }
    Ok((inserted, refused))
}

/// How many times Postgres refused each entry still pending at this writer, by entry id.
#[derive(Debug, Default)]
pub struct Refusals(HashMap<String, u32>);

impl Refusals {
    /// Counts one more refusal of `entry_id`: `Some(tries so far)` while it may be tried again,
    /// `None` once it has been refused `MAX_ATTEMPTS` times (and is forgotten here).
    pub fn count(&mut self, entry_id: &str) -> Option<u32> {
        let tries = self.0.entry(entry_id.to_owned()).or_insert(0);
        *tries += 1;
        if *tries < MAX_ATTEMPTS {
            return Some(*tries);
        }
        self.0.remove(entry_id);
        None
    }
}

/// A dead letter: where the entry came from, why it is here, and all its fields as they were.
pub fn dead_letter(entry: &Entry, reason: &str) -> Vec<(String, String)> {
    let text = |v| redis::from_redis_value_ref::<String>(v).unwrap_or_default();
    let mut fields = vec![
        (wire::dead_letter::SOURCE_ID.to_owned(), entry.id.clone()),
        (wire::dead_letter::REASON.to_owned(), reason.to_owned()),
    ];
    fields.extend(entry.pairs().map(|(k, v)| (text(k), text(v))));
    fields
}
