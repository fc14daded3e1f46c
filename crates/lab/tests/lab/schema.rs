//! The lab keeps to its own schema: its tables, its function and its migrations' record are
//! in `lab`, so a database it shares with the service holds nothing of it in `public`.

use crate::helpers::spawn_lab;

#[tokio::test]
async fn the_lab_migrates_into_its_own_schema() {
    let app = spawn_lab().await;
    let tables = |schema: &'static str| {
        sqlx::query_scalar::<_, String>(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
        )
        .bind(schema)
        .fetch_all(&app.db)
    };
    assert_eq!(tables("lab").await.unwrap(), ["_sqlx_migrations", "claims", "coupons"]);
    assert!(tables("public").await.unwrap().is_empty());
    let functions: Vec<String> = sqlx::query_scalar(
        "SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE p.proname LIKE '%give%' AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(functions, ["lab.give"]);
    // A second start finds everything applied (its own record, not the service's).
    coupon_lab::store::migrate(&app.db).await.unwrap();
    app.stop().await.unwrap();
}
