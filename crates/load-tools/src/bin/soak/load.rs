//! The load: drops one after another, users retrying until answered, and overload bursts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coupon_test_support::ApiClient;
use serde_json::Value;

use crate::USERS;

/// Concurrent users of a drop (each has one request in flight at a time).
const WORKERS: usize = 200;
/// One-shot connections per overload burst.
const BURST: usize = 2000;

/// A coupon shown to a client: (status, coupon id, phase).
pub type Shown = (u16, String, String);

/// What the load and the faults share.
pub struct Ctx {
    /// The two instances, sharing one connection pool.
    pub instances: [ApiClient; 2],
    /// Every drop's event, in order.
    pub events: Vec<String>,
    /// Drops started so far.
    pub started: AtomicUsize,
    pub stop: AtomicBool,
    /// Set by the faults for a lull: users wait, nothing is sent.
    pub paused: AtomicBool,
    pub in_flight: AtomicUsize,
    /// Set by the faults during the overload phase.
    pub overload: AtomicBool,
    pub phase: Mutex<String>,
    pub requests: AtomicU64,
    /// (phase, answer) -> how many.
    pub answers: Mutex<BTreeMap<(String, String), u64>>,
    /// (event, user) -> every coupon id the client was shown, with the status that carried it
    /// and the phase it was shown in.
    pub seen: Mutex<HashMap<(String, String), Vec<Shown>>>,
}

impl Ctx {
    pub fn new(instances: [ApiClient; 2], events: Vec<String>) -> Self {
        Self {
            instances,
            events,
            started: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            overload: AtomicBool::new(false),
            phase: Mutex::new("start".into()),
            requests: AtomicU64::new(0),
            answers: Mutex::default(),
            seen: Mutex::default(),
        }
    }

    fn current_event(&self) -> Option<&String> {
        let n = self.started.load(Ordering::SeqCst);
        self.events.get(n.saturating_sub(1))
    }
}

/// One request; records its answer. `true` when the user has a final answer.
async fn ask(ctx: &Ctx, instance: usize, event: &str, user: &str) -> bool {
    // Counted in flight before looking at `paused`: once the faults have set it and seen no
    // request in flight, none can start until it is cleared.
    loop {
        ctx.in_flight.fetch_add(1, Ordering::SeqCst);
        if !ctx.paused.load(Ordering::SeqCst) {
            break;
        }
        ctx.in_flight.fetch_sub(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = ctx.instances[instance].issue(event, user).await;
    let (label, coupon, done) = match sent {
        Err(e) if e.is_timeout() => ("timeout".to_string(), None, false),
        Err(_) => ("connection error".to_string(), None, false),
        Ok(response) => {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
            let coupon = match status {
                201 => body["coupon_id"].as_str().map(str::to_owned),
                409 => body["coupon"]["coupon_id"].as_str().map(str::to_owned),
                _ => None,
            };
            (
                format!("{status} {code}").trim().to_owned(),
                coupon,
                matches!(status, 201 | 409 | 410),
            )
        }
    };
    ctx.in_flight.fetch_sub(1, Ordering::SeqCst);
    ctx.requests.fetch_add(1, Ordering::Relaxed);
    let phase = ctx.phase.lock().unwrap().clone();
    *ctx.answers
        .lock()
        .unwrap()
        .entry((phase.clone(), label.clone()))
        .or_default() += 1;
    if let Some(coupon) = coupon {
        let status = label[..3].parse().unwrap_or(0);
        ctx.seen
            .lock()
            .unwrap()
            .entry((event.to_owned(), user.to_owned()))
            .or_default()
            .push((status, coupon, phase));
    }
    done
}

/// Drops one after another until told to stop.
pub async fn run_drops(ctx: Arc<Ctx>) {
    while !ctx.stop.load(Ordering::SeqCst) {
        let n = ctx.started.fetch_add(1, Ordering::SeqCst);
        let Some(event) = ctx.events.get(n).cloned() else {
            eprintln!("soak: out of pre-created drops");
            return;
        };
        let waiting: VecDeque<String> = (0..USERS).map(|i| format!("d{n}-u{i}")).collect();
        let waiting = Arc::new(Mutex::new(waiting));
        let unanswered = Arc::new(AtomicUsize::new(USERS));
        let workers = (0..WORKERS).map(|w| {
            let (ctx, event, waiting, unanswered) = (ctx.clone(), event.clone(), waiting.clone(), unanswered.clone());
            tokio::spawn(async move {
                let mut instance = w % 2;
                while unanswered.load(Ordering::SeqCst) > 0 && !ctx.stop.load(Ordering::SeqCst) {
                    if ctx.paused.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    let Some(user) = waiting.lock().unwrap().pop_front() else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    if ask(&ctx, instance, &event, &user).await {
                        unanswered.fetch_sub(1, Ordering::SeqCst);
                    } else {
                        // A person pressing again a moment later, maybe landing on the other
                        // instance.
                        waiting.lock().unwrap().push_back(user);
                        instance = 1 - instance;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        });
        futures::future::join_all(workers).await;
    }
}

/// While the overload phase lasts: bursts of one-shot requests from new users, far more at once
/// than the instances admit.
pub async fn overload_bursts(ctx: Arc<Ctx>) {
    let mut burst = 0;
    while !ctx.stop.load(Ordering::SeqCst) {
        if !ctx.overload.load(Ordering::SeqCst) || ctx.paused.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let Some(event) = ctx.current_event().cloned() else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let requests = (0..BURST).map(|i| {
            let (ctx, event) = (ctx.clone(), event.clone());
            async move { ask(&ctx, i % 2, &event, &format!("burst{burst}-u{i}")).await }
        });
        futures::future::join_all(requests).await;
        burst += 1;
    }
}
