//! `GET /metrics`: every metric in the Prometheus text format.
//!
//! The per-event figures (issued against the limit, stream length, pending, dead letters, the
//! writer's lag) are read from Redis at each scrape (see `metrics::sale`). When Redis does not
//! answer, the scrape still succeeds with everything else, and
//! `coupon_metrics_gather_failures_total` says so.

use actix_web::{HttpResponse, web};

use super::AppState;
use crate::metrics::sale;

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    refresh(&state).await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.encode())
}

/// Reads the sale and the in-flight count into the metrics.
pub(super) async fn refresh(state: &AppState) -> Option<sale::Sale> {
    let in_flight = state.metrics.in_flight_limit() - state.in_flight.available_permits() as i64;
    state.metrics.set_in_flight(in_flight);
    match sale::gather(&state.issuer, &state.catalog).await {
        Ok(sale) => {
            state.metrics.set_sale(&sale);
            Some(sale)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the sale's figures from Redis");
            state.metrics.sale_unreadable();
            None
        }
    }
}
