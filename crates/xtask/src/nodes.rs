//! What `cargo xtask cluster` and `cargo xtask sentinel` share: the same command line, a
//! directory of redis-server processes (one per `DIR/<port>/`, each with its pid file), reached
//! through `redis-cli`, plain or TLS only, and stopped only when the pid file names them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::probe;

/// `start|status|stop|restart-node PORT [--dir DIR] [--quiet] [--tls CERTS]`.
pub struct Args {
    pub command: String,
    /// The PORT of `restart-node`.
    pub node: Option<u16>,
    pub dir: PathBuf,
    pub quiet: bool,
    /// The CERTS directory (ca.crt, server.crt, server.key): given with --tls, else the one
    /// `start` remembered in DIR/tls.
    pub tls: Option<PathBuf>,
}

/// Why the arguments were refused: the exit code (2: usage) and what to say.
pub enum Refused {
    Usage,
    Error(String),
}

pub fn parse(args: &[String], default_dir: PathBuf) -> Result<Args, Refused> {
    let command = args.first().ok_or(Refused::Usage)?.clone();
    let mut rest = &args[1..];
    let mut node = None;
    if command == "restart-node" {
        node = Some(rest.first().and_then(|p| p.parse::<u16>().ok()).ok_or(Refused::Usage)?);
        rest = &rest[1..];
    }
    let mut parsed = Args {
        command,
        node,
        dir: default_dir,
        quiet: false,
        tls: None,
    };
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--dir" => parsed.dir = PathBuf::from(it.next().ok_or(Refused::Usage)?),
            "--quiet" => parsed.quiet = true,
            "--tls" => {
                let certs = Path::new(it.next().ok_or(Refused::Usage)?);
                let certs = certs
                    .canonicalize()
                    .map_err(|e| Refused::Error(format!("--tls: {e}")))?;
                parsed.tls = Some(certs);
            }
            _ => return Err(Refused::Usage),
        }
    }
    if parsed.tls.is_none() {
        parsed.tls = std::fs::read_to_string(parsed.dir.join("tls"))
            .ok()
            .map(|t| PathBuf::from(t.trim_end()));
    }
    Ok(parsed)
}

/// The processes under one directory.
pub struct Nodes {
    pub dir: PathBuf,
    pub tls: Option<PathBuf>,
    /// "cluster" or "sentinel": what messages start with.
    pub name: &'static str,
    pub quiet: bool,
}

impl Nodes {
    /// Progress on stderr, unless --quiet: the URL alone goes to stdout, for the tests to read.
    pub fn say(&self, message: &str) {
        if !self.quiet {
            eprintln!("{}: {message}", self.name);
        }
    }

    /// The ports of the processes DIR holds whose directory has the file `marker` (`redis.pid`
    /// for any; `node` or `sentinel` for one kind), in order.
    pub fn ports(&self, marker: &str) -> Vec<u16> {
        let mut ports: Vec<u16> = std::fs::read_dir(&self.dir)
            .map(|entries| entries.flatten().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.path().join(marker).exists())
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        ports.sort_unstable();
        ports
    }

    /// `dir` as an absolute path, once it exists (the URL files and messages name it).
    pub fn absolute(&mut self) {
        if let Ok(dir) = self.dir.canonicalize() {
            self.dir = dir;
        }
    }

    pub fn node_dir(&self, port: u16) -> PathBuf {
        self.dir.join(port.to_string())
    }

    /// One command to our process on `port`, at most 5 s; `\r` removed.
    pub fn cli(&self, port: u16, args: &[&str]) -> Option<String> {
        let mut command = Command::new("timeout");
        command.args(["5", "redis-cli"]);
        if let Some(tls) = &self.tls {
            command.arg("--tls").arg("--cacert").arg(tls.join("ca.crt"));
        }
        let out = command
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).replace('\r', ""))
    }

    /// The pid of our process on `port` when it runs (a zombie does not), and it really is a
    /// redis-server on that port (pids get reused).
    pub fn pid(&self, port: u16) -> Option<i32> {
        let pid = probe::live_pid(&self.node_dir(port).join("redis.pid"))?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let state = stat.rsplit_once(") ")?.1.split(' ').next()?;
        if state == "Z" {
            return None;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let at = cmdline.find("redis-server")?;
        let port = port.to_string();
        let ours = cmdline[at..]
            .split(' ')
            .any(|word| word.rsplit_once(':').is_some_and(|(_, p)| p == port));
        ours.then_some(pid)
    }

    /// Stops our process on `port` (SIGTERM, SIGKILL after 2.5 s). Ok(true) when it stopped one.
    pub fn stop(&self, port: u16, what: &str) -> Result<bool, String> {
        let Some(pid) = self.pid(port) else { return Ok(false) };
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        for i in 0..50 {
            if self.pid(port).is_none() {
                break;
            }
            if i == 25 {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if self.pid(port).is_some() {
            return Err(format!("{what} on 127.0.0.1:{port} (pid {pid}) did not stop"));
        }
        Ok(true)
    }

    /// The listening settings of a process on `port`, as (name, value) pairs: plain, or TLS only
    /// (for clients and replication) with `tls`'s certificates.
    pub fn listen(&self, port: u16) -> Vec<(String, String)> {
        let port = port.to_string();
        let pairs: Vec<(&str, String)> = match &self.tls {
            None => vec![("port", port)],
            Some(tls) => vec![
                ("port", "0".to_owned()),
                ("tls-port", port),
                ("tls-replication", "yes".to_owned()),
                ("tls-cert-file", tls.join("server.crt").display().to_string()),
                ("tls-key-file", tls.join("server.key").display().to_string()),
                ("tls-ca-cert-file", tls.join("ca.crt").display().to_string()),
                ("tls-auth-clients", "no".to_owned()),
            ],
        };
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// Deletes a process's directory.
    pub fn remove(&self, port: u16) {
        let _ = std::fs::remove_dir_all(self.node_dir(port));
    }

    /// Starts one process (`what`, for the error) on a port in `first..first+5000` that `free`
    /// accepts and returns the port: `run` starts it, `ready` says it answers. A port can be
    /// taken between our check and redis-server's bind (another set starting at the same time):
    /// then the process fails to start and we try another port.
    pub fn start_one(
        &self,
        random: &mut Random,
        first: u16,
        what: &str,
        free: impl Fn(u16) -> bool,
        run: impl Fn(u16),
        ready: impl Fn(u16) -> bool,
    ) -> Result<u16, String> {
        for _ in 0..20 {
            let port = random.port(first, 5000);
            let dir = self.node_dir(port);
            if !free(port) || dir.exists() {
                continue;
            }
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            run(port);
            for _ in 0..100 {
                if ready(port) {
                    return Ok(port);
                }
                let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
                if log.contains("Could not create") || log.contains("Address already in use") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Some(pid) = self.pid(port) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            self.remove(port);
        }
        Err(format!("could not start a {what} on a free port after 20 tries"))
    }
}

/// Enough randomness to spread ports (xorshift, seeded from the clock and our pid), so that
/// sets started at the same moment rarely try the same ports.
pub struct Random(u64);

impl Random {
    pub fn seeded() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Self(nanos ^ (u64::from(std::process::id()) << 32) | 1)
    }

    /// A port in `first..first+span`.
    pub fn port(&mut self, first: u16, span: u16) -> u16 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        first + (self.0 % u64::from(span)) as u16
    }
}
