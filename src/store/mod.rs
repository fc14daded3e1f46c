//! The Postgres side: the durable record of events and coupons. Queries fail with a
//! [`StoreError`]; `connect` and `migrate`, which run once at start, with a message for the
//! operator (`anyhow`).

pub mod coupons;
mod database_url;
mod error;
pub mod events;
pub mod retired;

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

pub use database_url::DatabaseUrl;
pub use error::StoreError;

/// The migrations in `migrations/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why Postgres could not be reached, told apart so that a refused certificate reads as what
/// it is rather than as a network error.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server's certificate was refused: signed by a CA not trusted, or not issued for the
    /// host in the URL (`verify-full`).
    #[error("DATABASE_URL: TLS verification of Postgres failed: {0}")]
    TlsVerification(rustls::Error),
    /// TLS asked for and not had: the server does not offer it, or the handshake failed.
    #[error("DATABASE_URL: TLS with Postgres failed: {0}")]
    Tls(String),
    #[error("cannot connect to Postgres")]
    Other(#[source] sqlx::Error),
}

impl From<sqlx::Error> for ConnectError {
    fn from(e: sqlx::Error) -> Self {
        // rustls reports a handshake failure to sqlx as an I/O error that wraps its own error.
        let rustls = match &e {
            sqlx::Error::Io(io) => io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
            _ => None,
        };
        match (rustls, &e) {
            (Some(rustls @ rustls::Error::InvalidCertificate(_)), _) => Self::TlsVerification(rustls.clone()),
            (Some(rustls), _) => Self::Tls(rustls.to_string()),
            (None, sqlx::Error::Tls(inner)) => Self::Tls(inner.to_string()),
            _ => Self::Other(e),
        }
    }
}

/// Opens a pool on `url`, creating the database first when it does not exist.
///
/// Connections are checked out with a short timeout: when Postgres is down, a request that
/// needs it fails fast (503) instead of hanging, and the writer backs off and retries.
pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<PgPool> {
    create_database_if_missing(url).await?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(url.options().clone())
        .await
        .map_err(ConnectError::from)?)
}

/// Not sqlx's `MigrateDatabase`, which takes a URL and parses it again: the maintenance
/// connection is made from the options checked at start, so it has the same TLS as the pool.
async fn create_database_if_missing(url: &DatabaseUrl) -> anyhow::Result<()> {
    let (maintenance, name) = url.maintenance();
    let mut conn = maintenance.connect().await.map_err(ConnectError::from)?;
    if !database_exists(&mut conn, &name)
        .await
        .context("cannot check that the database exists")?
    {
        let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        // Another instance may create it at the same moment; that is as good as us creating it.
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&mut conn).await
            && !database_exists(&mut conn, &name).await.unwrap_or(false)
        {
            return Err(e).context("cannot create the database");
        }
        tracing::info!(database = %name, "created the database");
    }
    let _ = conn.close().await;
    Ok(())
}

async fn database_exists(conn: &mut sqlx::PgConnection, name: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT exists(SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(conn)
        .await
}

/// Applies pending migrations, after forgetting the ones this release no longer carries (see
/// `retired`). Safe to run from several instances at once (sqlx takes an advisory lock).
pub async fn migrate(db: &PgPool) -> anyhow::Result<()> {
    retired::forget(db).await.context("cannot forget retired migrations")?;
    MIGRATOR.run(db).await.context("cannot apply migrations")
}
