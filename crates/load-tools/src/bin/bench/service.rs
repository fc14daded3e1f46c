//! The service under test, as a real release process, and what it costs while it runs. Its
//! setup calls (events, counts) go through the shared API client; the load itself does not.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use coupon_test_support::{ApiClient, NewEvent};
use tokio::process::{Child, Command};

pub struct Service {
    child: Child,
    pub pid: u32,
    /// The service's API, with its admin token.
    pub api: ApiClient,
}

impl Service {
    /// Starts `bin serve` on a free port and waits until it answers `/readyz`.
    pub async fn start(bin: &Path, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("ADMIN_TOKEN", &token)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id().context("service exited at once")?;
        let api = ApiClient::new(reqwest::Client::new(), format!("http://127.0.0.1:{port}")).with_admin_token(token);
        api.wait_until_ready(Duration::from_secs(60)).await?;
        Ok(Self { child, pid, api })
    }

    /// SIGTERM, then waits for the graceful stop (the writer drains first).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), nix::sys::signal::SIGTERM)?;
        tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await??;
        Ok(())
    }

    /// Creates an event open all day from yesterday to tomorrow (UTC) with `daily_limit`;
    /// returns its id.
    pub async fn open_event(&self, daily_limit: u64) -> anyhow::Result<String> {
        Ok(self
            .api
            .create_event(&NewEvent::open_now("bench", daily_limit, 1))
            .await?)
    }

    pub async fn issue(&self, event: &str, user: &str) -> anyhow::Result<u16> {
        Ok(self.api.issue(event, user).await?.status().as_u16())
    }

    /// Today's issued count, as the service reports it.
    pub async fn issued(&self, event: &str) -> anyhow::Result<u64> {
        Ok(self.api.count(event).await?.issued)
    }
}

/// Where a scenario's load goes: the service, or the thin reference server.
pub struct Target {
    pub base: String,
    pub pid: u32,
}

impl Service {
    pub fn target(&self) -> Target {
        Target {
            base: self.api.base().to_owned(),
            pid: self.pid,
        }
    }
}

/// The bench's thin reference server (`src/bin/thin.rs`), on the service's Redis and
/// key prefix, so it issues from the events the service publishes.
pub struct Thin {
    _child: Child,
    pub target: Target,
}

impl Thin {
    pub async fn start(bin: &Path, redis_url: &str, prefix: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(bin)
            .env("LISTEN", format!("127.0.0.1:{port}"))
            .env("REDIS_URL", redis_url)
            .env("REDIS_KEY_PREFIX", prefix)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (cargo build --release -p coupon-load-tools --bin thin)",
                    bin.display()
                )
            })?;
        let pid = child.id().context("the thin server exited at once")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if Instant::now() > deadline {
                bail!("the thin server did not listen in 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            _child: child,
            target: Target {
                base: format!("http://127.0.0.1:{port}"),
                pid,
            },
        })
    }
}

/// Peak resident memory and CPU use of a process over a stretch of time, sampled every 100 ms.
pub struct Usage {
    pid: u32,
    started: Instant,
    cpu_ticks: u64,
    pub peak_rss_kib: u64,
}

impl Usage {
    pub fn start(pid: u32) -> Self {
        Self {
            pid,
            started: Instant::now(),
            cpu_ticks: cpu_ticks(pid).unwrap_or(0),
            peak_rss_kib: rss_kib(pid).unwrap_or(0),
        }
    }

    pub fn sample(&mut self) {
        self.peak_rss_kib = self.peak_rss_kib.max(rss_kib(self.pid).unwrap_or(0));
    }

    /// CPU used since `start`, in µs.
    pub fn cpu_us(&self) -> f64 {
        let ticks = cpu_ticks(self.pid).unwrap_or(self.cpu_ticks) - self.cpu_ticks;
        ticks as f64 * 10_000.0
    }

    /// CPU used since `start`, in cores (1.0 = one core busy the whole time).
    pub fn cores(&self) -> f64 {
        // Linux reports CPU time in clock ticks of 1/100 s (USER_HZ).
        self.cpu_us() / 1e6 / self.started.elapsed().as_secs_f64()
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}
