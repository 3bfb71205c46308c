//! The upstream peer: one prebuilt `HttpPeer`, cloned per request.
//!
//! pingora's `HttpPeer::new` resolves names with a blocking call and panics when resolution
//! fails (cloudflare/pingora#570), so the gateway resolves the upstream host itself: once at
//! start and then every [`DNS_REFRESH`] in a background service, keeping the last good address.
//! Until a name resolves, requests get 502 instead of a panic.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use pingora::prelude::HttpPeer;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::config::Upstream as UpstreamConfig;

/// How often a host name is looked up again.
pub(crate) const DNS_REFRESH: Duration = Duration::from_secs(30);

pub(crate) struct UpstreamPeer {
    config: UpstreamConfig,
    /// The peer for the last good address; None until the host has resolved once.
    peer: ArcSwapOption<HttpPeer>,
}

impl UpstreamPeer {
    /// Builds the peer, resolving the host now (blocking, at start only).
    pub(crate) fn new(config: UpstreamConfig) -> Arc<Self> {
        let this = Arc::new(Self { config, peer: ArcSwapOption::empty() });
        match resolve(&this.config.host, this.config.port) {
            Ok(addr) => this.set_addr(addr),
            Err(e) => {
                tracing::warn!(host = %this.config.host, error = %e, "upstream host does not resolve yet; answering 502 until it does")
            }
        }
        this
    }

    /// A peer for one request, or None while the host has never resolved.
    pub(crate) fn get(&self) -> Option<Box<HttpPeer>> {
        self.peer.load().as_deref().map(|p| Box::new(p.clone()))
    }

    /// Whether the host is a name that needs periodic lookups.
    pub(crate) fn needs_dns(&self) -> bool {
        self.config.host.parse::<std::net::IpAddr>().is_err()
    }

    fn set_addr(&self, addr: SocketAddr) {
        let c = &self.config;
        if self.peer.load().as_deref().is_some_and(|p| p._address.to_string() == addr.to_string()) {
            return;
        }
        let mut peer = HttpPeer::new(addr, c.tls, c.sni.clone());
        let o = &mut peer.options;
        o.connection_timeout = Some(c.connect_timeout);
        // TCP plus TLS handshake.
        o.total_connection_timeout = Some(c.connect_timeout * 2);
        o.read_timeout = Some(c.read_timeout);
        o.write_timeout = Some(c.read_timeout);
        // Below the upstream's own keep-alive timeout, so a pooled connection is never one the
        // upstream already closed (a POST on such a connection cannot be retried safely).
        o.idle_timeout = Some(c.idle_timeout);
        o.verify_cert = true;
        o.verify_hostname = true;
        self.peer.store(Some(Arc::new(peer)));
        tracing::info!(upstream = %c.url, %addr, "upstream address");
    }
}

fn resolve(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))
}

/// Background service that keeps [`UpstreamPeer`] pointing at the host's current address.
pub(crate) struct DnsRefresher(pub Arc<UpstreamPeer>);

#[async_trait]
impl BackgroundService for DnsRefresher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(DNS_REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = shutdown.changed() => {
                    // A closed channel is not a shutdown request (pingora-load-balancing does the same).
                    if changed.is_ok() && *shutdown.borrow() { return; }
                    if changed.is_err() { std::future::pending::<()>().await; }
                }
                _ = tick.tick() => {
                    let (host, port) = (self.0.config.host.clone(), self.0.config.port);
                    match tokio::task::spawn_blocking(move || resolve(&host, port)).await {
                        Ok(Ok(addr)) => self.0.set_addr(addr),
                        Ok(Err(e)) => tracing::warn!(host = %self.0.config.host, error = %e, "upstream DNS lookup failed; keeping the last address"),
                        Err(_) => {}
                    }
                }
            }
        }
    }
}
