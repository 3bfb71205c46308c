//! Benchmark baseline (not part of the gateway): the smallest pingora reverse proxy, with the
//! same pingora version, allocator and runtime settings as the gateway but none of its hooks.
//! bench/passthrough.sh measures it beside the gateway, so the table separates what pingora
//! itself costs per request from what the gateway adds.
//!
//! cargo run --release --example bare_proxy -- LISTEN UPSTREAM [THREADS]
//! (e.g. `127.0.0.1:8090 127.0.0.1:8091 1`)

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare(Box<HttpPeer>);

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(self.0.clone())
    }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 3 {
        eprintln!("usage: bare_proxy LISTEN UPSTREAM [THREADS]");
        std::process::exit(2);
    }
    let threads = a.get(3).and_then(|t| t.parse().ok()).unwrap_or(1);
    let upstream: std::net::SocketAddr = a[2].parse().unwrap_or_else(|e| {
        eprintln!("{}: {e}", a[2]);
        std::process::exit(2)
    });
    let conf = ServerConf { threads, ..ServerConf::default() };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut peer = HttpPeer::new(upstream, false, String::new());
    peer.options.idle_timeout = Some(std::time::Duration::from_secs(60));
    let mut proxy = http_proxy_service(&server.configuration, Bare(Box::new(peer)));
    proxy.add_tcp(&a[1]);
    server.add_service(proxy);
    server.run_forever();
}
