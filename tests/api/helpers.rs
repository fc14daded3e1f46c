//! `spawn_app()`: the whole service on port 0, against the real Redis and Postgres, with its own
//! database and its own Redis key prefix so that every test runs in parallel with the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Duration as Days, NaiveDate, Timelike, Utc};
use coupon_issuer::config::Settings;
use coupon_issuer::issuing::{Issuer, Keys};
use coupon_issuer::startup::{Application, StopHandle};
use coupon_issuer::writer::Writer;
use coupon_test_support::{ApiClient, Discount, NewEvent, database_url_named};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The same client, as the shared API client with the admin token.
    pub api: ApiClient,
    pub db: PgPool,
    pub issuer: Issuer,
    pub keys: Keys,
    /// What the app was started with: a second instance can share its database and prefix.
    pub settings: Settings,
    /// Present when the app was spawned with `writer_enabled = false`: the test drives it.
    pub writer: Option<Writer>,
    pub stop: StopHandle,
    pub task: JoinHandle<anyhow::Result<()>>,
}

/// The service with its writer running.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The service with the writer not running: the test calls `writer.process_batch()` itself.
pub async fn spawn_app_without_writer() -> TestApp {
    spawn_app_with(|s| s.writer_enabled = false).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    coupon_issuer::telemetry::init_with_default("error");
    let mut settings = test_settings();
    let writer_enabled = settings.writer_enabled;
    configure(&mut settings);
    let drive_writer = writer_enabled && !settings.writer_enabled;
    if drive_writer {
        settings.writer_enabled = true; // built, but handed to the test instead of run
    }
    let mut app = Application::build(settings.clone()).await.expect("the app builds");
    let writer = if drive_writer { app.take_writer() } else { None };
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = app.state.db.clone();
    let issuer = app.state.issuer.clone();
    let stop = app.stop_handle();
    let task = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        // Below actix's keep-alive (5 s): a connection the server may be closing is never
        // reused, so a request is never lost to that race (hyper's IncompleteMessage), which
        // a test starved of CPU for a few seconds otherwise meets.
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    TestApp {
        api: ApiClient::new(client.clone(), address.clone()).with_admin_token(ADMIN_TOKEN),
        address,
        client,
        db,
        keys: Keys::new(&settings.connections.redis_key_prefix),
        settings,
        issuer,
        writer,
        stop,
        task,
    }
}

/// Defaults from the environment (REDIS_URL, DATABASE_URL), made private to one test.
pub fn test_settings() -> Settings {
    let mut settings = Settings::from_env();
    let unique = Uuid::new_v4().simple().to_string();
    settings.listen_addr = "127.0.0.1:0".into();
    settings.connections.database.url =
        database_url_named(&settings.connections.database.url, &format!("coupon_test_{unique}"));
    settings.connections.redis_key_prefix = format!("test-{}", &unique[..12]);
    settings.admin_token = Some(ADMIN_TOKEN.into());
    settings.writer_enabled = true;
    settings.writer_block_ms = 100;
    settings.writer_claim_idle_ms = 30_000;
    settings.http_workers = 2;
    settings.shutdown_timeout_secs = 5;
    settings
}

impl TestApp {
    /// Stops the app gracefully and waits until it (and its writer) has finished.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.stop().await;
        self.task.await?
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// POST /v1/coupon/issue. Asks again, a few times, when the request never reached a
    /// handler (see [`never_handled`]), waiting twice as long each time: a spike of thousands of
    /// connections on a starved machine can meet several 408s in a row.
    pub async fn issue(&self, event_id: &str, user_id: &str) -> Response {
        let mut pause = Duration::from_millis(50);
        for _ in 0..8 {
            let sent = self.api.issue(event_id, user_id).await;
            if !never_handled(&sent) {
                return sent.unwrap_or_else(|e| panic!("issue request not sent: {e:?}"));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
        panic!("issue request for {user_id}: no handler reached after 8 tries");
    }

    /// POST /v1/coupon/issue as a client does under load: a 503 (the service shed the request,
    /// or Redis answered later than `REDIS_TIMEOUT_MS`) is asked again after its `Retry-After`,
    /// and so is a request that timed out or never reached a handler, each retry counted in
    /// `retries`, at most [`RETRIES_PER_REQUEST`] of them. Such an outcome is unknown to the
    /// client (the script may have run after the service stopped waiting), so the retry's answer
    /// may be a 409 carrying the coupon that request issued. Panics when the budget runs out:
    /// the service stayed unavailable for that long, which no spike excuses.
    pub async fn issue_as_client(&self, event_id: &str, user_id: &str, retries: &AtomicUsize) -> Response {
        let mut last = String::new();
        for _ in 0..=RETRIES_PER_REQUEST {
            let sent = self.api.issue(event_id, user_id).await;
            let wait = match sent {
                Ok(response) if response.status() == StatusCode::SERVICE_UNAVAILABLE => {
                    let wait = retry_after(&response);
                    last = response.text().await.unwrap_or_default();
                    wait
                }
                // actix's 408: the request never reached a handler (see `never_handled`).
                Ok(response) if response.status() == StatusCode::REQUEST_TIMEOUT => {
                    last = "408".into();
                    Duration::from_secs(1)
                }
                Ok(response) => return response,
                Err(e) if e.is_timeout() || e.is_request() => {
                    last = format!("{e:?}");
                    Duration::from_secs(1)
                }
                Err(e) => panic!("issue request not sent: {e:?}"),
            };
            retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
        panic!("{user_id}: no answer but 503s, timeouts or lost requests after {RETRIES_PER_REQUEST} retries: {last}");
    }

    /// GET `path`, with the answer's status and JSON body.
    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.get(self.url(path)).send().await.expect("request sent");
        (response.status(), response.json().await.unwrap_or(Value::Null))
    }

    pub async fn count(&self, event_id: &str) -> Value {
        let (status, body) = self.get_json(&format!("/v1/coupon/count?event_id={event_id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn post_event(&self, body: &Value) -> Response {
        self.api.post_event(body).await.unwrap()
    }

    /// Creates an event and returns its id.
    pub async fn create_event(&self, body: Value) -> String {
        self.api.create_event(&body).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// An event whose window is open all day, every day from yesterday on: open right now.
    pub async fn open_event(&self, daily_limit: u32) -> String {
        self.create_event(event_body(
            "UTC",
            today_utc() - Days::days(1),
            today_utc() + Days::days(3),
            ("00:00", "24:00"),
            daily_limit,
        ))
        .await
    }

    /// Coupons stored in Postgres for an event.
    pub async fn stored(&self, event_id: &str) -> Vec<(String, String, i32)> {
        sqlx::query_as("SELECT coupon_id::text, user_id, seq FROM coupons WHERE event_id = $1::uuid ORDER BY seq")
            .bind(event_id)
            .fetch_all(&self.db)
            .await
            .unwrap()
    }

    /// Waits until Postgres holds `n` coupons of the event (or the deadline passes).
    pub async fn wait_for_stored(&self, event_id: &str, n: usize, deadline: Duration) -> Vec<(String, String, i32)> {
        let started = std::time::Instant::now();
        loop {
            let rows = self.stored(event_id).await;
            if rows.len() >= n || started.elapsed() > deadline {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn event_body(
    timezone: &str,
    starts_on: NaiveDate,
    ends_on: NaiveDate,
    window: (&str, &str),
    daily_limit: u32,
) -> Value {
    let event = NewEvent {
        name: "Half price".into(),
        timezone: timezone.into(),
        starts_on,
        ends_on,
        daily_open: window.0.into(),
        daily_close: window.1.into(),
        daily_limit: daily_limit.into(),
        valid_days_after_end: 30,
        discount: Discount::Percent(50),
    };
    serde_json::to_value(event).unwrap()
}

pub fn today_utc() -> NaiveDate {
    Utc::now().date_naive()
}

/// A fixed-offset zone in which it is now between 12:00 and 12:59 local time, and that local
/// date. Windows written against it ("10:00"-"15:00" open, "01:00"-"11:00" closed, "14:00"-
/// "23:00" not yet open) hold for the whole test whatever time of day the suite runs.
pub fn noon_zone() -> (String, NaiveDate) {
    let now = Utc::now();
    let mut offset = (12 - now.hour() as i64).rem_euclid(24);
    if offset > 14 {
        offset -= 24;
    }
    // POSIX-style names: Etc/GMT-3 is UTC+3.
    let name = match offset {
        0 => "Etc/GMT".to_string(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    };
    let local: DateTime<Utc> = now + Days::hours(offset);
    (name, local.date_naive())
}

/// `n` distinct user ids: `<prefix>-0`, `<prefix>-1`, ...
pub fn users(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Whether a request ended before any handler saw it, so that asking again is safe: actix's
/// 408 (the request's head had not arrived 5 s after the connection opened), or a connection
/// the server had closed under the client (hyper's `IncompleteMessage`, `UnexpectedMessage`).
/// Both are seen only when this 2-core machine starves a test of CPU for seconds. Were a
/// response ever lost after the handler ran, the retry's 409 would make a test's count of 201s
/// come out short: a false alarm, never a false pass.
pub fn never_handled(sent: &reqwest::Result<Response>) -> bool {
    match sent {
        Ok(response) => response.status() == StatusCode::REQUEST_TIMEOUT,
        Err(e) => e.is_request() && !e.is_timeout(),
    }
}

/// Fires every request at once and collects `(user, status, body)`.
pub async fn issue_all(app: &TestApp, event_id: &str, users: &[String]) -> Vec<(String, StatusCode, Value)> {
    let requests = users.iter().map(|user| async move {
        let response = app.issue(event_id, user).await;
        let status = response.status();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (user.clone(), status, body)
    });
    futures::future::join_all(requests).await
}

/// How many times one request answered 503 is asked again by [`TestApp::issue_as_client`]:
/// about 15 s of retries, far longer than any slow moment of a loaded machine.
pub const RETRIES_PER_REQUEST: u32 = 10;

/// How long a client waits before asking again after `response` (a 503): its `Retry-After`,
/// plus up to as long again at random, so that a spike's retries do not all return at once.
pub fn retry_after(response: &Response) -> Duration {
    let secs = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("a 503 carries Retry-After in seconds");
    let base = Duration::from_secs(secs);
    base + base.mul_f64(rand::random::<f64>())
}

/// Like [`issue_all`], each request retried after a 503 as a client does (see
/// [`TestApp::issue_as_client`]). Returns the final answers and how many retries there were.
pub async fn issue_all_as_clients(
    app: &TestApp,
    event_id: &str,
    users: &[String],
) -> (Vec<(String, StatusCode, Value)>, usize) {
    let retries = AtomicUsize::new(0);
    let requests = users.iter().map(|user| {
        let retries = &retries;
        async move {
            let response = app.issue_as_client(event_id, user, retries).await;
            let status = response.status();
            let body = response.json::<Value>().await.unwrap_or(Value::Null);
            (user.clone(), status, body)
        }
    });
    let answers = futures::future::join_all(requests).await;
    (answers, retries.into_inner())
}

/// Every user of `users` asks as a client does (see [`issue_all_as_clients`]), all at once, on a
/// day with room for them all: each must end up holding exactly one coupon (a 201, or the 409 of
/// a retried 503 whose request had issued). Prints the retries; returns each user's coupon.
pub async fn everyone_gets_one(app: &TestApp, event_id: &str, users: &[String]) -> HashMap<String, Value> {
    let (answers, retries) = issue_all_as_clients(app, event_id, users).await;
    eprintln!("{} users, {retries} retries after a 503", users.len());
    let held = holders(answers.iter().map(|(u, s, b)| (u.as_str(), *s, b)));
    assert_eq!(held.len(), users.len(), "everyone holds a coupon: {answers:?}");
    held
}

/// The coupon each user holds, as the answers `(user, status, body)` of one event show it: from
/// the 201s, and from the 409s, which carry the coupon held (after a retried 503 whose request
/// had issued, the 409 is the only answer showing it). Panics when one user is shown two
/// different coupons, or an answer is anything but 201, 409 `already_issued` or 410 `sold_out`.
pub fn holders<'a>(answers: impl IntoIterator<Item = (&'a str, StatusCode, &'a Value)>) -> HashMap<String, Value> {
    let mut held: HashMap<String, Value> = HashMap::new();
    for (user, status, body) in answers {
        let coupon = match status {
            StatusCode::CREATED => body,
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "already_issued", "{user}: {body}");
                &body["coupon"]
            }
            StatusCode::GONE => {
                assert_eq!(body["error"]["code"], "sold_out", "{user}: {body}");
                continue;
            }
            other => panic!("{user}: unexpected {other}: {body}"),
        };
        let first = held.entry(user.to_owned()).or_insert_with(|| coupon.clone());
        assert_eq!(
            first["coupon_id"], coupon["coupon_id"],
            "{user} was shown two coupons: {first} and {coupon}"
        );
    }
    held
}

/// `(event, user, status, body)` for every `(event, user)` request, sent all at once, request
/// `i` to instance `i % apps.len()`.
pub async fn issue_spread(apps: &[TestApp], requests: &[(String, String)]) -> Vec<(String, String, StatusCode, Value)> {
    issue_spread_bounded(apps, requests, requests.len()).await
}

/// As [`issue_spread`], with at most `in_flight` requests under way at a time.
pub async fn issue_spread_bounded(
    apps: &[TestApp],
    requests: &[(String, String)],
    in_flight: usize,
) -> Vec<(String, String, StatusCode, Value)> {
    spread(apps, requests, in_flight, None).await
}

/// As [`issue_spread_bounded`], each request retried after a 503 as a client does (see
/// [`TestApp::issue_as_client`]). Returns the final answers and how many retries there were.
pub async fn issue_spread_as_clients(
    apps: &[TestApp],
    requests: &[(String, String)],
    in_flight: usize,
) -> (Vec<(String, String, StatusCode, Value)>, usize) {
    let retries = AtomicUsize::new(0);
    let answers = spread(apps, requests, in_flight, Some(&retries)).await;
    (answers, retries.into_inner())
}

/// Request `i` to instance `i % apps.len()`, `in_flight` at a time; retried after a 503 when
/// `retries` counts them.
async fn spread(
    apps: &[TestApp],
    requests: &[(String, String)],
    in_flight: usize,
    retries: Option<&AtomicUsize>,
) -> Vec<(String, String, StatusCode, Value)> {
    use futures::StreamExt;
    futures::stream::iter(requests.iter().enumerate())
        .map(|(i, (event, user))| async move {
            let app = &apps[i % apps.len()];
            let response = match retries {
                Some(retries) => app.issue_as_client(event, user, retries).await,
                None => app.issue(event, user).await,
            };
            let status = response.status();
            let body = response.json::<Value>().await.unwrap_or(Value::Null);
            (event.clone(), user.clone(), status, body)
        })
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await
}

/// Waits until a service started as a process at `base` answers `/readyz` with 200 (30 s at most).
pub async fn wait_until_ready(client: &reqwest::Client, base: &str) {
    let api = ApiClient::new(client.clone(), base);
    api.wait_until_ready(Duration::from_secs(30)).await.expect("ready");
}
