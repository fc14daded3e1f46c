//! The OpenAPI document and Swagger UI.

use std::collections::BTreeSet;

use coupon_issuer::http::api_routes;
use coupon_issuer::http::openapi::{errors_of, every_error};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::chromium;
use crate::helpers::{TestApp, spawn_app};

mod bounds;
mod methods;

/// Routes the service serves that are not part of the API, so not in the document: the
/// document itself and its viewer. (Add operator pages such as /metrics or /live here.)
const NOT_IN_THE_DOCUMENT: &[&str] = &[
    "/openapi.json",
    "/swagger-ui/",
    "/metrics",
    "/live",
    "/live/live.js",
    "/live/live.css",
    "/live/stats.json",
];

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

pub(crate) async fn document(app: &TestApp) -> Value {
    let (status, doc) = app.get_json("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    doc
}

/// (METHOD, path) of every operation in the document.
pub(crate) fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                found.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    found
}

#[tokio::test]
async fn the_document_lists_every_route_the_service_serves() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    // `api_routes` reads the very lists `http::routes` mounts, so this compares the document
    // with what is served, not with a copy.
    let served: BTreeSet<(String, String)> = api_routes()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path))
        .collect();
    assert_eq!(operations(&doc), served, "document vs. mounted routes");

    // Each route is really there: it answers something other than the catch-all 404.
    for (method, path) in &served {
        let concrete = path
            .replace("{id}", "0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10")
            .replace("{coupon_id}", "019a2b3c-4d5e-7f60-8a9b-0c1d2e3f4a5b")
            .replace("{user_id}", "alice");
        let response = app
            .client
            .request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(&concrete))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_ne!(body["error"]["code"], "not_found", "{method} {path}: {status} {body}");
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
    }
    let operator: Vec<&str> = coupon_issuer::http::operator_routes().iter().map(|(p, _)| *p).collect();
    assert!(
        operator.iter().all(|p| NOT_IN_THE_DOCUMENT.contains(p)),
        "every operator page is listed here: {operator:?}"
    );
    for path in NOT_IN_THE_DOCUMENT {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(doc["paths"].get(*path).is_none(), "{path} is not an API route");
    }
    let redirect = app.client.get(app.url("/swagger-ui")).send().await.unwrap();
    assert_eq!(
        redirect.status(),
        StatusCode::OK,
        "/swagger-ui redirects to /swagger-ui/"
    );
}

#[tokio::test]
async fn every_error_code_is_documented_with_the_body_the_service_sends() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert_eq!(
        &doc,
        coupon_issuer::http::openapi::document(false),
        "AUTH_MODE=body serves its document"
    );
    let codes: BTreeSet<String> = every_error().iter().map(|e| e.code().to_string()).collect();
    let code = &doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"];
    assert_eq!(code["$ref"], "#/components/schemas/ErrorCode");
    let schema = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    let listed: BTreeSet<String> = schema
        .as_array()
        .expect("ErrorCode is an enum")
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, codes);

    // The token errors are in the AUTH_MODE=jwt document only.
    let mut shown = BTreeSet::new();
    for jwt in [false, true] {
        let doc = coupon_issuer::http::openapi::document(jwt);
        for (method, path) in operations(doc) {
            let operation = &doc["paths"][&path][method.to_lowercase()];
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path} has a success response"
            );
            let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
            for code in errors_of(&method, &path, jwt) {
                let error = every_error().into_iter().find(|e| e.code() == code).unwrap();
                let status = actix_web::ResponseError::status_code(&error).as_u16().to_string();
                let example = &responses[&status]["content"]["application/json"]["examples"][code]["value"];
                assert_eq!(example, &error.body(), "{method} {path} {status} {code} (jwt: {jwt})");
                shown.insert(code.to_string());
            }
        }
    }
    // `not_found` is the catch-all for unknown paths, described in the document's intro.
    let expected: BTreeSet<String> = codes.into_iter().filter(|c| c != "not_found").collect();
    assert_eq!(shown, expected, "each code shown on at least one operation");

    // A real answer is shaped as documented.
    let response = app.issue("0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10", "alice").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    let documented = &doc["paths"]["/v1/coupon/issue"]["post"]["responses"]["404"]["content"]["application/json"]["examples"]
        ["event_not_found"]["value"];
    assert_eq!(&body, documented);
}

/// Swagger UI, in a real browser, fetches the document and renders every operation.
#[tokio::test]
async fn swagger_ui_renders_every_operation_in_headless_chromium() {
    let app = spawn_app().await;
    let dom = chromium::dump_dom(&app.url("/swagger-ui/")).await;
    assert!(
        dom.contains("swagger-ui"),
        "not the Swagger page: {}",
        &dom[..dom.len().min(500)]
    );
    for (method, path) in api_routes() {
        let rendered = format!("data-path=\"{path}\"");
        assert!(dom.contains(&rendered), "{method} {path} not rendered");
    }
    assert!(dom.contains("coupon-issuer"), "the title is rendered");
}

/// Takes docs/api.md's screenshot of the Swagger page from a real run:
/// `cargo test --test api readme_screenshot -- --ignored`.
#[tokio::test]
#[ignore = "writes docs/swagger.png; run by hand to refresh docs/api.md's screenshot"]
async fn readme_screenshot_of_swagger_ui() {
    let app = spawn_app().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/swagger.png");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    chromium::screenshot(&app.url("/swagger-ui/"), &path, 1280, 900).await;
}

/// The fields of a documented schema, following one `$ref`.
fn fields(doc: &Value, schema: &Value) -> BTreeSet<String> {
    let schema = match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
        None => schema,
    };
    schema["properties"].as_object().unwrap().keys().cloned().collect()
}

/// The fields of the JSON answer documented for `status` of `method path`.
fn documented(doc: &Value, method: &str, path: &str, status: u16) -> BTreeSet<String> {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]["schema"];
    fields(doc, schema)
}

fn keys(body: &Value) -> BTreeSet<String> {
    body.as_object().unwrap().keys().cloned().collect()
}

/// Bodies built with `json!` (health, lists) and typed ones alike answer with exactly the
/// documented fields.
#[tokio::test]
async fn real_answers_have_the_documented_fields() {
    let app = spawn_app().await;
    let doc = document(&app).await;

    let (_, health) = app.get_json("/healthz").await;
    assert_eq!(keys(&health), documented(&doc, "get", "/healthz", 200));
    let (status, ready) = app.get_json("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&ready), documented(&doc, "get", "/readyz", 200));
    let check = &doc["components"]["schemas"]["Checks"]["properties"]["redis"];
    assert!(keys(&ready["checks"]["redis"]).is_subset(&fields(&doc, check)));

    let event = app.open_event(5).await;
    let (_, count) = app.get_json(&format!("/v1/coupon/count?event_id={event}")).await;
    assert_eq!(keys(&count), documented(&doc, "get", "/v1/coupon/count", 200));
    let coupon: Value = app.issue(&event, "alice").await.json().await.unwrap();
    assert_eq!(keys(&coupon), documented(&doc, "post", "/v1/coupon/issue", 201));
    let (_, shown) = app.get_json(&format!("/v1/events/{event}")).await;
    assert_eq!(shown["error"]["code"], "unauthorized", "admin routes need the token");
    let listed: Value = app
        .client
        .get(app.url("/v1/events"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys(&listed), documented(&doc, "get", "/v1/events", 200));
    let view = &doc["components"]["schemas"]["EventList"]["properties"]["events"]["items"];
    assert_eq!(keys(&listed["events"][0]), fields(&doc, view));

    app.wait_for_stored(&event, 1, std::time::Duration::from_secs(10)).await;
    let (_, mine) = app.get_json("/v1/users/alice/coupons").await;
    assert_eq!(keys(&mine), documented(&doc, "get", "/v1/users/{user_id}/coupons", 200));
}
