//! `GET /healthz` (the process is up) and `GET /readyz` (its dependencies answer).

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// 200 when Redis and Postgres both answer, 503 otherwise, with a report per dependency.
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
