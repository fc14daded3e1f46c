//! The cluster's redis-server processes as the benchmark sees them: which are primaries, which
//! slots each primary serves, and how much CPU each has used (from /proc, not from Redis, so the
//! reading costs the nodes nothing and includes their I/O threads).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// One redis-server of the cluster.
pub struct Node {
    pub port: u16,
    pub pid: u32,
    pub primary: bool,
    /// Slot ranges served, inclusive (empty for a replica).
    pub slots: Vec<(u16, u16)>,
}

/// The nodes of the cluster in `dir` (one `<port>/redis.pid` each, see scripts/cluster),
/// primaries first in port order, each asked for its role and slots.
pub async fn discover(dir: &Path) -> anyhow::Result<Vec<Node>> {
    let mut nodes = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let Ok(port) = entry.file_name().to_string_lossy().parse::<u16>() else {
            continue;
        };
        let Ok(pid) = std::fs::read_to_string(entry.path().join("redis.pid")) else {
            continue;
        };
        let pid: u32 = pid.trim().parse().context("a redis.pid that is not a number")?;
        let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}"))?
            .get_multiplexed_async_connection()
            .await
            .with_context(|| format!("cannot reach the node on port {port}"))?;
        let listing: String = redis::cmd("CLUSTER").arg("NODES").query_async(&mut conn).await?;
        let me = listing
            .lines()
            .find(|l| l.split(' ').nth(2).is_some_and(|flags| flags.contains("myself")))
            .context("CLUSTER NODES without a `myself` line")?;
        let fields: Vec<&str> = me.split(' ').collect();
        let primary = fields[2].contains("master");
        let slots = fields.iter().skip(8).filter_map(|r| slot_range(r)).collect();
        // The pid file may be stale after a restart; make sure it is this node's process.
        let info: String = redis::cmd("INFO").arg("server").query_async(&mut conn).await?;
        let server_pid = info.lines().find_map(|l| l.trim().strip_prefix("process_id:"));
        if server_pid != Some(pid.to_string().as_str()) {
            bail!("port {port}: redis.pid says {pid}, the server says {server_pid:?}");
        }
        nodes.push(Node {
            port,
            pid,
            primary,
            slots,
        });
    }
    nodes.sort_by_key(|n| (!n.primary, n.port));
    if nodes.iter().filter(|n| n.primary).count() == 0 {
        bail!("no primary found in {}", dir.display());
    }
    Ok(nodes)
}

/// `0-5460` or `42` (importing/migrating entries, `[...]`, are not served slots).
fn slot_range(r: &str) -> Option<(u16, u16)> {
    if r.starts_with('[') {
        return None;
    }
    match r.split_once('-') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => r.parse().ok().map(|s| (s, s)),
    }
}

/// The primary (its port) that serves `slot`.
pub fn owner(nodes: &[Node], slot: u16) -> Option<u16> {
    nodes
        .iter()
        .find(|n| n.primary && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot)))
        .map(|n| n.port)
}

/// CPU seconds (user + system) a process has used so far: fields 14 and 15 of /proc/PID/stat.
pub fn cpu_seconds(pid: u32, ticks_per_sec: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("pid {pid} gone"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("odd /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    let utime: f64 = fields.get(11).context("no utime")?.parse()?;
    let stime: f64 = fields.get(12).context("no stime")?.parse()?;
    Ok((utime + stime) / ticks_per_sec)
}

/// The kernel's clock ticks per second for /proc times (almost always 100).
pub fn ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
