//! The rules of the product, as types: what an event, a window, a user and a coupon are.
//! Nothing here does I/O.

mod coupon;
pub(crate) mod day;
mod event;
mod event_schema;
mod ids;
mod shards;
mod status;
mod time_of_day;
mod whole;
mod window;

pub use coupon::Coupon;
pub use day::{day_text, parse_day};
pub use event::{Discount, Event, EventError, NewEvent, NewEventRequest, parse_daily_limit};
pub use event_schema::daily_limit as daily_limit_schema;
pub use ids::{CouponId, EventId, UserId};
pub use shards::{Bucket, MAX_SHARDS, Shards};
pub use status::DayStatus;
pub use time_of_day::TimeOfDay;
pub use whole::{optional_whole, whole};
pub use window::{DailyWindow, DayWindow};

#[cfg(test)]
mod proptests;
