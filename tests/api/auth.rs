//! Who the user is: `AUTH_MODE=jwt` (HS256, RS256, ES256) and the admin token.

use chrono::Utc;
use coupon_issuer::config::{AuthMode, Settings};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).expect("fixture present")
}

/// A token for `sub`, expiring `exp_in` seconds from now, with the issuer and audience the
/// test apps expect.
fn token(alg: Algorithm, key: &EncodingKey, sub: &str, exp_in: i64) -> String {
    let claims = json!({ "sub": sub, "exp": Utc::now().timestamp() + exp_in, "iss": "shop", "aud": "coupons" });
    jsonwebtoken::encode(&Header::new(alg), &claims, key).unwrap()
}

fn hs256(sub: &str) -> String {
    token(Algorithm::HS256, &EncodingKey::from_secret(SECRET.as_bytes()), sub, 600)
}

async fn jwt_app(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(|s| {
        s.auth_mode = AuthMode::Jwt;
        s.jwt_issuer = Some("shop".into());
        s.jwt_audience = Some("coupons".into());
        configure(s);
    })
    .await
}

async fn issue_as(app: &TestApp, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = app.client.post(app.url("/v1/coupon/issue")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn hs256_the_user_is_the_tokens_subject() {
    let app = jwt_app(|s| s.jwt_secret = Some(SECRET.into())).await;
    let event = app.open_event(10).await;
    let alice = hs256("alice");

    let (status, body) = issue_as(&app, Some(&alice), json!({ "event_id": event })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user_id"], "alice");
    // Naming yourself is fine; naming anyone else is refused, and nothing is counted.
    let (status, _) = issue_as(&app, Some(&alice), json!({ "event_id": event, "user_id": "alice" })).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = issue_as(&app, Some(&alice), json!({ "event_id": event, "user_id": "bob" })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("user_mismatch"))
    );
    assert_eq!(app.count(&event).await["issued"], 1);

    // A user's coupons and redemption follow the token too.
    let list = |path: &str, token: &str| app.client.get(app.url(path)).bearer_auth(token.to_owned()).send();
    assert_eq!(
        list("/v1/users/alice/coupons", &alice).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        list("/v1/users/bob/coupons", &alice).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let unauthenticated = app.client.get(app.url("/v1/users/alice/coupons")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let redeem = |body: Value| {
        app.client
            .post(app.url(&format!("/v1/coupons/{}/redeem", uuid::Uuid::now_v7())))
            .bearer_auth(alice.clone())
            .json(&body)
            .send()
    };
    let as_bob = redeem(json!({ "user_id": "bob" })).await.unwrap();
    assert_eq!(as_bob.status(), StatusCode::FORBIDDEN);
    // No user named: the token's user redeems (an unknown coupon here, so 404).
    let as_alice = redeem(json!({})).await.unwrap();
    assert_eq!(as_alice.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_tokens_are_401_with_stable_codes() {
    let app = jwt_app(|s| s.jwt_secret = Some(SECRET.into())).await;
    let event = app.open_event(10).await;
    let secret = EncodingKey::from_secret(SECRET.as_bytes());
    let forged = token(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another-secret-another-secret-xx"),
        "alice",
        600,
    );
    let expired = token(Algorithm::HS256, &secret, "alice", -3600);
    // alg "none": header {"alg":"none","typ":"JWT"}, a valid payload, no signature.
    let payload = hs256("alice").split('.').nth(1).unwrap().to_owned();
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    let hs384 = token(Algorithm::HS384, &secret, "alice", 600);
    let wrong_audience = {
        let claims = json!({ "sub": "alice", "exp": Utc::now().timestamp() + 600, "iss": "shop", "aud": "other" });
        jsonwebtoken::encode(&Header::default(), &claims, &secret).unwrap()
    };
    let no_sub = {
        let claims = json!({ "exp": Utc::now().timestamp() + 600, "iss": "shop", "aud": "coupons" });
        jsonwebtoken::encode(&Header::default(), &claims, &secret).unwrap()
    };
    let bad_sub = hs256("bob smith");
    let cases = [
        (None, "token_missing"),
        (Some(String::new()), "token_missing"),
        (Some(expired), "token_expired"),
        (Some(forged), "token_invalid"),
        (Some(unsigned), "token_invalid"),
        (Some(hs384), "token_invalid"),
        (Some(wrong_audience), "token_invalid"),
        (Some(no_sub), "token_invalid"),
        (Some(bad_sub), "token_invalid"),
        (Some("not a token".into()), "token_malformed"),
        (Some("a.b".into()), "token_malformed"),
        (Some("x".repeat(10_000)), "token_malformed"),
    ];
    for (token, code) in cases {
        let (status, body) = issue_as(&app, token.as_deref(), json!({ "event_id": event, "user_id": "alice" })).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some(code)),
            "{token:?}"
        );
    }
    assert_eq!(app.count(&event).await["issued"], 0);
}

#[tokio::test]
async fn rs256_and_es256_public_keys() {
    for (alg, private, public) in [
        (Algorithm::RS256, "jwt-rs256-private.pem", "jwt-rs256-public.pem"),
        (Algorithm::ES256, "jwt-es256-private.pem", "jwt-es256-public.pem"),
    ] {
        let app = jwt_app(|s| s.jwt_public_key_file = Some(format!("{FIXTURES}/{public}").into())).await;
        let event = app.open_event(10).await;
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&fixture(private)).unwrap(),
            _ => EncodingKey::from_ec_pem(&fixture(private)).unwrap(),
        };
        let (status, body) = issue_as(
            &app,
            Some(&token(alg, &key, "carol", 600)),
            json!({ "event_id": event }),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{alg:?}: {body}");
        // The public key used as an HMAC secret: the classic algorithm confusion.
        let confused = token(
            Algorithm::HS256,
            &EncodingKey::from_secret(&fixture(public)),
            "dave",
            600,
        );
        let (status, body) = issue_as(&app, Some(&confused), json!({ "event_id": event })).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("token_invalid"))
        );
    }
}

#[tokio::test]
async fn jwt_mode_without_a_key_does_not_start() {
    let mut settings = crate::helpers::test_settings();
    settings.auth_mode = AuthMode::Jwt;
    assert!(coupon_issuer::startup::Application::build(settings).await.is_err());
}

#[tokio::test]
async fn no_admin_token_means_the_admin_api_is_closed_to_everyone() {
    let app = spawn_app_with(|s| s.admin_token = Some(String::new())).await;
    for auth in [
        None,
        Some(""),
        Some("Bearer "),
        Some("Bearer anything"),
        Some("Basic x"),
    ] {
        let mut request = app.client.get(app.url("/v1/events"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
    }
    // With a token: only that exact token, compared in constant time (subtle).
    let app = spawn_app_with(|_| {}).await;
    let near = format!(
        "{}x",
        &crate::helpers::ADMIN_TOKEN[..crate::helpers::ADMIN_TOKEN.len() - 1]
    );
    for token in [near.as_str(), "", "test-admin-token-and-more"] {
        let response = app
            .client
            .get(app.url("/v1/events"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
    }
    let response = app
        .client
        .get(app.url("/v1/events"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
