//! Where the writer's entries come from: the list of streams to read, and one read of new
//! entries, of this consumer's own pending ones, or of entries another consumer abandoned.

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::streams::{StreamAutoClaimOptions, StreamId, StreamReadOptions, StreamReadReply};

use super::{Source, Writer, WriterError};
use crate::domain::EventId;
use crate::issuing::{WRITER_GROUP, ensure_writer_group};

/// How often the list of event streams is reloaded, to see events created by other instances.
const STREAMS_REFRESH: Duration = Duration::from_secs(2);
/// Streams of events that ended longer ago than this are no longer read.
const STREAM_KEPT_AFTER_END: chrono::Duration = chrono::Duration::days(30);

impl Writer {
    pub(super) async fn read_or_regroup(
        &self,
        conn: &mut deadpool_redis::Connection,
        source: Source,
    ) -> Result<Vec<(String, EventId, StreamId)>, WriterError> {
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

    async fn read(
        &self,
        conn: &mut deadpool_redis::Connection,
        source: Source,
    ) -> redis::RedisResult<Vec<(String, EventId, StreamId)>> {
        let count = self.config.batch_size;
        let keys: Vec<&str> = self.streams.iter().map(|(s, _)| s.as_str()).collect();
        let reply: Option<StreamReadReply> = match source {
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
                    claimed.extend(reply.claimed.into_iter().map(|e| (stream.clone(), *event, e)));
                }
                if !claimed.is_empty() {
                    tracing::warn!(entries = claimed.len(), "claimed entries abandoned by another writer");
                }
                return Ok(claimed);
            }
            Source::OwnPending => {
                let opts = StreamReadOptions::default()
                    .group(WRITER_GROUP, &self.config.consumer)
                    .count(count);
                conn.xread_options(&keys, &vec!["0"; keys.len()], &opts).await?
            }
            Source::New => {
                let opts = StreamReadOptions::default()
                    .group(WRITER_GROUP, &self.config.consumer)
                    .count(count)
                    .block(self.config.block.as_millis() as usize);
                conn.xread_options(&keys, &vec![">"; keys.len()], &opts).await?
            }
        };
        let event_of = |key: &str| self.streams.iter().find(|(s, _)| s == key).map(|(_, e)| *e);
        Ok(reply
            .unwrap_or_default()
            .keys
            .into_iter()
            .filter_map(|k| event_of(&k.key).map(|event| (k.key, event, k.ids)))
            .flat_map(|(key, event, ids)| ids.into_iter().map(move |e| (key.clone(), event, e)))
            .collect())
    }

    /// Keeps the list of streams to read: every event that has not been over for long.
    pub(super) async fn load_streams(&mut self) {
        let generation = self.catalog.generation();
        if self
            .streams_loaded
            .is_some_and(|(t, g)| g == generation && t.elapsed() < STREAMS_REFRESH)
        {
            return;
        }
        let events = self.catalog.refresh().await;
        let today = chrono::Utc::now().date_naive();
        self.streams = events
            .iter()
            .filter(|e| e.ends_on + STREAM_KEPT_AFTER_END >= today)
            .map(|e| (self.keys.stream(e.id), e.id))
            .collect();
        self.streams_loaded = Some((Instant::now(), generation));
    }
}
