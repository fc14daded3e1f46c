//! Servers a fault test (or the soak) may kill: its own `redis-server`, its own Postgres
//! cluster, and the service as a real process. Each runs on a free port in its own temporary directory, so killing
//! one never touches the shared Redis and Postgres the rest of the suite uses. Everything is
//! stopped and deleted on drop, also when a test fails.
//!
//! Hand-written on `std::process` rather than a crate such as testcontainers: the brief's
//! machines have the server binaries but no Docker daemon, and what is needed (start, SIGKILL,
//! SIGSTOP, restart on the same data) is a few lines each.
//!
//! Used by the integration tests (`tests/api/instances.rs`) and the soak (`load-tools`). How a
//! Redis or a Postgres is found, started and waited for lives in [`crate::redis_server`] and
//! [`crate::postgres`], which `cargo xtask services` shares for the developer's own servers.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{postgres, redis_server};

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A fresh directory under the system's temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("coupon-{what}-{}", &unique[..12]));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn signal(child: &Child, sig: Signal) {
    let _ = kill(Pid::from_raw(child.id() as i32), sig);
}

fn wait_until(what: &str, limit: Duration, ready: impl FnMut() -> bool) {
    assert!(
        redis_server::wait_until(limit, ready),
        "{what} not ready after {limit:?}"
    );
}

/// A `redis-server` of the test's own.
pub struct OwnRedis {
    pub port: u16,
    /// Extra arguments, e.g. `--appendonly yes --appendfsync always`.
    args: Vec<String>,
    /// For a TLS-only server: the `redis-cli` arguments that reach it (`--tls --cacert ...`).
    tls_cli: Option<Vec<String>>,
    child: Option<Child>,
    dir: TempDir,
}

impl OwnRedis {
    pub fn start(args: &[&str]) -> Self {
        Self::start_with(free_port(), args.iter().map(|a| a.to_string()).collect(), None)
    }

    /// A server that speaks TLS only: `tls_args(port)` are its TLS arguments (they end the
    /// plain port with `--port 0`), `cli` the `redis-cli` arguments that reach it.
    pub fn start_tls(tls_args: impl FnOnce(u16) -> Vec<String>, cli: Vec<String>, args: &[&str]) -> Self {
        let port = free_port();
        let mut all = tls_args(port);
        all.extend(args.iter().map(|a| a.to_string()));
        Self::start_with(port, all, Some(cli))
    }

    fn start_with(port: u16, args: Vec<String>, tls_cli: Option<Vec<String>>) -> Self {
        let mut redis = Self {
            port,
            args,
            tls_cli,
            child: None,
            dir: TempDir::new("redis"),
        };
        redis.start_again();
        redis
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls_cli.is_some() { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Starts it on the same port and data directory (so with AOF it reloads its data).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = redis_server::command(self.port, &self.dir.0)
            .args(&self.args)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install redis-server)");
        self.child = Some(child);
        let port = self.port;
        match &self.tls_cli {
            None => wait_until("redis-server", Duration::from_secs(10), || redis_server::ping(port)),
            Some(cli) => wait_until("redis-server (TLS)", Duration::from_secs(10), || ping_tls(port, cli)),
        }
    }

    /// `kill -9`: no chance to write anything more.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Killed, its data deleted, started again: a Redis that lost its memory.
    pub fn restart_empty(&mut self) {
        self.kill();
        for entry in std::fs::read_dir(&self.dir.0).unwrap().flatten() {
            let path = entry.path();
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
        self.start_again();
    }

    /// SIGSTOP: connections are accepted by the kernel but nothing answers, as with a Redis
    /// stuck in a long command or a saturated host.
    pub fn pause(&self) {
        signal(self.child.as_ref().unwrap(), Signal::SIGSTOP);
    }

    pub fn resume(&self) {
        signal(self.child.as_ref().unwrap(), Signal::SIGCONT);
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            signal(child, Signal::SIGCONT);
        }
        self.kill();
    }
}

fn ping_tls(port: u16, cli: &[String]) -> bool {
    Command::new("redis-cli")
        .args(cli)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "ping"])
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"PONG"))
}

/// A Postgres cluster of the test's own (initdb + pg_ctl), with fsync off: it is thrown away.
pub struct OwnPostgres {
    pub port: u16,
    bin: PathBuf,
    owner: postgres::Owner,
    dir: TempDir,
    /// More `-c name=value` server settings (TLS).
    settings: String,
}

/// A server certificate (the chain, PEM) and its private key (PEM), for `start_with_tls`.
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
}

impl OwnPostgres {
    pub fn start() -> Self {
        let pg = Self::init("");
        pg.start_again();
        pg
    }

    /// With `ssl=on` and `tls`'s certificate, listening on 127.0.0.1 and 127.0.0.2 (a second
    /// address, for a host name the certificate does not hold), and accepting TCP connections
    /// only over TLS: a client that connected has used TLS.
    pub fn start_with_tls(tls: &ServerTls) -> Self {
        let pg = Self::init("-c ssl=on -c listen_addresses=127.0.0.1,127.0.0.2");
        let data = pg.data();
        // Postgres refuses a key that others may read; both belong to the user it runs as.
        pg.write_owned(&data.join("server.crt"), &tls.cert_pem, 0o644);
        pg.write_owned(&data.join("server.key"), &tls.key_pem, 0o600);
        let hba = "local all all trust\nhostssl all all 127.0.0.0/8 trust\nhostnossl all all all reject\n";
        pg.write_owned(&data.join("pg_hba.conf"), hba, 0o600);
        pg.start_again();
        pg
    }

    fn init(settings: &str) -> Self {
        let dir = TempDir::new("pg");
        let bin = postgres::bin_dir(None).expect("initdb is installed (apt-get install postgresql)");
        let owner = postgres::Owner::for_data(&dir.0.join("data")).unwrap_or_else(|e| panic!("{e}"));
        // initdb refuses to run as root: the cluster belongs to the owner, who creates `data`.
        owner.chown(&dir.0).unwrap_or_else(|e| panic!("{e}"));
        let pg = Self {
            port: free_port(),
            bin,
            owner,
            dir,
            settings: settings.to_owned(),
        };
        postgres::initdb(&pg.bin, &pg.owner, &pg.data(), &["--no-sync"]).unwrap_or_else(|e| panic!("{e}"));
        pg
    }

    fn write_owned(&self, path: &Path, contents: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, contents).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        self.owner.chown(path).unwrap();
    }

    /// The URL of database `name` on it (the service creates the database).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    pub fn start_again(&self) {
        let settings = format!("-c fsync=off -c max_connections=200 {}", self.settings);
        let log = self.dir.0.join("log");
        postgres::start(
            &self.bin,
            &self.owner,
            &self.data(),
            &log,
            self.port,
            &self.dir.0,
            &settings,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Stops it at once, as a crash would (`-m immediate`): connections die mid-statement.
    pub fn stop(&self) {
        postgres::stop(&self.bin, &self.owner, &self.data(), "immediate").unwrap_or_else(|e| panic!("{e}"));
    }

    fn data(&self) -> PathBuf {
        self.dir.0.join("data")
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = postgres::stop(&self.bin, &self.owner, &self.data(), "immediate");
    }
}

/// The service binary, run as a real process that a test can `kill -9`.
pub struct Service {
    pub port: u16,
    child: Option<Child>,
    _log: TempDir,
}

impl Service {
    /// Starts `bin serve` on `port` with `env` and waits until it accepts connections.
    pub fn start_bin(bin: &Path, port: u16, env: &[(&str, String)]) -> Self {
        let log = TempDir::new("svc");
        let stderr = std::fs::File::create(log.0.join("stderr")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let service = Self {
            port,
            child: Some(child),
            _log: log,
        };
        wait_until("the service", Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        service
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `kill -9`: no graceful stop, no draining of the writer.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Resident memory, in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// The service's log so far (warnings and errors), for a failing assertion's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._log.0.join("stderr")).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}
