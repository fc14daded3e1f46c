//! New events, told to every instance at once, so that every writer reads a new event's stream
//! from its first coupon.
//!
//! Why pub/sub. The writer learns of events from the catalog, which another instance refreshes
//! only every few seconds; until some writer reads a new event's stream, its coupons exist only
//! in Redis. Telling the others needs a broadcast: every instance must hear of every event. A
//! control stream read inside the writers' `XREADGROUP` cannot do it, since a consumer group
//! hands each entry to one consumer only (each instance would need a group of its own, and
//! one `XREADGROUP` names one group); and on a Redis Cluster the writer does not block in one
//! read at all (`CROSSSLOT`, see `writer::read`). Pub/sub is a broadcast on one server and on a
//! cluster alike (a cluster forwards `PUBLISH` to every node, so a subscriber on any node hears
//! it). It is not durable, and needs none: a message lost while a subscriber reconnects costs
//! only the lag it was to save, because the catalog is still reloaded every few seconds, and
//! the subscriber reloads it each time it (re)subscribes. Nothing the writer reads depends on
//! it: entries stay in their stream, pending or not, until stored.
//!
//! Waking the writer on this instance is the catalog's part (a watch on its generation, see
//! `writer::wake`).

use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;
use crate::domain::EventId;
use crate::issuing::Keys;
use crate::redis_target::{RedisConnection, RedisTarget};

/// The longest wait for a subscriber's connection, and the longest pause between two attempts.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY_MOST: Duration = Duration::from_secs(2);

/// Tells every instance (this one too) that `id` was just created and published. Through
/// `lua/announce.lua`, so that on a cluster it goes to one known primary (see the script).
pub async fn new_event(conn: &mut RedisConnection, keys: &Keys, id: EventId) {
    let sent = crate::issuing::scripts::announce(conn, &keys.new_events(), &id.to_string()).await;
    if let Err(e) = sent {
        tracing::warn!(event_id = %id, error = %e, "cannot announce the new event; other instances see it at their next reload");
    }
}

/// Listens for new events until `shutdown`, and adds each to `catalog` (which wakes the
/// writers). On a cluster it subscribes on one node, the next one after a failure; behind
/// Sentinel on the primary the sentinels name at each attempt (after a failover, the new one).
pub async fn listen(target: RedisTarget, keys: Keys, catalog: Catalog, shutdown: CancellationToken) {
    let mut pause = Duration::from_millis(100);
    for attempt in 0usize.. {
        let heard = tokio::select! {
            heard = async {
                let client = subscriber(&target, attempt).await?;
                listen_on(&client, &keys, &catalog).await
            } => heard,
            _ = shutdown.cancelled() => return,
        };
        match heard {
            Ok(()) => {
                pause = Duration::from_millis(100);
                tracing::info!("new-event subscription ended; subscribing again");
            }
            Err(e) => tracing::warn!(error = %e, retry_in = ?pause, "cannot subscribe to new events"),
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.cancelled() => return,
        }
        pause = (pause * 2).min(RETRY_MOST);
    }
}

/// The server to subscribe on for this attempt.
async fn subscriber(target: &RedisTarget, attempt: usize) -> anyhow::Result<redis::Client> {
    match target {
        RedisTarget::Single(client) => Ok(client.clone()),
        RedisTarget::Cluster(cluster) => {
            let node = &cluster.nodes[attempt % cluster.nodes.len()];
            Ok(crate::redis_target::tls::client(node, cluster.tls.as_ref())?)
        }
        RedisTarget::Sentinel(sentinel) => Ok(sentinel.primary_client(CONNECT_TIMEOUT).await?),
    }
}

/// One subscription, until its connection ends.
async fn listen_on(client: &redis::Client, keys: &Keys, catalog: &Catalog) -> anyhow::Result<()> {
    let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await??;
    pubsub.subscribe(keys.new_events()).await?;
    // Whatever was announced while nobody here listened.
    catalog.refresh().await;
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let Some(id) = message
            .get_payload::<String>()
            .ok()
            .and_then(|p| EventId::parse(&p).ok())
        else {
            continue;
        };
        // Known already (this instance created it): no change. Else read from Postgres and
        // cached, which wakes the writers.
        if let Err(e) = catalog.get(id).await {
            tracing::warn!(event_id = %id, error = %e, "cannot load an announced event; the next reload will");
        }
    }
    Ok(())
}
