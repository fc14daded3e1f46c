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
use crate::config::Connections;
use crate::issuing::{Issuer, Keys};
use crate::store;

/// Where the data is (the same settings and environment variables as `serve`), and how to print.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    #[command(flatten)]
    pub connections: Connections,

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
        let database = self.connections.database.parse()?;
        let redis = self.connections.redis_target()?;
        let db = store::connect(&database, 2).await?;
        store::migrate(&db).await?;
        // The CLI is not on a hot path: give Redis more time than a request would get.
        let timeout = Duration::from_secs(5);
        // Remembers no sold-out answers (it issues nothing); its fence is then zero, and a CLI
        // command never raises a limit.
        let issuer = Issuer::new(
            &redis,
            Keys::new(&self.connections.redis_key_prefix),
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
