//! A known path asked with a method it lacks answers 405 with `Allow` (exactly the document's
//! methods for it) and the API's error body; an unknown path stays 404. And the document's links
//! each lead to an operation and parameters that exist.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{document, operations};
use crate::helpers::spawn_app;

#[tokio::test]
async fn a_wrong_method_on_a_known_path_is_405_with_allow() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let ops = operations(&doc);
    let paths: BTreeSet<&String> = ops.iter().map(|(_, path)| path).collect();
    for path in paths {
        let documented: BTreeSet<String> = ops.iter().filter(|(_, p)| p == path).map(|(m, _)| m.clone()).collect();
        let concrete = path
            .replace("{id}", "0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10")
            .replace("{coupon_id}", "019a2b3c-4d5e-7f60-8a9b-0c1d2e3f4a5b")
            .replace("{user_id}", "alice");
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"] {
            if documented.contains(method) {
                continue;
            }
            let response = app
                .client
                .request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            let allow = response.headers()["allow"].to_str().unwrap().to_string();
            let allowed: BTreeSet<String> = allow.split(", ").map(String::from).collect();
            assert_eq!(allowed, documented, "{method} {path}: Allow: {allow}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "method_not_allowed", "{method} {path}");
            let status = method.to_lowercase();
            let documented_405 =
                &doc["paths"][path.as_str()][documented.iter().next().unwrap().to_lowercase()]["responses"]["405"];
            assert!(
                documented_405["headers"]["Allow"].is_object(),
                "{path}: 405 documented ({status})"
            );
        }
    }
    for method in [Method::GET, Method::DELETE, Method::POST] {
        let response = app
            .client
            .request(method.clone(), app.url("/v1/nowhere"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
}

/// Each link names an operation of the document, its parameters are that operation's, and the
/// fields of its request body are that operation's body fields.
#[tokio::test]
async fn every_link_leads_somewhere_real() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut by_id = std::collections::BTreeMap::new();
    for (_, item) in doc["paths"].as_object().unwrap() {
        for (_, operation) in item.as_object().unwrap() {
            by_id.insert(
                operation["operationId"].as_str().unwrap().to_string(),
                operation.clone(),
            );
        }
    }
    let mut links = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                for (name, link) in response["links"].as_object().into_iter().flatten() {
                    let here = format!("{method} {path} {status} {name}");
                    let target = &by_id[link["operationId"].as_str().unwrap_or_else(|| panic!("{here}"))];
                    let names: BTreeSet<&str> = target["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| p["name"].as_str().unwrap())
                        .collect();
                    for parameter in link["parameters"].as_object().unwrap().keys() {
                        assert!(names.contains(parameter.as_str()), "{here}: {parameter}");
                    }
                    if let Some(body) = link["requestBody"].as_object() {
                        let schema = &target["requestBody"]["content"]["application/json"]["schema"]["$ref"];
                        let schema =
                            &doc["components"]["schemas"][schema.as_str().unwrap().rsplit('/').next().unwrap()];
                        for field in body.keys() {
                            assert!(schema["properties"].get(field).is_some(), "{here}: body {field}");
                        }
                    }
                    links += 1;
                }
            }
        }
    }
    assert!(links >= 20, "{links} links");
}
