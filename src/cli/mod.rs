//! The admin CLI: `coupon-issuer events create|list|show|import` and `coupon-issuer inspect`.
//!
//! It talks to the same Postgres and Redis as the service, through the same code: events are
//! parsed by [`NewEvent::parse`](crate::domain::NewEvent::parse) (the API's validation, with
//! the same messages) and stored and published by [`Catalog`]; counters are read through the
//! key names of [`Keys`](crate::issuing::Keys). Tables for people (comfy-table), `--json` for
//! scripts.

mod events;
mod inspect;

use std::time::Duration;

use clap::Args;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use sqlx::PgPool;

pub use events::{EventsCommand, run_events};
pub use inspect::{InspectArgs, run_inspect};

use crate::catalog::Catalog;
use crate::issuing::{Issuer, Keys};
use crate::redis_target::RedisTarget;
use crate::store;

/// Where the data is: the same settings (and environment variables) as `serve`.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Redis that holds counters, user records and streams.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379", global = true)]
    pub redis_url: String,

    /// Redis Cluster nodes (`host1:port1,...`); when set, used instead of REDIS_URL.
    #[arg(long, env = "REDIS_CLUSTER_NODES", global = true)]
    pub redis_cluster_nodes: Option<String>,

    /// TLS to Redis (`REDIS_TLS_*`), as for `serve`.
    #[command(flatten)]
    pub redis_tls: crate::redis_target::RedisTls,

    /// Postgres that holds events and coupons.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/coupon_issuer",
        global = true
    )]
    pub database_url: String,

    /// Prefix of every Redis key (as the service was started with).
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "coupon", global = true)]
    pub redis_key_prefix: String,

    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What the commands work with: the service's own parts, over the same connections.
struct Session {
    db: PgPool,
    catalog: Catalog,
    issuer: Issuer,
    json: bool,
}

impl Connection {
    /// Connects (creating the database and applying migrations if needed, as `serve` does).
    async fn open(&self) -> anyhow::Result<Session> {
        // Settings first: a missing TLS file is reported before any connection is tried.
        let database = store::DatabaseUrl::parse(&self.database_url)?;
        let redis = RedisTarget::parse(&self.redis_url, self.redis_cluster_nodes.as_deref(), &self.redis_tls)?;
        let db = store::connect(&database, 2).await?;
        store::migrate(&db).await?;
        // The CLI is not on a hot path: give Redis more time than a request would get.
        let timeout = Duration::from_secs(5);
        // Remembers no sold-out answers (it issues nothing); its fence is then zero, and a CLI
        // command never raises a limit.
        let issuer = Issuer::new(
            &redis,
            Keys::new(&self.redis_key_prefix),
            timeout,
            Duration::ZERO,
            day_key_ttl(),
        )?;
        Ok(Session {
            catalog: Catalog::new(db.clone(), issuer.clone()),
            db,
            issuer,
            json: self.json,
        })
    }
}

/// Only used when publishing an event, which does not touch day keys; the service's default.
fn day_key_ttl() -> Duration {
    Duration::from_secs(72 * 3600)
}

/// A table in the house style: compact borders, wrapped to the terminal when there is one.
fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    table
}

/// Prints a value as pretty JSON.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
