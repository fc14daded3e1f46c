//! Redis behind Sentinel: the primary is asked of the sentinels, and asked again after a failover.
//!
//! `REDIS_URL=redis+sentinel://[user:password@]h1:p1,h2:p2,h3:p3/<master-name>` (or
//! `rediss+sentinel://`, TLS to the sentinels and the data nodes). The credentials are the data
//! nodes'; sentinels that require a password of their own get it from `REDIS_SENTINEL_PASSWORD`.
//!
//! Resolving: each sentinel in turn is asked `SENTINEL get-master-addr-by-name`, and the address
//! it names is only taken once `ROLE` on that node says `master` (a sentinel can name a node that
//! is not promoted yet, or one that was demoted). The connection that answered `ROLE` is the one
//! kept: one multiplexed connection, shared by every request.
//!
//! Following a failover: the connection never reconnects to the same address by itself. When a
//! command fails because the connection broke, timed out, or the node answers `READONLY` (a
//! demoted primary), the handle resolves again through the sentinels and swaps the connection
//! for everyone's next command (`replace`), at most every `RESOLVE_EVERY`. Until the sentinels
//! have promoted a replica, each resolution fails fast and requests are answered 503.
//!
//! Hand-written rather than redis-rs's `sentinel::SentinelClient` (redis 1.8.1): that client
//! hands out a connection to the primary it found once and never looks again, so the
//! re-resolving wrapper is needed either way; and its lookup (`SENTINEL MASTERS`, then a second
//! connection for `ROLE`) reports a name no sentinel knows, a primary that is down and sentinels
//! that are all unreachable alike, where the start-up check must tell the first apart.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use super::replace::{Policy, Replaceable, connection_failed};
use super::tls::TlsSetup;

/// The URL schemes that name a set of sentinels, without and with TLS.
pub(super) const SCHEME: &str = "redis+sentinel://";
pub(super) const TLS_SCHEME: &str = "rediss+sentinel://";

/// The least time between two resolutions: during a failover every request fails, and one
/// resolution per this interval is enough to notice the new primary soon after its promotion.
const RESOLVE_EVERY: Duration = Duration::from_millis(200);

/// The sentinels to ask, the master's name, and how to reach the nodes they name.
#[derive(Clone, Debug)]
pub struct SentinelTarget {
    /// `host:port` of each sentinel, in the order given.
    pub sentinels: Vec<String>,
    pub master: String,
    /// `user:password@` (or `:password@`) for the data nodes, as given in the URL.
    auth: String,
    /// `:password@` for the sentinels (`REDIS_SENTINEL_PASSWORD`), empty when they need none.
    sentinel_auth: String,
    /// With `rediss+sentinel://`: the `REDIS_TLS_*` settings, for the sentinels and the nodes.
    tls: Option<TlsSetup>,
}

/// Why the sentinels could not name a primary at start.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("REDIS_URL: no sentinel of {sentinels} knows a master named {master:?}")]
    UnknownMaster { sentinels: String, master: String },
    #[error("REDIS_URL: no sentinel of {sentinels} answered (the last: {error})")]
    NoSentinel { sentinels: String, error: RedisError },
}

impl SentinelTarget {
    /// `rest`: what follows the scheme, `[auth@]h1:p1,h2:p2/<master-name>`.
    pub(super) fn parse(rest: &str, tls: Option<TlsSetup>) -> Result<Self, String> {
        let (auth, hosts) = match rest.rsplit_once('@') {
            Some((auth, hosts)) => (format!("{auth}@"), hosts),
            None => (String::new(), rest),
        };
        let (hosts, master) = hosts.split_once('/').unwrap_or((hosts, ""));
        let master = master.trim_end_matches('/');
        if master.is_empty() || master.contains(['/', '?']) {
            return Err(format!("a sentinel URL ends in /<master-name>, got {rest:?}"));
        }
        let sentinels: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        if sentinels.is_empty() {
            return Err(format!("a sentinel URL lists sentinels as host:port, got {rest:?}"));
        }
        let sentinel_auth = std::env::var("REDIS_SENTINEL_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .map_or_else(String::new, |p| format!(":{p}@"));
        let target = Self {
            sentinels,
            master: master.to_owned(),
            auth,
            sentinel_auth,
            tls,
        };
        for sentinel in &target.sentinels {
            target
                .sentinel_client(sentinel)
                .map_err(|e| format!("{sentinel}: {e}"))?;
        }
        target.node_client("127.0.0.1", 6379).map_err(|e| e.to_string())?;
        Ok(target)
    }

    /// Asks the sentinels once: fails only when none answers, or none knows the name. A
    /// primary that is down is no reason to stop the start: it fails over, or comes back, and
    /// the service reports not ready until then.
    pub async fn check(&self, timeout: Duration) -> Result<(), LookupError> {
        let mut answered = false;
        let mut last = None;
        for sentinel in &self.sentinels {
            match self.ask(sentinel, timeout).await {
                Ok(Some(_)) => return Ok(()),
                Ok(None) => answered = true,
                Err(e) => last = Some(e),
            }
        }
        let sentinels = self.sentinels.join(",");
        match last {
            Some(error) if !answered => Err(LookupError::NoSentinel { sentinels, error }),
            _ => Err(LookupError::UnknownMaster {
                sentinels,
                master: self.master.clone(),
            }),
        }
    }

    /// The primary's address from one sentinel: `None` when it knows no such master.
    async fn ask(&self, sentinel: &str, timeout: Duration) -> RedisResult<Option<(String, u16)>> {
        let client = self.sentinel_client(sentinel)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.master)
            .query_async(&mut conn)
            .await
    }

    /// A client for the primary the first sentinel that can names (not checked with `ROLE`: for
    /// a subscriber, which hears a `PUBLISH` on a replica too).
    pub async fn primary_client(&self, timeout: Duration) -> RedisResult<redis::Client> {
        let mut last = None;
        for sentinel in &self.sentinels {
            match self.ask(sentinel, timeout).await {
                Ok(Some((host, port))) => return self.node_client(&host, port),
                Ok(None) => {}
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| unresolved(format!("no sentinel knows a master named {:?}", self.master))))
    }

    /// A connection to the primary the first sentinel that can names, checked with `ROLE`.
    async fn primary(&self, config: AsyncConnectionConfig, timeout: Duration) -> RedisResult<MultiplexedConnection> {
        let mut last = None;
        for sentinel in &self.sentinels {
            let (host, port) = match self.ask(sentinel, timeout).await {
                Ok(Some(addr)) => addr,
                Ok(None) => {
                    last = Some(unresolved(format!(
                        "sentinel {sentinel} knows no master {:?}",
                        self.master
                    )));
                    continue;
                }
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match self.verified(&host, port, &config).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| unresolved("no sentinel given".to_owned())))
    }

    async fn verified(
        &self,
        host: &str,
        port: u16,
        config: &AsyncConnectionConfig,
    ) -> RedisResult<MultiplexedConnection> {
        let mut conn = self
            .node_client(host, port)?
            .get_multiplexed_async_connection_with_config(config)
            .await?;
        let role: Vec<Value> = redis::cmd("ROLE").query_async(&mut conn).await?;
        match role.first() {
            Some(Value::BulkString(r)) if r == b"master" => Ok(conn),
            _ => Err(unresolved(format!(
                "{host}:{port}, named by a sentinel, is not a primary (yet)"
            ))),
        }
    }

    /// Where the choice of plain TCP or TLS is made, for the sentinels and the data nodes alike
    /// (with TLS: the `REDIS_TLS_*` settings, as for one server or a cluster).
    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "rediss" } else { "redis" }
    }

    fn sentinel_client(&self, sentinel: &str) -> RedisResult<redis::Client> {
        let url = format!("{}://{}{sentinel}", self.scheme(), self.sentinel_auth);
        super::tls::client(&url, self.tls.as_ref())
    }

    fn node_client(&self, host: &str, port: u16) -> RedisResult<redis::Client> {
        let url = format!("{}://{}{host}:{port}", self.scheme(), self.auth);
        super::tls::client(&url, self.tls.as_ref())
    }

    pub fn describe(&self) -> String {
        format!(
            "redis primary {:?} from sentinels {}",
            self.master,
            self.sentinels.join(",")
        )
    }
}

/// A failed resolution. Counted as a broken connection (see `broken`), so the next command
/// after `RESOLVE_EVERY` resolves again.
fn unresolved(detail: String) -> RedisError {
    RedisError::from((ErrorKind::MasterNameNotFoundBySentinel, "no primary", detail))
}

/// What makes the handle ask the sentinels again: the connection broke or timed out, the node
/// is no longer a primary, or the last resolution failed.
fn broken(e: &RedisError) -> bool {
    connection_failed(e)
        || e.kind() == ErrorKind::MasterNameNotFoundBySentinel
        || matches!(e.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
}

/// A connection being (or already) resolved; every command awaits the same one.
type Pending = Shared<BoxFuture<'static, RedisResult<MultiplexedConnection>>>;

/// The shared connection to the primary of a Sentinel set; cheap to clone, every clone shares
/// the socket.
#[derive(Clone)]
pub struct SentinelHandle {
    inner: Arc<Inner>,
    /// Set by `pinned`: commands go over this connection even after a swap.
    pinned: Option<Arc<Pending>>,
}

struct Inner {
    target: SentinelTarget,
    config: AsyncConnectionConfig,
    timeout: Duration,
    conn: Replaceable<Pending>,
}

impl SentinelHandle {
    /// Lazy: the sentinels are first asked by the first command.
    pub fn new(target: SentinelTarget, timeout: Duration) -> Self {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let policy = Policy {
            failing_for: Duration::ZERO,
            between: RESOLVE_EVERY,
        };
        let conn = Replaceable::new(resolve(&target, &config, timeout), policy);
        Self {
            inner: Arc::new(Inner {
                target,
                config,
                timeout,
                conn,
            }),
            pinned: None,
        }
    }

    /// This handle bound to the connection of the moment: `WAIT` must follow the write it
    /// counts over the same socket, and a swap in between would send it to a new primary that
    /// never saw the write (and, with replicas of its own, would acknowledge it at once).
    pub fn pinned(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            pinned: Some(self.pinned.clone().unwrap_or_else(|| self.inner.conn.current())),
        }
    }

    async fn run<T, F: Future<Output = RedisResult<T>>>(
        &self,
        command: impl FnOnce(MultiplexedConnection) -> F,
    ) -> RedisResult<T> {
        let used = self.pinned.clone().unwrap_or_else(|| self.inner.conn.current());
        let result = match (*used).clone().await {
            Ok(conn) => command(conn).await,
            Err(e) => Err(e),
        };
        let inner = &self.inner;
        let fresh = || resolve(&inner.target, &inner.config, inner.timeout);
        let why = "redis primary unreachable or demoted; asking the sentinels again";
        inner.conn.observe(&used, &result, broken, fresh, why);
        result
    }

    pub(super) fn req_packed_command<'a>(&'a self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.run(move |mut conn| async move { conn.req_packed_command(cmd).await }))
    }

    pub(super) fn req_packed_commands<'a>(
        &'a self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(self.run(move |mut conn| async move { conn.req_packed_commands(pipeline, offset, count).await }))
    }
}

fn resolve(target: &SentinelTarget, config: &AsyncConnectionConfig, timeout: Duration) -> Pending {
    let (target, config) = (target.clone(), config.clone());
    async move { target.primary(config, timeout).await }.boxed().shared()
}
