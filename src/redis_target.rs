//! Which Redis the service talks to: one server, a Redis Cluster, or the primary a set of
//! sentinels names, behind one connection type.
//!
//! `REDIS_URL` names either a single server (`redis://host:port`), a cluster
//! (`redis+cluster://host1:port1,host2:port2,...`, any reachable nodes; the client learns the
//! rest), or sentinels (`redis+sentinel://host1:port1,.../<master-name>`, see `sentinel`);
//! `REDIS_CLUSTER_NODES` (`host1:port1,host2:port2`) is the same as the second form.
//! Over TLS the schemes are `rediss://host:port`, `rediss+cluster://host1:port1,...` and
//! `rediss+sentinel://...`, with the `REDIS_TLS_*` settings of [`tls::RedisTls`] (see
//! docs/tls.md). An ACL user and password come before the host
//! (`rediss://user:password@host:port`); on a cluster or a sentinel set once, before the
//! hosts (`rediss+cluster://user:password@h1:p1,h2:p2`), for every data node.
//!
//! [`RedisTarget::parse`] is the one place that turns the settings into a client: the issuer's
//! connection, the writer's, restore, reconcile, the lab and the admin CLI all connect through
//! the target it returns, so none of them can connect without the TLS settings.
//!
//! Everything above this module works with `RedisConnection` and never asks which it is, except
//! where a cluster refuses what one server allows: one command over keys of several events
//! (`CROSSSLOT`). The writer therefore reads each stream on its own in a cluster (see
//! `writer::read`), and every multi-key command or pipeline here stays inside one event's hash
//! slot (`issuing::Keys`).

mod replace;
mod sentinel;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use replace::{Policy, Replaceable, connection_failed};
pub use sentinel::{LookupError, SentinelHandle, SentinelTarget};
pub use tls::RedisTls;
use tls::TlsSetup;

/// The URL schemes that name a cluster: plain, and over TLS.
const CLUSTER_SCHEME: &str = "redis+cluster://";
const TLS_CLUSTER_SCHEME: &str = "rediss+cluster://";

/// A Redis to connect to, parsed once from the settings.
#[derive(Clone)]
pub enum RedisTarget {
    Single(redis::Client),
    Cluster(ClusterTarget),
    Sentinel(SentinelTarget),
}

/// A cluster: the nodes to start from, as `redis://host:port` (or `rediss://`) URLs, and the
/// TLS settings for every node, those it learns from the cluster too.
#[derive(Clone, Debug)]
pub struct ClusterTarget {
    pub nodes: Vec<String>,
    pub(crate) tls: Option<TlsSetup>,
}

/// Settings that cannot work. Each message names the setting at fault and fits on one line.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("REDIS_URL is not a Redis URL: {0}")]
    Url(#[from] redis::RedisError),
    #[error("a cluster needs at least one node as host:port, got {0:?}")]
    NoNodes(String),
    #[error("REDIS_URL: {0}")]
    Sentinel(String),
    #[error("{setting}: {path}: {problem}")]
    TlsFile {
        setting: &'static str,
        path: String,
        problem: String,
    },
    #[error(
        "REDIS_TLS_* is set but REDIS_URL does not use TLS: use rediss:// or rediss+cluster:// \
         (REDIS_CLUSTER_NODES is always plain)"
    )]
    TlsWithoutTls,
    #[error("REDIS_TLS_CLIENT_CERT and REDIS_TLS_CLIENT_KEY must be set together")]
    ClientCertWithoutKey,
}

impl RedisTarget {
    /// `cluster_nodes` (from `REDIS_CLUSTER_NODES`), when set and not empty, wins over `url`.
    /// Reads the TLS files now: a missing or unparseable one is an error here, not at the first
    /// connection.
    pub fn parse(url: &str, cluster_nodes: Option<&str>, tls: &RedisTls) -> Result<Self, TargetError> {
        if let Some(nodes) = cluster_nodes.filter(|n| !n.trim().is_empty()) {
            return Self::cluster(nodes, "", tls.load(false)?);
        }
        for (scheme, secure) in [(sentinel::SCHEME, false), (sentinel::TLS_SCHEME, true)] {
            if let Some(rest) = url.strip_prefix(scheme) {
                let target = SentinelTarget::parse(rest, tls.load(secure)?).map_err(TargetError::Sentinel)?;
                return Ok(Self::Sentinel(target));
            }
        }
        let cluster = [(CLUSTER_SCHEME, false), (TLS_CLUSTER_SCHEME, true)]
            .into_iter()
            .find_map(|(scheme, secure)| Some((url.strip_prefix(scheme)?, secure)));
        match cluster {
            Some((rest, secure)) => {
                // Credentials, if any, come once before the nodes and apply to all of them.
                let (auth, nodes) = match rest.rsplit_once('@') {
                    Some((auth, nodes)) => (format!("{auth}@"), nodes),
                    None => (String::new(), rest),
                };
                Self::cluster(nodes.trim_end_matches('/'), &auth, tls.load(secure)?)
            }
            None => Self::single(url, tls),
        }
    }

    fn single(url: &str, tls: &RedisTls) -> Result<Self, TargetError> {
        let info = redis::IntoConnectionInfo::into_connection_info(url)?;
        let mut settings = tls.clone();
        // `rediss://host/#insecure`, redis-rs's own switch, counts as REDIS_TLS_INSECURE: it
        // gets the same warning, and is never off silently.
        let (secure, fragment_insecure) = match info.addr() {
            redis::ConnectionAddr::TcpTls { insecure, .. } => (true, *insecure),
            _ => (false, false),
        };
        settings.insecure |= fragment_insecure;
        let client = match settings.load(secure)? {
            None => redis::Client::open(info)?,
            Some(setup) => {
                let info = match setup.insecure && !fragment_insecure {
                    true => redis::IntoConnectionInfo::into_connection_info(format!("{url}#insecure").as_str())?,
                    false => info,
                };
                redis::Client::build_with_tls(info, setup.certs)?
            }
        };
        Ok(Self::Single(client))
    }

    fn cluster(given: &str, auth: &str, tls: Option<TlsSetup>) -> Result<Self, TargetError> {
        let scheme = if tls.is_some() { "rediss" } else { "redis" };
        let nodes: Vec<String> = given
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| format!("{scheme}://{auth}{n}"))
            .collect();
        if nodes.is_empty() {
            return Err(TargetError::NoNodes(given.to_owned()));
        }
        for node in &nodes {
            redis::Client::open(node.as_str())?;
        }
        let target = ClusterTarget { nodes, tls };
        // Built once here so that a bad combination is refused at start, not at first use.
        target.builder().build()?;
        Ok(Self::Cluster(target))
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
                let client = cluster
                    .builder()
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

    /// One connection to the server (the first node of a cluster, the named primary behind
    /// sentinels), with the target's TLS
    /// settings, and a PING: the real reason when it fails. The shared connections hide it on a
    /// cluster, whose client keeps retrying until the request times out.
    pub async fn probe(&self, timeout: Duration) -> RedisResult<()> {
        let client = match self {
            Self::Single(client) => client.clone(),
            Self::Cluster(cluster) => {
                let first = cluster.nodes.first().map(String::as_str).unwrap_or_default();
                tls::client(first, cluster.tls.as_ref())?
            }
            Self::Sentinel(target) => target.primary_client(timeout).await?,
        };
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
        redis::cmd("PING").query_async(&mut conn).await
    }

    /// Which of a single server's URL or the cluster's nodes, for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Single(client) => {
                let addr = client.get_connection_info().addr();
                let tls = matches!(addr, redis::ConnectionAddr::TcpTls { .. });
                format!("redis {addr}{}", if tls { " over TLS" } else { "" })
            }
            Self::Cluster(cluster) => format!(
                "redis cluster from {} nodes{}",
                cluster.nodes.len(),
                if cluster.tls.is_some() { " over TLS" } else { "" }
            ),
            Self::Sentinel(target) => target.describe(),
        }
    }
}

impl ClusterTarget {
    /// A client builder for the nodes, with the TLS settings for every node it will meet.
    fn builder(&self) -> redis::cluster::ClusterClientBuilder {
        let builder = ClusterClient::builder(self.nodes.clone());
        match &self.tls {
            None => builder,
            Some(tls) => {
                let mode = if tls.insecure {
                    redis::TlsMode::Insecure
                } else {
                    redis::TlsMode::Secure
                };
                builder.tls(mode).certs(tls.certs.clone())
            }
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

    fn plain() -> RedisTls {
        RedisTls::default()
    }

    #[test]
    fn a_plain_url_is_one_server() {
        let target = RedisTarget::parse("redis://127.0.0.1:6379", None, &plain()).unwrap();
        assert!(!target.is_cluster());
    }

    #[test]
    fn a_cluster_url_lists_its_nodes_with_shared_credentials() {
        let target = RedisTarget::parse("redis+cluster://u:p@127.0.0.1:7001,127.0.0.1:7002/", None, &plain()).unwrap();
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
        let target = RedisTarget::parse("redis://127.0.0.1:6379", Some("h1:1, h2:2"), &plain()).unwrap();
        assert!(target.is_cluster());
        assert!(RedisTarget::parse("redis://127.0.0.1:6379", Some("  "), &plain()).is_ok_and(|t| !t.is_cluster()));
    }

    #[test]
    fn a_cluster_without_nodes_is_refused() {
        assert!(RedisTarget::parse("redis+cluster://", None, &plain()).is_err());
        assert!(RedisTarget::parse("redis+cluster://,", None, &plain()).is_err());
    }

    #[test]
    fn tls_urls_name_tls_targets_with_shared_credentials() {
        let single = RedisTarget::parse("rediss://u:p@127.0.0.1:6380", None, &plain()).unwrap();
        assert_eq!(single.describe(), "redis 127.0.0.1:6380 over TLS");
        let target = RedisTarget::parse("rediss+cluster://u:p@127.0.0.1:7001,127.0.0.1:7002", None, &plain()).unwrap();
        let RedisTarget::Cluster(cluster) = target else {
            panic!("not a cluster")
        };
        assert_eq!(
            cluster.nodes,
            ["rediss://u:p@127.0.0.1:7001", "rediss://u:p@127.0.0.1:7002"]
        );
        assert!(cluster.tls.is_some_and(|t| !t.insecure));
    }

    #[test]
    fn tls_settings_with_a_plain_url_are_refused() {
        let insecure = RedisTls {
            insecure: true,
            ..plain()
        };
        for (url, nodes) in [
            ("redis://127.0.0.1:6379", None),
            ("redis+cluster://127.0.0.1:7001", None),
            ("rediss://127.0.0.1:6379", Some("127.0.0.1:7001")),
        ] {
            let refused = RedisTarget::parse(url, nodes, &insecure);
            assert!(matches!(refused, Err(TargetError::TlsWithoutTls)), "{url} {nodes:?}");
        }
    }

    #[test]
    fn a_missing_or_broken_tls_file_names_its_setting() {
        let dir = std::env::temp_dir().join(format!("redis-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let cases = [
            (
                RedisTls {
                    ca_file: Some("/nonexistent/ca.pem".into()),
                    ..plain()
                },
                "REDIS_TLS_CA_FILE: /nonexistent/ca.pem: no such file".to_owned(),
            ),
            (
                RedisTls {
                    ca_file: Some(junk.clone()),
                    ..plain()
                },
                format!("REDIS_TLS_CA_FILE: {}: no PEM certificate in it", junk.display()),
            ),
            (
                RedisTls {
                    client_cert: Some(junk.clone()),
                    client_key: Some(junk.clone()),
                    ..plain()
                },
                format!("REDIS_TLS_CLIENT_CERT: {}: no PEM certificate in it", junk.display()),
            ),
            (
                RedisTls {
                    client_cert: Some(junk.clone()),
                    ..plain()
                },
                "REDIS_TLS_CLIENT_CERT and REDIS_TLS_CLIENT_KEY must be set together".to_owned(),
            ),
        ];
        for (settings, message) in cases {
            for url in ["rediss://127.0.0.1:6380", "rediss+cluster://127.0.0.1:7001"] {
                let error = RedisTarget::parse(url, None, &settings).err().expect("refused");
                assert_eq!(error.to_string(), message, "{url}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_sentinel_url_lists_its_sentinels_and_the_master_name() {
        let target = RedisTarget::parse("redis+sentinel://u:p@h1:26379, h2:26380/coupons", None, &plain()).unwrap();
        let RedisTarget::Sentinel(sentinel) = target else {
            panic!("not a sentinel set")
        };
        assert_eq!(sentinel.sentinels, ["h1:26379", "h2:26380"]);
        assert_eq!(sentinel.master, "coupons");
        assert!(RedisTarget::parse("rediss+sentinel://h1:26379/coupons/", None, &plain()).is_ok());
    }

    #[test]
    fn a_sentinel_url_without_a_master_name_or_sentinels_is_refused() {
        for url in [
            "redis+sentinel://h1:26379",
            "redis+sentinel://h1:26379/",
            "redis+sentinel:///coupons",
        ] {
            let error = RedisTarget::parse(url, None, &plain()).err().map(|e| e.to_string());
            assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("REDIS_URL: a sentinel URL")),
                "{url}: {error:?}"
            );
        }
    }
}
