//! The HTTP API: routes, shared state, load shedding.
//!
//! Request flow: `extract` turns input into typed values, the handler asks `issuing` (Redis) or
//! `store` (Postgres), and `error` turns every failure into one JSON shape.

mod count;
mod coupons;
mod error;
mod events;
mod extract;
mod health;
mod issue;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{ResponseError, web};
use sqlx::PgPool;
use tokio::sync::Semaphore;

pub use error::ApiError;

use crate::catalog::Catalog;
use crate::issuing::Issuer;

/// What every handler shares.
pub struct AppState {
    pub issuer: Issuer,
    pub catalog: Catalog,
    pub db: PgPool,
    /// `None`: the admin API answers 401 to everyone.
    pub admin_token: Option<String>,
    /// Permits for requests in flight; none left means shed (503), never queue.
    pub in_flight: Arc<Semaphore>,
    /// This process's writer counters (all zero when it runs no writer).
    pub writer_stats: Arc<crate::writer::WriterStats>,
}

/// Mounts every route.
pub fn routes(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::InvalidRequest(format!("query string: {e}")).into()),
            )
            .app_data(
                web::PathConfig::default().error_handler(|e, _| ApiError::InvalidRequest(format!("path: {e}")).into()),
            )
            .route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
            .service(
                web::scope("/v1")
                    .wrap(from_fn(shed))
                    .route("/coupon/issue", web::post().to(issue::issue))
                    .route("/coupon/count", web::get().to(count::count))
                    .route("/events", web::post().to(events::create))
                    .route("/events", web::get().to(events::list))
                    .route("/events/{id}", web::get().to(events::show))
                    .route("/users/{user_id}/coupons", web::get().to(coupons::for_user))
                    .route("/coupons/{coupon_id}/redeem", web::post().to(coupons::redeem)),
            )
            .default_service(web::to(|| async { ApiError::RouteNotFound.error_response() }));
    }
}

/// Caps requests in flight. Past the cap a request is answered 503 with `Retry-After` at once,
/// so a spike costs the service bounded memory and the requests it admits stay fast.
async fn shed(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let permit = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.in_flight.clone().try_acquire_owned());
    match permit {
        Some(Err(_)) => {
            let busy = ApiError::Unavailable("too many requests in flight").error_response();
            Ok(req.into_response(busy).map_into_right_body())
        }
        _ => {
            let response = next.call(req).await?;
            drop(permit);
            Ok(response.map_into_left_body())
        }
    }
}
