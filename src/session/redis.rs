//! Redis session store (redis-rs 1.x, one multiplexed `ConnectionManager` per process).
//!
//! The manager is created lazily on first use, inside whichever pingora service runtime asks
//! first (all of them live as long as the process), so nothing async happens before the server
//! runs and the gateway starts while Redis is down. It reconnects by itself; connection and
//! response timeouts are always set (redis-rs has none by default for the manager) and every
//! call is additionally bounded by [`super::timed`], so a hung Redis (SIGSTOP) is an error
//! within about `connect_timeout + response_timeout`, never a hang.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::{timed, SessionStore, StoreError};
use crate::config::RedisConfig;

pub struct RedisStore {
    config: RedisConfig,
    /// Key prefix (`lgw:`), used by the session keys.
    #[allow(dead_code)]
    prefix: String,
    /// Created on first use; see the module comment for why not at start.
    conn: OnceCell<ConnectionManager>,
}

impl RedisStore {
    pub fn new(config: RedisConfig, prefix: String) -> Self {
        Self { config, prefix, conn: OnceCell::new() }
    }

    /// Upper bound for one operation, reconnect included.
    fn deadline(&self) -> Duration {
        self.config.connect_timeout + self.config.response_timeout
    }

    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        self.conn
            .get_or_try_init(|| async {
                let client = redis::Client::open(self.config.url.expose())
                    .map_err(|e| StoreError::Unavailable(format!("bad redis url: {:?}", e.kind())))?;
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.config.connect_timeout))
                    .set_response_timeout(Some(self.config.response_timeout))
                    // Few, fast retries: a caller waits at most `deadline()`, and the manager
                    // keeps reconnecting on later calls, so recovery takes about a second.
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                ConnectionManager::new_lazy_with_config(client, cfg).map_err(redis_err)
            })
            .await
            .cloned()
    }
}

/// Redis errors without the URL (which may hold a password).
fn redis_err(e: redis::RedisError) -> StoreError {
    let detail = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connection_refusal() {
        "connection refused".to_string()
    } else if e.is_io_error() || e.is_connection_dropped() {
        "connection lost".to_string()
    } else {
        format!("{:?}", e.kind())
    };
    StoreError::Unavailable(format!("redis: {detail}"))
}

#[async_trait]
impl SessionStore for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        timed("ping", self.deadline(), async {
            let mut c = self.conn().await?;
            let pong: String = redis::cmd("PING").query_async(&mut c).await.map_err(redis_err)?;
            if pong == "PONG" {
                Ok(())
            } else {
                Err(StoreError::Unavailable(format!("redis answered {pong:?} to PING")))
            }
        })
        .await
    }
}
