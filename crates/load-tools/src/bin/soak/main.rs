//! The soak: a flash-sale drop scenario for a few minutes while faults are injected in turn,
//! then a count of everything that could have gone wrong. Run it with `scripts/soak [minutes]`,
//! which builds this and the service in release mode.
//!
//! It starts its own Redis (AOF, `appendfsync always`) and Postgres on free ports, two service
//! instances sharing them, and drives drops: one event after another, each with a daily limit
//! and more users than coupons, every user retrying (on 503 or a cut connection, on either
//! instance) until answered 201, 409 or 410. Every coupon a client is shown is recorded. Meanwhile
//! the faults come one per phase: an instance killed with SIGKILL and restarted, Postgres
//! stopped and started, Redis killed and restarted on its AOF, Redis restarted empty (at a lull,
//! once the writer has stored everything: what a lost memory takes with it is documented, not
//! tested), and an overload of one-shot connections. At the end the streams are drained and
//! Postgres is compared with what the clients saw.
//!
//!   soak [--minutes M] [--bin path/to/coupon-issuer]

mod faults;
mod load;
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;

use crate::load::Ctx;
use coupon_test_support::{ApiClient, NewEvent, OwnPostgres, OwnRedis, Service, free_port};

pub const ADMIN_TOKEN: &str = "soak-admin-token";
pub const PREFIX: &str = "coupon";
/// Coupons per drop, and the users who want one.
pub const LIMIT: u32 = 5000;
pub const USERS: usize = 12_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> anyhow::Result<()> {
    let (minutes, bin) = args()?;
    let total = Duration::from_secs_f64(minutes * 60.0);
    eprintln!("soak: {minutes} min; servers starting");

    let redis = OwnRedis::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let pg = OwnPostgres::start();
    let env: Vec<(&str, String)> = vec![
        ("REDIS_URL", redis.url()),
        ("DATABASE_URL", pg.url("soak")),
        ("ADMIN_TOKEN", ADMIN_TOKEN.into()),
        ("REDIS_KEY_PREFIX", PREFIX.into()),
        ("WRITER_CLAIM_IDLE_MS", "2000".into()),
        ("REDIS_TIMEOUT_MS", "500".into()),
        ("MAX_IN_FLIGHT", "256".into()),
    ];
    let ports = [free_port(), free_port()];
    let instances: Vec<Service> = ports.iter().map(|p| Service::start_bin(&bin, *p, &env)).collect();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(4096)
        .build()?;
    let apis = ports
        .map(|port| ApiClient::new(client.clone(), format!("http://127.0.0.1:{port}")).with_admin_token(ADMIN_TOKEN));
    // Every drop's event exists before the faults begin: creating one needs Postgres. Each is
    // open all day, every day from yesterday to two days ahead.
    let drops = (minutes * 80.0) as usize + 10;
    let mut events = Vec::with_capacity(drops);
    for n in 0..drops {
        let drop = NewEvent::open_now(format!("Soak drop {n}"), LIMIT.into(), 2);
        events.push(apis[0].create_event(&drop).await?);
    }
    let ctx = Arc::new(Ctx::new(apis, events));

    let load = tokio::spawn(load::run_drops(ctx.clone()));
    let burst = tokio::spawn(load::overload_bursts(ctx.clone()));
    let faults = {
        let (ctx, env, bin) = (ctx.clone(), env.clone(), bin.clone());
        let env: Vec<(&'static str, String)> = env.into_iter().collect();
        tokio::task::spawn_blocking(move || {
            faults::run(
                ctx,
                faults::Servers {
                    redis,
                    pg,
                    instances,
                    ports,
                    env,
                    bin,
                },
                total,
            )
        })
    };
    let servers = faults.await?;
    ctx.stop.store(true, Ordering::SeqCst);
    load.await?;
    burst.await?;

    eprintln!("soak: load stopped; waiting for the writer to store what is left");
    let drained = tokio::task::spawn_blocking({
        let (ctx, url) = (ctx.clone(), servers.redis.url());
        move || faults::wait_drained(&ctx, &url, Duration::from_secs(120))
    })
    .await?;
    let db = sqlx::PgPool::connect(&servers.pg.url("soak")).await?;
    report::print(&ctx, &db, minutes, drained).await
}

fn args() -> anyhow::Result<(f64, PathBuf)> {
    let (mut minutes, mut bin) = (3.0, PathBuf::from("target/release/coupon-issuer"));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--minutes" => minutes = args.next().context("--minutes M")?.parse()?,
            "--bin" => bin = args.next().context("--bin PATH")?.into(),
            "-h" | "--help" => {
                println!("usage: soak [--minutes M] [--bin path/to/coupon-issuer]  (default: 3 minutes)");
                std::process::exit(0);
            }
            other => minutes = other.parse().context("usage: soak [--minutes M] [--bin PATH]")?,
        }
    }
    Ok((minutes, bin))
}
