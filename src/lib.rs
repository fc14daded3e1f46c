//! coupon-issuer: limited, first-come coupons for flash sales.
//!
//! A request travels through the modules in this order:
//!
//! - [`http`]: routes, input parsed into [`domain`] types, one error type mapped to HTTP.
//! - [`domain`]: events, daily windows, ids, coupons; pure rules, no I/O.
//! - [`issuing`]: Redis. One Lua script (`lua/issue.lua`) checks the window by the Redis clock,
//!   the user and the daily limit, counts the issue and appends it to the event's stream, all
//!   in one atomic step. It owns the Redis data model: key names (`keys`), the formats that
//!   cross Redis (`wire`), the scripts (`scripts`), and a bucket's state read and written by
//!   name (`BucketReader`, `BucketWriter`).
//! - [`writer`]: moves each stream into Postgres, idempotently, acknowledging after the commit.
//! - [`store`]: Postgres, the durable record of events and coupons.
//!
//! Around them: [`catalog`] (events, cached and published to Redis; [`announce`] tells every
//! instance of a new one at once), [`restore`] (rebuilding Redis state from Postgres when Redis
//! lost it), [`config`], [`startup`] (wiring and graceful shutdown) and [`telemetry`];
//! [`metrics`] counts what happens, for `/metrics` and `/live`; [`redis_target`] is one Redis or
//! a Redis Cluster behind one connection type; [`reconcile`] compares and repairs Redis against
//! Postgres (`coupon-issuer reconcile`); [`cli`] is the admin command line (events, inspect).
//!
//! The strategy lab (eight ways to hand out limited coupons, measured side by side) is a crate
//! of its own, `crates/lab`, which uses this one; nothing here knows of it.

pub mod announce;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod issuing;
pub mod metrics;
pub mod reconcile;
pub mod redis_target;
pub mod restore;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod writer;
