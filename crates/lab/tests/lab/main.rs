//! Integration tests: the lab's own server, driven over HTTP, against the real Redis and
//! Postgres. One test binary; each test gets its own database and key prefix.

mod helpers;
mod schema;
mod strategies;
