//! The events this instance knows: defined in Postgres, published to Redis, cached in memory.
//!
//! Only an event's daily limit can change after it is created (`set_limit`). Another instance's
//! new events and limits are picked up on a cache miss and by `refresh`; what is published to
//! Redis is always read from Postgres first, so a stale copy never overwrites a newer limit.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use sqlx::PgPool;
use tokio::sync::watch;

use crate::domain::{Event, EventId, NewEvent};
use crate::issuing::Issuer;
use crate::restore::{Publish, ensure_published};
use crate::store::events::SetLimit;
use crate::store::{self, StoreError};

/// Why a limit change failed: Postgres (nothing changed), or Redis after Postgres took it (the
/// new limit is stored but not yet in force; the change is safe to repeat).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

#[derive(Clone)]
pub struct Catalog {
    db: PgPool,
    issuer: Issuer,
    cache: Arc<RwLock<HashMap<EventId, Arc<Event>>>>,
    /// Events being republished right now, so a burst of requests republishes once.
    publishing: Arc<Mutex<HashSet<EventId>>>,
    /// Bumped whenever an event enters the cache, so the writer reads a new event's stream at
    /// once instead of at its next periodic reload: a watch, so that a writer blocked in a read
    /// can wait for the change too (see `writer::wake`).
    generation: Arc<watch::Sender<u64>>,
}

impl Catalog {
    pub fn new(db: PgPool, issuer: Issuer) -> Self {
        Self {
            db,
            issuer,
            cache: Arc::default(),
            publishing: Arc::default(),
            generation: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Stores a new event, then publishes it to Redis. If publishing fails the event exists
    /// (Postgres is the source of truth) and is published again by `republish` or at start-up.
    pub async fn create(&self, spec: NewEvent) -> Result<Arc<Event>, StoreError> {
        let event = Arc::new(store::events::insert(&self.db, spec).await?);
        self.remember(&event);
        match ensure_published(&self.issuer, &self.db, &event, Publish::New).await {
            // Only once its stream and group exist: other instances' writers read it at once.
            Ok(()) => crate::announce::new_event(&mut self.issuer.connection(), self.issuer.keys(), event.id).await,
            Err(e) => tracing::warn!(event_id = %event.id, error = %e, "event stored but not yet published to Redis"),
        }
        Ok(event)
    }

    /// The event, from the cache or Postgres.
    pub async fn get(&self, id: EventId) -> Result<Option<Arc<Event>>, StoreError> {
        if let Some(event) = self.read_cache(|c| c.get(&id).cloned()) {
            return Ok(Some(event));
        }
        let found = store::events::get(&self.db, id).await?.map(Arc::new);
        if let Some(event) = &found {
            self.remember(event);
        }
        Ok(found)
    }

    /// Every event, newest first, from Postgres.
    pub async fn list(&self) -> Result<Vec<Arc<Event>>, StoreError> {
        let events: Vec<Arc<Event>> = store::events::list(&self.db).await?.into_iter().map(Arc::new).collect();
        events.iter().for_each(|e| self.remember(e));
        Ok(events)
    }

    /// Reloads the list from Postgres, keeping the cached copy when Postgres is unreachable.
    pub async fn refresh(&self) -> Vec<Arc<Event>> {
        match self.list().await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reload events; using the cached ones");
                self.read_cache(|c| c.values().cloned().collect())
            }
        }
    }

    /// Publishes every event to Redis (at start-up), a few at a time: an event whose state was
    /// lost waits for a fence before it returns (see `restore`), and they need not queue.
    pub async fn publish_all(&self) -> anyhow::Result<usize> {
        use futures_util::{StreamExt, TryStreamExt};
        let events = self.list().await?;
        futures_util::stream::iter(&events)
            .map(|event| ensure_published(&self.issuer, &self.db, event, Publish::Again))
            .buffer_unordered(16)
            .try_collect::<()>()
            .await?;
        Ok(events.len())
    }

    /// Sets an event's daily limit: in Postgres, then in Redis. A raise returns once it is in
    /// force, after the fence that keeps remembered sold-out answers from outliving the old
    /// limit (see `issuing::set_limit`). A sharded event's limit can only be lowered.
    pub async fn set_limit(&self, id: EventId, limit: u32) -> Result<SetLimit, CatalogError> {
        let change = store::events::set_limit(&self.db, id, limit).await?;
        let SetLimit::Changed(event) = &change else {
            return Ok(change);
        };
        let event = Arc::new(event.clone());
        self.remember(&event);
        let mut conn = self.issuer.connection();
        crate::issuing::set_limit(&mut conn, self.issuer.keys(), &event, self.issuer.fence()).await?;
        Ok(change)
    }

    /// Publishes one event again, in the background, unless that is already under way. Called
    /// when the issue script finds no settings for an event that Postgres knows.
    pub fn republish(&self, event: Arc<Event>) {
        let fresh = self
            .publishing
            .lock()
            .map(|mut set| set.insert(event.id))
            .unwrap_or(false);
        if !fresh {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.publish(&event).await {
                tracing::warn!(event_id = %event.id, error = %e, "cannot publish event");
            }
            if let Ok(mut set) = this.publishing.lock() {
                set.remove(&event.id);
            }
        });
    }

    /// Publishes the event again as Postgres has it now, rebuilding its counters first if Redis
    /// lost them (see `restore`).
    async fn publish(&self, event: &Event) -> anyhow::Result<()> {
        let current = store::events::get(&self.db, event.id).await?.map(Arc::new);
        let event = match &current {
            Some(current) => {
                self.remember(current);
                current.as_ref()
            }
            None => event,
        };
        ensure_published(&self.issuer, &self.db, event, Publish::Again).await
    }

    /// Whether the event is in the cache: known, without asking Postgres. Metrics label only
    /// known events, so a flood of made-up ids cannot grow the label set.
    pub fn knows(&self, id: EventId) -> bool {
        self.read_cache(|c| c.contains_key(&id))
    }

    /// Changes whenever an event this instance had not seen arrives.
    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// Sees every change of `generation`, and can wait for the next one.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn remember(&self, event: &Arc<Event>) {
        // A copy replaces the cached one unless that has a newer limit: reads of Postgres that
        // overlap a limit change may finish in either order.
        let fresh = self.cache.write().is_ok_and(|mut cache| match cache.get(&event.id) {
            Some(cached) if cached.limit_revision > event.limit_revision => false,
            other => {
                let fresh = other.is_none();
                cache.insert(event.id, event.clone());
                fresh
            }
        });
        if fresh {
            self.generation.send_modify(|g| *g += 1);
        }
    }

    fn read_cache<T: Default>(&self, f: impl FnOnce(&HashMap<EventId, Arc<Event>>) -> T) -> T {
        self.cache.read().map(|c| f(&c)).unwrap_or_default()
    }
}
