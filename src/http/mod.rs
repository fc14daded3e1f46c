//! The HTTP API: routes, shared state, load shedding.
//!
//! Request flow: `extract` turns input into typed values, the handler asks `issuing` (Redis) or
//! `store` (Postgres), and `error` turns every failure into one JSON shape.

mod admit;
pub mod auth;
mod count;
mod coupons;
mod error;
mod events;
mod extract;
mod health;
mod issue;
pub mod limits;
mod live;
mod metrics;
mod observe;
pub mod openapi;
mod openapi_links;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::{Resource, ResponseError, Route, web};
use sqlx::PgPool;
use tokio::sync::Semaphore;

pub use error::{ApiError, TokenProblem};
pub use events::EventView;
pub use extract::{JsonBody, carries_token, parse_json};
pub use observe::Observe;

use crate::catalog::Catalog;
use crate::issuing::Issuer;
use crate::metrics::Metrics;

/// What every handler shares.
pub struct AppState {
    pub issuer: Issuer,
    pub catalog: Catalog,
    pub db: PgPool,
    /// `None`: the admin API answers 401 to everyone.
    pub admin_token: Option<String>,
    /// Permits for requests in flight; none left means shed (503), never queue.
    pub in_flight: Arc<Semaphore>,
    /// `AUTH_MODE=jwt`: verifies user tokens. `None`: the user id in the request is trusted.
    pub jwt: Option<Arc<auth::JwtVerifier>>,
    /// Per-client and per-user rate limits (each may be off).
    pub limits: Arc<limits::RateLimits>,
    /// What `/metrics` and `/live` show.
    pub metrics: Metrics,
    /// This process's writer counters (all zero when it runs no writer).
    pub writer_stats: Arc<crate::writer::WriterStats>,
}

/// Mounts every route.
pub fn routes(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let jwt = state.jwt.is_some();
        let admit = admit::Admit::new(state.limits.clone(), state.in_flight.clone(), state.metrics.clone());
        cfg.app_data(state)
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::InvalidRequest(format!("query string: {e}")).into()),
            )
            .app_data(
                web::PathConfig::default().error_handler(|e, _| ApiError::InvalidRequest(format!("path: {e}")).into()),
            );
        // `/v1` first: actix tries the services in the order they are mounted, and the API is
        // what nearly every request asks for. Before it, every issue request was first tried
        // against Swagger UI's pattern, a regex (about 1,400 instructions). No other service's
        // paths start with `/v1`, so the order changes no answer.
        let v1 = resources(v1_routes())
            .into_iter()
            .fold(web::scope("/v1").wrap(admit), |scope, resource| scope.service(resource));
        cfg.service(v1)
            .service(openapi::swagger_ui(jwt))
            .service(web::redirect("/swagger-ui", "/swagger-ui/"));
        for resource in resources(root_routes()) {
            cfg.service(resource);
        }
        for (path, handler) in operator_routes() {
            cfg.route(path, handler);
        }
        cfg.default_service(web::to(|| async { ApiError::RouteNotFound.error_response() }));
    }
}

/// The operator's pages outside the API (and its document): Prometheus metrics and the live
/// sale page with its assets and numbers. Not behind shedding: a saturated service must still
/// be watchable.
pub fn operator_routes() -> Vec<(&'static str, Route)> {
    vec![
        ("/metrics", web::get().to(metrics::metrics)),
        ("/live", web::get().to(live::page)),
        ("/live/live.js", web::get().to(live::script)),
        ("/live/live.css", web::get().to(live::style)),
        ("/live/stats.json", web::get().to(live::stats)),
    ]
}

/// The API's routes outside `/v1`. With `v1_routes`, the one list of what `routes` mounts;
/// `api_routes` reads the same lists, so the OpenAPI test cannot drift from what is served.
fn root_routes() -> Vec<(Method, &'static str, Route)> {
    vec![
        (Method::GET, "/healthz", web::to(health::healthz)),
        (Method::GET, "/readyz", web::to(health::readyz)),
    ]
}

/// The API's routes under `/v1`, behind load shedding.
fn v1_routes() -> Vec<(Method, &'static str, Route)> {
    vec![
        (Method::POST, "/coupon/issue", web::to(issue::issue)),
        (Method::GET, "/coupon/count", web::to(count::count)),
        (Method::POST, "/events", web::to(events::create)),
        (Method::GET, "/events", web::to(events::list)),
        (Method::GET, "/events/{id}", web::to(events::show)),
        (Method::PATCH, "/events/{id}", web::to(events::set_limit)),
        (Method::GET, "/users/{user_id}/coupons", web::to(coupons::for_user)),
        (Method::POST, "/coupons/{coupon_id}/redeem", web::to(coupons::redeem)),
    ]
}

/// One resource per path, with a route per method; any other method answers 405
/// `method_not_allowed` with `Allow` listing the ones it has. (Without this, actix tries each
/// path's routes in turn and a wrong method ends at the catch-all 404 of unknown paths.)
fn resources(routes: Vec<(Method, &'static str, Route)>) -> Vec<Resource> {
    let mut by_path: Vec<(&'static str, Vec<(Method, Route)>)> = Vec::new();
    for (method, path, route) in routes {
        match by_path.iter_mut().find(|(p, _)| *p == path) {
            Some((_, routes)) => routes.push((method, route)),
            None => by_path.push((path, vec![(method, route)])),
        }
    }
    by_path
        .into_iter()
        .map(|(path, routes)| {
            let allow: Vec<&str> = routes.iter().map(|(method, _)| method.as_str()).collect();
            let allow = allow.join(", ");
            routes
                .into_iter()
                .fold(web::resource(path), |resource, (method, route)| {
                    resource.route(route.method(method))
                })
                .default_service(web::to(move || {
                    let error = ApiError::MethodNotAllowed(allow.clone());
                    async move { error.error_response() }
                }))
        })
        .collect()
}

/// Every API route `routes` mounts, as (method, full path). The OpenAPI document must list
/// exactly these (tested); the routes that serve the document itself are not API routes.
pub fn api_routes() -> Vec<(Method, String)> {
    let root = root_routes().into_iter().map(|(m, p, _)| (m, p.to_string()));
    let v1 = v1_routes().into_iter().map(|(m, p, _)| (m, format!("/v1{p}")));
    root.chain(v1).collect()
}

/// The issue route's path, which is also its pattern (see `observe`), as its metrics name it.
const ISSUE_PATH: &str = crate::metrics::ISSUE_ROUTE[1];

#[cfg(test)]
mod proptests;
