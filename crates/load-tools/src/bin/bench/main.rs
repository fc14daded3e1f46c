//! The benchmark behind `scripts/bench`: Redis's own ceiling for the issue script, then the
//! release service under the sale's scenarios, in one run, medians of several runs.
//!
//!   scripts/bench [--runs 3] [--duration 10] [--connections 1000] [--only spike,latency]
//!
//! Prints one table and writes `target/bench/bench.json` and `target/bench/latency.svg`.

mod ceiling;
mod open_loop;
mod report;
mod scenario;
mod service;
mod writer;
mod wrk;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use coupon_issuer::issuing::Keys;
use redis::aio::ConnectionManager;
use sqlx::postgres::PgPoolOptions;

use crate::ceiling::{Ceiling, Path};
use crate::report::Report;
use crate::scenario::Scenario;
use crate::service::{Service, Thin};

#[derive(Parser)]
struct Args {
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Any database on the Postgres to use; the benchmark uses its own, `coupon_bench`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// The service binary, built in release mode.
    #[arg(long, default_value = "target/release/coupon-issuer")]
    service_bin: PathBuf,
    /// The thin reference server (`crates/load-tools/src/bin/thin.rs`), built in release mode.
    #[arg(long, default_value = "target/release/thin")]
    thin_bin: PathBuf,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds per closed-loop run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Coupons in the writer's backlog.
    #[arg(long, default_value_t = 200_000)]
    backlog: u64,
    /// Parts to run: spike (with its thin reference, spike-thin), sold-out, drop, duplicates,
    /// latency, writer (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

impl Args {
    fn wants(&self, part: &str) -> bool {
        // The thin reference row comes with the spike: the ratio is measured in the same run.
        let part = if part == "spike-thin" { "spike" } else { part };
        self.only.is_empty() || self.only.iter().any(|p| p == part)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let prefix = format!("bench-{stamp}");
    let database_url = fresh_database(&args.database_url, "coupon_bench").await?;
    let env = vec![
        ("REDIS_URL", args.redis_url.clone()),
        ("DATABASE_URL", database_url.clone()),
        ("REDIS_KEY_PREFIX", prefix.clone()),
    ];
    let mut report = Report::new(&args.connections, args.duration, args.runs);
    let ceiling = Ceiling {
        redis_url: &args.redis_url,
        prefix: &prefix,
        connections: args.connections,
        calls: 150_000,
    };

    let redis = ConnectionManager::new(redis::Client::open(args.redis_url.as_str())?).await?;
    let db = PgPoolOptions::new().max_connections(2).connect_lazy(&database_url)?;
    let mut service = Service::start(&args.service_bin, &env).await?;
    let thin = if args.wants("spike") {
        Some(Thin::start(&args.thin_bin, &args.redis_url, &prefix).await?)
    } else {
        None
    };
    for run in 1..=args.runs {
        eprintln!("run {run}/{}", args.runs);
        report.ceiling_issue.push(ceiling.measure(Path::Issue).await?);
        report.ceiling_sold_out.push(ceiling.measure(Path::SoldOut).await?);
        for scenario in Scenario::ALL {
            if args.wants(scenario.name()) {
                let own = service.target();
                let target = match (scenario, &thin) {
                    (Scenario::Thin, Some(thin)) => &thin.target,
                    _ => &own,
                };
                let figures = scenario
                    .run(
                        &service,
                        target,
                        redis.clone(),
                        &db,
                        &prefix,
                        scenario::Load {
                            connections: args.connections,
                            duration: Duration::from_secs(args.duration),
                        },
                    )
                    .await?;
                eprintln!("  {:<11} {:>9.0} req/s", scenario.name(), figures.wrk.per_second());
                report.add(scenario, figures);
            }
        }
    }
    if args.wants("latency") {
        let max = report.median_rate(Scenario::Spike).unwrap_or(10_000.0);
        for run in 1..=args.runs {
            let event = service.open_event(100_000_000).await?;
            let figures = open_loop::OpenLoop {
                addr: service.api.base().trim_start_matches("http://").to_owned(),
                event,
                rate: max / 2.0,
                duration: Duration::from_secs(args.duration),
                connections: args.connections,
                run_tag: format!("{stamp}-{run}"),
            }
            .run()
            .await?;
            eprintln!(
                "  open-loop   p99 {:.1} ms at {:.0}/s",
                figures.p99_ms, figures.offered_per_second
            );
            report.open_loop.push(figures);
        }
    }
    if args.wants("writer") {
        let mut conn = redis.clone();
        let keys = Keys::new(&prefix);
        for run in 1..=args.runs {
            let event: coupon_issuer::domain::EventId =
                coupon_issuer::domain::EventId::parse(&service.open_event(100_000_000).await?)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            service.stop().await?;
            writer::backlog(&mut conn, &keys, event, args.backlog, &format!("{stamp}-{run}")).await?;
            service = Service::start(&args.service_bin, &env).await?;
            let figures = writer::drain(&mut conn, &db, &keys, event, args.backlog).await?;
            eprintln!("  writer      {:>9.0} coupons/s", figures.per_second);
            report.writer.push(figures);
        }
    }
    drop(thin);
    service.stop().await?;
    report.finish(&args.out)?;
    Ok(())
}

/// Drops `name` on the server of `url` (the service creates it again); returns its URL.
async fn fresh_database(url: &str, name: &str) -> anyhow::Result<String> {
    let server = url
        .split('?')
        .next()
        .unwrap_or(url)
        .rsplit_once('/')
        .map_or(url, |(s, _)| s);
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&format!("{server}/postgres"))
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await?;
    Ok(format!("{server}/{name}"))
}
