//! Redis's own ceiling for the issue script: redis-benchmark calling it by EVALSHA, at the same
//! number of connections as the HTTP runs, without pipelining (-P 1), every call a new user.
//!
//! It runs against its own copy of an event (its own key prefix), published the way the service
//! publishes, so the script does exactly the work it does for the service, and no writer reads
//! the stream it fills.

use anyhow::{Context, bail};
use chrono::Utc;
use coupon_issuer::domain::{Event, EventId};
use coupon_issuer::issuing::{Keys, publish_event};
use coupon_issuer::redis_target::RedisTarget;
use coupon_load_tools::all_day_event;
use tokio::process::Command;

pub const SCRIPT: &str = include_str!("../../../../../lua/issue.lua");

/// Which path of the script to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// A limit no run reaches: every call issues.
    Issue,
    /// A day sold out before the run: every call is refused.
    SoldOut,
}

pub struct Ceiling<'a> {
    pub redis_url: &'a str,
    pub prefix: &'a str,
    pub connections: usize,
    pub calls: u64,
}

impl Ceiling<'_> {
    /// Calls per second.
    pub async fn measure(&self, path: Path) -> anyhow::Result<f64> {
        let mut conn = RedisTarget::parse(self.redis_url, None, &Default::default())?
            .multiplexed(std::time::Duration::from_secs(5))?;
        let keys = Keys::new(format!("{}-ceiling", self.prefix));
        let limit = if path == Path::Issue { 100_000_000 } else { 1 };
        let event = Event::new(EventId::new(), all_day_event("ceiling", limit, None)?, Utc::now());
        publish_event(&mut conn, &keys, &event, std::time::Duration::ZERO).await?;
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(SCRIPT)
            .query_async(&mut conn)
            .await?;
        let args = |user: &str| -> Vec<String> {
            vec![
                "EVALSHA".into(),
                sha.clone(),
                "5".into(),
                keys.settings(event.id),
                keys.windows(event.id),
                keys.stream(event.id),
                keys.day_count(event.id, Utc::now().date_naive()),
                keys.day_users(event.id, Utc::now().date_naive()),
                user.into(),
                uuid::Uuid::now_v7().to_string(),
                keys.event_prefix(event.id),
                "3600000".into(),
            ]
        };
        if path == Path::SoldOut {
            let reply: Vec<String> = redis::cmd(&args("first")[0])
                .arg(&args("first")[1..])
                .query_async(&mut conn)
                .await?;
            if reply.first().map(String::as_str) != Some("issued") {
                bail!("the ceiling event did not issue its one coupon: {reply:?}");
            }
        }
        let url = url::Url::parse(self.redis_url)?;
        let output = Command::new("redis-benchmark")
            .args(["-h", url.host_str().unwrap_or("127.0.0.1")])
            .args(["-p", &url.port().unwrap_or(6379).to_string()])
            .args(["-c", &self.connections.to_string(), "-n", &self.calls.to_string()])
            .args(["-P", "1", "-r", "1000000000", "--csv"])
            .args(args("ceiling-__rand_int__"))
            .output()
            .await
            .context("cannot run redis-benchmark (apt-get install redis-tools)")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        // The CSV's second line: "test","rps","avg_latency_ms",...
        let rps = stdout
            .lines()
            .nth(1)
            .and_then(|l| l.split(',').nth(1))
            .and_then(|v| v.trim_matches('"').parse::<f64>().ok())
            .with_context(|| format!("cannot read redis-benchmark's output: {stdout}"))?;
        let mut cleanup = redis::pipe();
        cleanup
            .del(keys.settings(event.id))
            .del(keys.windows(event.id))
            .del(keys.stream(event.id));
        let day = Utc::now().date_naive();
        cleanup
            .del(keys.day_count(event.id, day))
            .del(keys.day_users(event.id, day));
        let _: () = cleanup.query_async(&mut conn).await?;
        Ok(rps)
    }
}
