//! The Postgres side: the durable record of events and coupons.

pub mod coupons;
pub mod events;

use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgPool, PgPoolOptions};

/// The migrations in `migrations/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Opens a pool on `url`, creating the database first when it does not exist.
///
/// Connections are checked out with a short timeout: when Postgres is down, a request that
/// needs it fails fast (503) instead of hanging, and the writer backs off and retries.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    create_database_if_missing(url).await?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(2))
        .connect(url)
        .await
        .context("cannot connect to Postgres")
}

async fn create_database_if_missing(url: &str) -> anyhow::Result<()> {
    let exists = sqlx::Postgres::database_exists(url)
        .await
        .context("cannot reach Postgres to check that the database exists")?;
    if !exists {
        // Another instance may create it at the same moment; that is as good as us creating it.
        if let Err(e) = sqlx::Postgres::create_database(url).await
            && !sqlx::Postgres::database_exists(url).await.unwrap_or(false)
        {
            return Err(e).context("cannot create the database");
        }
        tracing::info!("created the database");
    }
    Ok(())
}

/// Applies pending migrations. Safe to run from several instances at once (sqlx takes an
/// advisory lock).
pub async fn migrate(db: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(db).await.context("cannot apply migrations")
}
