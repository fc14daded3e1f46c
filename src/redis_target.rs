//! Which Redis the service talks to: one server, a Redis Cluster, or the primary a set of
//! sentinels names, behind one connection type.
//!
//! `REDIS_URL` names either a single server (`redis://host:port`), a cluster
//! (`redis+cluster://host1:port1,host2:port2,...`, any reachable nodes; the client learns the
//! rest), or sentinels (`redis+sentinel://host1:port1,.../<master-name>`, see `sentinel`);
//! `REDIS_CLUSTER_NODES` (`host1:port1,host2:port2`) is the same as the second form.
//! Everything above this module works with `RedisConnection` and never asks which it is, except
//! where a cluster refuses what one server allows: one command over keys of several events
//! (`CROSSSLOT`). The writer therefore reads each stream on its own in a cluster (see
//! `writer::read`), and every multi-key command or pipeline here stays inside one event's hash
//! slot (`issuing::Keys`).

mod replace;
mod sentinel;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use replace::{Policy, Replaceable, connection_failed};
pub use sentinel::{LookupError, SentinelHandle, SentinelTarget};

/// The URL scheme that names a cluster.
const CLUSTER_SCHEME: &str = "redis+cluster://";

/// A Redis to connect to, parsed once from the settings.
#[derive(Clone)]
pub enum RedisTarget {
    Single(redis::Client),
    Cluster(ClusterTarget),
    Sentinel(SentinelTarget),
}

/// A cluster: the nodes to start from, as `redis://host:port` URLs.
#[derive(Clone, Debug)]
pub struct ClusterTarget {
    pub nodes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("REDIS_URL is not a Redis URL: {0}")]
    Url(#[from] redis::RedisError),
    #[error("a cluster needs at least one node as host:port, got {0:?}")]
    NoNodes(String),
    #[error("REDIS_URL: {0}")]
    Sentinel(String),
}

impl RedisTarget {
    /// `cluster_nodes` (from `REDIS_CLUSTER_NODES`), when set and not empty, wins over `url`.
    pub fn parse(url: &str, cluster_nodes: Option<&str>) -> Result<Self, TargetError> {
        if let Some(nodes) = cluster_nodes.filter(|n| !n.trim().is_empty()) {
            return Self::cluster(nodes, "");
        }
        for (scheme, tls) in [(sentinel::SCHEME, false), (sentinel::TLS_SCHEME, true)] {
            if let Some(rest) = url.strip_prefix(scheme) {
                let target = SentinelTarget::parse(rest, tls).map_err(TargetError::Sentinel)?;
                return Ok(Self::Sentinel(target));
            }
        }
        match url.strip_prefix(CLUSTER_SCHEME) {
            Some(rest) => {
                // Credentials, if any, come once before the nodes and apply to all of them.
                let (auth, nodes) = match rest.rsplit_once('@') {
                    Some((auth, nodes)) => (format!("{auth}@"), nodes),
                    None => (String::new(), rest),
                };
                Self::cluster(nodes.trim_end_matches('/'), &auth)
            }
            None => Ok(Self::Single(redis::Client::open(url)?)),
        }
    }

    fn cluster(given: &str, auth: &str) -> Result<Self, TargetError> {
        let nodes: Vec<String> = given
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| format!("redis://{auth}{n}"))
            .collect();
        if nodes.is_empty() {
            return Err(TargetError::NoNodes(given.to_owned()));
        }
        for node in &nodes {
            redis::Client::open(node.as_str())?;
        }
        Ok(Self::Cluster(ClusterTarget { nodes }))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// At start: fails when the sentinels cannot be reached or know no such master, a setting
    /// that no waiting will mend. Nothing to check for the other kinds, which connect lazily.
    pub async fn check(&self, timeout: Duration) -> Result<(), LookupError> {
        match self {
            Self::Sentinel(target) => target.check(timeout).await,
            Self::Single(_) | Self::Cluster(_) => Ok(()),
        }
    }

    /// A new multiplexed connection (the issuer keeps one and shares it with every request).
    /// Connects lazily: the service starts (and reports not ready) while Redis is down, and
    /// reconnects by itself.
    ///
    /// Both kinds pipeline concurrent requests over one socket per server; a cluster connection
    /// also follows `MOVED`/`ASK` and reloads the slot map after a failover.
    pub fn multiplexed(&self, timeout: Duration) -> redis::RedisResult<RedisConnection> {
        match self {
            Self::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500));
                Ok(RedisConnection::Single(ConnectionManager::new_lazy_with_config(
                    client.clone(),
                    config,
                )?))
            }
            Self::Cluster(cluster) => {
                let client = ClusterClient::builder(cluster.nodes.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    // One retry inside the client: enough to follow a MOVED or ASK redirect.
                    // Not more, because in redis 1.8.1 a retry towards a node that refuses
                    // connections starts a reconnect and slot refresh, and while one runs every
                    // request on the connection waits, those for healthy primaries too
                    // (redis-rs issue 2092). Measured with one primary of three down and no
                    // failover (tests/api/cluster_shards.rs): with 6 retries 33 to 72 of 110
                    // requests for buckets on the healthy primaries timed out, with 1 none did. A
                    // request that needs a promotion (about 2.5 s) gets its 503 and the
                    // caller's retry; the service's answer is the same either way.
                    .retries(1)
                    .min_retry_wait(10)
                    .max_retry_wait(500)
                    .build()?;
                let config = ClusterConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout);
                Ok(RedisConnection::Cluster(ClusterHandle::new(client, config)))
            }
            Self::Sentinel(target) => Ok(RedisConnection::Sentinel(SentinelHandle::new(target.clone(), timeout))),
        }
    }

    /// Which of a single server's URL or the cluster's nodes, for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Single(client) => {
                let info = client.get_connection_info();
                format!("redis {}", info.addr())
            }
            Self::Cluster(cluster) => format!("redis cluster from {} nodes", cluster.nodes.len()),
            Self::Sentinel(target) => target.describe(),
        }
    }
}

/// A connection to one Redis or to a cluster; cheap to clone, every clone shares the sockets.
#[derive(Clone)]
pub enum RedisConnection {
    Single(ConnectionManager),
    Cluster(ClusterHandle),
    Sentinel(SentinelHandle),
}

/// A cluster connection that is replaced when it stays broken.
///
/// Measured here with redis 1.8.1: when a primary is killed while a few hundred requests are in
/// flight on the shared connection, the connection can stay wedged after the replica has taken
/// over: every command times out, for minutes, while a new connection to the same cluster works
/// at once. So when commands have failed with connection errors or timeouts, and none has
/// succeeded, for `STUCK_AFTER`, the handle builds a new connection for everyone's next command
/// (at most once per `STUCK_AFTER`). Server errors (`MOVED`, `NOSCRIPT`, ...) do not count.
#[derive(Clone)]
pub struct ClusterHandle {
    inner: Arc<ClusterInner>,
}

struct ClusterInner {
    client: ClusterClient,
    config: ClusterConfig,
    conn: Replaceable<ClusterConnection>,
}

/// Longer than a failover takes here (about 2.5 s with `cluster-node-timeout 1000`), so that a
/// connection is only replaced when it did not recover by itself.
const STUCK_AFTER: Duration = Duration::from_secs(3);

impl ClusterHandle {
    fn new(client: ClusterClient, config: ClusterConfig) -> Self {
        let conn = client.get_pending_async_connection_with_config(config.clone());
        let policy = Policy {
            failing_for: STUCK_AFTER,
            between: STUCK_AFTER,
        };
        Self {
            inner: Arc::new(ClusterInner {
                client,
                config,
                conn: Replaceable::new(conn, policy),
            }),
        }
    }

    /// Runs `command` on the current connection (routing by hand is possible through it, see
    /// `wait_for_replicas`), and counts its result.
    async fn run<T, F: Future<Output = RedisResult<T>>>(
        &self,
        command: impl FnOnce(ClusterConnection) -> F,
    ) -> RedisResult<T> {
        let used = self.inner.conn.current();
        let result = command((*used).clone()).await;
        let fresh = || {
            self.inner
                .client
                .get_pending_async_connection_with_config(self.inner.config.clone())
        };
        let stuck = "redis cluster connection stuck; replacing it";
        self.inner.conn.observe(&used, &result, connection_failed, fresh, stuck);
        result
    }
}

impl RedisConnection {
    /// This connection, bound to the socket it uses now where it could otherwise be swapped
    /// for another (Sentinel, after a failover): for a write and the `WAIT` that counts it.
    pub fn pinned(&self) -> Self {
        match self {
            Self::Sentinel(c) => Self::Sentinel(c.pinned()),
            other => other.clone(),
        }
    }

    /// `WAIT replicas timeout` on the server that holds `key`: how many replicas have every
    /// write sent so far over this connection to that server. On a cluster it is routed to the
    /// primary of `key`'s slot, over the same socket the writes went through, which is what
    /// `WAIT` counts from.
    pub async fn wait_for_replicas(&mut self, key: &str, replicas: u32, timeout: Duration) -> redis::RedisResult<u32> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(timeout.as_millis() as u64);
        match self {
            Self::Single(c) => wait.query_async(c).await,
            Self::Sentinel(_) => wait.query_async(self).await,
            Self::Cluster(c) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let route = Route::with_key(key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                let reply = c
                    .run(|mut conn| async move { conn.route_command(wait, routing).await })
                    .await;
                Ok(redis::from_redis_value(reply?)?)
            }
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => Box::pin(c.run(move |mut conn| async move { conn.req_packed_command(cmd).await })),
            Self::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => {
                Box::pin(c.run(move |mut conn| async move { conn.req_packed_commands(pipeline, offset, count).await }))
            }
            Self::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(_) | Self::Sentinel(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_url_is_one_server() {
        let target = RedisTarget::parse("redis://127.0.0.1:6379", None).unwrap();
        assert!(!target.is_cluster());
    }

    #[test]
    fn a_cluster_url_lists_its_nodes_with_shared_credentials() {
        let target = RedisTarget::parse("redis+cluster://u:p@127.0.0.1:7001,127.0.0.1:7002/", None).unwrap();
        let RedisTarget::Cluster(cluster) = target else {
            panic!("not a cluster")
        };
        assert_eq!(
            cluster.nodes,
            ["redis://u:p@127.0.0.1:7001", "redis://u:p@127.0.0.1:7002"]
        );
    }

    #[test]
    fn cluster_nodes_win_over_the_url() {
        let target = RedisTarget::parse("redis://127.0.0.1:6379", Some("h1:1, h2:2")).unwrap();
        assert!(target.is_cluster());
        assert!(RedisTarget::parse("redis://127.0.0.1:6379", Some("  ")).is_ok_and(|t| !t.is_cluster()));
    }

    #[test]
    fn a_cluster_without_nodes_is_refused() {
        assert!(RedisTarget::parse("redis+cluster://", None).is_err());
        assert!(RedisTarget::parse("redis+cluster://,", None).is_err());
    }

    #[test]
    fn a_sentinel_url_lists_its_sentinels_and_the_master_name() {
        let target = RedisTarget::parse("redis+sentinel://u:p@h1:26379, h2:26380/coupons", None).unwrap();
        let RedisTarget::Sentinel(sentinel) = target else {
            panic!("not a sentinel set")
        };
        assert_eq!(sentinel.sentinels, ["h1:26379", "h2:26380"]);
        assert_eq!(sentinel.master, "coupons");
        assert!(RedisTarget::parse("rediss+sentinel://h1:26379/coupons/", None).is_ok());
    }

    #[test]
    fn a_sentinel_url_without_a_master_name_or_sentinels_is_refused() {
        for url in [
            "redis+sentinel://h1:26379",
            "redis+sentinel://h1:26379/",
            "redis+sentinel:///coupons",
        ] {
            let error = RedisTarget::parse(url, None).err().map(|e| e.to_string());
            assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("REDIS_URL: a sentinel URL")),
                "{url}: {error:?}"
            );
        }
    }
}
