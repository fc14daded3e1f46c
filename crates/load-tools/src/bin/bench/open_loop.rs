//! Open-loop load: requests sent at a fixed rate whatever the answers do, each timed from the
//! moment it was *due*, not from when a connection was free to send it. A closed-loop generator
//! at 1,000 connections only measures its own queue; this measures what a user would see.
//!
//! Hand-written on hyper because nothing packaged here does it for this endpoint: wrk2 is not in
//! Debian, `oha -q` cannot vary the POST body per request (every request must be a new user),
//! and k6's constant-arrival-rate costs ~118 µs of CPU per request, more than the service.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use std::sync::Mutex;
use tokio::net::TcpStream;

pub struct OpenLoop {
    pub addr: String,
    pub event: String,
    pub rate: f64,
    pub duration: Duration,
    pub connections: usize,
    pub run_tag: String,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    pub second: u64,
    pub requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpenLoopFigures {
    pub offered_per_second: f64,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// CPU this generator used per request, in µs (what it takes from the service's cores).
    pub generator_cpu_us: f64,
    pub seconds: Vec<Second>,
}

struct Shared {
    /// One histogram (µs) per second of the schedule, by when requests were due.
    seconds: Vec<Mutex<Histogram<u64>>>,
    next: AtomicU64,
    errors: AtomicU64,
}

impl OpenLoop {
    pub async fn run(&self) -> anyhow::Result<OpenLoopFigures> {
        let total = (self.rate * self.duration.as_secs_f64()) as u64;
        let seconds = self.duration.as_secs().max(1) as usize;
        let shared = Arc::new(Shared {
            seconds: (0..seconds + 1)
                .map(|_| Histogram::new_with_bounds(1, 60_000_000, 3).map(Mutex::new))
                .collect::<Result<_, _>>()?,
            next: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        let cpu_before = crate::service::cpu_ticks(std::process::id()).unwrap_or(0);
        let start = tokio::time::Instant::now() + Duration::from_millis(200);
        let interval = Duration::from_secs_f64(1.0 / self.rate);
        let mut tasks = Vec::new();
        for _ in 0..self.connections {
            let stream = TcpStream::connect(&self.addr).await.context("cannot connect")?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let (shared, event, tag) = (shared.clone(), self.event.clone(), self.run_tag.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = shared.next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    let due = start + interval.mul_f64(i as f64);
                    tokio::time::sleep_until(due).await;
                    let body = format!(r#"{{"event_id":"{event}","user_id":"open-{tag}-{i}"}}"#);
                    let request = hyper::Request::post("/v1/coupon/issue")
                        .header("host", "bench")
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body)));
                    let answered = match request {
                        Ok(request) => match sender.send_request(request).await {
                            Ok(response) => {
                                let ok = response.status().as_u16() == 201;
                                response.into_body().collect().await.is_ok() && ok
                            }
                            Err(_) => false,
                        },
                        Err(_) => false,
                    };
                    let waited = due.elapsed();
                    if !answered {
                        shared.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    let second = ((due - start).as_secs() as usize).min(shared.seconds.len() - 1);
                    let micros = waited.as_micros().clamp(1, 60_000_000) as u64;
                    if let Ok(mut h) = shared.seconds[second].lock() {
                        let _ = h.record(micros);
                    }
                    if sender.ready().await.is_err() {
                        return;
                    }
                }
            }));
        }
        for task in tasks {
            task.await?;
        }
        let cpu_ticks = crate::service::cpu_ticks(std::process::id()).unwrap_or(0) - cpu_before;

        let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut per_second = Vec::new();
        for (i, h) in shared.seconds.iter().enumerate() {
            let Ok(h) = h.lock() else { continue };
            if h.is_empty() {
                continue;
            }
            all.add(&*h)?;
            per_second.push(Second {
                second: i as u64,
                requests: h.len(),
                p50_ms: ms(h.value_at_quantile(0.50)),
                p99_ms: ms(h.value_at_quantile(0.99)),
                max_ms: ms(h.max()),
            });
        }
        Ok(OpenLoopFigures {
            offered_per_second: self.rate,
            requests: all.len(),
            errors: shared.errors.load(Ordering::Relaxed),
            p50_ms: ms(all.value_at_quantile(0.50)),
            p99_ms: ms(all.value_at_quantile(0.99)),
            p999_ms: ms(all.value_at_quantile(0.999)),
            max_ms: ms(all.max()),
            // Clock ticks of 1/100 s.
            generator_cpu_us: cpu_ticks as f64 * 10_000.0 / all.len().max(1) as f64,
            seconds: per_second,
        })
    }
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}
