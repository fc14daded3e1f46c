//! Integration tests: the whole service, driven over HTTP, against the real Redis and Postgres.
//! One test binary (faster to link); each test gets its own database and key prefix.

mod auth;
mod bad_input;
mod chromium;
mod cli;
mod concurrency;
mod dashboard;
mod errors;
mod events;
mod helpers;
mod lab_retired;
mod lifecycle;
mod limit_changes;
mod limits;
mod live;
mod logs;
mod metrics;
mod new_event_lag;
mod openapi;
mod proxy;
mod reconcile;
mod recovery;
mod redeem;
mod scrape;
mod sharding;
mod windows;
mod writer;

// Issue 4: faults, each with its own servers where it kills one (instances.rs).
mod faults_poison;
mod faults_postgres;
mod faults_process;
mod faults_redis;
mod instances;

// Issue 7: Redis Cluster.
mod cluster;
mod cluster_shards;
mod cluster_support;

// Issue 13: TLS to Postgres; bad settings stop the start in one line.
mod postgres_tls;
mod settings;
// Issue 13: Redis Sentinel.
mod sentinel;
// Issue 13: TLS to Redis (one server and a cluster), ACL users.
mod tls;
