//! A Redis Sentinel set of a test's own (one primary, one replica, three sentinels), started by
//! `scripts/sentinel` (a wrapper of `cargo xtask sentinel`) in a temporary directory, so that a
//! test may kill its primary.
//!
//! Driven through `redis-cli`, like `cluster.rs`: who the primary is and whether the failover
//! is over should not be asked of the code under test.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cluster::cli;
use crate::script;
use crate::servers::TempDir;

/// The master name `scripts/sentinel` gives the primary.
pub const MASTER: &str = "coupons";

/// A Sentinel set of the test's own; stopped and deleted on drop, also when the test fails.
pub struct OwnSentinels {
    url: String,
    /// The sentinels' ports.
    sentinels: Vec<u16>,
    /// The primary killed by [`OwnSentinels::kill_primary`], and when.
    killed: Option<(u16, Instant)>,
    dir: TempDir,
}

impl OwnSentinels {
    /// Starts it (about 3-5 s: the sentinels must discover each other and the replica).
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Over TLS only (`scripts/sentinel --tls`): `certs` holds ca.crt, server.crt and server.key;
    /// the URL is `rediss+sentinel://`. Only [`OwnSentinels::url`] is meant for such a set (the
    /// other helpers ask the nodes in plain redis-cli).
    pub fn start_tls(certs: &Path) -> Self {
        Self::start_with(&["--tls", &certs.display().to_string()])
    }

    fn start_with(extra: &[&str]) -> Self {
        let (url, dir) = script::start("sentinel", extra);
        let sentinels = url
            .split_once("://")
            .map_or("", |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default()
            .split(',')
            .map(|h| h.rsplit(':').next().unwrap().parse().unwrap())
            .collect();
        Self {
            url,
            sentinels,
            killed: None,
            dir,
        }
    }

    /// `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/coupons`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The URL with another master name, one no sentinel knows.
    pub fn url_for(&self, master: &str) -> String {
        format!("{}/{master}", self.url.rsplit_once('/').unwrap().0)
    }

    /// The primary's port, as the first sentinel that answers names it.
    pub fn primary(&self) -> u16 {
        self.sentinels
            .iter()
            .find_map(|&s| named_by(s))
            .expect("a sentinel names the primary")
    }

    /// `kill -9` the primary: no chance to tell anyone.
    pub fn kill_primary(&mut self, port: u16) {
        let pid = std::fs::read_to_string(self.dir.0.join(port.to_string()).join("redis.pid"))
            .expect("the primary's pid file");
        let pid = nix::unistd::Pid::from_raw(pid.trim().parse().unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        self.killed = Some((port, Instant::now()));
    }

    /// Waits until every sentinel names another node than `old` and that node says it is a
    /// primary. Returns the time since the kill.
    pub fn wait_for_failover(&self, old: u16, limit: Duration) -> Duration {
        let since = match self.killed {
            Some((port, at)) if port == old => at,
            _ => Instant::now(),
        };
        loop {
            let named: Vec<Option<u16>> = self.sentinels.iter().map(|&s| named_by(s)).collect();
            if let Some(Some(new)) = named.first()
                && *new != old
                && named.iter().all(|n| *n == Some(*new))
                && cli(*new, &["role"]).is_some_and(|r| r.starts_with("master"))
            {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < limit,
                "no failover of {old} after {limit:?}: {named:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a killed data node again on its port, as the primary's replica; waits until it
    /// is in sync.
    pub fn restart_node(&mut self, port: u16) {
        script::run("sentinel", &["restart-node", &port.to_string(), "--quiet"], &self.dir);
        let since = Instant::now();
        let primary = self.primary();
        while !cli(primary, &["info", "replication"]).is_some_and(|i| i.contains("state=online")) {
            assert!(since.elapsed() < Duration::from_secs(30), "no replica back after 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OwnSentinels {
    fn drop(&mut self) {
        script::stop("sentinel", &self.dir);
    }
}

/// The primary's port as the sentinel on `port` names it.
fn named_by(port: u16) -> Option<u16> {
    let reply = cli(port, &["sentinel", "get-master-addr-by-name", MASTER])?;
    reply.lines().nth(1)?.trim().parse().ok()
}
