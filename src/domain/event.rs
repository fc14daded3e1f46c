//! An event: a coupon campaign with a period, a daily window, a daily limit and a discount.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::day::parse_day;
use super::ids::EventId;
use super::shards::Shards;
use super::status::DayStatus;
use super::time_of_day::TimeOfDay;
use super::window::{DailyWindow, DayWindow, local_instant, windows};

/// The longest event period accepted: every day's window is published to Redis, so the number of
/// days is bounded.
pub const MAX_PERIOD_DAYS: i64 = 366;
/// The largest daily limit: far above any real drop, and small enough to stay exact everywhere.
pub const MAX_DAILY_LIMIT: i64 = 100_000_000;
pub const MAX_VALID_DAYS_AFTER_END: i64 = 3650;
/// In characters, counted as sent (before trimming), as JSON Schema's `maxLength` counts them.
pub const MAX_NAME_LEN: usize = 200;
/// A percent discount is from 1 to this.
pub const MAX_PERCENT: i64 = 100;
/// The years an event's dates may fall in.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2099;

/// Why an event definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// A field on its own is missing, malformed or out of range: what the OpenAPI schema of
    /// [`NewEventRequest`] describes, field by field.
    #[error("{0}")]
    Field(String),
    /// Every field is fine on its own, but they do not fit together (an end before the start,
    /// more shards than the daily limit): rules a JSON schema cannot state.
    #[error("{0}")]
    Combination(String),
}

/// A daily limit as the API takes it: from 1 to [`MAX_DAILY_LIMIT`].
pub fn parse_daily_limit(limit: i64) -> Result<u32, String> {
    if !(1..=MAX_DAILY_LIMIT).contains(&limit) {
        return Err(format!("must be from 1 to {MAX_DAILY_LIMIT}"));
    }
    u32::try_from(limit).map_err(|_| "out of range".to_owned())
}

/// What a coupon is worth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"kind": "percent", "value": 50}))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Discount {
    /// `value` percent off, 1 to 100.
    Percent {
        #[serde(deserialize_with = "super::whole::whole")]
        #[schema(schema_with = super::event_schema::percent)]
        value: i64,
    },
    /// `value` off in the currency's minor-free unit (5000 KRW), with an ISO 4217 code.
    Amount {
        #[serde(deserialize_with = "super::whole::whole")]
        #[schema(schema_with = super::event_schema::amount)]
        value: i64,
        #[schema(schema_with = super::event_schema::currency)]
        currency: String,
    },
}

impl Discount {
    fn validate(self) -> Result<Self, String> {
        match &self {
            Discount::Percent { value } if !(1..=MAX_PERCENT).contains(value) => Err(format!(
                "discount.value: a percent discount must be from 1 to {MAX_PERCENT}"
            )),
            Discount::Amount { value, .. } if *value < 1 => {
                Err("discount.value: an amount discount must be at least 1".into())
            }
            Discount::Amount { currency, .. }
                if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) =>
            {
                Err("discount.currency: must be a three-letter ISO 4217 code like \"KRW\"".into())
            }
            _ => Ok(self),
        }
    }
}

/// An event definition as a client sends it; only shapes are checked by serde.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Half price drop",
    "timezone": "Asia/Seoul",
    "starts_on": "2026-05-01",
    "ends_on": "2026-05-05",
    "daily_open": "13:00",
    "daily_close": "15:00",
    "daily_limit": 100,
    "valid_days_after_end": 30,
    "discount": {"kind": "percent", "value": 50}
}))]
pub struct NewEventRequest {
    /// 1 to 200 characters, not all blank (leading and trailing blanks are dropped); no NUL,
    /// which Postgres text cannot hold.
    #[schema(schema_with = super::event_schema::name)]
    pub name: String,
    /// An IANA time zone name; every date and time of the event is local to it.
    #[schema(schema_with = super::event_schema::timezone)]
    pub timezone: String,
    /// First day of the event, "YYYY-MM-DD" (years 2000 to 2099).
    #[schema(schema_with = super::event_schema::date)]
    pub starts_on: String,
    /// Last day, inclusive; less than 366 days after `starts_on` (else 422).
    #[schema(schema_with = super::event_schema::date)]
    pub ends_on: String,
    /// When each day's window opens, "HH:MM" local time.
    #[schema(
        pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$",
        min_length = 5,
        max_length = 5,
        example = "13:00"
    )]
    pub daily_open: String,
    /// When it closes, "HH:MM" or "24:00"; earlier than `daily_open` crosses midnight.
    #[schema(
        pattern = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$",
        min_length = 5,
        max_length = 5,
        example = "15:00"
    )]
    pub daily_close: String,
    /// Coupons per event day, 1 to 100,000,000.
    #[serde(deserialize_with = "super::whole::whole")]
    #[schema(schema_with = super::event_schema::daily_limit)]
    pub daily_limit: i64,
    /// Coupons stay usable this many days after `ends_on` (0 to 3650).
    #[serde(deserialize_with = "super::whole::whole")]
    #[schema(schema_with = super::event_schema::valid_days_after_end)]
    pub valid_days_after_end: i64,
    pub discount: Discount,
    /// Split each day's stock over this many buckets, 1 to 64 (default 1: unsharded), for a
    /// drop hotter than one Redis core. At most `daily_limit`. A sharded event's limit can be
    /// lowered but not raised. Null or absent: 1.
    #[serde(default, deserialize_with = "super::whole::optional_whole")]
    #[schema(schema_with = super::event_schema::shards)]
    pub shards: Option<i64>,
}

/// A validated event definition, not yet stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub name: String,
    pub timezone: Tz,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub window: DailyWindow,
    pub daily_limit: u32,
    pub valid_days_after_end: u32,
    pub discount: Discount,
    pub shards: Shards,
}

impl NewEvent {
    /// Every rule of an event definition. Each error message starts with the field it is about.
    pub fn parse(req: NewEventRequest) -> Result<Self, String> {
        Self::check(req).map_err(|e| e.to_string())
    }

    /// [`parse`](Self::parse), telling a bad field from fields that do not fit together (the
    /// API answers 400 and 422).
    pub fn check(req: NewEventRequest) -> Result<Self, EventError> {
        use EventError::{Combination, Field};
        if req.name.chars().count() > MAX_NAME_LEN || req.name.contains('\0') {
            return Err(Field(format!(
                "name: must be 1 to {MAX_NAME_LEN} characters, without NUL"
            )));
        }
        let name = req.name.trim().to_owned();
        if name.is_empty() {
            return Err(Field("name: must not be blank".into()));
        }
        let timezone: Tz = req.timezone.parse().map_err(|_| {
            Field(format!(
                "timezone: {:?} is not an IANA time zone name like \"Asia/Seoul\"",
                req.timezone
            ))
        })?;
        let starts_on = parse_date(&req.starts_on).map_err(|e| Field(format!("starts_on: {e}")))?;
        let ends_on = parse_date(&req.ends_on).map_err(|e| Field(format!("ends_on: {e}")))?;
        let open = TimeOfDay::parse(&req.daily_open).map_err(|e| Field(format!("daily_open: {e}")))?;
        if open == TimeOfDay::END_OF_DAY {
            return Err(Field("daily_open: must be before 24:00 (use 00:00)".into()));
        }
        let close = TimeOfDay::parse(&req.daily_close).map_err(|e| Field(format!("daily_close: {e}")))?;
        if !(0..=MAX_VALID_DAYS_AFTER_END).contains(&req.valid_days_after_end) {
            return Err(Field(format!(
                "valid_days_after_end: must be from 0 to {MAX_VALID_DAYS_AFTER_END}"
            )));
        }
        let daily_limit = parse_daily_limit(req.daily_limit).map_err(|e| Field(format!("daily_limit: {e}")))?;
        let shards = match req.shards {
            Some(n) => Shards::parse(n).map_err(|e| Field(format!("shards: {e}")))?,
            None => Shards::ONE,
        };
        let discount = req.discount.validate().map_err(Field)?;
        let valid_days_after_end =
            u32::try_from(req.valid_days_after_end).map_err(|_| Field("valid_days_after_end: out of range".into()))?;

        // Each field is well formed; now how they fit together.
        if ends_on < starts_on {
            return Err(Combination("ends_on: must not be before starts_on".into()));
        }
        if (ends_on - starts_on).num_days() >= MAX_PERIOD_DAYS {
            return Err(Combination(format!(
                "ends_on: an event may last at most {MAX_PERIOD_DAYS} days"
            )));
        }
        let window = DailyWindow::new(open, close).map_err(Combination)?;
        if u32::from(shards.get()) > daily_limit {
            // A bucket with no stock at all would only ever answer sold out.
            return Err(Combination("shards: must not exceed daily_limit".into()));
        }
        Ok(Self {
            name,
            timezone,
            starts_on,
            ends_on,
            window,
            daily_limit,
            valid_days_after_end,
            discount,
            shards,
        })
    }
}

/// Strictly "YYYY-MM-DD", from 2000 to 2099: a real sale's dates, and instants that stay
/// positive milliseconds, which is all the issue script parses.
fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let date = parse_day(s).ok_or_else(|| format!("{s:?} is not a date \"YYYY-MM-DD\""))?;
    if !YEARS.contains(&date.year()) {
        return Err(format!(
            "{s:?} is outside the years {} to {}",
            YEARS.start(),
            YEARS.end()
        ));
    }
    Ok(date)
}

/// A stored event. Only its daily limit changes once created (each change numbered by
/// `limit_revision`), which is what lets every instance cache it and lets Redis hold a
/// precomputed copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub name: String,
    pub timezone: Tz,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub window: DailyWindow,
    pub daily_limit: u32,
    /// How many times the daily limit has been changed: 0 as created. Redis keeps the limit of
    /// the highest revision it was sent (see `lua/set_limit.lua`).
    pub limit_revision: i64,
    pub valid_days_after_end: u32,
    pub discount: Discount,
    /// How many buckets each day's stock is split over; fixed at creation.
    pub shards: Shards,
    pub created_at: DateTime<Utc>,
}

impl Event {
    pub fn new(id: EventId, spec: NewEvent, created_at: DateTime<Utc>) -> Self {
        Self {
            id,
            name: spec.name,
            timezone: spec.timezone,
            starts_on: spec.starts_on,
            ends_on: spec.ends_on,
            window: spec.window,
            daily_limit: spec.daily_limit,
            limit_revision: 0,
            valid_days_after_end: spec.valid_days_after_end,
            discount: spec.discount,
            shards: spec.shards,
            created_at,
        }
    }

    /// Every day's window, in order.
    pub fn windows(&self) -> Vec<DayWindow> {
        windows(self.timezone, self.starts_on, self.ends_on, self.window)
    }

    /// Coupons may be used until the end of the event's last day plus `valid_days_after_end`
    /// days, in the event's time zone. The instant returned is exclusive.
    pub fn valid_until(&self) -> DateTime<Utc> {
        let last_valid_day = self.ends_on + Duration::days(i64::from(self.valid_days_after_end));
        let day_after = last_valid_day.succ_opt().unwrap_or(last_valid_day);
        local_instant(self.timezone, day_after, TimeOfDay::MIDNIGHT)
    }

    /// The day a sale is "on" at `now`: the day whose window is open, otherwise the local date.
    /// (At 01:00 inside a "22:00"-"02:00" window, coupons are still the previous day's.)
    pub fn current_day(&self, now: DateTime<Utc>) -> NaiveDate {
        let local_today = now.with_timezone(&self.timezone).date_naive();
        let yesterday = local_today.pred_opt().unwrap_or(local_today);
        let open_yesterday = self
            .window_on(yesterday)
            .is_some_and(|w| w.open <= now && now < w.close);
        if open_yesterday { yesterday } else { local_today }
    }

    /// The window of `day`, if the event has one that day.
    pub fn window_on(&self, day: NaiveDate) -> Option<DayWindow> {
        if day < self.starts_on || day > self.ends_on {
            return None;
        }
        Some(self.window.on(self.timezone, day)).filter(|w| !w.is_empty())
    }

    /// The event's last window: usually the last day's, unless DST swallowed that one.
    fn last_window(&self) -> Option<DayWindow> {
        std::iter::successors(Some(self.ends_on), |d| d.pred_opt())
            .take_while(|d| *d >= self.starts_on)
            .find_map(|d| self.window_on(d))
    }

    /// Where `day` stands at `now`, given how many coupons it has issued.
    pub fn status_on(&self, day: NaiveDate, now: DateTime<Utc>, issued: u64) -> DayStatus {
        let ended = self.last_window().is_none_or(|last| now >= last.close);
        match self.window_on(day) {
            _ if ended => DayStatus::Ended,
            None if day < self.starts_on => DayStatus::NotOpen,
            None => DayStatus::Closed,
            Some(w) if now < w.open => DayStatus::NotOpen,
            Some(w) if now >= w.close => DayStatus::Closed,
            Some(_) if issued >= u64::from(self.daily_limit) => DayStatus::SoldOut,
            Some(_) => DayStatus::Open,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> NewEventRequest {
        NewEventRequest {
            name: "Half price".into(),
            timezone: "Asia/Seoul".into(),
            starts_on: "2026-05-01".into(),
            ends_on: "2026-05-05".into(),
            daily_open: "13:00".into(),
            daily_close: "15:00".into(),
            daily_limit: 100,
            valid_days_after_end: 30,
            discount: Discount::Percent { value: 50 },
            shards: None,
        }
    }

    fn event() -> Event {
        Event::new(EventId::new(), NewEvent::parse(request()).unwrap(), Utc::now())
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_good_definition_parses() {
        let e = NewEvent::parse(request()).unwrap();
        assert_eq!(e.timezone, chrono_tz::Asia::Seoul);
        assert_eq!(e.daily_limit, 100);
    }

    #[test]
    fn each_bad_field_is_named() {
        type Breakage = Box<dyn Fn(&mut NewEventRequest)>;
        let cases: Vec<(&str, Breakage)> = vec![
            ("timezone", Box::new(|r| r.timezone = "Mars/Olympus".into())),
            ("starts_on", Box::new(|r| r.starts_on = "2026-02-30".into())),
            ("starts_on", Box::new(|r| r.starts_on = "2026-5-1".into())),
            ("starts_on", Box::new(|r| r.starts_on = "1969-12-31".into())),
            ("ends_on", Box::new(|r| r.ends_on = "2026-04-30".into())),
            ("ends_on", Box::new(|r| r.ends_on = "2027-12-31".into())),
            ("daily_open", Box::new(|r| r.daily_open = "1pm".into())),
            ("daily_close", Box::new(|r| r.daily_close = "15:60".into())),
            ("daily_close", Box::new(|r| r.daily_close = "13:00".into())),
            ("daily_limit", Box::new(|r| r.daily_limit = 0)),
            ("valid_days_after_end", Box::new(|r| r.valid_days_after_end = -1)),
            ("name", Box::new(|r| r.name = "   ".into())),
            ("shards", Box::new(|r| r.shards = Some(0))),
            ("shards", Box::new(|r| r.shards = Some(65))),
            ("shards", Box::new(|r| r.shards = Some(101))),
            (
                "discount.value",
                Box::new(|r| r.discount = Discount::Percent { value: 101 }),
            ),
            (
                "discount.currency",
                Box::new(|r| {
                    r.discount = Discount::Amount {
                        value: 5000,
                        currency: "krw".into(),
                    }
                }),
            ),
        ];
        for (field, break_it) in cases {
            let mut r = request();
            break_it(&mut r);
            let err = NewEvent::parse(r).unwrap_err();
            assert!(err.starts_with(field), "expected {field}, got {err}");
        }
    }

    #[test]
    fn coupons_stay_valid_to_the_end_of_the_last_day_plus_the_grace_days() {
        // Ends May 5 KST, 30 days: valid through June 4 KST, i.e. until June 5 00:00 KST.
        assert_eq!(event().valid_until(), at("2026-06-04T15:00:00Z"));
    }

    #[test]
    fn status_follows_the_day() {
        let e = event();
        let day = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let may2 = day("2026-05-02");
        // May 2 13:00-15:00 KST is 04:00-06:00 UTC.
        assert_eq!(e.status_on(may2, at("2026-05-02T03:59:59Z"), 0), DayStatus::NotOpen);
        assert_eq!(e.status_on(may2, at("2026-05-02T04:00:00Z"), 0), DayStatus::Open);
        assert_eq!(e.status_on(may2, at("2026-05-02T05:00:00Z"), 100), DayStatus::SoldOut);
        assert_eq!(e.status_on(may2, at("2026-05-02T06:00:00Z"), 3), DayStatus::Closed);
        assert_eq!(
            e.status_on(day("2026-04-30"), at("2026-04-29T00:00:00Z"), 0),
            DayStatus::NotOpen
        );
        assert_eq!(e.status_on(may2, at("2026-05-05T06:00:00Z"), 0), DayStatus::Ended);
        assert_eq!(
            e.current_day(at("2026-05-02T16:00:00Z")),
            day("2026-05-03"),
            "01:00 KST May 3"
        );
    }

    #[test]
    fn the_current_day_of_a_midnight_window_is_the_day_it_opened() {
        let mut r = request();
        r.daily_open = "22:00".into();
        r.daily_close = "02:00".into();
        let e = Event::new(EventId::new(), NewEvent::parse(r).unwrap(), Utc::now());
        let may2 = NaiveDate::parse_from_str("2026-05-02", "%Y-%m-%d").unwrap();
        // 01:00 KST May 3 is inside May 2's window.
        assert_eq!(e.current_day(at("2026-05-02T16:00:00Z")), may2);
        assert_eq!(e.status_on(may2, at("2026-05-02T16:00:00Z"), 0), DayStatus::Open);
    }
}
