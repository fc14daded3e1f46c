//! The strategy lab left the service for its own crate (crates/lab, issue 16): the service
//! serves no `/v1/lab` route, lists no `LAB_*` setting, and a database it migrates holds no lab
//! objects, whether new or migrated by a release that still created them.

use std::path::{Path, PathBuf};

use coupon_issuer::store::{self, DatabaseUrl};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{spawn_app, test_settings};

#[tokio::test]
async fn the_service_does_not_serve_the_lab() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url(&format!("/v1/lab/naive/{}/give", Uuid::new_v4())))
        .json(&json!({ "user_id": "alice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = app.get_json(&format!("/v1/lab/coupons/{}", Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await.unwrap();
}

/// Neither its settings nor its `compare` are the service's any more: `coupon-lab` has them.
#[test]
fn the_service_has_no_lab_settings_and_no_compare() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_coupon-issuer"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("REDIS_URL"), "{help}");
    assert!(!help.contains("LAB_"), "{help}");
    let compare = std::process::Command::new(env!("CARGO_BIN_EXE_coupon-issuer"))
        .args(["compare", "--help"])
        .output()
        .unwrap();
    assert!(!compare.status.success(), "`coupon-issuer compare` still exists");
}

/// A database of its own, created and not yet migrated.
async fn new_database() -> PgPool {
    let url = DatabaseUrl::parse(&test_settings().connections.database.url).unwrap();
    store::connect(&url, 2).await.unwrap()
}

/// The lab's objects the old migration created in the service's schema, by name.
async fn lab_objects(db: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name LIKE 'lab\\_%' \
         UNION ALL \
         SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = 'public' AND p.proname LIKE 'lab\\_%' \
         ORDER BY 1",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

async fn applied_versions(db: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_new_database_has_no_lab_objects() {
    let db = new_database().await;
    store::migrate(&db).await.unwrap();
    assert_eq!(lab_objects(&db).await, Vec::<String>::new());
}

/// An earlier release's migrations: the service's, as they were before the lab left (its old
/// lab migration from tests/fixtures/retired_migrations, without the one that retires it).
fn earlier_release_migrations() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coupon-earlier-migrations-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let current = std::fs::read_dir(root.join("migrations")).unwrap();
    let retired = std::fs::read_dir(root.join("tests/fixtures/retired_migrations")).unwrap();
    for file in current.chain(retired) {
        let path = file.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.ends_with("_retire_lab.sql") {
            std::fs::copy(&path, dir.join(name)).unwrap();
        }
    }
    dir
}

/// A database an earlier release migrated (lab tables, a lab coupon, the lab's version in
/// `_sqlx_migrations`) migrates cleanly with this release, which drops the lab's objects and
/// forgets its version; and again, with nothing left to do.
#[tokio::test]
async fn a_database_migrated_by_an_earlier_release_loses_its_lab_objects() {
    let db = new_database().await;
    let dir = earlier_release_migrations();
    let earlier = sqlx::migrate::Migrator::new(dir.as_path()).await.unwrap();
    earlier.run(&db).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    sqlx::query("INSERT INTO lab_coupons (id, initial, quantity) VALUES ($1, 5, 5)")
        .bind(Uuid::new_v4())
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(lab_objects(&db).await, ["lab_claims", "lab_coupons", "lab_give"]);
    assert!(applied_versions(&db).await.contains(&20261121060000));

    store::migrate(&db).await.unwrap();
    assert_eq!(lab_objects(&db).await, Vec::<String>::new());
    let applied = applied_versions(&db).await;
    assert!(!applied.contains(&20261121060000), "{applied:?}");
    assert_eq!(applied.len(), store::MIGRATOR.iter().count(), "{applied:?}");
    store::migrate(&db).await.unwrap();
}
