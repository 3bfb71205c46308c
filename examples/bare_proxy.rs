//! Benchmark baseline (not part of the gateway): the smallest pingora reverse proxy, with the
//! same pingora version, allocator, runtime and listener settings as the gateway but none of its
//! hooks (the allocator's lazy commit comes from `MIMALLOC_ARENA_EAGER_COMMIT=0`, as
//! bench/passthrough.sh starts it).
//! bench/passthrough.sh measures it beside the gateway, so the table separates what pingora
//! itself costs per request from what the gateway adds.
//!
//! cargo run --release --example bare_proxy -- LISTEN UPSTREAM [THREADS] [steal|nosteal]
//! (e.g. `127.0.0.1:8090 127.0.0.1:8091 1 nosteal`; the runtime defaults to the gateway's
//! default, `server.work_stealing: true`)

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
        eprintln!("usage: bare_proxy LISTEN UPSTREAM [THREADS] [steal|nosteal]");
        std::process::exit(2);
    }
    let threads = a.get(3).and_then(|t| t.parse().ok()).unwrap_or(1);
    let upstream: std::net::SocketAddr = a[2].parse().unwrap_or_else(|e| {
        eprintln!("{}: {e}", a[2]);
        std::process::exit(2)
    });
    let work_stealing = a.get(4).is_none_or(|s| s != "nosteal");
    let conf = ServerConf { threads, work_stealing, ..ServerConf::default() };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut peer = HttpPeer::new(upstream, false, String::new());
    peer.options.idle_timeout = Some(std::time::Duration::from_secs(60));
    let mut proxy = http_proxy_service(&server.configuration, Bare(Box::new(peer)));
    // The gateway's public listener reads without pingora's L4 read buffer (src/lib.rs).
    let unbuffered = pingora::listeners::L4BufferSettings::default().read(0);
    proxy.add_listener(pingora::listeners::ListenerConfig::tcp(&a[1]).l4_buffer(unbuffered));
    server.add_service(proxy);
    server.run_forever();
}
