//! The session store: where sessions, tombstones and anti-forgery tokens live.
//!
//! [`SessionStore`] is the one interface the rest of the gateway sees; `redis.rs` implements it
//! on a real Redis (shared by every gateway instance) and `memory.rs` in process (one instance
//! only, for development and the embedded default). `session_store.backend` picks one at start.
//! Passthrough traffic never calls into this module. Every operation is bounded in time: a
//! store that does not answer is an error ([`StoreError::Unavailable`]), never a hang.

mod memory;
mod redis;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;
use crate::config::{Backend, SessionStore as StoreConfig};
use crate::metrics::Metrics;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Unreachable, timed out, or refusing work: the caller fails closed (503).
    #[error("session store unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// `memory` or `redis`, for logs and /readyz.
    fn backend(&self) -> &'static str;

    /// Answers when the store can serve requests; used by /readyz.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Build the store `config` asks for. Connecting is lazy: this never blocks and never fails
/// because the store is down (the gateway starts anyway and /readyz reports it).
pub fn build(config: &StoreConfig) -> Arc<dyn SessionStore> {
    match &config.backend {
        Backend::Memory => Arc::new(MemoryStore::new()),
        Backend::Redis(r) => Arc::new(RedisStore::new(r.clone(), config.key_prefix.clone())),
    }
}

/// Run one store operation under a deadline and record its duration by name.
pub(crate) async fn timed<T>(
    op: &'static str,
    deadline: Duration,
    fut: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let start = Instant::now();
    let res = match tokio::time::timeout(deadline, fut).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Unavailable(format!("{op} took longer than {deadline:?}"))),
    };
    Metrics::get().store_duration.with_label_values(&[op]).observe(start.elapsed().as_secs_f64());
    res
}
