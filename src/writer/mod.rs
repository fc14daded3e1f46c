//! The writer: moves issued coupons from the event streams into Postgres.
//!
//! It reads through one consumer group shared by every instance, a batch at a time, stores the
//! batch in one idempotent statement, and acknowledges the entries only after the commit. So a
//! crash anywhere leaves entries pending, never lost; they are read again (by this consumer at
//! its next step, or claimed by another after `claim_idle`), and storing them again is a no-op.
//! When Postgres is down the loop backs off and retries, and the stream is the buffer. An entry
//! that cannot be stored at all (a poison entry) is moved aside without holding back the rest:
//! see `poison`.

mod connection;
mod events;
mod observe;
mod poison;
mod read;
mod reply;
mod wake;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{OwnedMutexGuard, watch};
use tokio_util::sync::CancellationToken;

use connection::WriterConnection;
pub use connection::WriterRedis;
pub use events::EventSource;
pub use poison::{MAX_ATTEMPTS, WriterCounts, WriterStats};
pub use reply::Entry;

use crate::domain::Bucket;
use crate::issuing::wire::coupon_from_entry;
use crate::issuing::{Keys, WRITER_GROUP};
use crate::metrics::Metrics;
use crate::store;

/// How the writer reads.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// This instance's name in the consumer group; unique per process.
    pub consumer: String,
    /// The most entries read from one stream per step.
    pub batch_size: usize,
    /// How long one read waits for new entries; also bounds how long shutdown waits.
    pub block: Duration,
    /// Entries pending this long at another consumer (a crashed instance) are claimed.
    pub claim_idle: Duration,
    /// After a batch well short of full, how long to let entries gather before the next read.
    pub linger: Duration,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to store.
    Idle,
    /// `entries` were read; `inserted` of them were new rows (the rest were already stored:
    /// redeliveries); `dead` went to the dead letters (unreadable, or refused by Postgres
    /// `MAX_ATTEMPTS` times); `retrying` were refused by Postgres and stay pending for another
    /// try. All but the `retrying` ones were acknowledged.
    Stored {
        entries: usize,
        inserted: u64,
        dead: usize,
        retrying: usize,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("redis pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("postgres: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Where the next batch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Entries this consumer read but did not acknowledge (after a failure, and at start).
    OwnPending,
    /// Entries another consumer left pending too long.
    Abandoned,
    /// New entries.
    New,
}

pub struct Writer {
    redis: WriterRedis,
    db: PgPool,
    keys: Keys,
    /// The events whose streams to read (the catalog, in the service).
    events: Arc<dyn EventSource>,
    config: WriterConfig,
    /// Where batches are counted; a private registry unless `with_metrics` gives the app's.
    metrics: Metrics,
    /// When to reread this consumer's unacknowledged entries: at once after a failure (and at
    /// start), a little later when Postgres refused some of them. `None`: nothing to reread.
    own_pending: Option<Instant>,
    /// How many times Postgres refused each entry still pending here.
    refused: poison::Refusals,
    /// Set by a read round in which some streams answered and another could not be read (on a
    /// cluster, its node failing over): this consumer's pending entries are to be reread.
    stream_failed: AtomicBool,
    /// Counters, shared with the process's other writers (see `with_stats`).
    stats: Arc<WriterStats>,
    last_claim: Option<Instant>,
    /// (stream key, bucket) for every bucket whose stream may still hold coupons: one per
    /// unsharded event, N per sharded one. The bucket is how an entry's coupon learns its shard.
    streams: Vec<(String, Bucket)>,
    /// When, and at which generation of `events`, `streams` was last built.
    streams_loaded: Option<(Instant, u64)>,
    /// The generation of `events`, watched: a read waiting for new entries ends when it changes,
    /// so a new event's stream is read at once (see `wake`).
    changes: watch::Receiver<u64>,
    /// The Redis connection of the last step, kept while steps succeed: taking a pooled one
    /// costs a round trip per step (deadpool checks it with a PING). Dropped on any failure,
    /// so the next step takes a checked one.
    conn: Option<WriterConnection>,
    /// That connection's `CLIENT ID` when it is a pooled one, 0 until asked (see `wake`).
    conn_id: AtomicU64,
    /// The Postgres connection of the last batch, kept while batches keep coming: taking one
    /// from the pool costs a round trip per batch (sqlx pings each connection it hands out).
    /// Given back when a step finds nothing to store, so an idle writer holds none; dropped on
    /// any failure.
    db_conn: Option<PoolConnection<Postgres>>,
    /// The turn to read, shared by the process's writers (see `run` and [`ReadTurn`]).
    turns: ReadTurn,
    /// This writer's turn to read, while it holds it; given up in the step as soon as the read
    /// brought a batch that is not small.
    read_turn: Option<OwnedMutexGuard<()>>,
}

/// The process's writers take turns to read while they keep up (see `Writer::run`): one turn,
/// shared by every writer of the process (`Writer::with_read_turn`).
#[derive(Clone, Default)]
pub struct ReadTurn(Arc<tokio::sync::Mutex<()>>);

/// The longest a stopping writer keeps storing what is left in the streams.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

impl Writer {
    pub fn new(redis: WriterRedis, db: PgPool, keys: Keys, events: impl EventSource, config: WriterConfig) -> Self {
        Self {
            changes: events.changes(),
            redis,
            db,
            keys,
            events: Arc::new(events),
            config,
            metrics: Metrics::new(0),
            own_pending: Some(Instant::now()),
            stream_failed: AtomicBool::new(false),
            refused: poison::Refusals::default(),
            stats: Arc::default(),
            last_claim: None,
            streams: Vec::new(),
            streams_loaded: None,
            conn: None,
            conn_id: AtomicU64::new(0),
            db_conn: None,
            turns: ReadTurn::default(),
            read_turn: None,
        }
    }

    /// Takes turns to read with the other writers given the same `turn`.
    pub fn with_read_turn(mut self, turn: ReadTurn) -> Self {
        self.turns = turn;
        self
    }

    /// Counts batches into `metrics` (the app's, so `/metrics` shows them).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Counts into `stats`, shared by every writer of the process (`/readyz` shows them).
    pub fn with_stats(mut self, stats: Arc<WriterStats>) -> Self {
        self.stats = stats;
        self
    }

    /// The writer's counters, shared: they stay readable while the writer runs.
    pub fn stats(&self) -> Arc<WriterStats> {
        self.stats.clone()
    }

    /// Runs steps until `shutdown`, backing off while Redis or Postgres fail. Cancellation is
    /// only checked between steps, so a batch that was read is always stored and acknowledged
    /// (or left pending) before the writer stops.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        let read_turn = self.turns.0.clone();
        while !shutdown.is_cancelled() {
            // The process's writers read one at a time while batches are small (`step` gives
            // the turn up at once after a read that brought a large one, so that a backlog is
            // stored by all of them side by side). A writer waiting for its turn is not blocked
            // in a read of its own, which the next coupon would end at once with a batch of one.
            tokio::select! {
                turn = read_turn.clone().lock_owned() => self.read_turn = Some(turn),
                _ = shutdown.cancelled() => break,
            }
            let result = self.process_batch().await;
            match result {
                Ok(outcome) => {
                    backoff = Duration::from_millis(100);
                    // A batch well short of full means the writers keep up: let entries gather
                    // for a moment, keeping the turn, so a spike is stored in fewer, larger
                    // inserts (each insert and commit costs Postgres CPU that the issue path
                    // needs), at the price of that moment of lag. A backlog fills every batch
                    // and never waits.
                    let entries = match outcome {
                        Outcome::Stored { entries, .. } => entries,
                        Outcome::Idle => 0,
                    };
                    if entries > 0 && self.is_small(entries) && !self.config.linger.is_zero() {
                        tokio::select! {
                            _ = tokio::time::sleep(self.config.linger) => {}
                            _ = shutdown.cancelled() => {}
                        }
                    }
                    self.read_turn = None;
                }
                Err(e) => {
                    self.read_turn = None;
                    tracing::warn!(error = %e, retry_in = ?backoff, "writer step failed");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.drain().await;
        tracing::info!("writer stopped");
    }

    /// On shutdown: store what is already in the streams, so a clean stop leaves nothing behind
    /// for the next start. Bounded, because a stop must not wait on a Postgres that is down:
    /// whatever is left stays in the stream, safe, for the next writer.
    async fn drain(&mut self) {
        let deadline = Instant::now() + DRAIN_LIMIT;
        self.config.block = Duration::from_millis(1);
        self.streams_loaded = None; // events created elsewhere a moment ago count too
        while Instant::now() < deadline {
            match self.process_batch().await {
                Ok(Outcome::Stored { .. }) => {}
                Ok(Outcome::Idle) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "writer could not drain the streams before stopping");
                    break;
                }
            }
        }
    }

    /// One step: read a batch, store it, acknowledge it. Tests call this directly.
    #[tracing::instrument(
        target = "writer",
        name = "writer_batch",
        skip(self),
        fields(source, entries, inserted, event_id, day, outcome, latency_ms, lag_ms)
    )]
    pub async fn process_batch(&mut self) -> Result<Outcome, WriterError> {
        self.load_streams().await;
        if self.streams.is_empty() {
            // No event yet: wait for the first, or for the next periodic reload.
            let mut changes = self.changes.clone();
            tokio::select! {
                _ = tokio::time::sleep(self.config.block) => {}
                _ = changes.changed() => {}
            }
            return Ok(Outcome::Idle);
        }
        let source = self.next_source();
        tracing::Span::current().record("source", tracing::field::debug(source));
        // Boxed: the step's future is large (the read, the insert and the acks inline), and
        // the span's wrapper would otherwise copy all of it at every batch.
        let result = Box::pin(self.step(source)).await;
        observe::finished(&result, &self.metrics);
        if !matches!(result, Ok(Outcome::Stored { .. })) {
            // No batch is coming: give the Postgres connection back to the pool.
            self.db_conn = None;
        }
        // After a failure, or a round in which some stream could not be read (see `read_each`),
        // entries may be pending here that no new read will return.
        if result.is_err() || self.stream_failed.swap(false, Ordering::Relaxed) {
            self.own_pending = Some(Instant::now());
        }
        result
    }

    /// A batch well short of full: the writers keep up.
    fn is_small(&self, entries: usize) -> bool {
        entries < self.config.batch_size / 2
    }

    fn next_source(&mut self) -> Source {
        if self.own_pending.is_some_and(|at| Instant::now() >= at) {
            return Source::OwnPending;
        }
        let claim_due = self
            .last_claim
            .is_none_or(|t| t.elapsed() >= self.config.claim_idle / 2);
        if claim_due {
            self.last_claim = Some(Instant::now());
            return Source::Abandoned;
        }
        Source::New
    }

    async fn step(&mut self, source: Source) -> Result<Outcome, WriterError> {
        // Taken out for the step and put back only when it succeeds: a failed step drops it.
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                self.conn_id.store(0, Ordering::Relaxed);
                self.redis.get().await?
            }
        };
        let outcome = self.step_on(&mut conn, source).await?;
        self.conn = Some(conn);
        Ok(outcome)
    }

    async fn step_on(&mut self, conn: &mut WriterConnection, source: Source) -> Result<Outcome, WriterError> {
        let mut batch = self.read_or_regroup(conn, source).await?;
        if batch.is_empty() && source != Source::New {
            // Nothing pending or abandoned: go on to new entries, so that `Idle` always means
            // there was nothing anywhere. (Entries held back for another try are still due.)
            if source == Source::OwnPending {
                self.own_pending = None;
            }
            batch = self.read_or_regroup(conn, Source::New).await?;
        }
        if batch.is_empty() {
            return Ok(Outcome::Idle);
        }
        let entries = read::count(&batch);
        if !self.is_small(entries) {
            // A backlog: let another writer read the next batch while this one stores.
            self.read_turn = None;
        }
        // Timed from here: the time to store and acknowledge, not the wait for entries.
        let started = Instant::now();

        // Each coupon is built once, borrowing the entry's fields, and remembers its entry by
        // (stream, index) for the refusals below.
        let mut coupons = Vec::with_capacity(entries);
        let mut origin = Vec::with_capacity(entries);
        // (stream, entry, reason)
        let mut dead: Vec<(usize, usize, String)> = Vec::new();
        for (s, stream) in batch.iter().enumerate() {
            for (e, entry) in stream.entries.iter().enumerate() {
                match coupon_from_entry(stream.bucket, entry) {
                    Ok(coupon) => {
                        coupons.push(coupon);
                        origin.push((s, e));
                    }
                    Err(reason) => dead.push((s, e, format!("unreadable: {reason}"))),
                }
            }
        }
        // Like the Redis connection: put back only when the step succeeds.
        let mut db = match self.db_conn.take() {
            Some(db) => db,
            None => self.db.acquire().await?,
        };
        let (inserted, refused) = match store::coupons::insert_batch(&mut *db, &coupons).await {
            Ok(n) => (n, Vec::new()),
            // One entry Postgres refuses must not hold back the rest: find it, store the others.
            Err(store::StoreError::Refused(_)) => poison::store_one_by_one(&mut db, &coupons).await?,
            Err(e) => return Err(e.into()),
        };
        let mut held_back: Vec<&str> = Vec::new();
        for (i, reason) in refused {
            let (s, e) = origin[i];
            let (entry, coupon) = (&batch[s].entries[e], &coupons[i]);
            self.stats.refusals.fetch_add(1, Ordering::Relaxed);
            match self.refused.count(&entry.id) {
                Some(tries) => {
                    tracing::warn!(event_id = %coupon.event_id, entry_id = %entry.id, tries, %reason, "postgres refused a stream entry; will try it again");
                    held_back.push(&entry.id);
                }
                None => dead.push((s, e, format!("{reason}; tried {MAX_ATTEMPTS} times"))),
            }
        }

        // Only now, after the commit, may the entries leave the stream; refused ones waiting
        // for another try stay pending here. One pipeline per stream: all of a bucket's keys
        // (its stream, its dead letters) share its hash slot, and on a cluster a pipeline must
        // stay inside one slot; a sharded event's buckets are in different slots. On one
        // server every stream goes in one pipeline: one round trip.
        let one_pipe = !matches!(conn, WriterConnection::Cluster(_));
        let mut pipe = redis::pipe();
        for (s, stream) in batch.iter().enumerate() {
            for (_, e, reason) in dead.iter().filter(|(ds, _, _)| *ds == s) {
                let entry = &stream.entries[*e];
                tracing::error!(event_id = %stream.bucket.event, shard = stream.bucket.shard, entry_id = %entry.id, %reason, "stream entry moved to dead letters");
                let fields = poison::dead_letter(entry, reason);
                pipe.xadd(self.keys.dead_letters(stream.bucket), "*", &fields).ignore();
            }
            let ids: Vec<&str> = stream
                .entries
                .iter()
                .map(|e| e.id.as_str())
                .filter(|id| !held_back.contains(id))
                .collect();
            if !ids.is_empty() {
                pipe.xack(&stream.key, WRITER_GROUP, &ids).ignore();
                pipe.xdel(&stream.key, &ids).ignore();
            }
            if !one_pipe && !pipe.is_empty() {
                pipe.query_async::<()>(&mut *conn).await?;
                pipe.clear();
            }
        }
        if !pipe.is_empty() {
            pipe.query_async::<()>(&mut *conn).await?;
        }
        self.db_conn = Some(db);
        self.stats.stored.fetch_add(inserted, Ordering::Relaxed);
        self.stats.dead_lettered.fetch_add(dead.len() as u64, Ordering::Relaxed);
        if !held_back.is_empty() {
            self.own_pending = Some(Instant::now() + poison::RETRY_AFTER);
        }

        observe::stored(&self.metrics, &batch, inserted, dead.len(), started.elapsed());
        Ok(Outcome::Stored {
            entries,
            inserted,
            dead: dead.len(),
            retrying: held_back.len(),
        })
    }
}
