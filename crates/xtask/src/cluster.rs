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
use std::time::Duration;

use crate::apt::{self, on_path};
use crate::local::Local;
use crate::nodes::{self, Nodes, Random, Refused};
use crate::probe;

const USAGE: &str = "usage: scripts/cluster start|status|stop|restart-node PORT [--dir DIR] [--quiet]";

/// One cluster directory and how to reach its nodes.
struct Cluster {
    nodes: Nodes,
    quiet: bool,
}

/// Runs a `cluster` command; the exit code is the script's (2: usage, 1: failure).
pub fn main(local: &Local, args: &[String]) -> u8 {
    let args = match nodes::parse(args, local.dir.join("cluster")) {
        Ok(args) => args,
        Err(Refused::Usage) => {
            eprintln!("{USAGE}");
            return 2;
        }
        Err(Refused::Error(message)) => return die(&message),
    };
    let mut cluster = Cluster {
        nodes: Nodes {
            dir: args.dir,
            tls: args.tls,
        },
        quiet: args.quiet,
    };
    let result = match (args.command.as_str(), args.node) {
        ("start", _) => cluster.start(local),
        ("stop", _) => {
            if !cluster.nodes.dir.is_dir() {
                return 0;
            }
            cluster.nodes.absolute();
            cluster.stop_nodes()
        }
        ("status", _) => {
            if !cluster.nodes.dir.is_dir() {
                println!("no cluster in {}", cluster.nodes.dir.display());
                return 1;
            }
            return if cluster.status(&mut std::io::stdout()) { 0 } else { 1 };
        }
        ("restart-node", Some(port)) => cluster.restart_node(port),
        _ => {
            eprintln!("{USAGE}");
            return 2;
        }
    };
    match result {
        Ok(()) => 0,
        Err(message) => die(&message),
    }
}

fn die(message: &str) -> u8 {
    eprintln!("cluster: error: {message}");
    1
}

impl Cluster {
    fn say(&self, message: &str) {
        if !self.quiet {
            eprintln!("cluster: {message}");
        }
    }

    /// The ports of the nodes DIR holds (one per node directory with a pid file).
    fn node_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = std::fs::read_dir(&self.nodes.dir)
            .map(|entries| entries.flatten().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.path().join("redis.pid").exists())
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        ports.sort_unstable();
        ports
    }

    /// Healthy: six nodes running, each sees cluster_state:ok and 3 primaries with slots plus
    /// 3 replicas, none failing or unreachable, and every replica in sync with its primary.
    fn healthy(&self) -> bool {
        let ports = self.node_ports();
        ports.len() == 6 && ports.iter().all(|&port| self.node_healthy(port))
    }

    fn node_healthy(&self, port: u16) -> bool {
        if self.nodes.pid(port).is_none() {
            return false;
        }
        let Some(info) = self.nodes.cli(port, &["cluster", "info"]) else {
            return false;
        };
        if !info.lines().any(|l| l.starts_with("cluster_state:ok")) {
            return false;
        }
        let Some(nodes) = self.nodes.cli(port, &["cluster", "nodes"]) else {
            return false;
        };
        let (mut primaries, mut replicas) = (0, 0);
        for line in nodes.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let flags = f.get(2).copied().unwrap_or_default();
            if ["fail", "handshake", "noaddr"].iter().any(|b| flags.contains(b)) || f.get(7) != Some(&"connected") {
                return false;
            }
            if flags.contains("master") {
                primaries += 1;
                if f.len() < 9 {
                    return false;
                }
            }
            if flags.contains("slave") {
                replicas += 1;
            }
        }
        if (primaries, replicas) != (3, 3) {
            return false;
        }
        let Some(role) = self.nodes.cli(port, &["info", "replication"]) else {
            return false;
        };
        if role.contains("role:master") {
            role.lines().any(|l| l == "connected_slaves:1")
        } else {
            role.lines().any(|l| l == "master_link_status:up")
        }
    }

    /// The URL of the primaries, in slot order, as any running node sees them.
    fn url(&self) -> Option<String> {
        let scheme = if self.nodes.tls.is_some() {
            "rediss+cluster"
        } else {
            "redis+cluster"
        };
        self.node_ports().into_iter().find_map(|port| {
            let nodes = self.nodes.cli(port, &["cluster", "nodes"])?;
            let mut primaries: Vec<(u32, String)> = nodes
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .filter(|f| f.len() >= 9 && f[2].contains("master") && !f[2].contains("fail"))
                .filter_map(|f| {
                    let first = f[8].split('-').next()?.parse().ok()?;
                    Some((first, f[1].split('@').next()?.to_owned()))
                })
                .collect();
            primaries.sort();
            let hosts: Vec<String> = primaries.into_iter().map(|(_, addr)| addr).collect();
            (!hosts.is_empty()).then(|| format!("{scheme}://{}", hosts.join(",")))
        })
    }

    /// Stops every node DIR holds, then deletes their directories (and DIR when empty).
    fn stop_nodes(&self) -> Result<(), String> {
        for port in self.node_ports() {
            if self.nodes.stop(port, "node")? {
                self.say(&format!("stopped node on 127.0.0.1:{port}"));
            }
            self.nodes.remove(port);
        }
        for file in ["url", "create.log", "tls"] {
            let _ = std::fs::remove_file(self.nodes.dir.join(file));
        }
        let _ = std::fs::remove_dir(&self.nodes.dir);
        Ok(())
    }

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

    /// Starts one node on a free port and returns the port. A port can be taken between our
    /// check and redis-server's bind (another cluster starting at the same time): then the node
    /// fails to start and we try another port.
    ///
    /// The settings, and why:
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
        for _ in 0..20 {
            // 17000..21999: the cluster bus (port + 10000) stays below the ephemeral range.
            let port = random.port(17000, 5000);
            let node = self.nodes.node_dir(port);
            if !probe::port_free(port) || !probe::port_free(port + 10000) || node.exists() {
                continue;
            }
            std::fs::create_dir_all(&node).map_err(|e| format!("{}: {e}", node.display()))?;
            self.run_node(port);
            for _ in 0..100 {
                // Ours, not some other server that holds the port: same process id.
                if let Some(pid) = self.nodes.pid(port)
                    && let Some(info) = self.nodes.cli(port, &["info", "server"])
                    && info.lines().any(|l| l == format!("process_id:{pid}"))
                {
                    return Ok(port);
                }
                let log = std::fs::read_to_string(node.join("redis.log")).unwrap_or_default();
                if log.contains("Could not create") || log.contains("Address already in use") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Some(pid) = self.nodes.pid(port) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            let _ = std::fs::remove_dir_all(&node);
        }
        Err("could not start a node on a free port after 20 tries".to_owned())
    }

    /// Lists the nodes on `out`; true when the cluster is healthy.
    fn status(&self, out: &mut dyn Write) -> bool {
        let ports = self.node_ports();
        if ports.is_empty() {
            let _ = writeln!(out, "no cluster in {}", self.nodes.dir.display());
            return false;
        }
        for port in ports {
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
        if self.healthy() {
            let _ = writeln!(out, "healthy: {}", self.url().unwrap_or_default());
            true
        } else {
            let _ = writeln!(out, "not healthy");
            false
        }
    }

    fn start(&mut self, local: &Local) -> Result<(), String> {
        if !on_path("redis-server") {
            apt::install(&["redis-server"])?;
        }
        if !on_path("redis-cli") {
            apt::install(&["redis-tools"])?;
        }
        std::fs::create_dir_all(&self.nodes.dir).map_err(|e| format!("{}: {e}", self.nodes.dir.display()))?;
        self.nodes.absolute();
        let write_url = |url: &str| std::fs::write(self.nodes.dir.join("url"), format!("{url}\n"));
        if self.healthy()
            && let Some(url) = self.url()
        {
            self.say(&format!("already running in {}", self.nodes.dir.display()));
            let _ = write_url(&url);
            println!("{url}");
            return Ok(());
        }
        if !self.node_ports().is_empty() {
            self.say(&format!(
                "clearing an unhealthy cluster left in {}",
                self.nodes.dir.display()
            ));
        }
        self.stop_nodes()?;
        std::fs::create_dir_all(&self.nodes.dir).map_err(|e| format!("{}: {e}", self.nodes.dir.display()))?;
        if let Some(tls) = &self.nodes.tls {
            let _ = std::fs::write(self.nodes.dir.join("tls"), format!("{}\n", tls.display()));
        }

        let mut random = Random::seeded();
        let mut ports = Vec::new();
        for _ in 0..6 {
            ports.push(self.start_node(&mut random)?);
        }
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        self.say(&format!("nodes on {}; creating the cluster", list.join(" ")));
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
            self.stop_nodes()?;
            return Err("redis-cli --cluster create failed".to_owned());
        }

        for _ in 0..600 {
            if self.healthy()
                && let Some(url) = self.url()
            {
                let _ = write_url(&url);
                let mut how = "scripts/cluster stop".to_owned();
                if self.nodes.dir != local.dir.join("cluster") {
                    how.push_str(&format!(" --dir {}", self.nodes.dir.display()));
                }
                self.say(&format!("ready: {url} (stop it with {how})"));
                println!("{url}");
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.status(&mut std::io::stderr());
        Err(format!(
            "the cluster in {dir} was not healthy after 60 s (logs: {dir}/*/redis.log)",
            dir = self.nodes.dir.display()
        ))
    }

    /// A node that was killed comes back on its port with its nodes.conf: a primary that failed
    /// over rejoins as a replica of the one that replaced it.
    fn restart_node(&mut self, port: u16) -> Result<(), String> {
        if !self.nodes.node_dir(port).join("nodes.conf").is_file() {
            return Err(format!("no node {port} in {}", self.nodes.dir.display()));
        }
        self.nodes.absolute();
        if self.nodes.pid(port).is_none() {
            self.run_node(port);
        }
        for _ in 0..100 {
            if self.nodes.cli(port, &["ping"]).is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "node {port} did not come back (log: {}/{port}/redis.log)",
            self.nodes.dir.display()
        ))
    }
}
