//! Wiring: build every part from `Settings`, run them, stop them in order.

use std::future::Future;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::http::{self, AppState};
use crate::issuing::{Issuer, Keys};
use crate::metrics::Metrics;
use crate::redis_target::RedisTarget;
use crate::store;
use crate::writer::{ReadTurn, Writer, WriterConfig, WriterRedis, WriterStats};

/// The whole service, built and bound, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    /// `WRITER_CONCURRENCY` writers, each its own consumer in the group.
    writers: Vec<Writer>,
    /// Where the writers hear of other instances' new events (see `announce`).
    redis: RedisTarget,
    shutdown: CancellationToken,
    /// Kept so tests can reach the parts directly.
    pub state: web::Data<AppState>,
}

/// Stops a running `Application` gracefully.
#[derive(Clone)]
pub struct StopHandle {
    server: ServerHandle,
}

impl StopHandle {
    /// Stop accepting, let requests in flight finish; `run_until_stopped` then stops the writer.
    pub async fn stop(&self) {
        self.server.stop(true).await;
    }
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Every setting that names a server is parsed (and its TLS files read) before anything
        // connects: a mistake stops the start at once, with one line that names the setting.
        let database = settings.connections.database.parse()?;
        let redis = settings.redis_target()?;

        let db = store::connect(&database, settings.database_max_connections).await?;
        store::migrate(&db).await?;

        tracing::info!(redis = %redis.describe(), "redis");
        redis
            .check(settings.redis_timeout().max(Duration::from_secs(1)))
            .await?;
        let keys = Keys::new(&settings.connections.redis_key_prefix);
        let issuer = Issuer::new(
            &redis,
            keys.clone(),
            settings.redis_timeout(),
            settings.sold_out_memory(),
            settings.day_key_ttl(),
        )?
        .with_replicas(settings.redis_wait_replicas);
        warn_of_untrusted_redis(&redis, settings.redis_timeout()).await;
        let catalog = Catalog::new(db.clone(), issuer.clone());
        match catalog.publish_all().await {
            Ok(n) => tracing::info!(events = n, "published events to Redis"),
            // Each event is published again the first time a request finds it missing.
            Err(e) => tracing::warn!(error = %e, "cannot publish events to Redis yet"),
        }

        let metrics = Metrics::new(settings.max_in_flight);
        let writer_stats = Arc::new(WriterStats::default());
        let read_turn = ReadTurn::default();
        let writers = if settings.writer_enabled {
            (0..settings.writer_concurrency.max(1))
                .map(|_| {
                    writer(&settings, &redis, db.clone(), keys.clone(), catalog.clone()).map(|w| {
                        w.with_metrics(metrics.clone())
                            .with_stats(writer_stats.clone())
                            .with_read_turn(read_turn.clone())
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?
        } else {
            Vec::new()
        };

        let state = web::Data::new(AppState {
            issuer,
            catalog,
            db,
            admin_token: settings.admin_token().map(str::to_owned),
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            jwt: http::auth::JwtVerifier::from_settings(&settings)?.map(Arc::new),
            limits: Arc::new(http::limits::RateLimits::from_settings(&settings)),
            metrics,
            writer_stats,
        });
        http::limits::RateLimits::spawn_janitor(&state.limits);
        let listener = TcpListener::bind(&settings.listen_addr)
            .with_context(|| format!("cannot listen on {}", settings.listen_addr))?;
        let port = listener.local_addr()?.port();
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(http::Observe::new(app_state.metrics.clone()))
                .configure(http::routes(app_state.clone()))
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout_secs);
        if settings.http_workers > 0 {
            server = server.workers(settings.http_workers);
        }
        tracing::info!(port, "listening");
        Ok(Self {
            port,
            server: server.run(),
            writers,
            redis,
            shutdown: CancellationToken::new(),
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            server: self.server.handle(),
        }
    }

    /// Takes the writers out, for tests that drive one step by step instead: the first is
    /// returned, the others (never started) are dropped.
    pub fn take_writer(&mut self) -> Option<Writer> {
        std::mem::take(&mut self.writers).into_iter().next()
    }

    /// Serves until stopped; then lets the writer finish the batch it holds, and returns.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let writers: Vec<_> = self
            .writers
            .into_iter()
            .map(|w| tokio::spawn(w.run(self.shutdown.clone())))
            .collect();
        // Only a writer needs to hear of another instance's new event at once.
        if !writers.is_empty() {
            let state = &self.state;
            let keys = state.issuer.keys().clone();
            let listen = crate::announce::listen(self.redis, keys, state.catalog.clone(), self.shutdown.clone());
            tokio::spawn(listen);
        }
        let served = self.server.await;
        tracing::info!("HTTP server stopped; stopping the writer");
        self.shutdown.cancel();
        for writer in writers {
            writer.await.context("writer task panicked")?;
        }
        served.context("HTTP server failed")
    }
}

/// A server certificate the TLS settings do not trust will not be trusted on the next attempt
/// either: said once at start, at ERROR, rather than only as 503s and failed readiness checks.
/// The service still starts (not ready), so that fixing the certificate needs no restart.
async fn warn_of_untrusted_redis(redis: &RedisTarget, timeout: Duration) {
    if let Err(e) = redis.probe(timeout).await
        && crate::redis_target::tls::verification_failure(&e).is_some()
    {
        tracing::error!("{}", crate::redis_target::tls::explain(&e));
    }
}

fn writer(
    settings: &Settings,
    redis: &RedisTarget,
    db: PgPool,
    keys: Keys,
    catalog: Catalog,
) -> anyhow::Result<Writer> {
    let block = Duration::from_millis(settings.writer_block_ms);
    let consumer = format!(
        "writer-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    Ok(Writer::new(
        WriterRedis::new(redis, block)?,
        db,
        keys,
        catalog,
        WriterConfig {
            consumer,
            batch_size: settings.writer_batch_size,
            block,
            claim_idle: Duration::from_millis(settings.writer_claim_idle_ms),
            linger: Duration::from_millis(settings.writer_linger_ms),
        },
    ))
}

/// The writer reads the stream of every event the catalog knows, and wakes when one arrives.
/// Wired here, where both are made, so that neither module names the other.
impl crate::writer::EventSource for Catalog {
    fn events(&self) -> Pin<Box<dyn Future<Output = Vec<Arc<crate::domain::Event>>> + Send + '_>> {
        Box::pin(self.refresh())
    }

    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        Catalog::changes(self)
    }
}

/// Ctrl-C or SIGTERM (what `docker stop`, Kubernetes and process managers send): the signal to
/// stop gracefully. Shared with the lab's server, which stops the same way.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let ctrl_c = tokio::signal::ctrl_c();
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
