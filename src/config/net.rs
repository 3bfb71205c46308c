//! The model of the listeners with TLS and of the Redis deployment (split from `mod.rs` by size).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Secret;

/// A listener with a certificate/key pair (paths absolute).
#[derive(Debug, Clone)]
pub(crate) struct TlsListener {
    pub(crate) listen: SocketAddr,
    pub(crate) cert_file: PathBuf,
    pub(crate) key_file: PathBuf,
}

/// `mtls`: the pair, the client CAs and the origin the alias is published under.
#[derive(Debug, Clone)]
pub(crate) struct MtlsListener {
    pub(crate) tls: TlsListener,
    pub(crate) client_ca_file: PathBuf,
    /// `https://host[:port]`, no trailing slash.
    pub(crate) public_origin: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RedisConfig {
    pub(crate) target: RedisTarget,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    /// `WAIT` for this many replicas after every write that ends a session or revokes.
    pub(crate) replica_acks: u32,
}

/// Where the master is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RedisTarget {
    /// One Redis at this URL.
    Url(Secret),
    /// The master Sentinel names now.
    Sentinel(SentinelConfig),
    /// A Redis Cluster: each key on the master of its slot.
    Cluster(ClusterConfig),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterConfig {
    /// `host:port` of the nodes to start from.
    pub(crate) nodes: Vec<String>,
    pub(crate) password: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SentinelConfig {
    pub(crate) master_name: String,
    /// `host:port` of each sentinel.
    pub(crate) nodes: Vec<String>,
    pub(crate) password: Option<Secret>,
    pub(crate) sentinel_password: Option<Secret>,
}
