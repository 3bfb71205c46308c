//! logout-gateway: a pingora reverse proxy in front of an OpenID Connect provider that passes
//! its traffic through and takes over logout.
//!
//! Crate map (see ARCHITECTURE.md for the bird's-eye view):
//! - [`config`]: read, parse and validate proxy.yaml into [`config::Config`]; the only file reader.
//! - [`proxy`]: the public listener's `ProxyHttp` hooks, path routing, the upstream peer.
//! - [`admin`]: `/metrics`, `/healthz`, `/readyz` on the admin listener.
//! - [`logout`]: end_session: parameters, the decision table, confirmation, front-channel page.
//! - [`oidc`]: the upstream's signing keys and id_token_hint validation.
//! - [`learn`]: sessions learned from proxied token responses.
//! - [`session`]: the session store trait with Redis and memory implementations.
//! - [`render`]: handlebars pages from `templates_dir`.
//! - [`metrics`]: every Prometheus metric.
//! - [`telemetry`]: logging set-up.
//! - `fault` (feature `fault-injection`, tests only): a request path that panics.
//!
//! [`prepare`] turns a validated config into a ready-to-run pingora `Server`; `main.rs` only
//! parses the command line, loads the config and calls it (or [`check_templates`]).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
// Crate-private by default: an item is `pub` only when reachable from outside (see `probe`).
#![warn(unreachable_pub)]

pub(crate) mod address;
pub(crate) mod admin;
pub(crate) mod backchannel;
pub(crate) mod clients;
pub mod config;
pub(crate) mod cookies;
pub(crate) mod crypto;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub(crate) mod learn;
pub(crate) mod lifecycle;
pub(crate) mod logout;
pub(crate) mod metrics;
pub(crate) mod oidc;
pub(crate) mod proxy;
pub(crate) mod render;
pub(crate) mod revoke;
pub(crate) mod serving;
pub(crate) mod session;
pub(crate) mod ssf;
pub(crate) mod telemetry;
pub(crate) mod tls;
pub(crate) mod uri;

/// The pure functions over untrusted input that the fuzz targets, the examples and the
/// integration tests call directly. Everything else is crate-private; this is not a stable API.
#[doc(hidden)]
pub mod probe {
    pub use crate::crypto::token_hash;
    pub use crate::uri::{decode, percent_decode, RedirectPattern};
    /// end_session's parameters.
    pub mod params {
        pub use crate::logout::params::{LogoutParams, ParamError, KNOWN, MAX_INPUT, MAX_PAIRS};
    }
    /// The logout decision table.
    pub mod decide {
        pub use crate::config::Client;
        pub use crate::logout::decide::{plan, HintCheck, HintClaims, Plan, Policy, Reject};
    }
    /// URLs the logout builds.
    pub mod logout_uri {
        pub use crate::logout::uri::{append_query, encode_component, frontchannel_url, origin, redirect_with_state};
    }
    /// The id_token_hint's JOSE header check.
    pub mod hint {
        pub use crate::oidc::hint::{inspect_header, HeaderVerdict, MAX_HINT};
    }
    /// Credentials found in a request.
    pub mod credentials {
        pub use crate::learn::credentials::{authorization_token, scan, Source};
    }
    /// The in-memory set of revoked credentials.
    pub mod revoked {
        pub use crate::session::revoked::{key_of_digest, RevokedSet, Verdict};
    }
}

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use pingora::apps::http_app::HttpServer;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;
use pingora::services::listening::Service;

use crate::config::Config;
use crate::lifecycle::listen::Bound;
use crate::lifecycle::parts::Parts;
pub use crate::lifecycle::Process;
pub use crate::serving::health;
use crate::serving::Serving;

/// L4 read buffer of a plain public-listener connection: none (see `public_service`).
const PUBLIC_READ_BUFFER: usize = 0;

/// Seconds for pingora, rounding up so `500ms` is not zero.
fn whole_secs(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Why the server could not be built from a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("templates: {0}")]
    Templates(String),
    #[error("upstream keys client: {0}")]
    Jwks(String),
    #[error("revocation: {0}")]
    Revocation(String),
    #[error("back-channel: {0}")]
    Backchannel(String),
    #[error("tls: {0}")]
    Tls(String),
}

/// A public-facing service: the proxy (its current gateway, replaced on reload) behind the
/// connection cap and the request-header deadline (see `proxy::guard`), bound by `lifecycle`.
type PublicService = Bound<Service<proxy::guard::Guarded<pingora::proxy::HttpProxy<proxy::live::Live>>>>;

fn guarded(
    config: &Config,
    server: &Server,
    live: proxy::live::Live,
    name: &str,
) -> Service<proxy::guard::Guarded<pingora::proxy::HttpProxy<proxy::live::Live>>> {
    let app = proxy::guard::Guarded::new(
        pingora::proxy::http_proxy(&server.configuration, live),
        config.limits.max_connections,
        config.limits.header_timeout,
    );
    Service::new(name.to_string(), app)
}

/// TLS 1.2/1.3 with the pair `certs` presents (rotated while serving), HTTP/2 and HTTP/1.1 by
/// ALPN; with `client_cas`, a client certificate chaining to one of them is required.
fn tls_settings(
    certs: Arc<tls::Certs>,
    client_cas: Option<Arc<pingora::tls::RootCertStore>>,
) -> std::result::Result<pingora::listeners::tls::TlsSettings, BuildError> {
    let mut s =
        pingora::listeners::tls::TlsSettings::intermediate("", "").map_err(|e| BuildError::Tls(e.to_string()))?;
    s.set_cert_resolver(certs);
    if let Some(roots) = client_cas {
        let verifier =
            pingora::tls::WebPkiClientVerifier::builder(roots).build().map_err(|e| BuildError::Tls(e.to_string()))?;
        s.set_client_cert_verifier(verifier);
    }
    s.enable_h2();
    Ok(s)
}

/// The public listeners: plain http (`listen`) and https (`tls`), one service.
fn public_service(
    config: &Config,
    server: &Server,
    live: proxy::live::Live,
    serving: &Arc<Serving>,
    certs: Option<Arc<tls::Certs>>,
) -> std::result::Result<PublicService, BuildError> {
    let mut public = guarded(config, server, live, "public proxy");
    let mut addrs = Vec::new();
    if let Some(listen) = config.listen {
        // pingora reads through a 64 KiB buffer per connection by default (sized for TLS
        // records), which an idle keep-alive connection keeps. HTTP/1 parsing reads into the
        // session's own header buffer anyway, so on this plain listener reads go straight to
        // the socket: no buffer to hold, one copy less (docs/performance.md, memory).
        public.add_listener(
            pingora::listeners::ListenerConfig::tcp(listen.to_string())
                .l4_buffer(pingora::listeners::L4BufferSettings::default().read(PUBLIC_READ_BUFFER)),
        );
        addrs.push(listen.to_string());
    }
    if let (Some(t), Some(certs)) = (&config.tls, certs) {
        public.add_listener(
            pingora::listeners::ListenerConfig::tcp(t.listen.to_string()).tls(tls_settings(certs, None)?),
        );
        addrs.push(t.listen.to_string());
    }
    Ok(Bound::new(public, "public", addrs, serving.clone()))
}

/// The mutual-TLS alias: end_session and its confirmation only, client certificate required.
fn mtls_service(
    config: &Config,
    server: &Server,
    current: Arc<ArcSwap<proxy::Gateway>>,
    serving: &Arc<Serving>,
    certs: Arc<tls::Certs>,
) -> std::result::Result<Option<PublicService>, BuildError> {
    let Some(m) = &config.mtls else { return Ok(None) };
    let roots = tls::load_roots(&m.client_ca_file).map_err(BuildError::Tls)?;
    let live = proxy::live::Live { current, only_logout: true };
    let mut svc = guarded(config, server, live, "mtls alias");
    svc.add_listener(
        pingora::listeners::ListenerConfig::tcp(m.tls.listen.to_string()).tls(tls_settings(certs, Some(roots))?),
    );
    Ok(Some(Bound::new(svc, "mtls", vec![m.tls.listen.to_string()], serving.clone())))
}

/// The admin listener: metrics, health, the sessions API (one thread).
fn admin_service(
    config: &Config,
    parts: &Parts,
    serving: &Arc<Serving>,
) -> Bound<Service<HttpServer<admin::AdminApp>>> {
    let app = admin::AdminApp {
        store: parts.store.clone(),
        token: config.admin.token.clone(),
        notifier: parts.notifier.clone(),
        serving: serving.clone(),
    };
    let mut admin = Service::new("admin".to_string(), HttpServer::new_app(app));
    admin.threads = Some(1);
    let addr = config.admin.listen.to_string();
    admin.add_tcp(&addr);
    Bound::new(admin, "admin", vec![addr], serving.clone())
}

/// Compile the pages of `templates_dir` (what `check` does besides validating the file).
pub fn check_templates(config: &Config) -> std::result::Result<(), String> {
    render::Pages::load(&config.templates_dir).map(|_| ())
}

/// What `run` does before serving: logging and the panic hook as configured, one rustls crypto
/// provider for every TLS user (pingora, Redis), then the process built from `config` (read
/// from `path`, which SIGHUP re-reads). With `upgrade`, the listening sockets come from the
/// running process over `server.upgrade_sock` (it hands them over on SIGQUIT).
pub fn prepare(config: Config, path: &Path, upgrade: bool) -> std::result::Result<Process, BuildError> {
    lifecycle::ignore_until_handled();
    telemetry::init(&config.log);
    telemetry::install_panic_hook();
    pingora::tls::install_default_crypto_provider();
    let listen = config.listen.map(|l| l.to_string()).unwrap_or_else(|| "-".into());
    let tls = config.tls.as_ref().map(|t| t.listen.to_string()).unwrap_or_else(|| "-".into());
    let mtls = config.mtls.as_ref().map(|m| m.tls.listen.to_string()).unwrap_or_else(|| "-".into());
    let admin = config.admin.listen;
    if config.admin.exposed_without_token {
        tracing::warn!(%admin, "the admin listener is reachable beyond loopback without admin.token (admin.allow_without_token): anyone who reaches it can end every session");
    }
    lifecycle::upgrade::warn_if_shared(&config.server.upgrade_sock);
    let process = build(config, path, upgrade)?;
    tracing::info!(%listen, %tls, %mtls, %admin, version = env!("CARGO_PKG_VERSION"), commit = env!("LGW_COMMIT"), upgrade, "logout-gateway starting");
    Ok(process)
}

/// The pingora server with the process settings of `config` (threads, shutdown timings, the
/// upstream's CA bundle, the upgrade socket), bootstrapped: with `upgrade`, that is where the
/// running process's listening sockets are received.
fn pingora_server(config: &Config, upgrade: bool) -> Server {
    let mut conf = ServerConf {
        threads: config.server.threads,
        work_stealing: config.server.work_stealing,
        ..ServerConf::default()
    };
    conf.grace_period_seconds = Some(whole_secs(config.server.grace_period));
    conf.graceful_shutdown_timeout_seconds = Some(whole_secs(config.server.shutdown_timeout));
    conf.ca_file = config.upstream.ca_file.as_ref().map(|p| p.display().to_string());
    conf.upgrade_sock = config.server.upgrade_sock.display().to_string();
    let opt = Opt { upgrade, ..Opt::default() };
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    server.bootstrap();
    server
}

/// The long-lived parts, with the background services that keep them current.
fn parts(config: &Config, server: &mut Server) -> std::result::Result<Parts, BuildError> {
    let (store, follower) = session::build(&config.session_store);
    if let Some(f) = follower {
        server.add_service(background_service("revocation feed", f));
    }
    let upstream = proxy::upstream::UpstreamPeer::new(config.upstream.clone());
    if upstream.needs_dns() {
        server.add_service(background_service("upstream dns", proxy::upstream::DnsRefresher(upstream.clone())));
    }
    let jwks = oidc::jwks::Jwks::new(config).map_err(BuildError::Jwks)?;
    let interval = config.jwks.refresh_interval;
    server.add_service(background_service("upstream keys", oidc::jwks::JwksRefresher { jwks: jwks.clone(), interval }));
    let clients = Arc::new(clients::Clients::new(&config.clients, config.registration.clone(), store.clone()));
    let revoker = match &config.revocation {
        Some(r) => Some(
            revoke::Revoker::new(r, &config.upstream.endpoints, clients.clone(), jwks.clone())
                .map_err(BuildError::Revocation)?,
        ),
        None => None,
    };
    let backchannel =
        backchannel::Backchannel::new(config, clients.clone(), store.clone()).map_err(BuildError::Backchannel)?;
    server.add_service(background_service("back-channel", backchannel::BackchannelService(backchannel.clone())));
    let ssf =
        config.ssf.clone().map(|c| ssf::Transmitter::new(c, &config.issuer, store.clone(), backchannel.keys.clone()));
    let notifier =
        logout::notify::Notifier { backchannel: backchannel.clone(), revoker: revoker.clone(), ssf: ssf.clone() };
    let cookies = cookies::OpCookies::new(config);
    Ok(Parts { upstream, store, jwks, clients, revoker, backchannel, notifier, cookies, ssf })
}

/// The pairs of the https and mutual-TLS listeners, with the service that follows their files.
fn certificates(
    config: &Config,
    server: &mut Server,
) -> std::result::Result<Arc<lifecycle::certs::CertSet>, BuildError> {
    let mut set = lifecycle::certs::CertSet::default();
    let pairs = [("tls", config.tls.as_ref()), ("mtls", config.mtls.as_ref().map(|m| &m.tls))];
    for (section, t) in pairs {
        if let Some(t) = t {
            let certs = tls::Certs::new(&t.cert_file, &t.key_file)
                .map_err(|e| BuildError::Tls(format!("{section}.{}: {}", e.part.key(), e.message)))?;
            set.0.push((section, certs));
        }
    }
    let set = Arc::new(set);
    if !set.0.is_empty() {
        server.add_service(background_service("certificates", lifecycle::certs::CertWatcher(set.clone())));
    }
    Ok(set)
}

/// Build the process: public proxy, admin listener, background services, signals. Nothing
/// async runs yet (pingora starts runtimes in `run`); nothing here panics on configuration input.
fn build(config: Config, path: &Path, upgrade: bool) -> std::result::Result<Process, BuildError> {
    let pages = Arc::new(render::Pages::load(&config.templates_dir).map_err(BuildError::Templates)?);
    // Register every metric now, so /metrics lists them (at zero) before the first request.
    metrics::Metrics::get();
    let mut server = pingora_server(&config, upgrade);
    let parts = Arc::new(parts(&config, &mut server)?);
    let serving = Arc::new(Serving::default());
    let live = Arc::new(ArcSwap::from_pointee(parts.gateway(&config, pages)));
    let certs = certificates(&config, &mut server)?;
    let public_live = proxy::live::Live { current: live.clone(), only_logout: false };
    let tls_certs = certs.0.iter().find(|c| c.0 == "tls").map(|c| c.1.clone());
    server.add_service(public_service(&config, &server, public_live, &serving, tls_certs)?);
    if let Some(mtls_certs) = certs.0.iter().find(|c| c.0 == "mtls").map(|c| c.1.clone()) {
        if let Some(svc) = mtls_service(&config, &server, live.clone(), &serving, mtls_certs)? {
            server.add_service(svc);
        }
    }
    server.add_service(admin_service(&config, &parts, &serving));
    let successor =
        lifecycle::upgrade::Successor { config: path.to_path_buf(), upgrade_sock: config.server.upgrade_sock.clone() };
    let reloader = Arc::new(lifecycle::reload::Reloader::new(path.to_path_buf(), config, parts, live, certs));
    Ok(Process { server, signals: lifecycle::signals::Signals { reloader, serving, successor } })
}
