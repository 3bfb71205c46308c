//! Where the master is: one URL, or the node Redis Sentinel names as master now.
//!
//! redis-rs asks Sentinel once, when a client is made, and a `ConnectionManager` then reconnects
//! to that same address forever: after a failover it would keep talking to the old master (dead,
//! or back as a read-only replica). So the store asks again ([`Target::client`]) whenever a call
//! fails on a lost connection or a `READONLY` answer, and swaps its connection to the new
//! master (`RedisStore::reconnect`); the revocation follower does the same on each reconnect.
//! Each question goes to the sentinels in turn (redis-rs: the first that answers and is a
//! sentinel), and the named node is checked to be master (`ROLE`) before it is used.

use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

use crate::config::{ClusterConfig, RedisConfig, RedisTarget, SentinelConfig};

/// A client for the master, and its address (to tell a new master from the old one). Not for
/// a cluster ([`cluster`]).
pub(crate) async fn client(config: &RedisConfig) -> redis::RedisResult<(String, redis::Client)> {
    match &config.target {
        RedisTarget::Url(url) => Ok((String::new(), redis::Client::open(url.expose())?)),
        RedisTarget::Cluster(_) => {
            Err(redis::RedisError::from((redis::ErrorKind::Client, "a cluster has no single master")))
        }
        RedisTarget::Sentinel(s) => {
            let mut sentinels = sentinel_client(s)?;
            let client = tokio::time::timeout(config.connect_timeout * 2, sentinels.async_get_client())
                .await
                .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "sentinels did not answer in time")))??;
            let addr = client.get_connection_info().addr().to_string();
            Ok((addr, client))
        }
    }
}

/// A connection to a Redis Cluster: the slot map from the first node that answers, each
/// command sent to its slot's master, redirections (`MOVED`, `ASK`) followed and the map
/// refreshed by redis-rs. Few, quick retries: every call has its own deadline anyway.
pub(crate) async fn cluster(
    c: &ClusterConfig,
    connect_timeout: std::time::Duration,
    response_timeout: std::time::Duration,
) -> redis::RedisResult<redis::cluster_async::ClusterConnection> {
    let nodes: Vec<String> = c.nodes.iter().map(|n| node_url(n)).collect();
    let mut b = redis::cluster::ClusterClientBuilder::new(nodes)
        .connection_timeout(connect_timeout)
        .response_timeout(response_timeout)
        .retries(3)
        .min_retry_wait(10)
        .max_retry_wait(200);
    if let Some(p) = &c.password {
        b = b.password(p.expose());
    }
    let client = b.build()?;
    tokio::time::timeout(connect_timeout * 2, client.get_async_connection())
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "no cluster node answered in time")))?
}

/// Whether a failed call should make the store ask Sentinel again.
pub(crate) fn follows(config: &RedisConfig) -> bool {
    matches!(config.target, RedisTarget::Sentinel(_))
}

/// A node as configured: `host:port`, or `rediss://host:port` for TLS.
fn node_url(node: &str) -> String {
    if node.starts_with("rediss://") {
        node.to_string()
    } else {
        format!("redis://{node}")
    }
}

/// How to reach the sentinel `node`, with the sentinels' password.
pub(crate) fn sentinel_info(s: &SentinelConfig, node: &str) -> redis::RedisResult<ConnectionInfo> {
    let mut redis = RedisConnectionInfo::default();
    if let Some(p) = &s.sentinel_password {
        redis = redis.set_password(p.expose());
    }
    node_url(node).into_connection_info().map(|i| i.set_redis_settings(redis))
}

fn sentinel_client(s: &SentinelConfig) -> redis::RedisResult<SentinelClient> {
    let nodes: Vec<ConnectionInfo> = s.nodes.iter().map(|n| sentinel_info(s, n)).collect::<redis::RedisResult<_>>()?;
    let mut data = RedisConnectionInfo::default();
    if let Some(p) = &s.password {
        data = data.set_password(p.expose());
    }
    let mut node_info = SentinelNodeConnectionInfo::default().set_redis_connection_info(data);
    // Sentinels spoken to over TLS name masters that speak TLS.
    if s.nodes.iter().any(|n| n.starts_with("rediss://")) {
        node_info = node_info.set_tls_mode(redis::TlsMode::Secure);
    }
    SentinelClient::build(nodes, s.master_name.clone(), Some(node_info), SentinelServerType::Master)
}
