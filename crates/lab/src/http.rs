//! The strategy lab over HTTP, as the service once mounted it under `/v1/lab`: the same paths,
//! answers and codes.
//!
//! - `POST /v1/lab/{strategy}/{coupon_id}/give` `{"user_id"}`: 201 issued; 409 `already_issued`;
//!   410 `sold_out`; 404 `lab_coupon_not_found`, or `not_found` for an unknown strategy; 503
//!   `unavailable` when the strategy pushes back (queue full, lock not won, too many conflicts).
//!   Every answer carries `X-Lab-Attempts`: tries it took (optimistic attempts, lock tries).
//! - `PUT /v1/lab/coupons/{coupon_id}` `{"quantity"}` (admin token): set up or reset a coupon
//!   with N units and no holders, in Postgres and in Redis.
//! - `GET /v1/lab/coupons/{coupon_id}`: its state in both stores (what `compare` reads).
//! - `GET /healthz` (the process answers) and `GET /readyz` (Postgres and Redis answer).

mod extract;

use std::time::Duration;

use actix_web::http::header::HeaderName;
use actix_web::{HttpResponse, ResponseError, web};
use coupon_issuer::domain::UserId;
use coupon_issuer::redis_target::RedisTarget;
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

pub use self::extract::{Admin, AdminToken, JsonBody};
use crate::error::LabError;
use crate::lab::Lab;
use crate::strategy::{Outcome, Strategy};

/// What `/readyz` asks.
#[derive(Clone)]
pub struct Dependencies {
    pub db: PgPool,
    pub redis: RedisTarget,
    pub redis_timeout: Duration,
}

/// Mounts every route: the lab's under `/v1/lab`, the probes, and a JSON 404 for the rest.
pub fn routes(lab: Lab, admin: AdminToken, dependencies: Dependencies) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(lab))
            .app_data(web::Data::new(admin))
            .app_data(web::Data::new(dependencies))
            .app_data(
                web::PathConfig::default().error_handler(|e, _| LabError::InvalidRequest(format!("path: {e}")).into()),
            )
            .service(
                web::scope("/v1/lab")
                    .route("/coupons/{coupon_id}", web::put().to(reset))
                    .route("/coupons/{coupon_id}", web::get().to(report))
                    .route("/{strategy}/{coupon_id}/give", web::post().to(give)),
            )
            .route(
                "/healthz",
                web::get().to(|| async { HttpResponse::Ok().json(json!({ "status": "ok" })) }),
            )
            .route("/readyz", web::get().to(readyz))
            .default_service(web::to(|| async { LabError::RouteNotFound.error_response() }));
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiveRequest {
    user_id: String,
}

#[tracing::instrument(name = "lab_give", skip_all, fields(strategy = %path.0, outcome))]
async fn give(
    lab: web::Data<Lab>,
    path: web::Path<(String, String)>,
    body: JsonBody<GiveRequest>,
) -> Result<HttpResponse, LabError> {
    let (strategy, coupon) = path.into_inner();
    let strategy = Strategy::parse(&strategy).ok_or(LabError::RouteNotFound)?;
    let coupon = parse_coupon(&coupon)?;
    let user = UserId::parse(&body.0.user_id).map_err(|e| LabError::invalid("user_id", e))?;
    let answer = match lab.give(strategy, coupon, &user).await {
        Ok(given) => {
            let mut response = match given.outcome {
                Outcome::Issued => HttpResponse::Created().json(json!({
                    "strategy": strategy.name(), "coupon_id": coupon, "user_id": user,
                })),
                Outcome::AlreadyIssued => LabError::AlreadyIssued.error_response(),
                Outcome::SoldOut => LabError::SoldOut.error_response(),
                Outcome::NotFound => LabError::CouponNotFound.error_response(),
            };
            response
                .headers_mut()
                .insert(HeaderName::from_static("x-lab-attempts"), given.attempts.into());
            response
        }
        Err(e) => e.error_response(),
    };
    let outcome = if answer.status().is_success() {
        "issued"
    } else {
        "refused"
    };
    tracing::Span::current().record("outcome", outcome);
    Ok(answer)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    quantity: u32,
}

async fn reset(
    _: Admin,
    lab: web::Data<Lab>,
    coupon: web::Path<String>,
    body: JsonBody<ResetRequest>,
) -> Result<HttpResponse, LabError> {
    let coupon = parse_coupon(&coupon)?;
    let quantity = i32::try_from(body.0.quantity).map_err(|_| LabError::invalid("quantity", "too large"))?;
    lab.reset(coupon, quantity).await?;
    report(lab, web::Path::from(coupon.to_string())).await
}

async fn report(lab: web::Data<Lab>, coupon: web::Path<String>) -> Result<HttpResponse, LabError> {
    let coupon = parse_coupon(&coupon)?;
    match lab.report(coupon).await? {
        Some(report) => Ok(HttpResponse::Ok().json(report)),
        None => Err(LabError::CouponNotFound),
    }
}

/// Ready when Postgres and Redis both answer: what `compare` waits for before its spike.
async fn readyz(dependencies: web::Data<Dependencies>) -> HttpResponse {
    let postgres = sqlx::query("SELECT 1").execute(&dependencies.db).await.is_ok();
    let redis = dependencies.redis.probe(dependencies.redis_timeout).await.is_ok();
    let status = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = json!({ "postgres": status(postgres), "redis": status(redis) });
    if postgres && redis {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

fn parse_coupon(s: &str) -> Result<Uuid, LabError> {
    Uuid::parse_str(s).map_err(|_| LabError::invalid("coupon_id", "must be a UUID"))
}
