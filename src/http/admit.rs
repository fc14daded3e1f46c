//! In front of every `/v1` route: first the per-client rate limit (429), then the cap on requests
//! in flight. Past the cap a request is answered 503 with `Retry-After` at once, so a spike costs
//! the service bounded memory and the requests it admits stay fast.
//!
//! A `Transform` with a future of its own rather than `middleware::from_fn`, which boxes the
//! service it wraps and a future per request; and it holds what it checks, so a request costs
//! no `app_data` lookup (docs/performance.md).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use actix_web::ResponseError;
use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use pin_project_lite::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use super::limits::RateLimits;
use crate::metrics::Metrics;

/// What `Admit` checks: the client limits, the in-flight permits, and where a shed is counted.
pub struct Admit(Rc<Gate>);

struct Gate {
    limits: Arc<RateLimits>,
    in_flight: Arc<Semaphore>,
    metrics: Metrics,
}

impl Admit {
    pub fn new(limits: Arc<RateLimits>, in_flight: Arc<Semaphore>, metrics: Metrics) -> Self {
        Self(Rc::new(Gate {
            limits,
            in_flight,
            metrics,
        }))
    }
}

impl<S, B> Transform<S, ServiceRequest> for Admit
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = AdmitService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(AdmitService {
            service,
            gate: self.0.clone(),
        }))
    }
}

pub struct AdmitService<S> {
    service: S,
    gate: Rc<Gate>,
}

impl<S, B> Service<ServiceRequest> for AdmitService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Admitted<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let gate = &self.gate;
        let refused = match gate.limits.check_client(&req) {
            Err(refused) => refused,
            Ok(()) => match gate.in_flight.clone().try_acquire_owned() {
                Ok(permit) => {
                    return Admitted::Handling {
                        inner: self.service.call(req),
                        permit: Some(permit),
                    };
                }
                Err(_) => {
                    gate.metrics.shed();
                    ApiError::Unavailable("too many requests in flight")
                }
            },
        };
        let answer = refused.error_response();
        Admitted::Refused {
            response: Some(req.into_response(answer)),
        }
    }
}

pin_project! {
    /// An admitted request being handled (its permit held until the handler has answered), or
    /// a refusal.
    #[project = AdmittedProj]
    pub enum Admitted<F> {
        Handling {
            #[pin]
            inner: F,
            permit: Option<OwnedSemaphorePermit>,
        },
        Refused {
            response: Option<ServiceResponse>,
        },
    }
}

impl<F, B> Future for Admitted<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AdmittedProj::Handling { inner, permit } => {
                let response = ready!(inner.poll(cx));
                drop(permit.take());
                Poll::Ready(response.map(ServiceResponse::map_into_left_body))
            }
            AdmittedProj::Refused { response } => {
                let response = response.take().expect("a refusal is answered once");
                Poll::Ready(Ok(response.map_into_right_body()))
            }
        }
    }
}
