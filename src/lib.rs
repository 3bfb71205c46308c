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
pub(crate) mod logout;
pub(crate) mod metrics;
pub(crate) mod oidc;
pub(crate) mod proxy;
pub(crate) mod render;
pub(crate) mod revoke;
pub(crate) mod session;
pub(crate) mod telemetry;
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

use std::sync::Arc;

use pingora::apps::http_app::HttpServer;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;
use pingora::services::listening::Service;

use crate::config::Config;

/// Read buffer of a public-listener connection (see `build`).
const PUBLIC_READ_BUFFER: usize = 8 * 1024;

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
}

/// The public listener: the proxy behind the connection cap and the request-header deadline
/// (see `proxy::guard`).
fn public_service(
    config: &Config,
    server: &Server,
    gateway: proxy::Gateway,
) -> Service<proxy::guard::Guarded<pingora::proxy::HttpProxy<proxy::Gateway>>> {
    let app = proxy::guard::Guarded::new(
        pingora::proxy::http_proxy(&server.configuration, gateway),
        config.limits.max_connections,
        config.limits.header_timeout,
    );
    let mut public = Service::new("public proxy".to_string(), app);
    // pingora reads through a 64 KiB buffer per connection by default (sized for TLS records);
    // on this plain listener requests are small, and the buffer is zeroed when allocated, so
    // 1,000 clients would hold up to ~64 MiB (issue 8's memory figures).
    public.add_listener(
        pingora::listeners::ListenerConfig::tcp(config.listen.to_string())
            .l4_buffer(pingora::listeners::L4BufferSettings::default().read(PUBLIC_READ_BUFFER)),
    );
    public
}

/// The admin listener: metrics, health, the sessions API (one thread).
fn admin_service(
    config: &Config,
    store: Arc<dyn session::SessionStore>,
    notifier: logout::notify::Notifier,
) -> Service<HttpServer<admin::AdminApp>> {
    let app = admin::AdminApp { store, token: config.admin.token.clone(), notifier };
    let mut admin = Service::new("admin".to_string(), HttpServer::new_app(app));
    admin.threads = Some(1);
    admin.add_tcp(&config.admin.listen.to_string());
    admin
}

/// Compile the pages of `templates_dir` (what `check` does besides validating the file).
pub fn check_templates(config: &Config) -> std::result::Result<(), String> {
    render::Pages::load(&config.templates_dir).map(|_| ())
}

/// What `run` does before serving: logging and the panic hook as configured, one rustls crypto
/// provider for every TLS user (pingora, Redis), then the server built from `config`.
pub fn prepare(config: Config) -> std::result::Result<Server, BuildError> {
    telemetry::init(&config.log);
    telemetry::install_panic_hook();
    pingora::tls::install_default_crypto_provider();
    let (listen, admin) = (config.listen, config.admin.listen);
    if config.admin.exposed_without_token {
        tracing::warn!(%admin, "the admin listener is reachable beyond loopback without admin.token (admin.allow_without_token): anyone who reaches it can end every session");
    }
    let server = build(config)?;
    tracing::info!(%listen, %admin, version = env!("CARGO_PKG_VERSION"), "logout-gateway starting");
    Ok(server)
}

/// The pingora server with the process settings of `config` (threads, shutdown timings, the
/// upstream's CA bundle), bootstrapped.
fn pingora_server(config: &Config) -> Server {
    let mut conf = ServerConf { threads: config.server.threads, ..ServerConf::default() };
    conf.grace_period_seconds = Some(whole_secs(config.server.grace_period));
    conf.graceful_shutdown_timeout_seconds = Some(whole_secs(config.server.shutdown_timeout));
    conf.ca_file = config.upstream.ca_file.as_ref().map(|p| p.display().to_string());
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    server
}

/// What the public listener's hooks share.
fn gateway(
    config: &Config,
    upstream: Arc<proxy::upstream::UpstreamPeer>,
    pages: Arc<render::Pages>,
    logout: Arc<logout::Logout>,
    learner: Arc<learn::Learner>,
    signing_keys: Arc<crypto::keys::Keys>,
) -> proxy::Gateway {
    let jwks = learner.jwks.clone();
    let issuer_origin = url::Url::parse(&config.issuer).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    let published = proxy::Published {
        discovery_path: jwks.discovery_url().path().to_string(),
        end_session_endpoint: format!(
            "{issuer_origin}{}",
            config.end_session.paths.first().cloned().unwrap_or_default()
        ),
        jwks,
        signing_keys,
    };
    proxy::Gateway {
        upstream,
        end_session_paths: config.end_session.paths.clone(),
        pages,
        trust_forwarded_headers: config.upstream.trust_forwarded_headers,
        logout,
        published,
        learner,
        limits: proxy::limits::Limits::new(&config.limits, config.rate_limit, config.upstream.trust_forwarded_headers),
        #[cfg(feature = "fault-injection")]
        fault_armed: fault::armed_by_env(),
    }
}

/// Build the server: public proxy, admin listener, background services. Nothing async runs
/// yet (pingora starts runtimes in `run`); nothing here panics on configuration input.
fn build(config: Config) -> std::result::Result<Server, BuildError> {
    let pages = Arc::new(render::Pages::load(&config.templates_dir).map_err(BuildError::Templates)?);
    // Register every metric now, so /metrics lists them (at zero) before the first request.
    metrics::Metrics::get();
    let mut server = pingora_server(&config);
    let (store, follower) = session::build(&config.session_store);
    if let Some(f) = follower {
        server.add_service(background_service("revocation feed", f));
    }
    let upstream = proxy::upstream::UpstreamPeer::new(config.upstream.clone());
    if upstream.needs_dns() {
        server.add_service(background_service("upstream dns", proxy::upstream::DnsRefresher(upstream.clone())));
    }
    let jwks = oidc::jwks::Jwks::new(&config).map_err(BuildError::Jwks)?;
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
        backchannel::Backchannel::new(&config, clients.clone(), store.clone()).map_err(BuildError::Backchannel)?;
    server.add_service(background_service("back-channel", backchannel::BackchannelService(backchannel.clone())));
    // One value for the OP's cookies: what the edge learns of where they live, logout uses.
    let cookies = cookies::OpCookies::new(&config);
    let notifier = logout::notify::Notifier { backchannel: backchannel.clone(), revoker: revoker.clone() };
    let logout = Arc::new(logout::Logout::new(
        &config,
        clients.clone(),
        store.clone(),
        jwks.clone(),
        pages.clone(),
        notifier.clone(),
        cookies.clone(),
    ));
    let learner = Arc::new(learn::Learner::new(&config, jwks, clients, store.clone(), revoker, cookies));
    let gateway = gateway(&config, upstream, pages, logout, learner, backchannel.keys.clone());
    server.add_service(public_service(&config, &server, gateway));
    server.add_service(admin_service(&config, store, notifier));
    Ok(server)
}
