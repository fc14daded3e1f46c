//! The sharding benchmark behind `scripts/bench-shards`: how issue throughput grows with an
//! event's `shards: N` on a Redis Cluster, and where the load lands.
//!
//!   shards --redis-url redis+cluster://... --cluster-dir DIR [--shards 1,4,16] [--secs 8]
//!          [--runs 3] [--concurrency 256] [--cpu-per-primary 0.2] [--out target/bench/shards.txt]
//!
//! For each N it publishes a fresh event with N buckets straight through the library (no HTTP, no
//! Postgres: the same `publish_event` the service calls), with a daily limit no run can reach,
//! then drives `Issuer::issue`, the walk the service's issue handler calls, from `concurrency`
//! tasks for `secs` after a one-second warm-up. Around each measured window it reads every
//! redis-server's CPU time from /proc, so the table shows how busy each primary was, not only
//! how many calls came back. N = 1 is an unsharded event: one bucket, one slot, one primary,
//! so it is also the one-node ceiling this driver can reach.
//!
//! With `--cpu-per-primary F` each primary may use at most F of a core (a cgroup quota, see
//! `cap`), so that the primaries, not the driver, are the bottleneck, as in the drop sharding is
//! for; the measured calls/s then show how throughput grows with N.

mod cap;
mod drive;
mod nodes;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{Days, Utc};
use clap::Parser;
use coupon_issuer::domain::{Event, EventId, Shards};
use coupon_issuer::issuing::{Issuer, Keys, publish_event};
use coupon_issuer::redis_target::RedisTarget;
use coupon_load_tools::{all_day_event, median};

use crate::cap::CpuCaps;
use crate::drive::Run;
use crate::nodes::Node;

#[derive(Parser)]
struct Args {
    /// The cluster, as scripts/cluster prints it.
    #[arg(long, env = "REDIS_URL")]
    redis_url: String,
    /// The cluster's directory (one `<port>/redis.pid` per node), for CPU readings.
    #[arg(long)]
    cluster_dir: PathBuf,
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    shards: Vec<i64>,
    /// Measured seconds per run (after a one-second warm-up).
    #[arg(long, default_value_t = 8)]
    secs: u64,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Cap each primary at this share of one core (a cgroup CPU quota; needs root), so that
    /// the primaries are the bottleneck rather than this driver.
    #[arg(long)]
    cpu_per_primary: Option<f64>,
    #[arg(long, default_value = "target/bench/shards.txt")]
    out: PathBuf,
}

/// One run of one N.
struct RunResult {
    calls_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Share of one core per primary during the window, in the order of `nodes` (primaries first).
    primary_cpu: Vec<f64>,
    replicas_cpu: f64,
    client_cpu: f64,
    not_issued: u64,
    errors: u64,
}

impl RunResult {
    /// The rate at which the run's busiest primary would fill one core of its own: calls/s
    /// scaled by 100 / its CPU %. On a machine where the client and every node share two cores
    /// the measured rate cannot grow with N; this shows what the spread is worth where each
    /// primary has its core. A projection: it assumes a primary's cost per call stays the same.
    fn ceiling(&self) -> f64 {
        let busiest = self.primary_cpu.iter().copied().fold(0.0, f64::max);
        if busiest > 0.0 {
            self.calls_per_sec * 100.0 / busiest
        } else {
            0.0
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let target = RedisTarget::parse(&args.redis_url, None, &Default::default())?;
    if !target.is_cluster() {
        bail!("--redis-url must be a cluster (redis+cluster://...)");
    }
    let nodes = nodes::discover(&args.cluster_dir).await?;
    let primaries: Vec<&Node> = nodes.iter().filter(|n| n.primary).collect();
    // Held to the end of main: dropped, it lifts the caps.
    let caps = args
        .cpu_per_primary
        .map(|fraction| CpuCaps::apply(&nodes, fraction))
        .transpose()?;
    let ticks = nodes::ticks_per_sec();
    let prefix = format!("bench-shards-{}", Utc::now().format("%Y%m%d%H%M%S"));
    let issuer = Issuer::new(
        &target,
        Keys::new(prefix),
        Duration::from_secs(5),
        Duration::from_millis(500),
        Duration::from_secs(3600),
    )?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "shards benchmark: closed loop, {} tasks calling Issuer::issue, a new user per call; \
         {} s measured per run after 1 s warm-up, {} runs per N, medians",
        args.concurrency, args.secs, args.runs
    );
    let _ = writeln!(
        out,
        "cluster: {} primaries ({}), {} replicas; {} cores on this machine (client and all nodes share them)",
        primaries.len(),
        primaries
            .iter()
            .map(|n| n.port.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        nodes.len() - primaries.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    if let Some(caps) = &caps {
        let _ = writeln!(out, "{}", caps.describe());
    }
    let mut rows = Vec::new();
    for &n in &args.shards {
        let shards = Shards::parse(n).map_err(|e| anyhow::anyhow!("--shards {n}: {e}"))?;
        let mut results = Vec::new();
        for run in 0..args.runs {
            // A new event per run, so its buckets land in other slots, often on other primaries.
            let event = Event::new(
                EventId::new(),
                all_day_event("bench-shards", 100_000_000, Some(shards))?,
                Utc::now(),
            );
            let mut conn = issuer.connection();
            publish_event(&mut conn, issuer.keys(), &event, Duration::ZERO).await?;
            let layout = bucket_layout(&issuer, &nodes, &event).await?;
            let _ = writeln!(out, "N={n} run {}: buckets per primary {layout}", run + 1);
            let r = measure(&issuer, &nodes, ticks, &event, &args, &format!("n{n}r{run}")).await?;
            eprintln!(
                "N={n} run {}: {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms, primaries {} % of a core, replicas {:.0} %, client {:.0} %, not issued {}, errors {}",
                run + 1,
                r.calls_per_sec,
                r.p50_ms,
                r.p99_ms,
                r.primary_cpu
                    .iter()
                    .map(|c| format!("{c:.0}"))
                    .collect::<Vec<_>>()
                    .join("/"),
                r.replicas_cpu,
                r.client_cpu,
                r.not_issued,
                r.errors,
            );
            delete_event(&issuer, &event).await?;
            results.push(r);
        }
        rows.push((n, results));
    }
    out.push_str(&table(&rows));
    print!("{out}");
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, &out).with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// One measured window: CPU read at its start and end, calls counted in between.
async fn measure(
    issuer: &Issuer,
    nodes: &[Node],
    ticks: f64,
    event: &Event,
    args: &Args,
    tag: &str,
) -> anyhow::Result<RunResult> {
    let run = Run::start(
        issuer,
        event.id,
        event.shards,
        args.concurrency,
        tag,
        Duration::from_secs(1),
    );
    tokio::time::sleep_until(run.measure_from.into()).await;
    let before = cpu_now(nodes, ticks)?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.secs)).await;
    let after = cpu_now(nodes, ticks)?;
    let window = t0.elapsed().as_secs_f64();
    let measured = run.finish().await?;
    let share: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| 100.0 * (a - b) / window)
        .collect();
    let primaries = nodes.iter().filter(|n| n.primary).count();
    let ms = |q: f64| measured.latency.value_at_quantile(q) as f64 / 1000.0;
    Ok(RunResult {
        calls_per_sec: measured.calls as f64 / window,
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        primary_cpu: share[..primaries].to_vec(),
        replicas_cpu: share[primaries..nodes.len()].iter().sum(),
        client_cpu: share[nodes.len()],
        not_issued: measured.not_issued,
        errors: measured.errors,
    })
}

/// CPU seconds of every node (in `nodes`' order), then of this process.
fn cpu_now(nodes: &[Node], ticks: f64) -> anyhow::Result<Vec<f64>> {
    let mut cpu = nodes
        .iter()
        .map(|n| nodes::cpu_seconds(n.pid, ticks))
        .collect::<anyhow::Result<Vec<_>>>()?;
    cpu.push(nodes::cpu_seconds(std::process::id(), ticks)?);
    Ok(cpu)
}

/// How many of the event's buckets each primary holds, e.g. `17001: 2, 17002: 1, 17003: 1`:
/// the hash tags decide it, so a small N can leave a primary without a bucket.
async fn bucket_layout(issuer: &Issuer, nodes: &[Node], event: &Event) -> anyhow::Result<String> {
    let mut conn = issuer.connection();
    let mut counts: Vec<(u16, usize)> = nodes.iter().filter(|n| n.primary).map(|n| (n.port, 0)).collect();
    for bucket in event.shards.buckets(event.id) {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(issuer.keys().settings(bucket))
            .query_async(&mut conn)
            .await?;
        let port = nodes::owner(nodes, slot).with_context(|| format!("no primary serves slot {slot}"))?;
        if let Some(c) = counts.iter_mut().find(|(p, _)| *p == port) {
            c.1 += 1;
        }
    }
    Ok(counts
        .iter()
        .map(|(p, c)| format!("{p}: {c}"))
        .collect::<Vec<_>>()
        .join(", "))
}

/// Deletes the event's keys, so runs do not pile their streams up in the nodes' memory.
async fn delete_event(issuer: &Issuer, event: &Event) -> anyhow::Result<()> {
    let keys = issuer.keys();
    let day = Utc::now().date_naive();
    for bucket in event.shards.buckets(event.id) {
        // One bucket's keys share a slot, so one pipeline per bucket works on a cluster.
        let mut conn = issuer.connection();
        let mut pipe = redis::pipe();
        for key in [
            keys.settings(bucket),
            keys.windows(bucket),
            keys.stream(bucket),
            keys.day_count(bucket, day),
            keys.day_users(bucket, day),
            keys.day_count(bucket, day - Days::new(1)),
            keys.day_users(bucket, day - Days::new(1)),
        ] {
            pipe.del(key).ignore();
        }
        let () = pipe.query_async(&mut conn).await?;
    }
    Ok(())
}

/// The table: one row per N, medians over the runs. Each run's event lands on primaries of its
/// own, so the primaries are ranked per run (busiest first) before the medians are taken.
fn table(rows: &[(i64, Vec<RunResult>)]) -> String {
    let mut t = String::new();
    let base = |value: fn(&RunResult) -> f64| {
        rows.iter()
            .find(|(n, _)| *n == 1)
            .map(|(_, runs)| median(runs.iter().map(value)))
    };
    let (base_rate, base_ceiling) = (base(|r| r.calls_per_sec), base(RunResult::ceiling));
    let ratio = |value: f64, base: Option<f64>| base.map_or("-".to_owned(), |b| format!("{:.2}x", value / b));
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "{:>3} | {:>8} | {:>7} | {:>7} | {:>29} | {:>8} | {:>7} | {:>6} | {:>16} | {:>6}",
        "N",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "primaries CPU, busiest first",
        "replicas",
        "client",
        "ratio",
        "ceiling, calls/s",
        "ratio"
    );
    for (n, runs) in rows {
        let rate = median(runs.iter().map(|r| r.calls_per_sec));
        let primaries = runs.first().map_or(0, |r| r.primary_cpu.len());
        let ranked: Vec<Vec<f64>> = runs
            .iter()
            .map(|r| {
                let mut cpu = r.primary_cpu.clone();
                cpu.sort_by(|a, b| b.total_cmp(a));
                cpu
            })
            .collect();
        let by_rank: Vec<String> = (0..primaries)
            .map(|i| format!("{:.0}%", median(ranked.iter().map(|cpu| cpu[i]))))
            .collect();
        let ceiling = median(runs.iter().map(RunResult::ceiling));
        let _ = writeln!(
            t,
            "{:>3} | {:>8.0} | {:>7.2} | {:>7.2} | {:>29} | {:>7.0}% | {:>6.0}% | {:>6} | {:>16.0} | {:>6}",
            n,
            rate,
            median(runs.iter().map(|r| r.p50_ms)),
            median(runs.iter().map(|r| r.p99_ms)),
            by_rank.join(" / "),
            median(runs.iter().map(|r| r.replicas_cpu)),
            median(runs.iter().map(|r| r.client_cpu)),
            ratio(rate, base_rate),
            ceiling,
            ratio(ceiling, base_ceiling),
        );
    }
    let not_issued: u64 = rows.iter().flat_map(|(_, r)| r).map(|r| r.not_issued).sum();
    let errors: u64 = rows.iter().flat_map(|(_, r)| r).map(|r| r.errors).sum();
    let _ = writeln!(
        t,
        "\nCPU is % of one core over the measured window (utime+stime from /proc), median per column;\n\
         primaries ranked busiest first in each run; replicas: the three replicas together; client: this\n\
         driver. N=1 is an unsharded event on one primary: the one-node ceiling of this driver.\n\
         ceiling: calls/s x 100 / the busiest primary's CPU %, per run: the rate at which that primary would\n\
         fill a core of its own. A projection of what a cluster with a core per primary (and its clients\n\
         elsewhere) could do, not a measurement: it assumes a primary's cost per call stays the same at a\n\
         higher rate. Calls not answered `issued`: {not_issued}; errors: {errors}."
    );
    t
}
