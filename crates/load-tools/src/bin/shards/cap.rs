//! A CPU quota per primary (`--cpu-per-primary`), so that a Redis core is the bottleneck.
//!
//! Sharding exists for the drop whose one primary is out of CPU while the clients, the network
//! and the other primaries are not. On a 2-core machine where the driver and all six nodes share
//! the cores, that never happens: the driver runs out first, and N cannot show what it buys. A
//! CFS quota on each primary puts the machine into that state on purpose. Each primary may use at
//! most `fraction` of a core, the driver and the replicas have the rest, and the measured calls/s
//! then grow with N as far as the spread of buckets over the primaries allows. What it measures is
//! how throughput scales with N when the primaries are the bottleneck, not how fast a real core is.
//!
//! One cgroup per primary, made under the cgroup the node already is in, so the quota applies to
//! that node alone. cgroup v1 (`cpu.cfs_quota_us`) and v2 (`cpu.max`) are both handled. A 10 ms
//! period, not the default 100 ms, keeps the throttling fine-grained: a node that has used its
//! share waits at most the rest of 10 ms, not of 100 ms. Dropped, the caps move each node back to
//! where it was and remove the cgroups.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::nodes::Node;

/// The CFS period, in microseconds.
const PERIOD_US: u64 = 10_000;

/// The cgroups made for the primaries; undone on drop.
pub struct CpuCaps {
    /// The share of one core each primary may use.
    fraction: f64,
    /// (pid, its own cgroup, the cgroup it came from)
    capped: Vec<(u32, PathBuf, PathBuf)>,
}

impl CpuCaps {
    /// Limits every primary in `nodes` to `fraction` of one core.
    pub fn apply(nodes: &[Node], fraction: f64) -> anyhow::Result<Self> {
        if !(0.01..=1.0).contains(&fraction) {
            bail!("--cpu-per-primary must be from 0.01 to 1 (a share of one core), got {fraction}");
        }
        let quota_us = (fraction * PERIOD_US as f64).round() as u64;
        let mut caps = Self {
            fraction,
            capped: Vec::new(),
        };
        for node in nodes.iter().filter(|n| n.primary) {
            let (home, version) = cpu_cgroup_of(node.pid)?;
            let own = home.join(format!("coupon-bench-shards-{}", node.port));
            fs::create_dir_all(&own).with_context(|| {
                format!(
                    "cannot make the cgroup {} (needs root and a writable cpu cgroup)",
                    own.display()
                )
            })?;
            match version {
                Version::V1 => {
                    write(&own.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
                    write(&own.join("cpu.cfs_quota_us"), &quota_us.to_string())?;
                }
                Version::V2 => write(&own.join("cpu.max"), &format!("{quota_us} {PERIOD_US}"))?,
            }
            write(&own.join("cgroup.procs"), &node.pid.to_string())?;
            caps.capped.push((node.pid, own, home));
        }
        Ok(caps)
    }

    /// For the report, e.g. `each primary capped at 0.25 of a core (cgroup CPU quota, 10 ms period)`.
    pub fn describe(&self) -> String {
        format!(
            "each primary capped at {:.2} of a core (cgroup CPU quota, {} ms period)",
            self.fraction,
            PERIOD_US / 1000
        )
    }
}

impl Drop for CpuCaps {
    fn drop(&mut self) {
        for (pid, own, home) in self.capped.drain(..) {
            // A node that has exited already has left its cgroup; either way it can go.
            let _ = fs::write(home.join("cgroup.procs"), pid.to_string());
            if let Err(e) = fs::remove_dir(&own) {
                eprintln!("could not remove the cgroup {}: {e}", own.display());
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Version {
    V1,
    V2,
}

/// The directory of the cgroup that controls `pid`'s CPU, and which cgroup version it is:
/// the v1 `cpu` hierarchy when one is mounted, else the v2 one with the `cpu` controller.
fn cpu_cgroup_of(pid: u32) -> anyhow::Result<(PathBuf, Version)> {
    let listing = fs::read_to_string(format!("/proc/{pid}/cgroup")).with_context(|| format!("pid {pid} gone"))?;
    // Lines are `id:controllers:path`; v1's cpu line names `cpu` among its controllers, v2's
    // single line is `0::path`.
    let v1 = listing.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers.split(',').any(|c| c == "cpu").then(|| path.to_owned())
    });
    if let Some(path) = v1 {
        for mount in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"] {
            let dir = Path::new(mount).join(path.trim_start_matches('/'));
            if dir.join("cpu.cfs_quota_us").exists() {
                return Ok((dir, Version::V1));
            }
        }
    }
    let v2 = listing.lines().find_map(|l| l.strip_prefix("0::").map(str::to_owned));
    if let Some(path) = v2 {
        for mount in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
            let dir = Path::new(mount).join(path.trim_start_matches('/'));
            let controllers = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == "cpu") {
                return Ok((dir, Version::V2));
            }
        }
    }
    bail!("no cgroup with a CPU controller found for pid {pid}: --cpu-per-primary needs one (as root)")
}

fn write(path: &Path, value: &str) -> anyhow::Result<()> {
    fs::write(path, value).with_context(|| format!("cannot write {value:?} to {}", path.display()))
}
