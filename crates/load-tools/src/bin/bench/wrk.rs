//! Closed-loop load from wrk (`bench/scenario.lua`): the cheapest generator here, about 13 µs of
//! CPU per request against k6's 118 µs, so it leaves the most of the 2 cores to the service.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::process::Command;

/// What `bench/scenario.lua` prints at the end of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WrkFigures {
    pub requests: u64,
    pub duration_us: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub statuses: BTreeMap<String, u64>,
    pub socket_errors: u64,
    /// CPU wrk used per request, in µs (what it takes from the service's cores).
    #[serde(default)]
    pub generator_cpu_us: f64,
}

impl WrkFigures {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / (self.duration_us as f64 / 1e6)
    }
}

pub struct WrkRun<'a> {
    pub base: &'a str,
    pub event: &'a str,
    pub scenario: &'a str,
    pub users: Option<u64>,
    pub connections: usize,
    pub duration: Duration,
    pub run_tag: String,
}

pub async fn run(run: WrkRun<'_>) -> anyhow::Result<WrkFigures> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/scenario.lua");
    let mut command = Command::new("wrk");
    command
        .args(["-t2", &format!("-c{}", run.connections)])
        .arg(format!("-d{}s", run.duration.as_secs()))
        .args(["--timeout", "10s", "-s", script, run.base])
        .env("EVENT_ID", run.event)
        .env("SCENARIO", run.scenario)
        .env("RUN", &run.run_tag);
    if let Some(users) = run.users {
        command.env("USERS", users.to_string());
    }
    let before = children_cpu_us();
    let output = command.output().await.context("cannot run wrk (apt-get install wrk)")?;
    let wrk_cpu_us = children_cpu_us() - before;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("BENCH ")) else {
        bail!(
            "wrk printed no figures:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let mut figures: WrkFigures =
        serde_json::from_str(line).with_context(|| format!("cannot read wrk's figures: {line}"))?;
    figures.generator_cpu_us = wrk_cpu_us / figures.requests.max(1) as f64;
    Ok(figures)
}

/// CPU used by every child process waited for so far (user + system), in µs.
fn children_cpu_us() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 * 1e6 + tv.tv_usec() as f64;
        t(u.user_time()) + t(u.system_time())
    })
}
