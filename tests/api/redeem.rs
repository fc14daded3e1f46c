//! Using a coupon: once, by its owner, while valid.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// Issues a coupon to `user` and waits until the writer has stored it.
async fn stored_coupon(app: &TestApp, user: &str) -> String {
    let event = app.open_event(10).await;
    let issued: Value = app.issue(&event, user).await.json().await.unwrap();
    app.wait_for_stored(&event, 1, Duration::from_secs(10)).await;
    issued["coupon_id"].as_str().unwrap().to_owned()
}

async fn redeem(app: &TestApp, coupon: &str, user: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(&format!("/v1/coupons/{coupon}/redeem")))
        .json(&json!({ "user_id": user }))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_concurrent_redemptions_exactly_one_wins() {
    let app = spawn_app().await;
    let coupon = stored_coupon(&app, "alice").await;

    let attempts = (0..50).map(|_| redeem(&app, &coupon, "alice"));
    let answers = futures::future::join_all(attempts).await;

    let won: Vec<_> = answers.iter().filter(|(s, _)| *s == StatusCode::OK).collect();
    assert_eq!(won.len(), 1);
    assert!(won[0].1["redeemed_at"].is_string());
    assert!(
        answers
            .iter()
            .filter(|(s, _)| *s != StatusCode::OK)
            .all(|(s, b)| *s == StatusCode::CONFLICT && b["error"]["code"] == "already_redeemed")
    );
}

#[tokio::test]
async fn redemption_errors() {
    let app = spawn_app().await;
    let coupon = stored_coupon(&app, "alice").await;

    let (status, body) = redeem(&app, &coupon, "mallory").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_owner"))
    );
    let (status, body) = redeem(&app, "0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10", "alice").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("coupon_not_found"))
    );
    let (status, _) = redeem(&app, "not-a-coupon", "alice").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Past its validity (moved there directly: waiting a month is not an option).
    sqlx::query("UPDATE coupons SET valid_until = now() - interval '1 second' WHERE coupon_id = $1::uuid")
        .bind(&coupon)
        .execute(&app.db)
        .await
        .unwrap();
    let (status, body) = redeem(&app, &coupon, "alice").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::GONE, Some("expired"))
    );
}

#[tokio::test]
async fn a_user_sees_their_coupons() {
    let app = spawn_app().await;
    let coupon = stored_coupon(&app, "carol").await;
    let (status, _) = redeem(&app, &coupon, "carol").await;
    assert_eq!(status, StatusCode::OK);

    let (_, listed) = app.get_json("/v1/users/carol/coupons").await;
    let coupons = listed["coupons"].as_array().unwrap();
    assert_eq!(coupons.len(), 1);
    assert_eq!(coupons[0]["coupon_id"], coupon);
    assert!(coupons[0]["redeemed_at"].is_string());
    for field in [
        "event_id",
        "user_id",
        "day",
        "seq",
        "issued_at",
        "valid_from",
        "valid_until",
    ] {
        assert!(!coupons[0][field].is_null(), "{field}");
    }
    let (_, nobody) = app.get_json("/v1/users/nobody/coupons").await;
    assert_eq!(nobody["coupons"], json!([]));
    let bad = app
        .client
        .get(app.url("/v1/users/bad%20id/coupons"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
