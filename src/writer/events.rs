//! Where the writer learns which streams to read: the events this instance knows, and a signal
//! when a new one arrives. A trait of two calls rather than the whole `Catalog`, so the writer
//! depends on nothing that publishes or restores events (the catalog restores through
//! `restore`, which reads the streams the writer drains: a cycle, when the writer named it).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::watch;

use crate::domain::Event;

/// The writer's view of the catalog (implemented for `catalog::Catalog` in `startup`).
pub trait EventSource: Send + Sync + 'static {
    /// Every event this instance knows, reloaded (the cached list when the reload fails). Called
    /// every couple of seconds and when `changes` moves, never per entry: boxed is fine.
    fn events(&self) -> Pin<Box<dyn Future<Output = Vec<Arc<Event>>> + Send + '_>>;

    /// Changes whenever an event this instance had not seen arrives; a read blocked for new
    /// entries ends when it does (see `wake`).
    fn changes(&self) -> watch::Receiver<u64>;
}
