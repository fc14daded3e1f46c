//! The strategy lab over HTTP (mounted only with `LAB_ENABLED=true`; see `lab/`).
//!
//! - `POST /v1/lab/{strategy}/{coupon_id}/give` `{"user_id"}`: 201 issued; 409 `already_issued`;
//!   410 `sold_out`; 404 `lab_coupon_not_found`, or `not_found` for an unknown strategy; 503
//!   `unavailable` when the strategy pushes back (queue full, lock not won, too many conflicts).
//!   Every answer carries `X-Lab-Attempts`: tries it took (optimistic attempts, lock tries).
//! - `PUT /v1/lab/coupons/{coupon_id}` `{"quantity"}` (admin token): set up or reset a coupon
//!   with N units and no holders, in Postgres and in Redis.
//! - `GET /v1/lab/coupons/{coupon_id}`: its state in both stores (what `compare` reads).

use actix_web::{HttpResponse, ResponseError, web};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{Admin, JsonBody};
use crate::domain::UserId;
use crate::lab::{Lab, LabError, Outcome, Strategy};

/// The lab's routes, inside `/v1`.
pub fn scope(lab: Lab) -> actix_web::Scope {
    web::scope("/lab")
        .app_data(web::Data::new(lab))
        .route("/coupons/{coupon_id}", web::put().to(reset))
        .route("/coupons/{coupon_id}", web::get().to(report))
        .route("/{strategy}/{coupon_id}/give", web::post().to(give))
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
) -> Result<HttpResponse, ApiError> {
    let (strategy, coupon) = path.into_inner();
    let strategy = Strategy::parse(&strategy).ok_or(ApiError::RouteNotFound)?;
    let coupon = parse_coupon(&coupon)?;
    let user = UserId::parse(&body.0.user_id).map_err(|e| ApiError::invalid("user_id", e))?;
    let answer = match lab.give(strategy, coupon, &user).await {
        Ok(given) => {
            let mut response = match given.outcome {
                Outcome::Issued => HttpResponse::Created().json(json!({
                    "strategy": strategy.name(), "coupon_id": coupon, "user_id": user,
                })),
                Outcome::AlreadyIssued => ApiError::LabAlreadyIssued.error_response(),
                Outcome::SoldOut => ApiError::SoldOut.error_response(),
                Outcome::NotFound => ApiError::LabCouponNotFound.error_response(),
            };
            response.headers_mut().insert(
                actix_web::http::header::HeaderName::from_static("x-lab-attempts"),
                given.attempts.into(),
            );
            response
        }
        Err(e) => ApiError::from(e).error_response(),
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
) -> Result<HttpResponse, ApiError> {
    let coupon = parse_coupon(&coupon)?;
    let quantity = i32::try_from(body.0.quantity).map_err(|_| ApiError::invalid("quantity", "too large"))?;
    lab.reset(coupon, quantity).await?;
    report(lab, web::Path::from(coupon.to_string())).await
}

async fn report(lab: web::Data<Lab>, coupon: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let coupon = parse_coupon(&coupon)?;
    match lab.report(coupon).await? {
        Some(report) => Ok(HttpResponse::Ok().json(report)),
        None => Err(ApiError::LabCouponNotFound),
    }
}

fn parse_coupon(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s).map_err(|_| ApiError::invalid("coupon_id", "must be a UUID"))
}

impl From<LabError> for ApiError {
    fn from(e: LabError) -> Self {
        match e {
            LabError::Busy(reason) => ApiError::Unavailable(reason),
            LabError::Postgres(e) => anyhow::Error::from(e).into(),
            LabError::Redis(e) => e.into(),
        }
    }
}
