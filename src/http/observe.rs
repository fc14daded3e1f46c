//! Every request gets a `request` span and is timed into the route's latency histogram.
//!
//! The span carries what an operator filters on: `method`, `route` (the pattern, not the raw
//! path), `status`, `latency_ms`, and, on the issue route, `event_id`, `day` and `outcome`,
//! which the handler records into it. Logs written while the request runs (a Redis timeout,
//! an internal error) carry those fields. One line per finished request is logged at DEBUG
//! under the target `request` (`RUST_LOG=info,request=debug`): at 20,000 requests a second
//! that is too much for the default level. The span has that target too, so `RUST_LOG=warn`
//! drops it and `request=debug` alone brings back both.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument;
use tracing::field::Empty;

use super::AppState;

/// The middleware: wraps the whole app (see `startup`).
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let span = tracing::info_span!(
        target: "request",
        "request",
        method,
        route = Empty,
        event_id = Empty,
        day = Empty,
        outcome = Empty,
        status = Empty,
        latency_ms = Empty,
    );
    let response = next.call(req).instrument(span.clone()).await?;

    let took = started.elapsed();
    let status = response.status();
    // Matched during routing, so this walks the matched resources instead of matching again.
    let pattern = response.request().match_pattern();
    let route = pattern.as_deref().unwrap_or("unmatched");
    // Read from the request the response carries: no clone of the state per request.
    if let Some(state) = response.request().app_data::<web::Data<AppState>>() {
        state.metrics.http_response(method, route, status.as_str(), took);
    }
    // Nothing logs inside the span after the answer but the `finished` line: the last three
    // fields are for it alone, and recording a field costs the formatting layer about 1,800
    // instructions, so they are recorded only when that line is on.
    if tracing::enabled!(target: "request", tracing::Level::DEBUG) {
        span.record("route", route);
        span.record("status", status.as_u16());
        span.record("latency_ms", took.as_micros() as f64 / 1000.0);
        span.in_scope(|| tracing::debug!(target: "request", "finished"));
    }
    Ok(response)
}

/// A bounded label: any other (extension) method counts as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}
