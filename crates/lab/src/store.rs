//! The lab's Postgres: the service's way of connecting (`DATABASE_URL`, TLS and all, the
//! database created when missing), and the lab's own migrations.
//!
//! The lab's tables and its function live in the schema `lab`, and its migrations are recorded
//! in `lab._sqlx_migrations`: the lab may share a database with the service without either
//! migrator seeing the other's history (sqlx refuses to run when the table names a version its
//! migrations do not have).

use coupon_issuer::store::DatabaseUrl;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

/// The schema that holds everything of the lab's, its migrations table included.
pub const SCHEMA: &str = "lab";

/// `migrations/`, embedded at build time, recorded in the lab's own table.
pub fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.create_schema(SCHEMA);
    migrator.dangerous_set_table_name("lab._sqlx_migrations");
    migrator
}

/// Opens a pool on the lab's database (creating it when missing) and applies the lab's
/// migrations. Safe from several processes at once (sqlx takes an advisory lock).
pub async fn connect_and_migrate(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let url = DatabaseUrl::parse(url)?;
    let db = coupon_issuer::store::connect(&url, max_connections).await?;
    migrate(&db).await?;
    Ok(db)
}

pub async fn migrate(db: &PgPool) -> anyhow::Result<()> {
    use anyhow::Context;
    migrator().run(db).await.context("cannot apply the lab's migrations")
}
