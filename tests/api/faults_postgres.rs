//! Fault 2: Postgres stops for 30 s in the middle of a spike (a Postgres of the test's own,
//! stopped with `pg_ctl -m immediate`, as a crash would). Issuing goes on, `/readyz` says
//! Postgres is down, and the writer stores every coupon exactly once when it is back.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{issue_all, spawn_app_with, users};
use crate::instances::OwnPostgres;

/// How long Postgres stays down: 30 s as the issue says, `FAULT_PG_DOWN_SECS` to change it.
fn outage() -> Duration {
    let secs = std::env::var("FAULT_PG_DOWN_SECS").ok().and_then(|s| s.parse().ok());
    Duration::from_secs(secs.unwrap_or(30))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_down_for_30_s_mid_spike_issuing_goes_on_and_the_writer_catches_up() {
    let pg = OwnPostgres::start();
    let app = spawn_app_with(|s| s.connections.database.url = pg.url("coupons")).await;
    let event = app.open_event(1_000_000).await;

    // The spike: a wave of new users every 100 ms, from before the outage to after it.
    let issued = Arc::new(Mutex::new(Vec::<String>::new()));
    let not_issued = Arc::new(Mutex::new(Vec::<(StatusCode, Value)>::new()));
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let spike = {
        let (app, event) = (&app, event.clone());
        let (issued, not_issued, running) = (issued.clone(), not_issued.clone(), running.clone());
        async move {
            let mut round = 0;
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                for (_, status, body) in issue_all(app, &event, &users(&format!("w{round}"), 20)).await {
                    if status == StatusCode::CREATED {
                        issued
                            .lock()
                            .unwrap()
                            .push(body["coupon_id"].as_str().unwrap().to_owned());
                    } else {
                        not_issued.lock().unwrap().push((status, body));
                    }
                }
                round += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let outage_and_back = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        pg.stop();
        let down_since = Instant::now();
        let mut reports = 0;
        while down_since.elapsed() < outage() {
            let (status, report) = app.get_json("/readyz").await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{report}");
            assert_eq!(report["checks"]["postgres"]["ok"], false, "{report}");
            assert_eq!(report["checks"]["redis"]["ok"], true, "{report}");
            reports += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let issued_while_down = issued.lock().unwrap().len();
        pg.start_again();
        tokio::time::sleep(Duration::from_secs(2)).await;
        running.store(false, std::sync::atomic::Ordering::Relaxed);
        (reports, issued_while_down)
    };
    let ((), (reports, issued_by_restart)) = tokio::join!(spike, outage_and_back);

    let issued = issued.lock().unwrap().clone();
    let not_issued = not_issued.lock().unwrap().clone();
    assert!(not_issued.is_empty(), "issuing never needed Postgres: {not_issued:?}");
    assert!(reports >= 1, "/readyz was asked while Postgres was down");

    let caught_up = Instant::now();
    let stored = app.wait_for_stored(&event, issued.len(), Duration::from_secs(30)).await;
    eprintln!(
        "Postgres down {:?}: {} issued ({issued_by_restart} by the time it came back), all {} \
         stored {:?} after the spike ended",
        outage(),
        issued.len(),
        stored.len(),
        caught_up.elapsed()
    );
    assert_eq!(stored.len(), issued.len(), "every issued coupon is stored");
    let stored_ids: HashSet<&str> = stored.iter().map(|(c, _, _)| c.as_str()).collect();
    assert!(
        issued.iter().all(|c| stored_ids.contains(c.as_str())),
        "each one, exactly once"
    );
    let seqs: Vec<i32> = stored.iter().map(|(_, _, s)| *s).collect();
    assert_eq!(seqs, (1..=issued.len() as i32).collect::<Vec<_>>());
    assert_eq!(app.get_json("/readyz").await.0, StatusCode::OK);
}
