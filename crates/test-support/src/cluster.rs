//! A Redis Cluster (3 primaries, 3 replicas) of a test's own, started by `scripts/cluster` (a
//! wrapper of `cargo xtask cluster`) in a temporary directory, so a test may kill a primary
//! without disturbing anyone else; and the shared cluster `scripts/test` starts for tests that
//! only read and write.
//!
//! Driven through `redis-cli` rather than the service's Redis client: what a test asks of the
//! cluster here (who owns a slot, is the failover over) should not depend on the code under test.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::script;
use crate::servers::TempDir;

/// The URL of the cluster `scripts/test` started for the whole run (`TEST_REDIS_CLUSTER_URL`).
/// Only for tests that read and write: a test that kills a node needs an [`OwnCluster`].
pub fn shared_cluster_url() -> Option<String> {
    std::env::var("TEST_REDIS_CLUSTER_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// The shared cluster's URL, or, when there is none (`cargo test` run by hand), a cluster of the
/// test's own, which the test keeps alive by holding the second value.
pub fn shared_or_own_cluster() -> (String, Option<OwnCluster>) {
    match shared_cluster_url() {
        Some(url) => (url, None),
        None => {
            let own = OwnCluster::start();
            (own.url(), Some(own))
        }
    }
}

/// The port of the primary serving `key` on the cluster that `url` (`redis+cluster://...`)
/// names: shared or own, asked through its first node.
pub fn primary_port_at(url: &str, key: &str) -> u16 {
    let first = url
        .trim_start_matches("redis+cluster://")
        .split(',')
        .next()
        .unwrap_or_default();
    let port: u16 = first
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port in the url");
    let slot: u16 = cli(port, &["cluster", "keyslot", key]).unwrap().trim().parse().unwrap();
    cli(port, &["cluster", "nodes"])
        .unwrap()
        .lines()
        .filter_map(parse_node)
        .find(|(_, primary, slots)| *primary && slots.iter().any(|r| r.contains(&slot)))
        .map(|(p, _, _)| p)
        .unwrap_or_else(|| panic!("no primary serves slot {slot}"))
}

/// One node, as the cluster sees it.
#[derive(Clone, Debug)]
pub struct Node {
    pub port: u16,
    pub pid: u32,
    pub primary: bool,
    /// For a replica, its primary's port.
    pub replica_of: Option<u16>,
    pub slots: Vec<RangeInclusive<u16>>,
}

/// A cluster of the test's own; stopped and deleted on drop, also when the test fails.
pub struct OwnCluster {
    url: String,
    /// Primaries killed by [`OwnCluster::kill_primary`]: their slots, and when.
    killed: HashMap<u16, (Vec<RangeInclusive<u16>>, Instant)>,
    dir: TempDir,
}

impl OwnCluster {
    /// Starts it (about 2-3 s: `redis-cli --cluster create` waits in whole seconds).
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A cluster that speaks TLS only, to clients and between nodes, with the certificates in
    /// `certs` (`ca.crt`, `server.crt`, `server.key`: see `scripts/cluster --tls`). Its URL is
    /// `rediss+cluster://...`; the helpers below that ask nodes through `redis-cli` in plain
    /// text do not reach it.
    pub fn start_tls(certs: &Path) -> Self {
        Self::start_with(&["--tls", &certs.display().to_string()])
    }

    fn start_with(extra: &[&str]) -> Self {
        let (url, dir) = script::start("cluster", extra);
        Self {
            url,
            killed: HashMap::new(),
            dir,
        }
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`: the primaries it started with.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The nodes whose process still runs, as the first of them that answers sees the cluster.
    pub fn nodes(&self) -> Vec<Node> {
        let pids = self.pids();
        let view = pids
            .keys()
            .find_map(|&port| cli(port, &["cluster", "nodes"]))
            .expect("some node answers");
        // Node id → port, to name each replica's primary.
        let ports: HashMap<&str, u16> = view
            .lines()
            .filter_map(|l| Some((l.split_whitespace().next()?, parse_node(l)?.0)))
            .collect();
        view.lines()
            .filter_map(|line| {
                let (port, primary, slots) = parse_node(line)?;
                let master_id = line.split_whitespace().nth(3)?;
                Some(Node {
                    port,
                    pid: *pids.get(&port)?,
                    primary,
                    replica_of: ports.get(master_id).copied(),
                    slots,
                })
            })
            .collect()
    }

    /// The port of the running primary that serves `key`'s slot.
    pub fn primary_for_key(&self, key: &str) -> u16 {
        let port = *self.pids().keys().next().expect("a node runs");
        let slot: u16 = cli(port, &["cluster", "keyslot", key]).unwrap().trim().parse().unwrap();
        self.nodes()
            .into_iter()
            .find(|n| n.primary && n.slots.iter().any(|r| r.contains(&slot)))
            .unwrap_or_else(|| panic!("no running primary serves slot {slot} of {key:?}"))
            .port
    }

    /// Starts moving `slot` from the primary on `from` to the one on `to`, as
    /// `redis-cli --cluster reshard` does: IMPORTING on `to`, then MIGRATING on `from`. No key
    /// moves yet (see [`OwnCluster::migrate_keys`], [`OwnCluster::finish_migration`]).
    pub fn begin_migration(&self, slot: u16, from: u16, to: u16) {
        let slot = slot.to_string();
        for (port, state, other) in [(to, "importing", from), (from, "migrating", to)] {
            let id = node_id(other);
            let reply = cli(port, &["cluster", "setslot", &slot, state, &id]);
            assert_eq!(reply.as_deref().map(str::trim), Some("OK"), "setslot {state} on {port}");
        }
    }

    /// Moves `keys` (of the migrating slot) from `from` to `to`, with MIGRATE.
    pub fn migrate_keys(&self, from: u16, to: u16, keys: &[String]) {
        let to_port = to.to_string();
        let mut args = vec!["migrate", "127.0.0.1", &to_port, "", "0", "5000", "KEYS"];
        args.extend(keys.iter().map(String::as_str));
        let reply = cli(from, &args);
        assert!(
            reply
                .as_deref()
                .is_some_and(|r| r.trim() == "OK" || r.trim() == "NOKEY"),
            "migrate {keys:?} from {from} to {to}: {reply:?}"
        );
    }

    /// Ends the move: the slot's remaining keys moved, then the slot given to `to` on `to`,
    /// `from` and every other primary.
    pub fn finish_migration(&self, slot: u16, from: u16, to: u16) {
        let slot_arg = slot.to_string();
        loop {
            let left = cli(from, &["cluster", "getkeysinslot", &slot_arg, "1000"]).unwrap_or_default();
            let keys: Vec<String> = left.lines().filter(|k| !k.is_empty()).map(str::to_owned).collect();
            if keys.is_empty() {
                break;
            }
            self.migrate_keys(from, to, &keys);
        }
        let id = node_id(to);
        let primaries = self.nodes().into_iter().filter(|n| n.primary).map(|n| n.port);
        for port in [to, from].into_iter().chain(primaries) {
            cli(port, &["cluster", "setslot", &slot_arg, "node", &id]);
        }
    }

    /// Forbids the replica of the primary on `port` to take over (`cluster-replica-no-failover`),
    /// so that once that primary is killed its slots stay unserved for as long as a test needs.
    pub fn forbid_failover(&self, port: u16) {
        let replica = self.nodes().into_iter().find(|n| n.replica_of == Some(port));
        let replica = replica.unwrap_or_else(|| panic!("no replica of {port}"));
        let reply = cli(replica.port, &["config", "set", "cluster-replica-no-failover", "yes"]);
        assert_eq!(reply.as_deref().map(str::trim), Some("OK"), "on {}", replica.port);
    }

    /// `kill -9` the primary on `port`: no chance to tell anyone.
    pub fn kill_primary(&mut self, port: u16) {
        let node = self.nodes().into_iter().find(|n| n.port == port);
        let node = node.unwrap_or_else(|| panic!("no running node on {port}"));
        assert!(node.primary, "the node on {port} is a replica");
        let pid = nix::unistd::Pid::from_raw(node.pid as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        self.killed.insert(port, (node.slots, Instant::now()));
    }

    /// Starts a killed node again on its port, as a supervisor would: a primary that failed over
    /// rejoins as its successor's replica. Waits until every primary has a replica in sync.
    pub fn restart_node(&mut self, port: u16) {
        script::run("cluster", &["restart-node", &port.to_string(), "--quiet"], &self.dir);
        self.killed.remove(&port);
        let since = Instant::now();
        while !self
            .nodes()
            .iter()
            .filter(|n| n.primary)
            .all(|p| cli(p.port, &["info", "replication"]).is_some_and(|i| i.contains("connected_slaves:1")))
        {
            assert!(since.elapsed() < Duration::from_secs(30), "no replica back after 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running node agrees that another running node is the primary for all
    /// of `old_port`'s slots, and each says `cluster_state:ok`. Returns the time since the kill
    /// (since this call when `old_port` was not killed by [`OwnCluster::kill_primary`]).
    pub fn wait_for_failover(&self, old_port: u16, limit: Duration) -> Duration {
        let (slots, since) = match self.killed.get(&old_port) {
            Some((slots, at)) => (slots.clone(), *at),
            None => {
                let node = self.nodes().into_iter().find(|n| n.port == old_port);
                (node.map(|n| n.slots).unwrap_or_default(), Instant::now())
            }
        };
        assert!(!slots.is_empty(), "the node on {old_port} served no slots");
        loop {
            if self.failed_over(old_port, &slots) {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < limit,
                "no failover of {old_port} after {limit:?}:\n{}",
                self.pids()
                    .keys()
                    .filter_map(|&p| cli(p, &["cluster", "nodes"]))
                    .next()
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn failed_over(&self, old_port: u16, slots: &[RangeInclusive<u16>]) -> bool {
        let pids = self.pids();
        pids.keys().all(|&port| {
            let ok = cli(port, &["cluster", "info"]).is_some_and(|i| i.contains("cluster_state:ok"));
            let view = cli(port, &["cluster", "nodes"]).unwrap_or_default();
            // The slot ranges this node says other running primaries serve.
            let served: Vec<_> = view
                .lines()
                .filter_map(parse_node)
                .filter(|(p, primary, _)| *p != old_port && *primary && pids.contains_key(p))
                .flat_map(|(_, _, ranges)| ranges)
                .collect();
            ok && slots
                .iter()
                .all(|r| r.clone().all(|slot| served.iter().any(|s| s.contains(&slot))))
        })
    }

    /// The ports of the nodes whose process runs, primaries and replicas (read from their pid
    /// files, so it works on a TLS cluster too).
    pub fn ports(&self) -> Vec<u16> {
        self.pids().into_keys().collect()
    }

    /// Port → pid of the nodes whose process runs (a zombie does not: nothing may reap it).
    fn pids(&self) -> HashMap<u16, u32> {
        let mut pids = HashMap::new();
        for entry in std::fs::read_dir(&self.dir.0).unwrap().flatten() {
            let Some(port) = entry.file_name().to_str().and_then(|n| n.parse::<u16>().ok()) else {
                continue;
            };
            let Ok(pid) = std::fs::read_to_string(entry.path().join("redis.pid")) else {
                continue;
            };
            let Ok(pid) = pid.trim().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
            if matches!(state, Some(s) if s != 'Z') {
                pids.insert(port, pid);
            }
        }
        pids
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        script::stop("cluster", &self.dir);
    }
}

fn node_id(port: u16) -> String {
    cli(port, &["cluster", "myid"])
        .expect("the node answers")
        .trim()
        .to_owned()
}

/// `redis-cli -p PORT ARGS...`; None when the node does not answer.
pub fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
}

/// One line of `CLUSTER NODES`: port, primary (and not flagged failing), slot ranges.
fn parse_node(line: &str) -> Option<(u16, bool, Vec<RangeInclusive<u16>>)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let port = fields.get(1)?.split('@').next()?.rsplit(':').next()?.parse().ok()?;
    let flags = fields.get(2)?;
    let primary = flags.contains("master") && !flags.contains("fail");
    let slots = fields
        .iter()
        .skip(8)
        .filter(|s| !s.starts_with('['))
        .filter_map(|s| match s.split_once('-') {
            Some((a, b)) => Some(a.parse().ok()?..=b.parse().ok()?),
            None => s.parse().ok().map(|n| n..=n),
        })
        .collect();
    Some((port, primary, slots))
}
