//! `queue`: one worker task drains a bounded channel and runs the plain read-then-write for
//! every request, one after another (seed 004's pattern).
//!
//! Safe because there is exactly one consumer, so no two gives ever interleave. That is also
//! its limits: throughput is one request's Postgres round trips at a time, a full channel
//! answers 503 (back-pressure instead of an unbounded backlog), and the guarantee holds only
//! while one process serves the coupon: two service instances means two consumers, and the race
//! is back.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::error::LabError;
use crate::pg;
use crate::strategy::{Outcome, Strategy};

struct Job {
    coupon: Uuid,
    user: String,
    reply: oneshot::Sender<Result<Outcome, LabError>>,
}

#[derive(Clone)]
pub struct Queue {
    jobs: mpsc::Sender<Job>,
}

impl Queue {
    /// Starts the worker; it stops when the last `Queue` clone is dropped.
    pub fn start(db: PgPool, capacity: usize) -> Self {
        let (jobs, mut rx) = mpsc::channel::<Job>(capacity);
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                let outcome = pg::read_then_write(&db, Strategy::Queue, job.coupon, &job.user, Duration::ZERO).await;
                // The requester may have gone (client timeout); the work is done either way.
                let _ = job.reply.send(outcome);
            }
        });
        Self { jobs }
    }

    pub async fn give(&self, coupon: Uuid, user: &str) -> Result<Outcome, LabError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            coupon,
            user: user.to_owned(),
            reply,
        };
        self.jobs
            .try_send(job)
            .map_err(|_| LabError::Busy("the queue is full"))?;
        answer.await.map_err(|_| LabError::Busy("the queue's worker stopped"))?
    }
}
