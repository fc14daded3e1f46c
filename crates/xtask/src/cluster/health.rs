//! When a cluster is healthy, and the URL its primaries make.

use super::Cluster;
use crate::commands::Set;

impl Cluster {
    /// Healthy: six nodes running, each sees cluster_state:ok and 3 primaries with slots plus
    /// 3 replicas, none failing or unreachable, and every replica in sync with its primary.
    pub(super) fn healthy(&self) -> bool {
        let ports = self.ports();
        ports.len() == 6 && ports.iter().all(|&port| self.node_healthy(port))
    }

    fn node_healthy(&self, port: u16) -> bool {
        if self.nodes.pid(port).is_none() {
            return false;
        }
        let Some(info) = self.nodes.cli(port, &["cluster", "info"]) else {
            return false;
        };
        if !info.lines().any(|l| l.starts_with("cluster_state:ok")) {
            return false;
        }
        let Some(nodes) = self.nodes.cli(port, &["cluster", "nodes"]) else {
            return false;
        };
        let (mut primaries, mut replicas) = (0, 0);
        for line in nodes.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let flags = f.get(2).copied().unwrap_or_default();
            if ["fail", "handshake", "noaddr"].iter().any(|b| flags.contains(b)) || f.get(7) != Some(&"connected") {
                return false;
            }
            if flags.contains("master") {
                primaries += 1;
                if f.len() < 9 {
                    return false;
                }
            }
            if flags.contains("slave") {
                replicas += 1;
            }
        }
        if (primaries, replicas) != (3, 3) {
            return false;
        }
        let Some(role) = self.nodes.cli(port, &["info", "replication"]) else {
            return false;
        };
        if role.contains("role:master") {
            role.lines().any(|l| l == "connected_slaves:1")
        } else {
            role.lines().any(|l| l == "master_link_status:up")
        }
    }

    /// The URL of the primaries, in slot order, as any running node sees them.
    pub(super) fn url(&self) -> Option<String> {
        let scheme = if self.nodes.tls.is_some() {
            "rediss+cluster"
        } else {
            "redis+cluster"
        };
        self.ports().into_iter().find_map(|port| {
            let nodes = self.nodes.cli(port, &["cluster", "nodes"])?;
            let mut primaries: Vec<(u32, String)> = nodes
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .filter(|f| f.len() >= 9 && f[2].contains("master") && !f[2].contains("fail"))
                .filter_map(|f| {
                    let first = f[8].split('-').next()?.parse().ok()?;
                    Some((first, f[1].split('@').next()?.to_owned()))
                })
                .collect();
            primaries.sort();
            let hosts: Vec<String> = primaries.into_iter().map(|(_, addr)| addr).collect();
            (!hosts.is_empty()).then(|| format!("{scheme}://{}", hosts.join(",")))
        })
    }
}
