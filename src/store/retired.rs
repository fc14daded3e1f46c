//! Migrations the service no longer carries, and why it forgets them.
//!
//! sqlx's migrator refuses to run (`VersionMissing`) when `_sqlx_migrations` records a version
//! that is not among the embedded migrations. A database migrated by an earlier release records
//! the versions below, so before the migrator runs their rows are deleted: what those migrations
//! created is undone by a later migration of the service's own, which says why.

use sqlx::PgPool;

/// `20261121060000_lab.sql`: the strategy lab's tables and function, created in every service
/// database until the lab became its own crate (issue 16). `20261204000000_retire_lab.sql`
/// drops them.
pub const RETIRED: &[i64] = &[20261121060000];

/// Deletes the retired versions' rows, when the migrations table exists (a fresh database has
/// none yet). Safe from several instances at once: deleting a deleted row deletes nothing.
pub async fn forget(db: &PgPool) -> sqlx::Result<()> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(db)
        .await?;
    if table.is_some() {
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = ANY($1)")
            .bind(RETIRED)
            .execute(db)
            .await?;
    }
    Ok(())
}
