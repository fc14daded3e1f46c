//! An issued coupon.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::ids::{CouponId, EventId, UserId};

/// A coupon as the issue script created it and as Postgres stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({
    "coupon_id": "019a2b3c-4d5e-7f60-8a9b-0c1d2e3f4a5b",
    "event_id": "0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10",
    "user_id": "alice",
    "day": "2026-05-01",
    "shard": 0,
    "seq": 17,
    "issued_at": "2026-05-01T04:00:00.123Z",
    "valid_from": "2026-05-01T04:00:00.123Z",
    "valid_until": "2026-06-04T15:00:00Z",
    "redeemed_at": null
}))]
pub struct Coupon {
    pub coupon_id: CouponId,
    pub event_id: EventId,
    pub user_id: UserId,
    /// The event day the coupon belongs to (the local date its window opened on).
    pub day: NaiveDate,
    /// The bucket that issued it: always 0 for an unsharded event (see `shards` on the event).
    pub shard: u16,
    /// 1-based order of arrival on that day, within its bucket.
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
