//! `coupon-lab compare`: every strategy under the same spike, one table.
//!
//! Starts this very binary as `serve` (its own database, its own Redis key prefix, so it never
//! touches the service's data or the tests'), or drives `--url`. For each
//! strategy: reset a lab coupon to N units, send the spike, read the store, make a row. Prints a
//! Markdown table and writes `compare.json` and `compare.svg` under `--out`.

mod drive;
mod output;
mod row;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use uuid::Uuid;

use self::drive::Load;
use self::row::Row;
use crate::{Report, Strategy};

#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Units of each lab coupon (N).
    #[arg(long, default_value_t = 100)]
    pub quantity: u32,
    /// Distinct users in the spike.
    #[arg(long, default_value_t = 2000)]
    pub users: usize,
    /// Requests per user, sent back to back (a double click).
    #[arg(long, default_value_t = 2)]
    pub repeats: usize,
    /// Connections, each sending its next request when the last is answered.
    #[arg(long, default_value_t = 100)]
    pub connections: usize,
    /// Runs of each strategy; the table shows each strategy's median run by requests/s.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// The naive strategy's pause between its read and its write, in ms (widens the race).
    #[arg(long, default_value_t = 5)]
    pub naive_delay_ms: u64,
    /// Strategies to run, comma-separated (default: all eight).
    #[arg(long, value_delimiter = ',')]
    pub strategies: Vec<String>,
    /// Where compare.json and compare.svg go.
    #[arg(long, default_value = "target/compare")]
    pub out: PathBuf,
    /// Drive a lab already running (`coupon-lab serve`) instead of starting one.
    #[arg(long)]
    pub url: Option<String>,
    /// The admin token of the lab at --url (to set lab coupons up).
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// The started lab's database: its own, never the service's.
    #[arg(
        long,
        env = "LAB_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/coupon_issuer_lab"
    )]
    pub database_url: String,
    /// The started lab's Redis.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// The started lab's Redis key prefix.
    #[arg(long, default_value = "lab-compare")]
    pub key_prefix: String,
    /// The started lab's Postgres pool size (the same for every strategy).
    #[arg(long, default_value_t = 10)]
    pub database_max_connections: u32,
}

pub async fn run(args: CompareArgs) -> anyhow::Result<()> {
    let strategies = chosen(&args.strategies)?;
    if cfg!(debug_assertions) {
        eprintln!("compare: this is a debug build; figures are not representative (use scripts/compare)");
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let (base, token, _lab) = match &args.url {
        Some(url) => {
            let token = args
                .admin_token
                .clone()
                .context("--url needs ADMIN_TOKEN (or --admin-token)")?;
            (url.trim_end_matches('/').to_owned(), token, None)
        }
        None => {
            let lab = LabProcess::start(&args)?;
            (lab.base.clone(), lab.token.clone(), Some(lab))
        }
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    wait_ready(&client, &base, _lab.as_ref()).await?;

    let load = Load {
        users: args.users,
        repeats: args.repeats.max(1),
        connections: args.connections.max(1),
    };
    let subtitle = format!(
        "N = {}, {} users x {} requests back to back, {} connections, {} round(s), naive delay {} ms, pool {}",
        args.quantity,
        load.users,
        load.repeats,
        load.connections,
        args.rounds.max(1),
        args.naive_delay_ms,
        args.database_max_connections,
    );
    eprintln!("compare: {subtitle}");
    let mut rows = Vec::new();
    let mut all_runs = Vec::new();
    for (index, &strategy) in strategies.iter().enumerate() {
        let coupon = Uuid::from_u128(0x1ab0_0000_0000_4000_8000_0000_0000_0000 | index as u128);
        let mut runs = Vec::new();
        for round in 1..=args.rounds.max(1) {
            reset(&client, &base, &token, coupon, args.quantity).await?;
            let spike = drive::spike(&client, &base, strategy.name(), coupon, &load).await;
            let report = report(&client, &base, coupon).await?;
            let row = Row::new(strategy, args.quantity, &spike, &report);
            eprintln!(
                "compare: {:<22} round {round}: {:>6.0} req/s, issued {}, oversold {}, duplicates {}, errors {}",
                strategy.name(),
                row.requests_per_sec,
                row.issued,
                row.oversold,
                row.duplicates,
                row.errors
            );
            runs.push(row);
            // Let the last answers' connections and Postgres settle before the next run.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        all_runs.extend(runs.iter().cloned());
        runs.sort_by(|a, b| a.requests_per_sec.total_cmp(&b.requests_per_sec));
        rows.push(runs.swap_remove(runs.len() / 2));
    }

    let table = output::markdown(&rows);
    println!("{subtitle}\n\n{table}");
    let json = json!({
        "settings": {
            "quantity": args.quantity, "users": load.users, "repeats": load.repeats,
            "connections": load.connections, "rounds": args.rounds.max(1),
            "naive_delay_ms": args.naive_delay_ms,
            "database_max_connections": args.database_max_connections,
            "release_build": !cfg!(debug_assertions),
            "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        },
        "rows": rows,
        "runs": all_runs,
    });
    let json_path = args.out.join("compare.json");
    std::fs::write(&json_path, serde_json::to_vec_pretty(&json)?)?;
    let svg_path = args.out.join("compare.svg");
    std::fs::write(&svg_path, output::svg(&rows, &subtitle))?;
    std::fs::write(args.out.join("compare.md"), format!("{subtitle}\n\n{table}"))?;
    eprintln!("compare: wrote {} and {}", json_path.display(), svg_path.display());
    Ok(())
}

fn chosen(names: &[String]) -> anyhow::Result<Vec<Strategy>> {
    if names.is_empty() {
        return Ok(Strategy::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| Strategy::parse(n.trim()).with_context(|| format!("unknown strategy {n:?}")))
        .collect()
}

async fn reset(client: &reqwest::Client, base: &str, token: &str, coupon: Uuid, n: u32) -> anyhow::Result<()> {
    let response = client
        .put(format!("{base}/v1/lab/coupons/{coupon}"))
        .bearer_auth(token)
        .json(&json!({ "quantity": n }))
        .send()
        .await
        .context("cannot set the lab coupon up")?;
    if !response.status().is_success() {
        bail!(
            "setting the lab coupon up: HTTP {}: {}",
            response.status(),
            response.text().await?
        );
    }
    Ok(())
}

async fn report(client: &reqwest::Client, base: &str, coupon: Uuid) -> anyhow::Result<Report> {
    let response = client
        .get(format!("{base}/v1/lab/coupons/{coupon}"))
        .send()
        .await
        .context("cannot read the lab coupon")?;
    if !response.status().is_success() {
        bail!("reading the lab coupon: HTTP {}", response.status());
    }
    Ok(response.json().await?)
}

async fn wait_ready(client: &reqwest::Client, base: &str, mut lab: Option<&LabProcess>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if let Some(lab) = lab.as_mut()
            && lab.exited()
        {
            bail!("the lab exited; see {}", lab.log.display());
        }
        if Instant::now() > deadline {
            bail!("{base} did not become ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// This binary, serving the lab; killed when dropped.
struct LabProcess {
    child: std::sync::Mutex<Child>,
    base: String,
    token: String,
    log: PathBuf,
}

impl LabProcess {
    fn start(args: &CompareArgs) -> anyhow::Result<Self> {
        // A free port: bound and released; the lab binds it again a moment later.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let token = Uuid::new_v4().simple().to_string();
        let log = args.out.join("lab.log");
        let log_file = std::fs::File::create(&log)?;
        let exe = std::env::current_exe().context("cannot find this binary")?;
        let child = Command::new(exe)
            .arg("serve")
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", &args.database_url)
            .env("DATABASE_MAX_CONNECTIONS", args.database_max_connections.to_string())
            .env("REDIS_URL", &args.redis_url)
            .env("REDIS_KEY_PREFIX", &args.key_prefix)
            .env("ADMIN_TOKEN", &token)
            .env("LAB_NAIVE_DELAY_MS", args.naive_delay_ms.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("cannot start the lab")?;
        eprintln!(
            "compare: started the lab on 127.0.0.1:{port} (database {}, key prefix {}; log {})",
            args.database_url,
            args.key_prefix,
            log.display()
        );
        Ok(Self {
            child: std::sync::Mutex::new(child),
            base: format!("http://127.0.0.1:{port}"),
            token,
            log,
        })
    }

    fn exited(&self) -> bool {
        self.child
            .lock()
            .map(|mut c| !matches!(c.try_wait(), Ok(None)))
            .unwrap_or(true)
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
