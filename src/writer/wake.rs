//! Waking the writer when this instance learns of a new event (created here, or announced by
//! another instance: see `announce`), so that the event's first coupons reach Postgres at once
//! instead of after the read that was under way ends.
//!
//! On one server the writer blocks in one `XREADGROUP` over the streams it knew when the read
//! began, for up to `WRITER_BLOCK_MS`. Redis cannot add a stream to a read that is blocked, so
//! the read is ended early with `CLIENT UNBLOCK` from another connection, and the next step
//! reloads the streams. An unblocked read answers as if it timed out: it delivered nothing,
//! so no entry is left pending unseen. Had entries arrived first, the read answers with them as
//! usual and the unblock finds nothing to end. Dropping the read instead (cancelling it on the
//! client) would leave it blocked on the server, free to hand this consumer entries whose
//! answer nobody reads: they would sit pending until claimed, `claim_idle` later.
//!
//! On a cluster the writer polls each stream rather than block (see `read_each`), and simply
//! stops waiting between two polls.

use std::time::Duration;

use std::sync::atomic::Ordering;

use redis::streams::StreamReadOptions;

use super::Writer;
use super::connection::WriterConnection;
use super::reply::{self, ReadReply};

/// How soon `CLIENT UNBLOCK` is sent again when the read has not reached Redis yet.
const UNBLOCK_AGAIN: Duration = Duration::from_millis(2);

impl Writer {
    /// `XREADGROUP ... BLOCK` for new entries of `keys`, ended early when the events change.
    pub(super) async fn read_new_blocking(
        &self,
        conn: &mut WriterConnection,
        keys: &[&str],
        opts: &StreamReadOptions,
    ) -> redis::RedisResult<ReadReply> {
        let id = self.client_id(conn).await?;
        let mut changes = self.changes.clone();
        let from = vec![">"; keys.len()];
        let read = reply::xreadgroup(conn, keys, &from, opts);
        tokio::pin!(read);
        tokio::select! {
            reply = &mut read => return reply,
            Ok(()) = changes.changed() => {}
        }
        let Ok(mut other) = self.redis.get().await else {
            return read.await;
        };
        // The unblock may reach Redis before the read does: then it ends nothing (0), and is
        // sent again until the read has ended one way or the other.
        let mut unblock = redis::cmd("CLIENT");
        unblock.arg("UNBLOCK").arg(id);
        loop {
            let unblock = unblock.query_async::<u64>(&mut other);
            tokio::select! {
                reply = &mut read => return reply,
                unblocked = unblock => if unblocked.is_ok_and(|n| n == 1) {
                    return read.await;
                },
            }
            tokio::select! {
                reply = &mut read => return reply,
                _ = tokio::time::sleep(UNBLOCK_AGAIN) => {}
            }
        }
    }

    /// The connection's `CLIENT ID`, for `CLIENT UNBLOCK`. A pooled connection is one TCP
    /// connection, kept by the writer across steps until it fails (see `Writer::conn`), so its
    /// id is asked once. The other connections may reconnect underneath (to a new primary after
    /// a failover), where a kept id could name another client: they are asked every time.
    async fn client_id(&self, conn: &mut WriterConnection) -> redis::RedisResult<u64> {
        let kept = self.conn_id.load(Ordering::Relaxed);
        if kept != 0 && matches!(conn, WriterConnection::Pooled(_)) {
            return Ok(kept);
        }
        let id: u64 = redis::cmd("CLIENT").arg("ID").query_async(conn).await?;
        if matches!(conn, WriterConnection::Pooled(_)) {
            self.conn_id.store(id, Ordering::Relaxed);
        }
        Ok(id)
    }
}
