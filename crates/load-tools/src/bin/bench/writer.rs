//! The writer alone: a stream backlogged with coupons (the service stopped), then the service
//! started and timed until Postgres holds every one of them.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use coupon_issuer::domain::EventId;
use coupon_issuer::issuing::Keys;
use redis::aio::ConnectionManager;
use serde::Serialize;
use sqlx::PgPool;

use crate::ceiling::SCRIPT;

#[derive(Debug, Clone, Serialize)]
pub struct WriterFigures {
    pub coupons: u64,
    pub per_second: f64,
    pub stored: u64,
    pub distinct_users: u64,
}

/// Appends `n` coupons to `event`'s stream through the issue script itself (pipelined), so the
/// entries are exactly what the service writes.
pub async fn backlog(
    conn: &mut ConnectionManager,
    keys: &Keys,
    event: EventId,
    n: u64,
    tag: &str,
) -> anyhow::Result<()> {
    let script = redis::Script::new(SCRIPT);
    let sha: String = redis::cmd("SCRIPT").arg("LOAD").arg(SCRIPT).query_async(conn).await?;
    debug_assert_eq!(sha, script.get_hash());
    for chunk in (0..n).collect::<Vec<_>>().chunks(5_000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("EVALSHA")
                .arg(&sha)
                .arg(5)
                .arg(keys.settings(event))
                .arg(keys.windows(event))
                .arg(keys.stream(event))
                .arg(keys.day_count(event, Utc::now().date_naive()))
                .arg(keys.day_users(event, Utc::now().date_naive()))
                .arg(format!("backlog-{tag}-{i}"))
                .arg(uuid::Uuid::now_v7().to_string())
                .arg(keys.event_prefix(event))
                .arg(3_600_000)
                .ignore();
        }
        let _: () = pipe.query_async(conn).await?;
    }
    let length: u64 = redis::cmd("XLEN").arg(keys.stream(event)).query_async(conn).await?;
    if length < n {
        bail!("the backlog holds {length} entries, not {n}");
    }
    Ok(())
}

/// Waits until the stream is empty, timing from the first entry stored to the last.
pub async fn drain(
    conn: &mut ConnectionManager,
    db: &PgPool,
    keys: &Keys,
    event: EventId,
    n: u64,
) -> anyhow::Result<WriterFigures> {
    let stream = keys.stream(event);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first_progress: Option<(Instant, u64)> = None;
    loop {
        let left: u64 = redis::cmd("XLEN").arg(&stream).query_async(conn).await?;
        if first_progress.is_none() && left < n {
            first_progress = Some((Instant::now(), n - left));
        }
        if left == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("the writer left {left} entries after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (since, done_then) = first_progress.context("no progress seen")?;
    let per_second = (n - done_then) as f64 / since.elapsed().as_secs_f64();
    let (stored, distinct_users): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT user_id) FROM coupons WHERE event_id = $1")
            .bind(event.as_uuid())
            .fetch_one(db)
            .await?;
    Ok(WriterFigures {
        coupons: n,
        per_second,
        stored: stored as u64,
        distinct_users: distinct_users as u64,
    })
}
