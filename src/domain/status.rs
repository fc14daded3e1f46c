//! Where a day of an event stands.

use serde::Serialize;
use utoipa::ToSchema;

/// The status of one day of an event, as `GET /v1/coupon/count` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DayStatus {
    /// The event has not started, or the day's window has not opened yet.
    NotOpen,
    /// The window is open and coupons are left.
    Open,
    /// The window is open and the day's limit is reached.
    SoldOut,
    /// The day's window has closed (or the day has no window).
    Closed,
    /// The event's last window has closed.
    Ended,
}
