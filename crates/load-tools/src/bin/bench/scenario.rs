//! The sale's scenarios, each a closed-loop wrk run against a fresh event, with what the
//! service cost meanwhile and, where coupons were issued, how soon Postgres had them all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::bail;
use redis::aio::ConnectionManager;
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::service::{Service, Target, Usage};
use crate::wrk::{self, WrkFigures};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Scenario {
    Spike,
    /// The spike against the bench's thin reference server (`src/bin/thin.rs`): the
    /// same event, Redis and writer; what the service costs beyond it is the ratio printed.
    Thin,
    SoldOut,
    Drop,
    Duplicates,
}

/// One run of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioFigures {
    pub wrk: WrkFigures,
    pub peak_rss_mib: f64,
    pub cpu_cores: f64,
    /// CPU the server used per request, in µs (user + system, over the wrk run).
    pub cpu_us_per_request: f64,
    /// Coupons the service counted for the day.
    pub issued: u64,
    /// Issued beyond the daily limit (must be 0).
    pub oversold: u64,
    /// From the last issue until the stream was empty (every coupon stored), in ms.
    pub writer_lag_ms: Option<f64>,
    /// Postgres holds exactly the issued coupons, each user once.
    pub postgres_ok: Option<bool>,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::Spike,
        Scenario::Thin,
        Scenario::SoldOut,
        Scenario::Drop,
        Scenario::Duplicates,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Spike => "spike",
            Scenario::Thin => "spike-thin",
            Scenario::SoldOut => "sold-out",
            Scenario::Drop => "drop",
            Scenario::Duplicates => "duplicates",
        }
    }

    /// What `bench/scenario.lua` calls it: the thin server gets the spike's users.
    fn wrk_scenario(self) -> &'static str {
        match self {
            Scenario::Spike | Scenario::Thin => "spike",
            Scenario::SoldOut => "sold_out",
            Scenario::Drop => "drop",
            Scenario::Duplicates => "duplicates",
        }
    }

    /// The daily limit and, for `drop` and `duplicates`, how many users come back again and again.
    fn shape(self) -> (u64, Option<u64>) {
        match self {
            Scenario::Spike | Scenario::Thin => (100_000_000, None),
            Scenario::SoldOut => (1, None),
            Scenario::Drop => (10_000, Some(100_000)),
            Scenario::Duplicates => (100_000_000, Some(1_000)),
        }
    }

    /// Runs the scenario against `target` (the service, or the thin server for `Thin`); the
    /// service creates the event, counts it and stores its coupons either way.
    pub async fn run(
        self,
        service: &Service,
        target: &Target,
        mut redis: ConnectionManager,
        db: &PgPool,
        prefix: &str,
        load: Load,
    ) -> anyhow::Result<ScenarioFigures> {
        let Load { connections, duration } = load;
        let (limit, users) = self.shape();
        let event = service.open_event(limit).await?;
        if self == Scenario::SoldOut && service.issue(&event, "the-only-one").await? != 201 {
            bail!("the sold-out event did not issue its one coupon");
        }
        let stream = format!("{prefix}:{{{event}}}:stream");

        // While wrk runs: the service's memory, and the stream's length every 10 ms.
        let usage = Arc::new(Mutex::new(Usage::start(target.pid)));
        let stream_samples = Arc::new(Mutex::new(Vec::<(i64, u64)>::new()));
        let running = Arc::new(AtomicBool::new(true));
        let sampler = {
            let (usage, samples, running, mut redis, stream) = (
                usage.clone(),
                stream_samples.clone(),
                running.clone(),
                redis.clone(),
                stream.clone(),
            );
            tokio::spawn(async move {
                let mut tick = 0u64;
                while running.load(Ordering::Relaxed) {
                    if tick.is_multiple_of(10) {
                        usage.lock().await.sample();
                    }
                    if let Ok(len) = redis::cmd("XLEN").arg(&stream).query_async::<u64>(&mut redis).await {
                        samples.lock().await.push((chrono::Utc::now().timestamp_millis(), len));
                    }
                    tick += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        let figures = wrk::run(wrk::WrkRun {
            base: &target.base,
            event: &event,
            scenario: self.wrk_scenario(),
            users,
            connections,
            duration,
            run_tag: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
        })
        .await?;
        let (cpu_cores, cpu_us) = {
            let usage = usage.lock().await;
            (usage.cores(), usage.cpu_us())
        };
        // The requests wrk left in flight when it stopped may still run their scripts for a
        // moment (the thin server finishes them after the connection closed): the count is read
        // once it holds still, else a late coupon looks like one stored but never issued.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut issued = service.issued(&event).await?;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = service.issued(&event).await?;
            if now == issued || tokio::time::Instant::now() > deadline {
                issued = now;
                break;
            }
            issued = now;
        }

        // Until the stream is empty: every coupon stored and acknowledged.
        loop {
            let len: u64 = redis::cmd("XLEN").arg(&stream).query_async(&mut redis).await?;
            if len == 0 || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        running.store(false, Ordering::Relaxed);
        sampler.await?;
        let peak_rss_mib = usage.lock().await.peak_rss_kib as f64 / 1024.0;

        let (stored, users_stored, last_issue_ms): (i64, i64, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
            "SELECT count(*), count(DISTINCT user_id), max(issued_at) FROM coupons WHERE event_id = $1::uuid",
        )
        .bind(&event)
        .fetch_one(db)
        .await?;
        let issued_seen = figures.statuses.get("201").copied().unwrap_or(0);
        let postgres_ok = stored as u64 == issued && users_stored == stored && issued_seen <= issued;
        let writer_lag_ms = match (self, last_issue_ms) {
            (Scenario::Spike | Scenario::Thin | Scenario::Drop, Some(last)) => {
                let last = last.timestamp_millis();
                let samples = stream_samples.lock().await;
                let emptied = samples
                    .iter()
                    .find(|(at, len)| *at >= last && *len == 0)
                    .map(|(at, _)| *at);
                Some(emptied.map_or(f64::NAN, |at| (at - last) as f64))
            }
            _ => None,
        };
        let requests = figures.requests.max(1);
        Ok(ScenarioFigures {
            wrk: figures,
            peak_rss_mib,
            cpu_cores,
            cpu_us_per_request: cpu_us / requests as f64,
            issued,
            oversold: issued.saturating_sub(limit),
            writer_lag_ms,
            postgres_ok: matches!(self, Scenario::Spike | Scenario::Thin | Scenario::Drop).then_some(postgres_ok),
        })
    }
}

/// How hard wrk drives a scenario: its open connections, for how long.
#[derive(Clone, Copy)]
pub struct Load {
    pub connections: usize,
    pub duration: Duration,
}
