//! One client of the service's HTTP API for everything that drives it from outside: the
//! integration tests, the soak and the bench. Each used to build the same event bodies, URLs and
//! admin headers on its own; a change to the API now has one place to land.
//!
//! Thin on purpose. It sends a request and parses the answers its callers rely on; where a
//! caller reads the status and body itself (a test of an error answer, the soak counting answers
//! by code) it hands back the `reqwest::Response` as it came. It never retries: what a 503 calls
//! for differs between a test, a soak user and a benchmark, so that stays with them. The
//! `reqwest::Client` is the caller's too, because its pool and timeouts are part of the load it
//! makes (the soak keeps thousands of connections, a test keeps idle ones shorter than actix's
//! keep-alive).

use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use reqwest::{Response, StatusCode};
use serde::{Deserialize, Serialize};

/// What a call that expects one answer can end with instead.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// Another status than the call expects, with the body that came with it.
    #[error("{call}: answered {status}: {body}")]
    Status {
        call: &'static str,
        status: StatusCode,
        body: String,
    },
    #[error("{call}: not ready after {waited:?}")]
    NotReady { call: &'static str, waited: Duration },
}

/// An event as `POST /v1/events` takes it.
#[derive(Clone, Debug, Serialize)]
pub struct NewEvent {
    pub name: String,
    pub timezone: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    /// "HH:MM", local to `timezone`; `daily_close` may be "24:00".
    pub daily_open: String,
    pub daily_close: String,
    pub daily_limit: u64,
    pub valid_days_after_end: u32,
    pub discount: Discount,
}

/// Serialized as the API writes it: `{"kind": "percent", "value": 50}`.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Discount {
    Percent(u32),
}

impl NewEvent {
    /// Open all day, every day from yesterday (UTC) to `days_ahead` days from today, half price,
    /// coupons valid 30 days after the end: whatever the time of day a run starts, it can issue
    /// at once, and keeps issuing past midnight.
    pub fn open_now(name: impl Into<String>, daily_limit: u64, days_ahead: u64) -> Self {
        let today = Utc::now().date_naive();
        Self {
            name: name.into(),
            timezone: "UTC".into(),
            starts_on: today - Days::new(1),
            ends_on: today + Days::new(days_ahead),
            daily_open: "00:00".into(),
            daily_close: "24:00".into(),
            daily_limit,
            valid_days_after_end: 30,
            discount: Discount::Percent(50),
        }
    }
}

/// `GET /v1/coupon/count`: one day's counter of an event.
#[derive(Clone, Debug, Deserialize)]
pub struct DayCount {
    pub event_id: String,
    pub day: NaiveDate,
    pub issued: u64,
    pub daily_limit: u32,
    pub remaining: u64,
    /// `open`, `sold_out`, `not_open_yet`, ... as the service names it.
    pub status: String,
}

/// The service at one address.
#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    admin_token: Option<String>,
}

impl ApiClient {
    /// The service at `base` (`http://127.0.0.1:PORT`), asked through `http`.
    pub fn new(http: reqwest::Client, base: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into(),
            admin_token: None,
        }
    }

    /// The same, sending `token` as the bearer of the admin calls (events).
    pub fn with_admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /v1/events` with the admin token (when there is one); the answer as it came.
    pub async fn post_event<B: Serialize + ?Sized>(&self, body: &B) -> reqwest::Result<Response> {
        let mut request = self.http.post(self.url("/v1/events")).json(body);
        if let Some(token) = &self.admin_token {
            request = request.bearer_auth(token);
        }
        request.send().await
    }

    /// Creates an event; returns its id. Any answer but 201 is an error that carries it.
    pub async fn create_event<B: Serialize + ?Sized>(&self, body: &B) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        struct Created {
            id: String,
        }
        let created: Created = expect(self.post_event(body).await?, "create event", StatusCode::CREATED)
            .await?
            .json()
            .await?;
        Ok(created.id)
    }

    /// `POST /v1/coupon/issue`; the answer as it came (201, 409, 410, 503... are all answers).
    pub async fn issue(&self, event_id: &str, user_id: &str) -> reqwest::Result<Response> {
        self.http
            .post(self.url("/v1/coupon/issue"))
            .json(&serde_json::json!({ "event_id": event_id, "user_id": user_id }))
            .send()
            .await
    }

    /// Today's counter of an event (today by the service's Redis clock).
    pub async fn count(&self, event_id: &str) -> Result<DayCount, ApiError> {
        let response = self
            .http
            .get(self.url("/v1/coupon/count"))
            .query(&[("event_id", event_id)])
            .send()
            .await?;
        Ok(expect(response, "count", StatusCode::OK).await?.json().await?)
    }

    /// Whether `/readyz` answers 200 now.
    pub async fn is_ready(&self) -> bool {
        let answer = self.http.get(self.url("/readyz")).send().await;
        answer.is_ok_and(|r| r.status() == StatusCode::OK)
    }

    /// Asks `/readyz` every 50 ms until it answers 200, for `limit` at most.
    pub async fn wait_until_ready(&self, limit: Duration) -> Result<(), ApiError> {
        let started = Instant::now();
        while !self.is_ready().await {
            if started.elapsed() > limit {
                return Err(ApiError::NotReady {
                    call: "readyz",
                    waited: limit,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

/// `response` when its status is `status`; otherwise an error with the status and body.
async fn expect(response: Response, call: &'static str, status: StatusCode) -> Result<Response, ApiError> {
    if response.status() == status {
        return Ok(response);
    }
    Err(ApiError::Status {
        call,
        status: response.status(),
        body: response.text().await.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body is the API's own shape: dates as "YYYY-MM-DD", the discount tagged by kind.
    #[test]
    fn a_new_event_is_written_as_the_api_takes_it() {
        let event = NewEvent::open_now("sale", 10, 3);
        let body = serde_json::to_value(&event).unwrap();
        let today = Utc::now().date_naive();
        assert_eq!(body["starts_on"], (today - Days::new(1)).to_string());
        assert_eq!(body["ends_on"], (today + Days::new(3)).to_string());
        assert_eq!(body["daily_close"], "24:00");
        assert_eq!(body["discount"], serde_json::json!({ "kind": "percent", "value": 50 }));
    }
}
