//! `cargo xtask sentinel start|status|stop|restart-node PORT [--dir DIR] [--quiet] [--tls CERTS]`:
//! a local Redis Sentinel set (one primary, one replica, three sentinels) from the installed
//! redis-server, for the tests and for trying the service behind Sentinel. `scripts/sentinel` is
//! its wrapper and documents it; the output (the URL on stdout, `sentinel: ...` on stderr) is
//! what the tests read.
//!
//! Each process lives in DIR/<port>/ beside a marker file, `node` or `sentinel`, that says
//! which it is.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::apt::{self, on_path};
use crate::local::Local;
use crate::nodes::{self, Nodes, Random, Refused};
use crate::probe;

const USAGE: &str = "usage: scripts/sentinel start|status|stop|restart-node PORT [--dir DIR] [--quiet]";

struct Set {
    nodes: Nodes,
    quiet: bool,
    /// The primary's name (SENTINEL_MASTER_NAME, default "coupons").
    name: String,
}

/// Runs a `sentinel` command; the exit code is the script's (2: usage, 1: failure).
pub fn main(local: &Local, args: &[String]) -> u8 {
    let args = match nodes::parse(args, local.dir.join("sentinel")) {
        Ok(args) => args,
        Err(Refused::Usage) => {
            eprintln!("{USAGE}");
            return 2;
        }
        Err(Refused::Error(message)) => return die(&message),
    };
    let mut set = Set {
        nodes: Nodes {
            dir: args.dir,
            tls: args.tls,
        },
        quiet: args.quiet,
        name: std::env::var("SENTINEL_MASTER_NAME").unwrap_or_else(|_| "coupons".to_owned()),
    };
    let result = match (args.command.as_str(), args.node) {
        ("start", _) => set.start(local),
        ("stop", _) => {
            if !set.nodes.dir.is_dir() {
                return 0;
            }
            set.nodes.absolute();
            set.stop_all()
        }
        ("status", _) => {
            if !set.nodes.dir.is_dir() {
                println!("no sentinel set in {}", set.nodes.dir.display());
                return 1;
            }
            set.nodes.absolute();
            return if set.status(&mut std::io::stdout()) { 0 } else { 1 };
        }
        ("restart-node", Some(port)) => set.restart_node(port),
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
    eprintln!("sentinel: error: {message}");
    1
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

impl Set {
    fn say(&self, message: &str) {
        if !self.quiet {
            eprintln!("sentinel: {message}");
        }
    }

    /// The ports of DIR's data nodes (`kind` "node") or sentinels (`kind` "sentinel").
    fn ports(&self, kind: &str) -> Vec<u16> {
        let mut ports: Vec<u16> = std::fs::read_dir(&self.nodes.dir)
            .map(|entries| entries.flatten().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.path().join(kind).exists())
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        ports.sort_unstable();
        ports
    }

    /// The value after `key` in a reply that alternates keys and values, one a line.
    fn field<'a>(reply: &'a str, key: &str) -> Option<&'a str> {
        let mut lines = reply.lines();
        lines.find(|l| *l == key)?;
        lines.next()
    }

    /// The port a sentinel names as the primary.
    fn named_by(&self, sentinel: u16) -> Option<u16> {
        let reply = self
            .nodes
            .cli(sentinel, &["sentinel", "get-master-addr-by-name", &self.name])?;
        reply.lines().nth(1)?.trim().parse().ok()
    }

    /// The primary's port, as the first sentinel that answers names it.
    fn primary_port(&self) -> Option<u16> {
        self.ports("sentinel").into_iter().find_map(|s| self.named_by(s))
    }

    fn url(&self) -> String {
        let scheme = if self.nodes.tls.is_some() {
            "rediss+sentinel"
        } else {
            "redis+sentinel"
        };
        let hosts: Vec<String> = self
            .ports("sentinel")
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("{scheme}://{}/{}", hosts.join(","), self.name)
    }

    /// Healthy: two data nodes and three sentinels running; every sentinel names the same
    /// primary, which says it is one, with one replica in sync, and sees the other two sentinels.
    fn healthy(&self) -> bool {
        let data = self.ports("node");
        if data.len() != 2 || data.iter().any(|&p| self.nodes.pid(p).is_none()) {
            return false;
        }
        let sentinels = self.ports("sentinel");
        if sentinels.len() != 3 {
            return false;
        }
        let mut primary = None;
        for port in sentinels {
            if self.nodes.pid(port).is_none() {
                return false;
            }
            let Some(named) = self.named_by(port) else { return false };
            if primary.is_some_and(|p| p != named) {
                return false;
            }
            primary = Some(named);
            let Some(info) = self.nodes.cli(port, &["sentinel", "master", &self.name]) else {
                return false;
            };
            if Self::field(&info, "num-other-sentinels") != Some("2") || Self::field(&info, "flags") != Some("master") {
                return false;
            }
        }
        let Some(info) = primary.and_then(|p| self.nodes.cli(p, &["info", "replication"])) else {
            return false;
        };
        info.lines().any(|l| l.starts_with("role:master"))
            && info.lines().any(|l| l == "connected_slaves:1")
            && info.contains("state=online")
    }

    fn stop_all(&self) -> Result<(), String> {
        let mut ports = self.ports("sentinel");
        ports.extend(self.ports("node"));
        for port in ports {
            if self.nodes.stop(port, "process")? {
                self.say(&format!("stopped 127.0.0.1:{port}"));
            }
            self.nodes.remove(port);
        }
        for file in ["url", "tls"] {
            let _ = std::fs::remove_file(self.nodes.dir.join(file));
        }
        let _ = std::fs::remove_dir(&self.nodes.dir);
        Ok(())
    }

    /// A data node, a replica of `of` when given.
    fn run_node(&self, port: u16, of: Option<u16>) {
        let dir = self.nodes.node_dir(port);
        let _ = std::fs::write(dir.join("node"), "");
        let mut command = Command::new("redis-server");
        for (name, value) in self.nodes.listen(port) {
            command.arg(format!("--{name}")).arg(value);
        }
        command
            .args(["--bind", "127.0.0.1", "--daemonize", "yes", "--dir"])
            .arg(&dir)
            .arg("--pidfile")
            .arg(dir.join("redis.pid"))
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .args(["--appendonly", "no", "--save", "", "--repl-diskless-sync-delay", "0"]);
        if let Some(primary) = of {
            command.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        let _ = command.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }

    /// A sentinel watching the primary on `primary` (quorum 2 of 3). Its settings go in a
    /// config file, which Sentinel rewrites as it learns.
    fn run_sentinel(&self, port: u16, primary: u16) {
        let dir = self.nodes.node_dir(port);
        let _ = std::fs::write(dir.join("sentinel"), "");
        let name = &self.name;
        let mut conf: String = self
            .nodes
            .listen(port)
            .into_iter()
            .map(|(key, value)| format!("{key} {value}\n"))
            .collect();
        conf.push_str(&format!(
            "bind 127.0.0.1\ndaemonize yes\ndir {dir}\npidfile {dir}/redis.pid\nlogfile {dir}/redis.log\n\
             sentinel monitor {name} 127.0.0.1 {primary} 2\n\
             sentinel down-after-milliseconds {name} {down}\n\
             sentinel failover-timeout {name} {failover}\n\
             sentinel parallel-syncs {name} 1\n",
            dir = dir.display(),
            down = env_or("SENTINEL_DOWN_AFTER_MS", "1000"),
            failover = env_or("SENTINEL_FAILOVER_TIMEOUT_MS", "5000"),
        ));
        let _ = std::fs::write(dir.join("sentinel.conf"), conf);
        let _ = Command::new("redis-server")
            .arg(dir.join("sentinel.conf"))
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Starts a data node (`sentinel_of` None; a replica of `replica_of`) or a sentinel
    /// (`sentinel_of` the primary) on a free port; a port taken between our check and the
    /// bind is simply retried elsewhere. Ports are in 22000..26999, away from the cluster's.
    fn start_one(
        &self,
        random: &mut Random,
        kind: &str,
        replica_of: Option<u16>,
        sentinel_of: Option<u16>,
    ) -> Result<u16, String> {
        for _ in 0..20 {
            let port = random.port(22000, 5000);
            let dir = self.nodes.node_dir(port);
            if !probe::port_free(port) || dir.exists() {
                continue;
            }
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            match sentinel_of {
                Some(primary) => self.run_sentinel(port, primary),
                None => self.run_node(port, replica_of),
            }
            for _ in 0..100 {
                if self.nodes.pid(port).is_some() && self.nodes.cli(port, &["ping"]).is_some() {
                    return Ok(port);
                }
                let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
                if log.contains("Address already in use") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Some(pid) = self.nodes.pid(port) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            self.nodes.remove(port);
        }
        Err(format!("could not start a {kind} on a free port after 20 tries"))
    }

    /// Lists the processes on `out`; true when the set is healthy.
    fn status(&self, out: &mut dyn Write) -> bool {
        let mut ports = self.ports("node");
        ports.extend(self.ports("sentinel"));
        if ports.is_empty() {
            let _ = writeln!(out, "no sentinel set in {}", self.nodes.dir.display());
            return false;
        }
        for port in ports {
            let Some(pid) = self.nodes.pid(port) else {
                let _ = writeln!(out, "{:<9} 127.0.0.1:{port}  not running", "down");
                continue;
            };
            let role = if self.nodes.node_dir(port).join("sentinel").exists() {
                "sentinel"
            } else {
                let role = self.nodes.cli(port, &["role"]).unwrap_or_default();
                if role.lines().next() == Some("master") {
                    "primary"
                } else {
                    "replica"
                }
            };
            let _ = writeln!(out, "{role:<9} 127.0.0.1:{port}  pid {pid}");
        }
        if self.healthy() {
            let primary = self.primary_port().map_or_else(String::new, |p| p.to_string());
            let _ = writeln!(out, "healthy: primary 127.0.0.1:{primary}; REDIS_URL={}", self.url());
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
        let publish = |url: &str| {
            let _ = std::fs::write(self.nodes.dir.join("url"), format!("{url}\n"));
            println!("{url}");
        };
        if self.healthy() {
            self.say(&format!("already running in {}", self.nodes.dir.display()));
            publish(&self.url());
            return Ok(());
        }
        if !self.ports("node").is_empty() || !self.ports("sentinel").is_empty() {
            self.say(&format!(
                "clearing an unhealthy set left in {}",
                self.nodes.dir.display()
            ));
        }
        self.stop_all()?;
        std::fs::create_dir_all(&self.nodes.dir).map_err(|e| format!("{}: {e}", self.nodes.dir.display()))?;
        if let Some(tls) = &self.nodes.tls {
            let _ = std::fs::write(self.nodes.dir.join("tls"), format!("{}\n", tls.display()));
        }
        let mut random = Random::seeded();
        let primary = self.start_one(&mut random, "node", None, None)?;
        let replica = self.start_one(&mut random, "node", Some(primary), None)?;
        for _ in 0..3 {
            self.start_one(&mut random, "sentinel", None, Some(primary))?;
        }
        self.say(&format!(
            "primary on {primary}, replica on {replica}; waiting for the sentinels to agree"
        ));
        for _ in 0..600 {
            if self.healthy() {
                let mut how = "scripts/sentinel stop".to_owned();
                if self.nodes.dir != local.dir.join("sentinel") {
                    how.push_str(&format!(" --dir {}", self.nodes.dir.display()));
                }
                self.say(&format!("ready: REDIS_URL={} (stop it with {how})", self.url()));
                publish(&self.url());
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.status(&mut std::io::stderr());
        Err(format!(
            "the set in {dir} was not healthy after 60 s (logs: {dir}/*/redis.log)",
            dir = self.nodes.dir.display()
        ))
    }

    /// As a supervisor of a Sentinel deployment does: a data node that comes back asks the
    /// sentinels for the primary and replicates it (a killed primary that came back as a primary
    /// would only be demoted by Sentinel seconds later).
    fn restart_node(&mut self, port: u16) -> Result<(), String> {
        if !self.nodes.node_dir(port).join("node").exists() {
            return Err(format!("no data node {port} in {}", self.nodes.dir.display()));
        }
        self.nodes.absolute();
        if self.nodes.pid(port).is_none() {
            let primary = self.primary_port().ok_or("no sentinel names a primary")?;
            if primary == port {
                return Err(format!("the sentinels still name {port} the primary"));
            }
            self.run_node(port, Some(primary));
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
