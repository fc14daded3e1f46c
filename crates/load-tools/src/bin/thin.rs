//! The benchmark's reference row: the least a server can do for `POST /v1/coupon/issue`. It
//! parses the body, runs the project's `lua/issue.lua` once by EVALSHA on one multiplexed
//! connection, and answers JSON. No metrics, no spans, no shedding, no rate limits, no sold-out
//! memory, no catalog: what the service spends beyond this is what those features cost, which
//! `scripts/bench` prints as a ratio in every run (see docs/performance.md).
//!
//!   LISTEN=127.0.0.1:8081 REDIS_URL=redis://127.0.0.1:6379 [REDIS_KEY_PREFIX=coupon] thin
//!
//! Events are created and published by the service; their coupons are stored by its writer.
//! The day is today by UTC, which is the bench's events' timezone; an `other_day` answer is
//! followed as the service follows it.

use actix_web::{App, HttpResponse, HttpServer, web};
use serde::{Deserialize, Serialize};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long a day's keys outlive its window: the service's default `DAY_KEY_TTL_HOURS` (72).
const DAY_KEY_TTL_MS: u64 = 72 * 3600 * 1000;

#[derive(Deserialize)]
struct Ask {
    event_id: uuid::Uuid,
    user_id: String,
}

#[derive(Serialize)]
struct Issued<'a> {
    coupon_id: &'a str,
    event_id: uuid::Uuid,
    user_id: &'a str,
    day: &'a str,
    seq: u64,
    issued_ms: &'a str,
    valid_until_ms: &'a str,
}

struct Thin {
    redis: redis::aio::MultiplexedConnection,
    script: redis::Script,
    prefix: String,
}

async fn issue(thin: web::Data<Thin>, ask: web::Json<Ask>) -> HttpResponse {
    let tag = format!("{}:{{{}}}:", thin.prefix, ask.event_id);
    let coupon_id = uuid::Uuid::now_v7().to_string();
    let mut day = chrono::Utc::now().date_naive().to_string();
    for _ in 0..3 {
        let mut call = thin.script.prepare_invoke();
        call.key(format!("{tag}event"))
            .key(format!("{tag}windows"))
            .key(format!("{tag}stream"))
            .key(format!("{tag}{day}:count"))
            .key(format!("{tag}{day}:users"))
            .arg(&ask.user_id)
            .arg(&coupon_id)
            .arg(&tag)
            .arg(DAY_KEY_TTL_MS);
        let reply: Vec<String> = match call.invoke_async(&mut thin.redis.clone()).await {
            Ok(reply) => reply,
            Err(_) => return HttpResponse::ServiceUnavailable().finish(),
        };
        match reply.as_slice() {
            [answer, other] if answer == "other_day" => day.clone_from(other),
            [answer, day, seq, coupon_id, issued_ms, valid_until_ms] if answer == "issued" => {
                return HttpResponse::Created().json(Issued {
                    coupon_id,
                    event_id: ask.event_id,
                    user_id: &ask.user_id,
                    day,
                    seq: seq.parse().unwrap_or(0),
                    issued_ms,
                    valid_until_ms,
                });
            }
            [answer, ..] if answer == "already_issued" => return HttpResponse::Conflict().finish(),
            [answer, ..] if answer == "sold_out" => return HttpResponse::Gone().finish(),
            _ => return HttpResponse::UnprocessableEntity().finish(),
        }
    }
    HttpResponse::ServiceUnavailable().finish()
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name);
    let client = redis::Client::open(env("REDIS_URL")?)?;
    let thin = web::Data::new(Thin {
        redis: client.get_multiplexed_async_connection().await?,
        script: redis::Script::new(include_str!("../../../../lua/issue.lua")),
        prefix: env("REDIS_KEY_PREFIX").unwrap_or_else(|_| "coupon".into()),
    });
    HttpServer::new(move || {
        App::new()
            .app_data(thin.clone())
            .route("/v1/coupon/issue", web::post().to(issue))
    })
    .bind(env("LISTEN")?)?
    .run()
    .await?;
    Ok(())
}
