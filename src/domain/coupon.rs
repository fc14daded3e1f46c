//! An issued coupon.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::ids::{CouponId, EventId, UserId};

/// A coupon as the issue script created it and as Postgres stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coupon {
    pub coupon_id: CouponId,
    pub event_id: EventId,
    pub user_id: UserId,
    /// The event day the coupon belongs to (the local date its window opened on).
    pub day: NaiveDate,
    /// 1-based order of arrival on that day.
    pub seq: u32,
    /// When the Redis clock issued it.
    pub issued_at: DateTime<Utc>,
    /// A coupon is usable from the moment it is issued.
    pub valid_from: DateTime<Utc>,
    /// Usable until this instant (exclusive).
    pub valid_until: DateTime<Utc>,
    /// Null until the coupon is used.
    pub redeemed_at: Option<DateTime<Utc>>,
}
