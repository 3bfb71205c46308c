//! Configuration: the only place that reads files.
//!
//! Loading runs in three steps: read the file, parse it (`yaml.rs` into the serde structs of
//! `raw.rs`, unknown keys rejected, `${ENV}` replaced), and validate it (`validate/`) into the
//! internal model below, which the rest of the crate uses. Every step reports every problem it
//! finds with the key path and, where known, the line; nothing here panics on bad input.

mod extras;
mod interpolate;
mod net;
pub mod raw;
mod validate;
mod yaml;

pub(crate) use self::extras::{GlobalRevocation, SessionManagement, Ssf, SsfReceiver};

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use crate::uri::is_loopback_host;
pub(crate) use net::{ClusterConfig, MtlsListener, RedisConfig, RedisTarget, SentinelConfig, TlsListener};
pub(crate) use validate::registered_client;

/// The validated configuration. Built only by [`load`] / [`load_str`].
#[derive(Debug, Clone)]
pub struct Config {
    /// The plain-http public listener (proxy + end_session); None: https only.
    pub(crate) listen: Option<SocketAddr>,
    /// The https public listener.
    pub(crate) tls: Option<TlsListener>,
    /// The mutual-TLS alias of end_session.
    pub(crate) mtls: Option<MtlsListener>,
    pub(crate) admin: Admin,
    pub(crate) upstream: Upstream,
    /// Exact `iss` of the upstream's tokens; also the `iss` the gateway sends to RPs.
    pub(crate) issuer: String,
    pub(crate) jwks: Jwks,
    pub(crate) end_session: EndSession,
    pub(crate) session_store: SessionStore,
    /// Registered relying parties by client_id.
    pub(crate) clients: BTreeMap<String, Client>,
    /// What clients learned from dynamic registration may do.
    pub(crate) registration: Registration,
    /// Absolute path of the handlebars templates.
    pub(crate) templates_dir: PathBuf,
    pub(crate) backchannel: BackchannelConfig,
    /// RFC 7009 revocation at the upstream after a logout; None: off.
    pub(crate) revocation: Option<Revocation>,
    pub(crate) limits: Limits,
    /// end_session requests per client address; None: unlimited.
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) log: Log,
    pub(crate) server: Server,
    /// The global token revocation endpoint; None: off.
    pub(crate) global_revocation: Option<GlobalRevocation>,
    /// The Shared Signals transmitter; None: off.
    pub(crate) ssf: Option<Ssf>,
    /// Session Management 1.0; None: off.
    pub(crate) session_management: Option<SessionManagement>,
}

/// `registration`: the limits on clients learned from dynamic registration (untrusted input).
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    /// Their post_logout_redirect_uris matching one of these are followed without asking.
    pub(crate) redirect_patterns: Vec<crate::uri::RedirectPattern>,
    /// Address blocks their back-channel URIs may reach besides public addresses.
    pub(crate) allowed_networks: Vec<crate::address::Network>,
    pub(crate) max_clients: u64,
    pub(crate) client_lifetime: Duration,
}

impl Default for Registration {
    fn default() -> Self {
        Registration {
            redirect_patterns: Vec::new(),
            allowed_networks: Vec::new(),
            max_clients: 10_000,
            client_lifetime: Duration::from_secs(90 * 86_400),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Admin {
    pub(crate) listen: SocketAddr,
    /// When set, the sessions API needs `Authorization: Bearer <token>`.
    pub(crate) token: Option<Secret>,
    /// `admin.allow_without_token` on a listener others can reach: warned about at start.
    pub(crate) exposed_without_token: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    /// The URL as written, for messages.
    pub(crate) url: String,
    /// Host name or IP literal (brackets removed), resolved by the proxy's DNS refresher.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    /// SNI and name to verify: `tls_server_name` when set, else the host.
    pub(crate) sni: String,
    /// `upstream.tls_server_name`: every connection to the upstream (proxied requests, the
    /// gateway's own fetches) presents and verifies this name instead of the host.
    pub(crate) tls_server_name: Option<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) trust_forwarded_headers: bool,
    pub(crate) session_cookies: Vec<String>,
    /// Canonical path prefixes (see `proxy::route::normalize`) where requests carrying an OP
    /// session cookie get the authorization endpoint's revoked-cookie check; empty by default.
    pub(crate) session_cookie_paths: Vec<String>,
    /// One expiring `Set-Cookie` per name and path (Keycloak sets its cookies on /realms/R/).
    pub(crate) session_cookie_expiry_paths: Vec<String>,
    /// Configured endpoint paths; None: learned from discovery.
    pub(crate) endpoints: EndpointPaths,
}

#[derive(Debug, Clone)]
pub(crate) struct Jwks {
    /// None: take `jwks_uri` from the upstream discovery document.
    pub(crate) uri: Option<String>,
    pub(crate) refresh_interval: Duration,
    /// An unknown kid refreshes the keys at most this often.
    pub(crate) min_refresh_interval: Duration,
}

#[derive(Debug, Clone)]
pub(crate) struct EndSession {
    /// Canonical paths (lower-case, no trailing slash) the gateway answers itself.
    pub(crate) paths: Vec<String>,
    pub(crate) require_id_token_hint: bool,
    pub(crate) reject_expired_id_token_hint: bool,
    pub(crate) accept_unknown_sid: bool,
    pub(crate) accept_access_token_hint: bool,
    /// Non-empty: unregistered post_logout_redirect_uris matching one of these are allowed.
    pub(crate) unregistered_redirect_uri_patterns: Vec<crate::uri::RedirectPattern>,
    pub(crate) frontchannel_timeout: Duration,
    pub(crate) confirmation_ttl: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Backend {
    Redis(RedisConfig),
    Memory,
}

#[derive(Debug, Clone)]
pub(crate) struct SessionStore {
    pub(crate) backend: Backend,
    pub(crate) key_prefix: String,
    pub(crate) session_ttl: Duration,
    pub(crate) tombstone_ttl: Duration,
    /// Revocation of an access token lasts its `expires_in`, at most this (and this without one).
    pub(crate) access_token_ttl: Duration,
    /// The same for refresh tokens (`refresh_expires_in`).
    pub(crate) refresh_token_ttl: Duration,
}

/// One relying party. URIs are kept byte for byte as configured (RPI-21 matches exactly).
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// Shown on the confirmation page (escaped) when the request proved this client.
    pub(crate) client_name: Option<String>,
    pub(crate) post_logout_redirect_uris: Vec<String>,
    pub(crate) default_post_logout_redirect_uri: Option<String>,
    pub(crate) frontchannel_logout_uri: Option<String>,
    pub(crate) frontchannel_logout_session_required: bool,
    pub(crate) backchannel_logout_uri: Option<String>,
    pub(crate) backchannel_logout_session_required: bool,
    /// How to authenticate as this client at the upstream's revocation endpoint; None: its
    /// tokens are not revoked there (only refused at the edge).
    pub(crate) revocation: Option<RevocationAuth>,
    /// Learned from dynamic registration (untrusted metadata), not configured in proxy.yaml.
    pub(crate) registered: bool,
}

impl Client {
    /// A client with these post-logout redirect URIs and nothing else (for the fuzz targets).
    #[doc(hidden)]
    pub fn redirecting_to(post_logout_redirect_uris: Vec<String>) -> Client {
        Client { post_logout_redirect_uris, ..Client::default() }
    }
}

/// Client authentication for RFC 7009 calls (RFC 6749 §2.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RevocationAuth {
    Basic(Secret),
    Post(Secret),
    /// A public client: only `client_id` in the form.
    Public,
}

/// `revocation`: the upstream's revocation endpoint is called for a logged-out session's tokens.
#[derive(Debug, Clone)]
pub(crate) struct Revocation {
    pub(crate) encryption_key: TokenKey,
    pub(crate) timeout: Duration,
}

/// The AES-256-GCM key for tokens kept for revocation; never printed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct TokenKey(pub Vec<u8>);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// Back-channel logout (see `backchannel`).
#[derive(Debug, Clone)]
pub(crate) struct BackchannelConfig {
    /// The configured signing key's PEM, read at load; None: generated and shared via the store.
    pub(crate) signing_key_pem: Option<Secret>,
    /// Algorithm for generated keys.
    pub(crate) algorithm: jsonwebtoken::Algorithm,
    pub(crate) key_rotation: Duration,
    /// Per delivery attempt (connect and whole request).
    pub(crate) timeout: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) retry_initial: Duration,
    pub(crate) retry_max: Duration,
    /// Deliveries in flight per instance.
    pub(crate) concurrency: usize,
    /// A notice another instance took and did not finish within this is taken over.
    pub(crate) claim_after: Duration,
    /// How long a logout waits for deliveries before answering (RPI-22); zero: no wait.
    pub(crate) wait_before_redirect: Duration,
    /// How often an idle worker looks for work from other instances.
    pub(crate) poll_interval: Duration,
}

/// What the public listener accepts from one client (see `proxy::guard` and `proxy::limits`).
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) header_timeout: Duration,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) max_uri_length: usize,
    pub(crate) max_headers: usize,
    pub(crate) max_header_bytes: usize,
    pub(crate) end_session_max_uri_length: usize,
    pub(crate) end_session_max_headers: usize,
    pub(crate) end_session_max_header_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimit {
    pub(crate) per_second: std::num::NonZeroU32,
    pub(crate) burst: std::num::NonZeroU32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub(crate) struct Log {
    pub(crate) level: String,
    pub(crate) format: LogFormat,
    /// The access log (one line per request) is on.
    pub(crate) access: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Server {
    pub(crate) threads: usize,
    /// `server.work_stealing`: one work-stealing runtime per service instead of one runtime per thread.
    pub(crate) work_stealing: bool,
    pub(crate) grace_period: Duration,
    pub(crate) shutdown_timeout: Duration,
    /// `server.upgrade_sock`: where `run --upgrade` receives the listening sockets.
    pub(crate) upgrade_sock: PathBuf,
}

/// A string that never shows in logs or Debug output.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// Key path such as `clients.rp1.post_logout_redirect_uris[0]`; empty for the whole file.
    pub(crate) path: String,
    pub(crate) line: Option<usize>,
    pub(crate) message: String,
}

/// Everything wrong with a config file, in file order.
#[derive(Debug, Clone)]
pub struct Problems(pub(crate) Vec<Problem>);

impl Problems {
    /// One line per problem: `FILE:LINE: key.path: message`.
    pub fn render(&self, file: &str) -> String {
        let mut out = String::new();
        for p in &self.0 {
            out.push_str(file);
            if let Some(l) = p.line {
                out.push_str(&format!(":{l}"));
            }
            out.push_str(": ");
            if !p.path.is_empty() {
                out.push_str(&p.path);
                out.push_str(": ");
            }
            out.push_str(&p.message);
            out.push('\n');
        }
        out
    }
}

/// Read, parse and validate a config file. Relative paths in it resolve against its directory.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Problems> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problems(vec![Problem { path: String::new(), line: None, message: format!("cannot read: {e}") }])
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_str(&text, &base, env)
}

/// Parse and validate config text; `base` is the directory relative paths resolve against.
pub(crate) fn load_str(text: &str, base: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Problems> {
    let (raw, mut problems, index) = yaml::parse(text, env)?;
    // Validate what parsed even when keys were dropped, so one run lists every problem.
    let config = match raw.map(|raw| validate::validate(raw, base)) {
        Some(Ok(c)) if problems.is_empty() => return Ok(c),
        Some(Err(found)) => found,
        _ => Vec::new(),
    };
    for mut p in config {
        p.line = index.line_of(&p.path);
        problems.push(p);
    }
    problems.sort_by_key(|p| p.line.unwrap_or(0));
    Err(Problems(problems))
}

/// The process environment, for `load`.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Paths of the OP's endpoints: configured (`upstream.endpoints`), or learned from discovery
/// (those on the issuer's origin).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct EndpointPaths {
    pub(crate) authorization: Option<String>,
    pub(crate) token: Option<String>,
    pub(crate) userinfo: Option<String>,
    pub(crate) introspection: Option<String>,
    pub(crate) revocation: Option<String>,
    pub(crate) registration: Option<String>,
}
