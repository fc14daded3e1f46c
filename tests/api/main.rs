//! Integration tests: the whole service, driven over HTTP, against the real Redis and Postgres.
//! One test binary (faster to link); each test gets its own database and key prefix.

mod concurrency;
mod dashboard;
mod errors;
mod events;
mod helpers;
mod lifecycle;
mod live;
mod logs;
mod metrics;
mod proxy;
mod recovery;
mod redeem;
mod scrape;
mod windows;
mod writer;
