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

use crate::commands::{self, Set};
use crate::local::Local;
use crate::nodes::{Nodes, Random};
use crate::probe;

struct Sentinels {
    nodes: Nodes,
    /// The primary's name (SENTINEL_MASTER_NAME, default "coupons").
    name: String,
}

/// Runs a `sentinel` command; the exit code is the script's (2: usage, 1: failure).
pub fn main(local: &Local, args: &[String]) -> u8 {
    commands::main(local, args, "sentinel", |nodes| Sentinels {
        nodes,
        name: env_or("SENTINEL_MASTER_NAME", "coupons"),
    })
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

impl Set for Sentinels {
    const NOUN: &'static str = "set";
    const WHOLE: &'static str = "sentinel set";
    const NODE: &'static str = "data node";
    const NODE_FILE: &'static str = "node";
    const URL_LABEL: &'static str = "REDIS_URL=";
    const PROCESS: &'static str = "process";
    const STOPPED: &'static str = "";

    fn nodes(&self) -> &Nodes {
        &self.nodes
    }

    fn nodes_mut(&mut self) -> &mut Nodes {
        &mut self.nodes
    }

    /// The sentinels first: stopped before the data nodes, they start no failover.
    fn ports(&self) -> Vec<u16> {
        let mut ports = self.nodes.ports("sentinel");
        ports.extend(self.nodes.ports("node"));
        ports
    }

    fn healthy_url(&self) -> Option<String> {
        self.healthy().then(|| self.url())
    }

    /// A primary, its replica, then three sentinels watching the primary. Ports are in
    /// 22000..26999, away from the cluster's.
    fn launch(&self) -> Result<(), String> {
        let mut random = Random::seeded();
        let free = probe::port_free;
        let answers = |port| self.nodes.pid(port).is_some() && self.nodes.cli(port, &["ping"]).is_some();
        let primary = self.nodes.start_one(
            &mut random,
            22000,
            "node",
            free,
            |port| self.run_node(port, None),
            answers,
        )?;
        let replica = self.nodes.start_one(
            &mut random,
            22000,
            "node",
            free,
            |port| self.run_node(port, Some(primary)),
            answers,
        )?;
        for _ in 0..3 {
            self.nodes.start_one(
                &mut random,
                22000,
                "sentinel",
                free,
                |port| self.run_sentinel(port, primary),
                answers,
            )?;
        }
        self.nodes.say(&format!(
            "primary on {primary}, replica on {replica}; waiting for the sentinels to agree"
        ));
        Ok(())
    }

    /// The data nodes first.
    fn list(&self, out: &mut dyn Write) {
        let mut ports = self.nodes.ports("node");
        ports.extend(self.nodes.ports("sentinel"));
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
    }

    fn healthy_summary(&self) -> Option<String> {
        self.healthy().then(|| {
            let primary = self.primary_port().map_or_else(String::new, |p| p.to_string());
            format!("primary 127.0.0.1:{primary}; REDIS_URL={}", self.url())
        })
    }

    /// As a supervisor of a Sentinel deployment does: a data node that comes back asks the
    /// sentinels for the primary and replicates it (a killed primary that came back as a primary
    /// would only be demoted by Sentinel seconds later).
    fn rerun_node(&self, port: u16) -> Result<(), String> {
        let primary = self.primary_port().ok_or("no sentinel names a primary")?;
        if primary == port {
            return Err(format!("the sentinels still name {port} the primary"));
        }
        self.run_node(port, Some(primary));
        Ok(())
    }
}

mod health;

impl Sentinels {
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
}
