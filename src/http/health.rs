//! `GET /healthz` (the process is up) and `GET /readyz` (its dependencies answer).

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::AppState;

/// The process is up (liveness).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "Up", body = Health)),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// 200 when Redis and Postgres both answer, 503 otherwise, with a report per dependency.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Redis and Postgres answer", body = Readiness),
        (status = 503, description = "A dependency does not answer", body = Readiness,
         example = json!({"status": "unavailable", "checks": {
             "redis": {"ok": false, "error": "unreachable or not answering"},
             "postgres": {"ok": true, "latency_ms": 0.8}}})),
    ),
)]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (redis, postgres) = tokio::join!(
        check(state.issuer.ping()),
        check(async {
            let ping = sqlx::query("SELECT 1").execute(&state.db);
            match tokio::time::timeout(Duration::from_secs(2), ping).await {
                Ok(result) => result.map(drop).map_err(|e| e.to_string()),
                Err(_) => Err("timed out".to_string()),
            }
        }),
    );
    let ready = redis["ok"] == true && postgres["ok"] == true;
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": { "redis": redis, "postgres": postgres },
        // Not a readiness check: what the writer did, so dead-lettered entries get noticed.
        "writer": state.writer_stats.snapshot(),
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// The error text stays in the log; the report says only that the dependency failed.
async fn check<E: std::fmt::Display>(probe: impl Future<Output = Result<(), E>>) -> Value {
    let started = Instant::now();
    match probe.await {
        Ok(()) => json!({ "ok": true, "latency_ms": started.elapsed().as_secs_f64() * 1000.0 }),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            json!({ "ok": false, "error": "unreachable or not answering" })
        }
    }
}

/// `GET /healthz`'s body.
#[derive(ToSchema)]
#[schema(example = json!({"status": "ok"}))]
#[allow(dead_code)] // schemas only: the handlers build the JSON with `json!`
pub struct Health {
    status: String,
}

/// `GET /readyz`'s body: a report per dependency.
#[derive(ToSchema)]
#[schema(example = json!({"status": "ready", "checks": {
    "redis": {"ok": true, "latency_ms": 0.4},
    "postgres": {"ok": true, "latency_ms": 0.9}},
    "writer": {"stored": 1200, "dead_lettered": 0, "refusals": 0}}))]
#[allow(dead_code)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    status: String,
    checks: Checks,
    /// Not a readiness check: what this process's writers did since it started.
    writer: WriterCounts,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct WriterCounts {
    /// Coupons inserted into Postgres (redeliveries of stored coupons not counted).
    stored: u64,
    /// Entries moved to a dead-letter stream: unreadable, or refused by Postgres a few times.
    dead_lettered: u64,
    /// Times Postgres refused one entry (each try counts).
    refusals: u64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Checks {
    redis: Check,
    postgres: Check,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Check {
    ok: bool,
    /// When `ok`.
    latency_ms: Option<f64>,
    /// When not `ok`; never the underlying error's text.
    error: Option<String>,
}
