//! Sentinel's `+switch-master` announcements: with Sentinel, each instance subscribes to them on
//! one sentinel at a time (the next one when that fails) and, when its master is announced
//! moved, bumps [`Switches`]. The store then asks Sentinel for the master before its next call
//! (rather than learning of the failover from a failed call or a `READONLY` answer), and the
//! revocation follower leaves its blocking read on the old master and reconnects.
//!
//! Message: `<master-name> <old-ip> <old-port> <new-ip> <new-port>`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;

use crate::config::SentinelConfig;

/// How many switches of our master were announced, and a wake-up for whoever waits on one.
#[derive(Default)]
pub(crate) struct Switches {
    generation: AtomicU64,
    notify: Notify,
}

impl Switches {
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Resolves at the next announced switch.
    pub(crate) async fn next(&self) {
        self.notify.notified().await
    }

    fn switched(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }
}

/// Whether `payload` announces that master `name` moved; the new address.
fn moved<'a>(payload: &'a str, name: &str) -> Option<(&'a str, &'a str)> {
    let mut parts = payload.split(' ');
    if parts.next()? != name {
        return None;
    }
    let (_, _, ip, port) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    Some((ip, port))
}

/// Listen for switches of `s.master_name` forever, going round the sentinels.
pub(crate) async fn watch(s: &SentinelConfig, connect_timeout: Duration, switches: &Switches) {
    let mut backoff = Duration::from_millis(100);
    loop {
        for node in &s.nodes {
            match listen(s, node, connect_timeout, switches).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::debug!(sentinel = %node, error = %super::detail(&e), "+switch-master subscription lost")
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

/// One subscription on one sentinel, until its connection ends.
async fn listen(
    s: &SentinelConfig,
    node: &str,
    connect_timeout: Duration,
    switches: &Switches,
) -> redis::RedisResult<()> {
    let info = super::target::sentinel_info(s, node)?;
    let client = redis::Client::open(info)?;
    let mut pubsub = tokio::time::timeout(connect_timeout, client.get_async_pubsub())
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "sentinel did not answer in time")))??;
    pubsub.subscribe("+switch-master").await?;
    let mut messages = pubsub.on_message();
    while let Some(m) = messages.next().await {
        let payload: String = m.get_payload()?;
        if let Some((ip, port)) = moved(&payload, &s.master_name) {
            tracing::info!(sentinel = %node, master = %s.master_name, to = %format!("{ip}:{port}"), "Sentinel announced a new master (+switch-master)");
            switches.switched();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_masters_switch_counts() {
        assert_eq!(moved("mymaster 10.0.0.1 6379 10.0.0.2 6380", "mymaster"), Some(("10.0.0.2", "6380")));
        assert_eq!(moved("other 10.0.0.1 6379 10.0.0.2 6380", "mymaster"), None);
        assert_eq!(moved("mymaster 10.0.0.1 6379", "mymaster"), None);
        assert_eq!(moved("mymaster2 a 1 b 2", "mymaster"), None);
    }
}
