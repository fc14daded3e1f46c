//! The load: the same spike for every strategy. Every user sends `repeats` requests back to back
//! (a double click, so that a user's requests are in flight together), on a fixed number of
//! connections that each send their next request as soon as the last one is answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// One answer.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub user: u32,
    /// HTTP status; 0 when no answer came (connection error, client timeout).
    pub status: u16,
    pub latency: Duration,
    /// The service's `X-Lab-Attempts` (1 when absent).
    pub attempts: u32,
}

pub struct Spike {
    pub samples: Vec<Sample>,
    pub elapsed: Duration,
}

pub struct Load {
    pub users: usize,
    pub repeats: usize,
    pub connections: usize,
}

/// Sends the spike at `POST {base}/v1/lab/{strategy}/{coupon}/give`.
pub async fn spike(client: &reqwest::Client, base: &str, strategy: &str, coupon: Uuid, load: &Load) -> Spike {
    let order: Arc<Vec<u32>> = Arc::new(
        (0..load.users as u32)
            .flat_map(|u| std::iter::repeat_n(u, load.repeats))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let url: Arc<str> = format!("{base}/v1/lab/{strategy}/{coupon}/give").into();
    let started = Instant::now();
    let workers: Vec<_> = (0..load.connections.max(1))
        .map(|_| {
            let (client, order, next, url) = (client.clone(), order.clone(), next.clone(), url.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&user) = order.get(i) else { break };
                    samples.push(send(&client, &url, user).await);
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(order.len());
    for worker in workers {
        // A worker only ends by running out of requests; a panic there is a bug in this file.
        samples.extend(worker.await.unwrap_or_default());
    }
    Spike {
        samples,
        elapsed: started.elapsed(),
    }
}

async fn send(client: &reqwest::Client, url: &str, user: u32) -> Sample {
    let body = format!(r#"{{"user_id":"cmp-{user}"}}"#);
    let sent = Instant::now();
    let answer = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let (status, attempts) = match answer {
        Ok(response) => {
            let attempts = response
                .headers()
                .get("x-lab-attempts")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let status = response.status().as_u16();
            // Read the body so the connection goes back to the pool.
            let _ = response.bytes().await;
            (status, attempts)
        }
        Err(_) => (0, 1),
    };
    Sample {
        user,
        status,
        latency: sent.elapsed(),
        attempts,
    }
}
