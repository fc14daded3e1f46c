//! The lab's settings, flattened into the service's `Settings` (so `serve --help` lists them).

use std::time::Duration;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct LabSettings {
    /// Mount the strategy lab under /v1/lab (a demonstration, off in production: 404 when off).
    #[arg(long = "lab-enabled", env = "LAB_ENABLED", default_value_t = false, action = clap::ArgAction::Set)]
    pub enabled: bool,

    /// The `naive` strategy sleeps this long between its read and its write, to widen the race
    /// on purpose (as the seeds' demonstrations do), in ms.
    #[arg(long = "lab-naive-delay-ms", env = "LAB_NAIVE_DELAY_MS", default_value_t = 0)]
    pub naive_delay_ms: u64,

    /// Capacity of the `queue` strategy's channel; a full channel answers 503.
    #[arg(long = "lab-queue-capacity", env = "LAB_QUEUE_CAPACITY", default_value_t = 1000)]
    pub queue_capacity: usize,

    /// How long a `redis-lock` lock lives if its holder never releases it, in ms.
    #[arg(long = "lab-lock-ttl-ms", env = "LAB_LOCK_TTL_MS", default_value_t = 2000)]
    pub lock_ttl_ms: u64,

    /// How long a `redis-lock` request keeps trying to take the lock before a 503, in ms.
    #[arg(long = "lab-lock-wait-ms", env = "LAB_LOCK_WAIT_MS", default_value_t = 5000)]
    pub lock_wait_ms: u64,

    /// Attempts of a `pg-optimistic` request (the first one included) before a 503.
    #[arg(
        long = "lab-optimistic-attempts",
        env = "LAB_OPTIMISTIC_ATTEMPTS",
        default_value_t = 100
    )]
    pub optimistic_attempts: u32,
}

impl LabSettings {
    pub fn naive_delay(&self) -> Duration {
        Duration::from_millis(self.naive_delay_ms)
    }
}
