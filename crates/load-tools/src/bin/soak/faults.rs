//! The faults, one per phase, on a thread of their own (starting and stopping servers blocks).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::sleep;
use std::time::{Duration, Instant};

use coupon_issuer::domain::EventId;
use coupon_issuer::issuing::{Keys, WRITER_GROUP};
use redis::Commands;
use redis::streams::StreamPendingReply;

use crate::PREFIX;
use crate::load::Ctx;
use coupon_test_support::{OwnPostgres, OwnRedis, Service};

pub struct Servers {
    pub redis: OwnRedis,
    pub pg: OwnPostgres,
    pub instances: Vec<Service>,
    pub ports: [u16; 2],
    pub env: Vec<(&'static str, String)>,
    pub bin: PathBuf,
}

const PHASES: [&str; 7] = [
    "calm",
    "instance killed",
    "postgres down",
    "redis restarted (AOF)",
    "redis wiped",
    "overload",
    "calm again",
];

/// Runs the phases over `total`; returns the servers, all running again.
pub fn run(ctx: Arc<Ctx>, mut s: Servers, total: Duration) -> Servers {
    let slot = total / PHASES.len() as u32;
    let began = Instant::now();
    for (i, phase) in PHASES.iter().enumerate() {
        *ctx.phase.lock().unwrap() = phase.to_string();
        eprintln!("soak: {:>5.1} s  phase: {phase}", began.elapsed().as_secs_f64());
        let phase_start = Instant::now();
        let end = slot * (i as u32 + 1);
        sleep(Duration::from_secs(2).min(slot / 4));
        match *phase {
            "instance killed" => {
                s.instances[0].kill();
                sleep(Duration::from_secs(3));
                s.instances[0] = Service::start_bin(&s.bin, s.ports[0], &s.env);
            }
            "postgres down" => {
                s.pg.stop();
                sleep(Duration::from_secs(30).min(slot.mul_f64(0.6)));
                s.pg.start_again();
            }
            "redis restarted (AOF)" => {
                s.redis.kill();
                sleep(Duration::from_secs(1));
                s.redis.start_again();
            }
            "redis wiped" => {
                // At a lull: users wait while the writer stores everything, then Redis comes
                // back empty and they go on.
                ctx.paused.store(true, Ordering::SeqCst);
                while ctx.in_flight.load(Ordering::SeqCst) > 0 {
                    sleep(Duration::from_millis(10));
                }
                let drained = wait_drained(&ctx, &s.redis.url(), Duration::from_secs(60));
                eprintln!("soak: lull, streams drained: {drained}; wiping Redis");
                s.redis.restart_empty();
                ctx.paused.store(false, Ordering::SeqCst);
            }
            "overload" => {
                ctx.overload.store(true, Ordering::SeqCst);
                sleep(Duration::from_secs(10).min(slot.mul_f64(0.6)));
                ctx.overload.store(false, Ordering::SeqCst);
            }
            _ => {}
        }
        // The rest of the slot, and at least a second of load after every fault.
        sleep(end.saturating_sub(began.elapsed()).max(Duration::from_secs(1)));
        eprintln!("soak: phase {phase} took {:.1} s", phase_start.elapsed().as_secs_f64());
    }
    *ctx.phase.lock().unwrap() = "end".into();
    s
}

/// Waits until no started drop's stream holds an entry, pending or not. `false` on timeout.
pub fn wait_drained(ctx: &Ctx, redis_url: &str, limit: Duration) -> bool {
    let keys = Keys::new(PREFIX);
    let started = ctx.started.load(Ordering::SeqCst).min(ctx.events.len());
    let streams: Vec<String> = ctx.events[..started]
        .iter()
        .filter_map(|e| EventId::parse(e).ok())
        .map(|e| keys.stream(e))
        .collect();
    let began = Instant::now();
    while began.elapsed() < limit {
        let left = redis::Client::open(redis_url)
            .and_then(|c| c.get_connection())
            .and_then(|mut con| {
                let mut left = 0u64;
                for stream in &streams {
                    let len: u64 = con.xlen(stream)?;
                    let pending: StreamPendingReply = con.xpending(stream, WRITER_GROUP).unwrap_or_default();
                    left += len + pending.count() as u64;
                }
                Ok(left)
            });
        if left.is_ok_and(|n| n == 0) {
            return true;
        }
        sleep(Duration::from_millis(200));
    }
    false
}
