//! When a sentinel set is healthy, which node the sentinels name the primary, and the URL.

use super::Sentinels;

impl Sentinels {
    /// The value after `key` in a reply that alternates keys and values, one a line.
    fn field<'a>(reply: &'a str, key: &str) -> Option<&'a str> {
        let mut lines = reply.lines();
        lines.find(|l| *l == key)?;
        lines.next()
    }

    /// The port a sentinel names as the primary.
    fn named_by(&self, sentinel: u16) -> Option<u16> {
        let reply = self
            .nodes
            .cli(sentinel, &["sentinel", "get-master-addr-by-name", &self.name])?;
        reply.lines().nth(1)?.trim().parse().ok()
    }

    /// The primary's port, as the first sentinel that answers names it.
    pub(super) fn primary_port(&self) -> Option<u16> {
        self.nodes.ports("sentinel").into_iter().find_map(|s| self.named_by(s))
    }

    pub(super) fn url(&self) -> String {
        let scheme = if self.nodes.tls.is_some() {
            "rediss+sentinel"
        } else {
            "redis+sentinel"
        };
        let hosts: Vec<String> = self
            .nodes
            .ports("sentinel")
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("{scheme}://{}/{}", hosts.join(","), self.name)
    }

    /// Healthy: two data nodes and three sentinels running; every sentinel names the same
    /// primary, which says it is one, with one replica in sync, and sees the other two sentinels.
    pub(super) fn healthy(&self) -> bool {
        let data = self.nodes.ports("node");
        if data.len() != 2 || data.iter().any(|&p| self.nodes.pid(p).is_none()) {
            return false;
        }
        let sentinels = self.nodes.ports("sentinel");
        if sentinels.len() != 3 {
            return false;
        }
        let mut primary = None;
        for port in sentinels {
            if self.nodes.pid(port).is_none() {
                return false;
            }
            let Some(named) = self.named_by(port) else { return false };
            if primary.is_some_and(|p| p != named) {
                return false;
            }
            primary = Some(named);
            let Some(info) = self.nodes.cli(port, &["sentinel", "master", &self.name]) else {
                return false;
            };
            if Self::field(&info, "num-other-sentinels") != Some("2") || Self::field(&info, "flags") != Some("master") {
                return false;
            }
        }
        let Some(info) = primary.and_then(|p| self.nodes.cli(p, &["info", "replication"])) else {
            return false;
        };
        info.lines().any(|l| l.starts_with("role:master"))
            && info.lines().any(|l| l == "connected_slaves:1")
            && info.contains("state=online")
    }
}
