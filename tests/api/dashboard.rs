//! The Grafana dashboard queries only metrics the service exports.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{issue_all, spawn_app, users};
use crate::scrape::scrape_until;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/grafana/dashboards/coupon-issuer.json"
);

/// Every `expr` in the dashboard, wherever it sits (panels, nested rows, variables).
fn exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    // A query variable's PromQL.
                    ("query", Value::Object(q)) if q.contains_key("query") => {
                        if let Some(Value::String(e)) = q.get("query") {
                            out.push(e.clone());
                        }
                    }
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// The metric names a PromQL expression reads: this service's all start with `coupon_`.
fn metric_names(expr: &str) -> impl Iterator<Item = &str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|token| token.starts_with("coupon_"))
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_exported() {
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).unwrap();
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    assert!(queries.len() >= 10, "only {} queries found", queries.len());
    let wanted: BTreeSet<&str> = queries.iter().flat_map(|q| metric_names(q)).collect();
    assert!(wanted.len() >= 10, "{wanted:?}");

    // Make every labelled series appear: an event on sale, issues, a stored batch.
    let app = spawn_app().await;
    let event = app.open_event(3).await;
    issue_all(&app, &event, &users("d", 4)).await;
    app.wait_for_stored(&event, 3, Duration::from_secs(10)).await;
    let scraped = scrape_until(&app, |m| {
        m.value("coupon_writer_lag_seconds_count", &[]).is_some_and(|n| n > 0.0)
    })
    .await;
    let exported: BTreeSet<&str> = scraped.names().collect();

    let missing: Vec<&&str> = wanted.iter().filter(|name| !exported.contains(**name)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, which /metrics does not export"
    );
}
