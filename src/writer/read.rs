//! Where the writer's entries come from: the list of streams to read, and one read of new
//! entries, of this consumer's own pending ones, or of entries another consumer abandoned.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::streams::{StreamAutoClaimOptions, StreamReadOptions};

use super::connection::WriterConnection;
use super::reply::{self, Entry, ReadReply};
use super::{Source, Writer, WriterError};
use crate::domain::Bucket;
use crate::issuing::{WRITER_GROUP, ensure_writer_group};
use crate::redis_target::RedisConnection;

/// How often the list of event streams is reloaded, to see events created by other instances.
const STREAMS_REFRESH: Duration = Duration::from_secs(2);
/// On a cluster, where reads do not block: the first and the longest pause between two rounds
/// of reads that found nothing. Short while entries keep coming, so the lag stays small; longer
/// when the streams are idle, so an idle service costs Redis a few commands a second.
const POLL_FIRST: Duration = Duration::from_millis(2);
const POLL_MOST: Duration = Duration::from_millis(100);
/// Streams of events that ended longer ago than this are no longer read.
const STREAM_KEPT_AFTER_END: chrono::Duration = chrono::Duration::days(30);

/// The entries one read delivered from one stream, in order.
pub(super) struct StreamBatch {
    pub key: String,
    pub bucket: Bucket,
    pub entries: Vec<Entry>,
}

/// Entries of every stream in a batch.
pub(super) fn count(batch: &[StreamBatch]) -> usize {
    batch.iter().map(|s| s.entries.len()).sum()
}

impl Writer {
    pub(super) async fn read_or_regroup(
        &self,
        conn: &mut WriterConnection,
        source: Source,
    ) -> Result<Vec<StreamBatch>, WriterError> {
        match self.read(conn, source).await {
            Err(e) if e.code() == Some("NOGROUP") => {
                // A stream or its group is missing: deleted behind our back, or an event this
                // writer heard of before its publisher created the group. Create them and read
                // again; that is no failure.
                for (stream, _) in &self.streams {
                    ensure_writer_group(conn, stream).await?;
                }
                Ok(self.read(conn, source).await?)
            }
            other => Ok(other?),
        }
    }

    async fn read(&self, conn: &mut WriterConnection, source: Source) -> redis::RedisResult<Vec<StreamBatch>> {
        if let (WriterConnection::Cluster(cluster), Source::New | Source::OwnPending) = (&*conn, source) {
            return self.read_each(cluster, source).await;
        }
        let count = self.config.batch_size;
        let keys: Vec<&str> = self.streams.iter().map(|(s, _)| s.as_str()).collect();
        let reply: ReadReply = match source {
            Source::Abandoned => {
                let mut claimed = Vec::new();
                for (stream, event) in &self.streams {
                    let reply: redis::streams::StreamAutoClaimReply = conn
                        .xautoclaim_options(
                            stream,
                            WRITER_GROUP,
                            &self.config.consumer,
                            self.config.claim_idle.as_millis() as u64,
                            "0-0",
                            StreamAutoClaimOptions::default().count(count),
                        )
                        .await?;
                    if !reply.claimed.is_empty() {
                        claimed.push(StreamBatch {
                            key: stream.clone(),
                            bucket: *event,
                            entries: reply.claimed.into_iter().map(Entry::from).collect(),
                        });
                    }
                }
                if !claimed.is_empty() {
                    tracing::warn!(
                        entries = self::count(&claimed),
                        "claimed entries abandoned by another writer"
                    );
                }
                return Ok(claimed);
            }
            Source::OwnPending => {
                let opts = StreamReadOptions::default()
                    .group(WRITER_GROUP, &self.config.consumer)
                    .count(count);
                reply::xreadgroup(conn, &keys, &vec!["0"; keys.len()], &opts).await?
            }
            Source::New => {
                let opts = StreamReadOptions::default()
                    .group(WRITER_GROUP, &self.config.consumer)
                    .count(count)
                    .block(self.config.block.as_millis() as usize);
                self.read_new_blocking(conn, &keys, &opts).await?
            }
        };
        Ok(self.entries(reply))
    }

    /// On a cluster: the same read, one stream at a time (all sent at once, so it costs one
    /// round trip per node), since one command cannot read streams in different slots. New
    /// entries are polled for instead of blocked on, for up to `block`.
    async fn read_each(&self, conn: &RedisConnection, source: Source) -> redis::RedisResult<Vec<StreamBatch>> {
        let opts = StreamReadOptions::default()
            .group(WRITER_GROUP, &self.config.consumer)
            .count(self.config.batch_size);
        let from = if source == Source::New { ">" } else { "0" };
        let started = Instant::now();
        let mut pause = POLL_FIRST;
        loop {
            let reads = self.streams.iter().map(|(stream, _)| {
                let mut conn = conn.clone();
                let opts = &opts;
                async move {
                    match reply::xreadgroup(&mut conn, &[stream], &[from], opts).await {
                        Ok(reply) => Ok(reply),
                        // A missing stream or group (see `read_or_regroup`) is mended here, for
                        // this stream alone: failing the whole round would throw away what the
                        // other streams' reads just delivered, and those entries would sit
                        // pending at this consumer until claimed, `claim_idle` later.
                        Err(e) if e.code() == Some("NOGROUP") => {
                            ensure_writer_group(&mut conn, stream).await?;
                            Ok(ReadReply::default())
                        }
                        Err(e) => Err(e),
                    }
                }
            });
            // One stream on a node that is failing over must not hold up the others: its
            // entries wait, safe in the stream, while the rest are stored. Only when no stream
            // could be read is the round a failure.
            let mut found = Vec::new();
            let (mut answered, mut failed) = (0, None);
            for reply in futures_util::future::join_all(reads).await {
                match reply {
                    Ok(reply) => {
                        answered += 1;
                        found.extend(self.entries(reply));
                    }
                    Err(e) => failed = Some(e),
                }
            }
            if let Some(e) = failed {
                if answered == 0 {
                    return Err(e);
                }
                // A primary that died in the middle of a read may have handed this consumer
                // entries whose reply never arrived. On its successor they sit pending here, and
                // `>` never delivers them again: reread this consumer's pending entries next
                // step, rather than wait for another writer to claim them `claim_idle` later.
                self.stream_failed.store(true, Ordering::Relaxed);
                tracing::warn!(error = %e, "a stream could not be read; reading the others");
            }
            if !found.is_empty() || source != Source::New || started.elapsed() + pause > self.config.block {
                return Ok(found);
            }
            // A new event: back to `load_streams` at once, to read its stream too (see `wake`).
            let mut changes = self.changes.clone();
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                Ok(()) = changes.changed() => return Ok(found),
            }
            pause = (pause * 2).min(POLL_MOST);
        }
    }

    /// The entries of a read reply, by stream, each stream with its bucket.
    fn entries(&self, reply: ReadReply) -> Vec<StreamBatch> {
        let bucket_of = |key: &str| self.streams.iter().find(|(s, _)| s == key).map(|(_, b)| *b);
        reply
            .0
            .into_iter()
            .filter(|(_, entries)| !entries.is_empty())
            .filter_map(|(key, entries)| {
                let bucket = bucket_of(&key)?;
                Some(StreamBatch { key, bucket, entries })
            })
            .collect()
    }

    /// Keeps the list of streams to read: every bucket of every event that has not been over
    /// for long.
    pub(super) async fn load_streams(&mut self) {
        // Marked seen before the reload: an event that arrives during it changes the generation
        // again, and the next read ends at once to pick it up.
        let generation = *self.changes.borrow_and_update();
        if self
            .streams_loaded
            .is_some_and(|(t, g)| g == generation && t.elapsed() < STREAMS_REFRESH)
        {
            return;
        }
        let events = self.events.events().await;
        let today = chrono::Utc::now().date_naive();
        self.streams = events
            .iter()
            .filter(|e| e.ends_on + STREAM_KEPT_AFTER_END >= today)
            .flat_map(|e| e.shards.buckets(e.id))
            .map(|bucket| (self.keys.stream(bucket), bucket))
            .collect();
        self.streams_loaded = Some((Instant::now(), generation));
    }
}
