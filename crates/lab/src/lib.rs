//! coupon-lab: the strategy lab. One rule -- a coupon with N units, at most one per user --
//! implemented eight ways against the real Postgres or Redis, served side by side by its own
//! HTTP server (`coupon-lab serve`) and measured under the same spike (`coupon-lab compare`).
//!
//! It lives beside the service, not inside it: the service's build, settings, API, error codes
//! and database know nothing of it. What it borrows from the service (`coupon-issuer`) is what
//! any client of the same Redis and Postgres would: Redis targets and connections, `UserId`,
//! `DATABASE_URL` parsing, logs.
//!
//! - [`strategy`]: the eight strategies and what one decided ([`Outcome`]).
//! - [`lab`]: [`Lab`], everything the strategies share, and the coupon's [`Report`].
//!   - `pg`: `naive`, `pg-for-update`, `pg-function`, `pg-conditional-update`, `pg-optimistic`,
//!     and the plain read-then-write that `queue` and `redis-lock` serialise.
//!   - `queue`: one worker task fed by a bounded channel.
//!   - `redis_store`: `redis-lock` (SET NX PX, safe release) and `redis-lua` (one script), with
//!     their keys built in `keys`.
//! - [`store`]: the lab's Postgres schema `lab`, migrated from `migrations/` by the lab itself.
//! - [`http`] and [`error`]: the routes under `/v1/lab`, and [`LabError`], the one error type
//!   mapped to HTTP.
//! - [`startup`]: [`LabServer`], built from [`ServeSettings`], bound, run until stopped.
//! - [`compare`]: the comparison's load driver, table and chart.

pub mod compare;
pub mod error;
pub mod http;
mod keys;
pub mod lab;
mod pg;
mod queue;
mod redis_store;
pub mod settings;
pub mod startup;
pub mod store;
pub mod strategy;

pub use error::LabError;
pub use keys::LabKeys;
pub use lab::{Lab, PgReport, RedisReport, Report};
pub use settings::{ServeSettings, StrategySettings};
pub use startup::LabServer;
pub use strategy::{Given, Outcome, Store, Strategy};
