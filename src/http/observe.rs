//! Every request gets a `request` span and is timed into the route's latency histogram.
//!
//! The span carries what an operator filters on: `method`, `route` (the pattern, not the raw
//! path), `status`, `latency_ms`, and, on the issue route, `event_id`, `day` and `outcome`,
//! which the handler records into it. Logs written while the request runs (a Redis timeout,
//! an internal error) carry those fields. One line per finished request is logged at DEBUG
//! under the target `request` (`RUST_LOG=info,request=debug`): at 20,000 requests a second
//! that is too much for the default level. The span has that target too, so `RUST_LOG=warn`
//! drops it and `request=debug` alone brings back both.
//!
//! Written as a `Transform` with a future of its own rather than with `middleware::from_fn`:
//! `from_fn` boxes the service it wraps and allocates a boxed future for every request, and
//! this runs on every request (docs/performance.md).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::Method;
use pin_project_lite::pin_project;
use tracing::Instrument;
use tracing::field::Empty;
use tracing::instrument::Instrumented;

use crate::metrics::Metrics;

/// The middleware: wraps the whole app (see `startup`). Holds the metrics it records into, so
/// a request costs no `app_data` lookup for them.
pub struct Observe {
    metrics: Rc<Metrics>,
}

impl Observe {
    pub fn new(metrics: Metrics) -> Self {
        Self {
            metrics: Rc::new(metrics),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Observe
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = ObserveService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(ObserveService {
            service,
            metrics: self.metrics.clone(),
        }))
    }
}

pub struct ObserveService<S> {
    service: S,
    metrics: Rc<Metrics>,
}

impl<S, B> Service<ServiceRequest> for ObserveService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Observed<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
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
        Observed {
            inner: self.service.call(req).instrument(span),
            started,
            method,
            metrics: self.metrics.clone(),
        }
    }
}

pin_project! {
    /// A request being handled: the inner service's future, inside the request's span.
    pub struct Observed<F> {
        #[pin]
        inner: Instrumented<F>,
        started: Instant,
        method: &'static str,
        metrics: Rc<Metrics>,
    }
}

impl<F, B> Future for Observed<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let response = ready!(this.inner.as_mut().poll(cx))?;
        finished(&response, *this.started, this.method, this.metrics, this.inner.span());
        Poll::Ready(Ok(response))
    }
}

/// Counts the answer, and logs the `finished` line when it is on.
fn finished<B>(
    response: &ServiceResponse<B>,
    started: Instant,
    method: &'static str,
    metrics: &Metrics,
    span: &tracing::Span,
) {
    let took = started.elapsed();
    let status = response.status();
    let request = response.request();
    // A static pattern is matched by exactly its own path: the issue route, the hot one, is
    // told without building the pattern's string. Any other route is read from the match made
    // during routing (this walks the matched resources instead of matching again).
    let pattern = (request.path() != super::ISSUE_PATH).then(|| request.match_pattern());
    let route = match &pattern {
        None => super::ISSUE_PATH,
        Some(pattern) => pattern.as_deref().unwrap_or("unmatched"),
    };
    metrics.http_response(method, route, status.as_str(), took);
    // Nothing logs inside the span after the answer but the `finished` line: the last three
    // fields are for it alone, and recording a field costs the formatting layer about 1,800
    // instructions, so they are recorded only when that line is on.
    if tracing::enabled!(target: "request", tracing::Level::DEBUG) {
        span.record("route", route);
        span.record("status", status.as_u16());
        span.record("latency_ms", took.as_micros() as f64 / 1000.0);
        span.in_scope(|| tracing::debug!(target: "request", "finished"));
    }
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
