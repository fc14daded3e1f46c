//! [`LabServer`]: the lab built from [`ServeSettings`], bound (port 0 in tests), run until
//! stopped. Built as the service's `Application` is, without the writer: the lab stores what it
//! gives directly, in its own tables.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer};
use anyhow::Context;
use sqlx::PgPool;

use crate::http::{self, AdminToken, Dependencies};
use crate::lab::Lab;
use crate::settings::ServeSettings;
use crate::store;

/// The lab's server, built and bound, not yet running.
pub struct LabServer {
    port: u16,
    server: Server,
    /// The lab's pool, for tests that look at the tables directly.
    pub db: PgPool,
}

impl LabServer {
    pub async fn build(settings: ServeSettings) -> anyhow::Result<Self> {
        // Both servers' settings are parsed before anything connects: a mistake stops the start
        // at once, with one line that names the setting.
        let redis = settings.redis_target()?;
        let db =
            store::connect_and_migrate(&settings.connections.database.url, settings.database_max_connections).await?;
        tracing::info!(redis = %redis.describe(), "redis");
        redis
            .check(settings.redis_timeout().max(Duration::from_secs(1)))
            .await?;
        let lab = Lab::new(
            &settings.strategies,
            db.clone(),
            &redis,
            &settings.connections.redis_key_prefix,
            settings.redis_timeout(),
        )?;
        let admin = AdminToken(settings.admin_token().map(str::to_owned));
        let dependencies = Dependencies {
            db: db.clone(),
            redis,
            redis_timeout: settings.redis_timeout(),
        };
        let listener = TcpListener::bind(&settings.listen_addr)
            .with_context(|| format!("cannot listen on {}", settings.listen_addr))?;
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || {
            App::new().configure(http::routes(lab.clone(), admin.clone(), dependencies.clone()))
        })
        .listen(listener)?
        .disable_signals();
        if settings.http_workers > 0 {
            server = server.workers(settings.http_workers);
        }
        tracing::info!(port, "lab listening");
        Ok(Self {
            port,
            server: server.run(),
            db,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server: `stop(true)` stops accepting and lets requests in flight finish (the
    /// lab has no writer to drain, so actix's own handle is all it needs).
    pub fn stop_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await.context("the lab's HTTP server failed")
    }
}
