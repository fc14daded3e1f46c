//! What the load tools' binaries share: the event they all drive, and how they sum up runs.

use chrono::{Days, Utc};
use coupon_issuer::domain::{Discount, NewEvent, NewEventRequest, Shards};

/// An event open all day today (from yesterday to tomorrow, so no run crosses its end), half
/// price, with `daily_limit` coupons a day over `shards` buckets (`None`: one).
pub fn all_day_event(name: &str, daily_limit: i64, shards: Option<Shards>) -> anyhow::Result<NewEvent> {
    let today = Utc::now().date_naive();
    NewEvent::parse(NewEventRequest {
        name: name.into(),
        timezone: "UTC".into(),
        starts_on: (today - Days::new(1)).to_string(),
        ends_on: (today + Days::new(1)).to_string(),
        daily_open: "00:00".into(),
        daily_close: "24:00".into(),
        daily_limit,
        valid_days_after_end: 30,
        discount: serde_json::from_value::<Discount>(serde_json::json!({ "kind": "percent", "value": 50 }))?,
        shards: shards.map(|s| i64::from(s.get())),
    })
    .map_err(anyhow::Error::msg)
}

/// The median of the figures that are numbers (NaN: no figure at all). Medians, not means: this
/// machine is shared and one slow run should not move the figure.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}
