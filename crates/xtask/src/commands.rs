//! `start|status|stop|restart-node` for a set of redis-server processes, written once for
//! `cargo xtask cluster` and `cargo xtask sentinel`: the two differ only in which processes they
//! start and what makes them healthy (the [`Set`] steps); the command line, the messages, the
//! exit codes and the order of the steps are the same.

use std::io::Write;
use std::time::Duration;

use crate::apt::{self, on_path};
use crate::local::Local;
use crate::nodes::{self, Nodes, Refused};

/// What a cluster and a sentinel set each do their own way.
pub trait Set {
    /// What `start`'s messages call it ("cluster", "set"), and `status`'s ("cluster",
    /// "sentinel set").
    const NOUN: &'static str;
    const WHOLE: &'static str;
    /// What `restart-node PORT` restarts ("node", "data node"), and the file in DIR/PORT/ that
    /// makes one.
    const NODE: &'static str;
    const NODE_FILE: &'static str;
    /// Before the URL in `start`'s `ready:` message.
    const URL_LABEL: &'static str;
    /// What a process is called when it does not stop ("node", "process").
    const PROCESS: &'static str;
    /// What `stop` says before `127.0.0.1:PORT` after `stopped ` ("node on ", "").
    const STOPPED: &'static str;

    fn nodes(&self) -> &Nodes;
    fn nodes_mut(&mut self) -> &mut Nodes;
    /// Every process DIR holds, in the order `stop` stops them.
    fn ports(&self) -> Vec<u16>;
    /// The URL when the set is healthy.
    fn healthy_url(&self) -> Option<String>;
    /// Starts the processes, in a DIR that holds none, and joins them into a set.
    fn launch(&self) -> Result<(), String>;
    /// One line per process on `out`.
    fn list(&self, out: &mut dyn Write);
    /// What `status` says after `healthy: `, when the set is.
    fn healthy_summary(&self) -> Option<String>;
    /// Starts the stopped node on `port` again.
    fn rerun_node(&self, port: u16) -> Result<(), String>;
}

/// Runs a command on the set that `make` builds; the exit code is the script's (2: usage,
/// 1: failure). `name` is the command's: `scripts/NAME`, DIR `.local/NAME`, `NAME: ...` on stderr.
pub fn main<S: Set>(local: &Local, args: &[String], name: &'static str, make: impl FnOnce(Nodes) -> S) -> u8 {
    let usage = || {
        eprintln!("usage: scripts/{name} start|status|stop|restart-node PORT [--dir DIR] [--quiet]");
        2
    };
    let die = |message: &str| {
        eprintln!("{name}: error: {message}");
        1
    };
    let args = match nodes::parse(args, local.dir.join(name)) {
        Ok(args) => args,
        Err(Refused::Usage) => return usage(),
        Err(Refused::Error(message)) => return die(&message),
    };
    let mut set = make(Nodes {
        dir: args.dir,
        tls: args.tls,
        name,
        quiet: args.quiet,
    });
    let result = match (args.command.as_str(), args.node) {
        ("start", _) => start(&mut set, local),
        ("stop", _) => {
            if !set.nodes().dir.is_dir() {
                return 0;
            }
            set.nodes_mut().absolute();
            stop(&set)
        }
        ("status", _) => {
            // A DIR that is not there holds no processes: status says so and fails.
            set.nodes_mut().absolute();
            return if status(&set, &mut std::io::stdout()) { 0 } else { 1 };
        }
        ("restart-node", Some(port)) => restart_node(&mut set, port),
        _ => return usage(),
    };
    match result {
        Ok(()) => 0,
        Err(message) => die(&message),
    }
}

/// Stops every process DIR holds, then deletes their directories (and DIR when empty).
pub fn stop<S: Set>(set: &S) -> Result<(), String> {
    let nodes = set.nodes();
    for port in set.ports() {
        if nodes.stop(port, S::PROCESS)? {
            nodes.say(&format!("stopped {}127.0.0.1:{port}", S::STOPPED));
        }
        nodes.remove(port);
    }
    // create.log is only the cluster's.
    for file in ["url", "create.log", "tls"] {
        let _ = std::fs::remove_file(nodes.dir.join(file));
    }
    let _ = std::fs::remove_dir(&nodes.dir);
    Ok(())
}

/// Lists the processes on `out`; true when the set is healthy.
fn status<S: Set>(set: &S, out: &mut dyn Write) -> bool {
    if set.ports().is_empty() {
        let _ = writeln!(out, "no {} in {}", S::WHOLE, set.nodes().dir.display());
        return false;
    }
    set.list(out);
    match set.healthy_summary() {
        Some(summary) => {
            let _ = writeln!(out, "healthy: {summary}");
            true
        }
        None => {
            let _ = writeln!(out, "not healthy");
            false
        }
    }
}

/// The URL on stdout and in DIR/url, once the set is healthy: a healthy set already in DIR is
/// reused, anything else there is cleared first.
fn start<S: Set>(set: &mut S, local: &Local) -> Result<(), String> {
    if !on_path("redis-server") {
        apt::install(&["redis-server"])?;
    }
    if !on_path("redis-cli") {
        apt::install(&["redis-tools"])?;
    }
    let dir = set.nodes().dir.clone();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    set.nodes_mut().absolute();
    let set = &*set;
    let nodes = set.nodes();
    let publish = |url: &str| {
        let _ = std::fs::write(nodes.dir.join("url"), format!("{url}\n"));
        println!("{url}");
    };
    if let Some(url) = set.healthy_url() {
        nodes.say(&format!("already running in {}", nodes.dir.display()));
        publish(&url);
        return Ok(());
    }
    if !set.ports().is_empty() {
        nodes.say(&format!(
            "clearing an unhealthy {} left in {}",
            S::NOUN,
            nodes.dir.display()
        ));
    }
    stop(set)?;
    std::fs::create_dir_all(&nodes.dir).map_err(|e| format!("{}: {e}", nodes.dir.display()))?;
    if let Some(tls) = &nodes.tls {
        let _ = std::fs::write(nodes.dir.join("tls"), format!("{}\n", tls.display()));
    }
    set.launch()?;
    for _ in 0..600 {
        if let Some(url) = set.healthy_url() {
            let mut how = format!("scripts/{} stop", nodes.name);
            if nodes.dir != local.dir.join(nodes.name) {
                how.push_str(&format!(" --dir {}", nodes.dir.display()));
            }
            nodes.say(&format!("ready: {}{url} (stop it with {how})", S::URL_LABEL));
            publish(&url);
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = status(set, &mut std::io::stderr());
    Err(format!(
        "the {} in {dir} was not healthy after 60 s (logs: {dir}/*/redis.log)",
        S::NOUN,
        dir = nodes.dir.display()
    ))
}

/// A node that was stopped or killed comes back on its port, and answers.
fn restart_node<S: Set>(set: &mut S, port: u16) -> Result<(), String> {
    if !set.nodes().node_dir(port).join(S::NODE_FILE).is_file() {
        return Err(format!("no {} {port} in {}", S::NODE, set.nodes().dir.display()));
    }
    set.nodes_mut().absolute();
    let nodes = set.nodes();
    if nodes.pid(port).is_none() {
        set.rerun_node(port)?;
    }
    for _ in 0..100 {
        if nodes.cli(port, &["ping"]).is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "node {port} did not come back (log: {}/{port}/redis.log)",
        nodes.dir.display()
    ))
}
