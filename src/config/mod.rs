//! Configuration: the only place that reads files.
//!
//! Loading runs in three steps: read the file, parse it (`yaml.rs` into the serde structs of
//! `raw.rs`, unknown keys rejected, `${ENV}` replaced), and validate it (`validate.rs`) into the
//! internal model below, which the rest of the crate uses. Every step reports every problem it
//! finds with the key path and, where known, the line; nothing here panics on bad input.

pub mod raw;
mod validate;
mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::uri::is_loopback_host;
pub use validate::{parse_duration, registered_client};

/// The validated configuration. Built only by [`load`] / [`load_str`].
#[derive(Debug, Clone)]
pub struct Config {
    /// The public listener (proxy + end_session).
    pub listen: SocketAddr,
    pub admin: Admin,
    pub upstream: Upstream,
    /// Exact `iss` of the upstream's tokens; also the `iss` the gateway sends to RPs.
    pub issuer: String,
    pub jwks: Jwks,
    pub end_session: EndSession,
    pub session_store: SessionStore,
    /// Registered relying parties by client_id.
    pub clients: BTreeMap<String, Client>,
    /// What clients learned from dynamic registration may do.
    pub registration: Registration,
    /// Absolute path of the handlebars templates.
    pub templates_dir: PathBuf,
    pub backchannel: BackchannelConfig,
    /// RFC 7009 revocation at the upstream after a logout; None: off.
    pub revocation: Option<Revocation>,
    pub limits: Limits,
    /// end_session requests per client address; None: unlimited.
    pub rate_limit: Option<RateLimit>,
    pub log: Log,
    pub server: Server,
}

/// `registration`: the limits on clients learned from dynamic registration (untrusted input).
#[derive(Debug, Clone)]
pub struct Registration {
    /// Their post_logout_redirect_uris matching one of these are followed without asking.
    pub redirect_patterns: Vec<crate::uri::RedirectPattern>,
    /// Address blocks their back-channel URIs may reach besides public addresses.
    pub allowed_networks: Vec<crate::address::Network>,
    pub max_clients: u64,
    pub client_lifetime: Duration,
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
pub struct Admin {
    pub listen: SocketAddr,
    /// When set, the sessions API needs `Authorization: Bearer <token>`.
    pub token: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    /// The URL as written, for messages.
    pub url: String,
    /// Host name or IP literal (brackets removed), resolved by the proxy's DNS refresher.
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// SNI and name to verify; the host for names, empty never (empty disables verification).
    pub sni: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
    pub ca_file: Option<PathBuf>,
    pub trust_forwarded_headers: bool,
    pub session_cookies: Vec<String>,
    /// Canonical path prefixes (see `proxy::route::normalize`) where requests carrying an OP
    /// session cookie get the authorization endpoint's revoked-cookie check; empty by default.
    pub session_cookie_paths: Vec<String>,
    /// One expiring `Set-Cookie` per name and path (Keycloak sets its cookies on /realms/R/).
    pub session_cookie_expiry_paths: Vec<String>,
    /// Configured endpoint paths; None: learned from discovery.
    pub endpoints: EndpointPaths,
}

#[derive(Debug, Clone)]
pub struct Jwks {
    /// None: take `jwks_uri` from the upstream discovery document.
    pub uri: Option<String>,
    pub refresh_interval: Duration,
    /// An unknown kid refreshes the keys at most this often.
    pub min_refresh_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndSessionMode {
    /// The gateway answers end_session itself.
    Terminate,
}

#[derive(Debug, Clone)]
pub struct EndSession {
    /// Canonical paths (lower-case, no trailing slash) the gateway answers itself.
    pub paths: Vec<String>,
    pub mode: EndSessionMode,
    pub require_id_token_hint: bool,
    pub reject_expired_id_token_hint: bool,
    pub accept_unknown_sid: bool,
    pub accept_access_token_hint: bool,
    /// Non-empty: unregistered post_logout_redirect_uris matching one of these are allowed.
    pub unregistered_redirect_uri_patterns: Vec<crate::uri::RedirectPattern>,
    pub frontchannel_timeout: Duration,
    pub confirmation_ttl: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Redis(RedisConfig),
    Memory,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub url: Secret,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct SessionStore {
    pub backend: Backend,
    pub key_prefix: String,
    pub session_ttl: Duration,
    pub tombstone_ttl: Duration,
    /// Revocation of an access token lasts its `expires_in`, at most this (and this without one).
    pub access_token_ttl: Duration,
    /// The same for refresh tokens (`refresh_expires_in`).
    pub refresh_token_ttl: Duration,
}

/// One relying party. URIs are kept byte for byte as configured (RPI-21 matches exactly).
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub post_logout_redirect_uris: Vec<String>,
    pub default_post_logout_redirect_uri: Option<String>,
    pub frontchannel_logout_uri: Option<String>,
    pub frontchannel_logout_session_required: bool,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    /// How to authenticate as this client at the upstream's revocation endpoint; None: its
    /// tokens are not revoked there (only refused at the edge).
    pub revocation: Option<RevocationAuth>,
    /// Learned from dynamic registration (untrusted metadata), not configured in proxy.yaml.
    pub registered: bool,
}

/// Client authentication for RFC 7009 calls (RFC 6749 §2.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationAuth {
    Basic(Secret),
    Post(Secret),
    /// A public client: only `client_id` in the form.
    Public,
}

/// `revocation`: the upstream's revocation endpoint is called for a logged-out session's tokens.
#[derive(Debug, Clone)]
pub struct Revocation {
    pub encryption_key: TokenKey,
    pub timeout: Duration,
}

/// The AES-256-GCM key for tokens kept for revocation; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKey(pub Vec<u8>);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// Back-channel logout (see `backchannel`).
#[derive(Debug, Clone)]
pub struct BackchannelConfig {
    /// The configured signing key's PEM, read at load; None: generated and shared via the store.
    pub signing_key_pem: Option<Secret>,
    /// Algorithm for generated keys.
    pub algorithm: jsonwebtoken::Algorithm,
    pub key_rotation: Duration,
    /// Per delivery attempt (connect and whole request).
    pub timeout: Duration,
    pub max_attempts: u32,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Deliveries in flight per instance.
    pub concurrency: usize,
    /// A notice another instance took and did not finish within this is taken over.
    pub claim_after: Duration,
    /// How long a logout waits for deliveries before answering (RPI-22); zero: no wait.
    pub wait_before_redirect: Duration,
    /// How often an idle worker looks for work from other instances.
    pub poll_interval: Duration,
}

/// What the public listener accepts from one client (see `proxy::guard` and `proxy::limits`).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub max_uri_length: usize,
    pub max_headers: usize,
    pub max_header_bytes: usize,
    pub end_session_max_uri_length: usize,
    pub end_session_max_headers: usize,
    pub end_session_max_header_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: std::num::NonZeroU32,
    pub burst: std::num::NonZeroU32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Log {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub threads: usize,
    pub grace_period: Duration,
    pub shutdown_timeout: Duration,
}

/// A string that never shows in logs or Debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
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
pub struct Problem {
    /// Key path such as `clients.rp1.post_logout_redirect_uris[0]`; empty for the whole file.
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

/// Everything wrong with a config file, in file order.
#[derive(Debug, Clone)]
pub struct Problems(pub Vec<Problem>);

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
pub fn load_str(text: &str, base: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Problems> {
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
pub struct EndpointPaths {
    pub authorization: Option<String>,
    pub token: Option<String>,
    pub userinfo: Option<String>,
    pub introspection: Option<String>,
    pub revocation: Option<String>,
    pub registration: Option<String>,
}
