//! `cargo xtask cluster start|status|stop|restart-node PORT [--dir DIR] [--quiet] [--tls CERTS]`:
//! a local Redis Cluster (3 primaries, 3 replicas) from the installed redis-server, for the tests
//! and for trying the service on a cluster. `scripts/cluster` is its wrapper and documents it;
//! the output (the URL on stdout, `cluster: ...` on stderr) is what the tests and scripts read.
//!
//! Nodes are driven through `redis-cli`, as the tests' cluster helpers do. Only the processes
//! named in DIR's pid files are ever stopped: the system's Redis and other clusters are never
//! touched.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::commands::{self, Set};
use crate::local::Local;
use crate::nodes::{Nodes, Random};
use crate::probe;

/// One cluster directory and how to reach its nodes.
struct Cluster {
    nodes: Nodes,
}

/// Runs a `cluster` command; the exit code is the script's (2: usage, 1: failure).
pub fn main(local: &Local, args: &[String]) -> u8 {
    commands::main(local, args, "cluster", |nodes| Cluster { nodes })
}

impl Set for Cluster {
    const NOUN: &'static str = "cluster";
    const WHOLE: &'static str = "cluster";
    const NODE: &'static str = "node";
    const NODE_FILE: &'static str = "nodes.conf";
    const URL_LABEL: &'static str = "";
    const PROCESS: &'static str = "node";
    const STOPPED: &'static str = "node on ";

    fn nodes(&self) -> &Nodes {
        &self.nodes
    }

    fn nodes_mut(&mut self) -> &mut Nodes {
        &mut self.nodes
    }

    /// One per node directory with a pid file.
    fn ports(&self) -> Vec<u16> {
        self.nodes.ports("redis.pid")
    }

    fn healthy_url(&self) -> Option<String> {
        if self.healthy() { self.url() } else { None }
    }

    /// Six nodes, then `redis-cli --cluster create` makes three of them primaries with a replica
    /// each.
    fn launch(&self) -> Result<(), String> {
        let mut random = Random::seeded();
        let mut ports = Vec::new();
        for _ in 0..6 {
            ports.push(self.start_node(&mut random)?);
        }
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        self.nodes
            .say(&format!("nodes on {}; creating the cluster", list.join(" ")));
        let log = std::fs::File::create(self.nodes.dir.join("create.log")).map_err(|e| e.to_string())?;
        let mut create = Command::new("redis-cli");
        if let Some(tls) = &self.nodes.tls {
            create.arg("--tls").arg("--cacert").arg(tls.join("ca.crt"));
        }
        let created = create
            .args(["--cluster", "create"])
            .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .status()
            .is_ok_and(|s| s.success());
        if !created {
            eprint!(
                "{}",
                std::fs::read_to_string(self.nodes.dir.join("create.log")).unwrap_or_default()
            );
            commands::stop(self)?;
            return Err("redis-cli --cluster create failed".to_owned());
        }
        Ok(())
    }

    fn list(&self, out: &mut dyn Write) {
        for port in self.ports() {
            let Some(pid) = self.nodes.pid(port) else {
                let _ = writeln!(out, "{:<8} 127.0.0.1:{port}  not running", "down");
                continue;
            };
            let nodes = self.nodes.cli(port, &["cluster", "nodes"]).unwrap_or_default();
            let lines: Vec<Vec<&str>> = nodes.lines().map(|l| l.split_whitespace().collect()).collect();
            let addr = |id: &str| {
                lines
                    .iter()
                    .find(|f| f.first() == Some(&id))
                    .and_then(|f| f.get(1))
                    .map_or("", |a| a.split('@').next().unwrap_or_default())
                    .to_owned()
            };
            let Some(me) = lines.iter().find(|f| f.get(2).is_some_and(|fl| fl.contains("myself"))) else {
                continue;
            };
            let primary = me[2].contains("master");
            let what = if primary {
                me.iter().skip(8).map(|s| format!(" {s}")).collect::<String>()
            } else {
                format!(" of {}", addr(me.get(3).copied().unwrap_or_default()))
            };
            let role = if primary { "primary" } else { "replica" };
            let _ = writeln!(out, "{role:<8} {}  pid {pid} {what}", addr(me[0]));
        }
    }

    fn healthy_summary(&self) -> Option<String> {
        self.healthy().then(|| self.url().unwrap_or_default())
    }

    /// With its nodes.conf: a primary that failed over rejoins as a replica of the one that
    /// replaced it.
    fn rerun_node(&self, port: u16) -> Result<(), String> {
        self.run_node(port);
        Ok(())
    }
}

mod health;

impl Cluster {
    /// One node's redis-server, daemonised in its own folder (see `start_node` for why each
    /// setting). A failure to start shows in its log, which `start_node` reads.
    fn run_node(&self, port: u16) {
        let node = self.nodes.node_dir(port);
        let mut command = Command::new("redis-server");
        for (name, value) in self.nodes.listen(port) {
            command.arg(format!("--{name}")).arg(value);
        }
        if self.nodes.tls.is_some() {
            // Between the nodes too.
            command.args(["--tls-cluster", "yes"]);
        }
        let timeout = std::env::var("CLUSTER_NODE_TIMEOUT_MS").unwrap_or_else(|_| "1000".to_owned());
        let _ = command
            .args(["--bind", "127.0.0.1", "--daemonize", "yes", "--dir"])
            .arg(&node)
            .arg("--pidfile")
            .arg(node.join("redis.pid"))
            .arg("--logfile")
            .arg(node.join("redis.log"))
            .args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
            .args(["--cluster-node-timeout", &timeout])
            .args(["--cluster-replica-validity-factor", "0"])
            .args(["--cluster-require-full-coverage", "no"])
            .args(["--appendonly", "no", "--save", "", "--repl-diskless-sync-delay", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Starts one node on a free port (see `Nodes::start_one`) and returns the port.
    ///
    /// The settings `run_node` gives it, and why:
    /// - cluster-node-timeout 1000: a killed primary is flagged FAIL ~1.1 s after the kill and
    ///   its replica wins the election after Redis's own 0.5-1 s delay: 2.2-2.7 s measured
    ///   here, where the default (15 s) would make every failover test wait over 15 s. Lower
    ///   (500) fails over in ~1.5 s but risks false failovers on a busy 2-core box.
    /// - cluster-replica-validity-factor 0: a replica always takes over, however long it has
    ///   been cut off from its primary. On a loaded 2-core test machine a replica can look
    ///   stale, and the default would then leave the slots unserved for good; data freshness
    ///   matters less here than the failover always happening.
    /// - cluster-require-full-coverage no: while one primary's slots are unserved, the other
    ///   primaries keep answering for theirs (with the default, every node refuses every key
    ///   until the failover ends). A failover then costs 503s only for the events on the failed
    ///   shard, which is what the service promises.
    /// - repl-diskless-sync-delay 0: replicas sync at once, not after the default 5 s wait.
    fn start_node(&self, random: &mut Random) -> Result<u16, String> {
        // 17000..21999: the cluster bus (port + 10000) stays below the ephemeral range.
        let free = |port| probe::port_free(port) && probe::port_free(port + 10000);
        // Ours, not some other server that holds the port: same process id.
        let ours = |port| {
            self.nodes.pid(port).is_some_and(|pid| {
                self.nodes
                    .cli(port, &["info", "server"])
                    .is_some_and(|info| info.lines().any(|l| l == format!("process_id:{pid}")))
            })
        };
        self.nodes
            .start_one(random, 17000, "node", free, |port| self.run_node(port), ours)
    }
}
