//! Integration tests: the whole service, driven over HTTP, against the real Redis and Postgres.
//! One test binary (faster to link); each test gets its own database and key prefix.

mod concurrency;
mod errors;
mod events;
mod helpers;
mod lifecycle;
mod proxy;
mod recovery;
mod redeem;
mod windows;
mod writer;

// Issue 4: faults, each with its own servers where it kills one (instances.rs).
mod faults_poison;
mod faults_postgres;
mod faults_process;
mod faults_redis;
mod instances;
