//! The service under test, as a real release process, and what it costs while it runs.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

pub struct Service {
    child: Child,
    pub pid: u32,
    pub base: String,
    pub token: String,
    pub client: reqwest::Client,
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
        let service = Self {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            token,
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = service.client.get(format!("{}/readyz", service.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(service);
            }
            if Instant::now() > deadline {
                bail!("the service did not become ready in 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits for the graceful stop (the writer drains first).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), nix::sys::signal::SIGTERM)?;
        tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await??;
        Ok(())
    }

    /// Creates an event open all day today (UTC) with `daily_limit`; returns its id.
    pub async fn open_event(&self, daily_limit: u64) -> anyhow::Result<String> {
        let today = chrono::Utc::now().date_naive();
        let body = json!({
            "name": "bench", "timezone": "UTC",
            "starts_on": (today - chrono::Days::new(1)).to_string(),
            "ends_on": (today + chrono::Days::new(1)).to_string(),
            "daily_open": "00:00", "daily_close": "24:00",
            "daily_limit": daily_limit, "valid_days_after_end": 30,
            "discount": { "kind": "percent", "value": 50 },
        });
        let created: Value = self
            .client
            .post(format!("{}/v1/events", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        created["id"].as_str().map(str::to_owned).context("no event id")
    }

    pub async fn issue(&self, event: &str, user: &str) -> anyhow::Result<u16> {
        let response = self
            .client
            .post(format!("{}/v1/coupon/issue", self.base))
            .json(&json!({ "event_id": event, "user_id": user }))
            .send()
            .await?;
        Ok(response.status().as_u16())
    }

    /// Today's issued count, as the service reports it.
    pub async fn issued(&self, event: &str) -> anyhow::Result<u64> {
        let count: Value = self
            .client
            .get(format!("{}/v1/coupon/count?event_id={event}", self.base))
            .send()
            .await?
            .json()
            .await?;
        count["issued"].as_u64().context("no issued count")
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
            base: self.base.clone(),
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
