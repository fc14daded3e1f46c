//! The strategy lab left the service for its own crate (crates/lab, issue 16): the service
//! serves no `/v1/lab` route.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::spawn_app;

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
