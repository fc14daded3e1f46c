//! `GET /healthz` (the process is up) and `GET /readyz` (its dependencies answer).

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::writer::WriterCounts;

/// The process is up (liveness).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "Up", body = Health)),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok".into() })
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
    let ready = redis.ok && postgres.ok;
    let report = Readiness {
        checks: Checks { postgres, redis },
        status: if ready {
            ReadinessStatus::Ready
        } else {
            ReadinessStatus::Unavailable
        },
        writer: state.writer_stats.snapshot(),
    };
    if ready {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}

/// The error text stays in the log; the report says only that the dependency failed.
async fn check<E: std::fmt::Display>(probe: impl Future<Output = Result<(), E>>) -> Check {
    let started = Instant::now();
    match probe.await {
        Ok(()) => Check {
            error: None,
            latency_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
            ok: true,
        },
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Check {
                error: Some("unreachable or not answering".into()),
                latency_ms: None,
                ok: false,
            }
        }
    }
}

// The fields below are in alphabetical order: the order these bodies had when they were built
// with `json!` (a sorted map), so the answers stay the same byte for byte.

/// `GET /healthz`'s body.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    status: String,
}

/// `GET /readyz`'s body: a report per dependency.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "checks": {
    "redis": {"ok": true, "latency_ms": 0.4},
    "postgres": {"ok": true, "latency_ms": 0.9}},
    "writer": {"stored": 1200, "dead_lettered": 0, "refusals": 0}}))]
pub struct Readiness {
    checks: Checks,
    status: ReadinessStatus,
    /// Not a readiness check: what this process's writers did since it started.
    writer: WriterCounts,
}

/// Whether every dependency answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadinessStatus {
    Ready,
    Unavailable,
}

#[derive(Serialize, ToSchema)]
pub struct Checks {
    postgres: Check,
    redis: Check,
}

#[derive(Serialize, ToSchema)]
pub struct Check {
    /// When not `ok`; never the underlying error's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// When `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<f64>,
    ok: bool,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The typed report writes the very bytes the `json!` body wrote (a sorted map).
    #[test]
    fn the_report_is_the_json_it_replaced() {
        let report = Readiness {
            checks: Checks {
                postgres: Check {
                    error: None,
                    latency_ms: Some(0.9),
                    ok: true,
                },
                redis: Check {
                    error: Some("unreachable or not answering".into()),
                    latency_ms: None,
                    ok: false,
                },
            },
            status: ReadinessStatus::Unavailable,
            writer: WriterCounts {
                dead_lettered: 1,
                refusals: 3,
                stored: 1200,
            },
        };
        let before = json!({
            "status": "unavailable",
            "checks": {
                "redis": { "ok": false, "error": "unreachable or not answering" },
                "postgres": { "ok": true, "latency_ms": 0.9 },
            },
            "writer": { "stored": 1200, "dead_lettered": 1, "refusals": 3 },
        });
        assert_eq!(serde_json::to_string(&report).unwrap(), before.to_string());
        let health = Health { status: "ok".into() };
        assert_eq!(
            serde_json::to_string(&health).unwrap(),
            json!({ "status": "ok" }).to_string()
        );
    }
}
