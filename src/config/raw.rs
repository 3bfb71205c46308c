//! The file format: serde structs that mirror proxy.yaml one to one.
//!
//! Owns nothing but shape. Every struct denies unknown keys, every optional key has its default
//! here, and nothing is checked beyond types: meaning (URLs, durations, addresses, files) is
//! checked by `validate/`, which turns these structs into the internal model.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The whole proxy.yaml.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The plain-http public listener; when omitted: `0.0.0.0:8080`, or none when `tls` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// An https public listener (HTTP/1.1 and HTTP/2 by ALPN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RawTls>,
    /// The mutual-TLS alias of end_session (RFC 8705 section 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<RawMtls>,
    #[serde(default)]
    pub admin: RawAdmin,
    pub upstream: RawUpstream,
    pub issuer: String,
    #[serde(default)]
    pub jwks: RawJwks,
    #[serde(default)]
    pub end_session: RawEndSession,
    #[serde(default)]
    pub session_store: RawSessionStore,
    #[serde(default)]
    pub clients: BTreeMap<String, RawClient>,
    #[serde(default)]
    pub registration: RawRegistration,
    #[serde(default = "default_templates_dir")]
    pub templates_dir: String,
    #[serde(default)]
    pub backchannel: RawBackchannel,
    #[serde(default)]
    pub revocation: Option<RawRevocation>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub rate_limit: RawRateLimit,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub server: RawServer,
    /// draft-parecki-oauth-global-token-revocation: a call that ends every session of a subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_token_revocation: Option<RawGlobalRevocation>,
    /// OpenID Shared Signals Framework 1.0 transmitter: CAEP session-revoked events for every
    /// ended session, to the streams its receivers create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssf: Option<RawSsf>,
    /// OpenID Connect Session Management 1.0: the gateway's check_session_iframe, session_state
    /// in authorization responses, the browser-state cookie changed at logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_management: Option<RawSessionManagement>,
}

impl RawConfig {
    /// A config with every optional key at its default: what a file naming only `upstream.url`
    /// and `issuer` parses to. The typed start for generated configs (tests, tools).
    pub fn new(upstream_url: impl Into<String>, issuer: impl Into<String>) -> Self {
        RawConfig {
            listen: None,
            tls: None,
            mtls: None,
            admin: RawAdmin::default(),
            upstream: RawUpstream::new(upstream_url),
            issuer: issuer.into(),
            jwks: RawJwks::default(),
            end_session: RawEndSession::default(),
            session_store: RawSessionStore::default(),
            clients: BTreeMap::new(),
            registration: RawRegistration::default(),
            templates_dir: default_templates_dir(),
            backchannel: RawBackchannel::default(),
            revocation: None,
            limits: RawLimits::default(),
            rate_limit: RawRateLimit::default(),
            log: RawLog::default(),
            server: RawServer::default(),
            global_token_revocation: None,
            ssf: None,
            session_management: None,
        }
    }

    /// The config as proxy.yaml text, which [`super::load_str`] reads back to the same values.
    pub fn to_yaml(&self) -> String {
        // Plain structs of strings, numbers, lists and maps with string keys always serialise.
        serde_yaml_ng::to_string(self).unwrap_or_default()
    }

    /// The JSON Schema (draft 2020-12) of proxy.yaml, derived from these structs, so it cannot
    /// drift from what [`super::load`] parses: the same keys, types, defaults and the same refusal
    /// of unknown keys. It describes shape only; meaning (URLs, durations, files, the
    /// combinations `check` refuses) is for `check`.
    pub fn schema() -> String {
        let mut schema = schemars::schema_for!(RawConfig);
        schema.insert("title".into(), "logout-gateway proxy.yaml".into());
        schema.insert(
            "description".into(),
            concat!(
                "Configuration of logout-gateway ",
                env!("CARGO_PKG_VERSION"),
                ". `${NAME}` and `${file:/path}` in string values are replaced at load time; ",
                "`logout-gateway check` validates meaning beyond this schema."
            )
            .into(),
        );
        // A JSON value built from strings and maps always serialises.
        serde_json::to_string_pretty(&schema).unwrap_or_default()
    }
}

/// `global_token_revocation`: the endpoint of draft-parecki-oauth-global-token-revocation on the
/// public listener (advertised in discovery as `global_token_revocation_endpoint`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGlobalRevocation {
    /// Its path; matched in every spelling, like end_session's.
    #[serde(default = "default_global_revocation_path")]
    pub path: String,
    /// Bearer tokens allowed to call it (each at least 32 characters); use `${NAME}` or
    /// `${file:/path}` for them.
    pub tokens: Vec<String>,
}
fn default_global_revocation_path() -> String {
    "/global-token-revocation".into()
}

/// `session_management`: OpenID Connect Session Management 1.0, served by the gateway.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSessionManagement {
    /// Where the check_session_iframe is served (advertised in discovery).
    #[serde(default = "default_check_session_path")]
    pub path: String,
    /// The browser-state cookie the iframe reads (not HttpOnly: the iframe's script reads it).
    #[serde(default = "default_browser_state_cookie")]
    pub cookie: String,
}
fn default_check_session_path() -> String {
    "/check-session".into()
}
fn default_browser_state_cookie() -> String {
    "lgw_bs".into()
}

/// `ssf`: the Shared Signals transmitter. Its endpoints sit below `path` on the public
/// listener; its configuration document at `/.well-known/ssf-configuration` (plus the issuer's
/// path, if any).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSsf {
    /// Where the stream management, status, subject, verification and poll endpoints live.
    #[serde(default = "default_ssf_path")]
    pub path: String,
    /// The receivers allowed to manage streams, by name; each sees only its own streams.
    pub receivers: BTreeMap<String, RawSsfReceiver>,
}
fn default_ssf_path() -> String {
    "/ssf".into()
}

/// One receiver of `ssf.receivers`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSsfReceiver {
    /// The bearer token it presents (at least 32 characters); use `${NAME}` or `${file:/path}`.
    pub token: String,
    /// The proxy.yaml client this receiver is, if any: its SETs name the sid that client knows,
    /// and the client's logout receipt shows their delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Most streams it may have at once.
    #[serde(default = "default_ssf_max_streams")]
    pub max_streams: u32,
}
fn default_ssf_max_streams() -> u32 {
    8
}

/// `tls`: an https listener with a certificate/key pair (re-read when the files change).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub listen: String,
    /// PEM chain, leaf first.
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
}

/// `mtls`: a listener that wants a client certificate and answers end_session only.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMtls {
    pub listen: String,
    pub cert_file: String,
    pub key_file: String,
    /// PEM certificates client certificates must chain to.
    pub client_ca_file: String,
    /// The https origin the alias is published under (discovery's `mtls_endpoint_aliases`).
    pub public_origin: String,
}

fn default_templates_dir() -> String {
    "templates".into()
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    #[serde(default)]
    pub token: Option<String>,
    /// Accept a non-loopback admin listener without `token` (a private network); warned at start.
    #[serde(default)]
    pub allow_without_token: bool,
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self { listen: default_admin_listen(), token: None, allow_without_token: false }
    }
}
fn default_admin_listen() -> String {
    "127.0.0.1:9090".into()
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub url: String,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: String,
    #[serde(default = "default_read_timeout")]
    pub read_timeout: String,
    /// How long an idle pooled upstream connection is kept. Below the upstream's own keep-alive
    /// timeout, so a POST never lands on a connection the upstream already closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: String,
    /// PEM bundle that verifies an https upstream instead of the system roots.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// SNI and certificate name for an https upstream reached by IP (or by another name).
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// Keep the client's X-Forwarded-* values (the gateway sits behind a trusted proxy).
    #[serde(default)]
    pub trust_forwarded_headers: bool,
    #[serde(default)]
    pub session_cookies: Vec<String>,
    /// Path prefixes (besides the authorization endpoint) where a request carrying an OP session
    /// cookie has it checked against ended sessions: the OP's own login and resume paths.
    #[serde(default)]
    pub session_cookie_paths: Vec<String>,
    /// `Path` attributes of the expiring `Set-Cookie` lines for the OP's session cookies.
    #[serde(default = "default_expiry_paths")]
    pub session_cookie_expiry_paths: Vec<String>,
    /// Endpoint paths on the public listener; default: learned from the upstream's discovery.
    #[serde(default)]
    pub endpoints: RawEndpoints,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoints {
    /// The authorization endpoint's path (revoked OP cookies are stripped there).
    #[serde(default)]
    pub authorization: Option<String>,
    /// The token endpoint's path (sessions are learned from its responses).
    #[serde(default)]
    pub token: Option<String>,
    /// The userinfo endpoint's path (revoked access tokens refused there).
    #[serde(default)]
    pub userinfo: Option<String>,
    /// The introspection endpoint's path (revoked tokens reported inactive there).
    #[serde(default)]
    pub introspection: Option<String>,
    /// The revocation endpoint's path (RFC 7009; called after a logout when `revocation` is set).
    #[serde(default)]
    pub revocation: Option<String>,
    /// The dynamic client registration endpoint's path (registered clients are learned there).
    #[serde(default)]
    pub registration: Option<String>,
}

impl RawUpstream {
    /// The upstream at `url` with every other key at its default.
    pub fn new(url: impl Into<String>) -> Self {
        RawUpstream {
            url: url.into(),
            connect_timeout: default_connect_timeout(),
            read_timeout: default_read_timeout(),
            idle_timeout: default_idle_timeout(),
            ca_file: None,
            tls_server_name: None,
            trust_forwarded_headers: false,
            session_cookies: Vec::new(),
            session_cookie_paths: Vec::new(),
            session_cookie_expiry_paths: default_expiry_paths(),
            endpoints: RawEndpoints::default(),
        }
    }
}

fn default_expiry_paths() -> Vec<String> {
    vec!["/".into()]
}
fn default_connect_timeout() -> String {
    "2s".into()
}
fn default_read_timeout() -> String {
    "30s".into()
}
fn default_idle_timeout() -> String {
    "4s".into()
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawJwks {
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default = "default_jwks_refresh")]
    pub refresh_interval: String,
    /// An unknown kid refreshes the keys at most this often.
    #[serde(default = "default_jwks_min_refresh")]
    pub min_refresh_interval: String,
}

impl Default for RawJwks {
    fn default() -> Self {
        Self { uri: None, refresh_interval: default_jwks_refresh(), min_refresh_interval: default_jwks_min_refresh() }
    }
}
fn default_jwks_min_refresh() -> String {
    "10s".into()
}
fn default_jwks_refresh() -> String {
    "10m".into()
}

/// `registration`: what clients learned from dynamic registration may do.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawRegistration {
    /// Registered clients' post_logout_redirect_uris matching one of these are followed at once;
    /// others only after the user confirmed (the page names the destination host).
    pub post_logout_redirect_uri_patterns: Vec<String>,
    /// Address blocks (CIDR) registered clients' back-channel URIs may reach besides public ones.
    pub allowed_networks: Vec<String>,
    /// Most learned clients kept.
    pub max_clients: u64,
    /// How long a learned client is kept after its registration (or last update).
    pub client_lifetime: String,
}

impl Default for RawRegistration {
    fn default() -> Self {
        Self {
            post_logout_redirect_uri_patterns: Vec::new(),
            allowed_networks: Vec::new(),
            max_clients: 10_000,
            client_lifetime: "90d".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEndSession {
    #[serde(default = "default_end_session_paths")]
    pub paths: Vec<String>,
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Janssen forceIdTokenHintPrecense.
    #[serde(default)]
    pub require_id_token_hint: bool,
    /// Janssen rejectEndSessionIfIdTokenExpired.
    #[serde(default)]
    pub reject_expired_id_token_hint: bool,
    /// Janssen allowEndSessionWithUnmatchedSid.
    #[serde(default)]
    pub accept_unknown_sid: bool,
    /// Janssen endSessionWithAccessToken: an access token learned from the token endpoint is
    /// accepted in place of id_token_hint.
    #[serde(default)]
    pub accept_access_token_hint: bool,
    /// Janssen allowPostLogoutRedirectWithoutValidation + clientWhiteList (dangerous).
    #[serde(default)]
    pub unregistered_redirect_uri_patterns: Vec<String>,
    /// How long the front-channel page waits for the RPs' iframes.
    #[serde(default = "default_fc_timeout")]
    pub frontchannel_timeout: String,
    /// How long a confirmation page stays valid.
    #[serde(default = "default_confirmation_ttl")]
    pub confirmation_ttl: String,
}

impl Default for RawEndSession {
    fn default() -> Self {
        Self {
            paths: default_end_session_paths(),
            mode: default_mode(),
            require_id_token_hint: false,
            reject_expired_id_token_hint: false,
            accept_unknown_sid: false,
            accept_access_token_hint: false,
            unregistered_redirect_uri_patterns: Vec::new(),
            frontchannel_timeout: default_fc_timeout(),
            confirmation_ttl: default_confirmation_ttl(),
        }
    }
}
fn default_fc_timeout() -> String {
    "5s".into()
}
fn default_confirmation_ttl() -> String {
    "10m".into()
}
fn default_end_session_paths() -> Vec<String> {
    vec!["/session/end".into()]
}
fn default_mode() -> String {
    "terminate".into()
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSessionStore {
    #[serde(default = "default_backend")]
    pub backend: String,
    #[serde(default)]
    pub redis: Option<RawRedis>,
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    #[serde(default = "default_ttl")]
    pub session_ttl: String,
    #[serde(default = "default_ttl")]
    pub tombstone_ttl: String,
    /// How long a revoked access token is refused when the token response had no
    /// `expires_in`; also the most any `expires_in` counts for.
    #[serde(default = "default_ttl")]
    pub access_token_ttl: String,
    /// The same for refresh tokens (`refresh_expires_in` where the OP sends it).
    #[serde(default = "default_refresh_ttl")]
    pub refresh_token_ttl: String,
}

impl Default for RawSessionStore {
    fn default() -> Self {
        Self {
            backend: default_backend(),
            redis: None,
            key_prefix: default_key_prefix(),
            session_ttl: default_ttl(),
            tombstone_ttl: default_ttl(),
            access_token_ttl: default_ttl(),
            refresh_token_ttl: default_refresh_ttl(),
        }
    }
}
fn default_backend() -> String {
    "redis".into()
}
fn default_key_prefix() -> String {
    "lgw:".into()
}
fn default_ttl() -> String {
    "24h".into()
}
fn default_refresh_ttl() -> String {
    "30days".into()
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// One Redis (exactly one of `url`, `sentinel` and `cluster`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A master named by Redis Sentinel, followed across failovers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<RawSentinel>,
    /// A Redis Cluster, found from any of its nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<RawCluster>,
    #[serde(default = "default_redis_connect_timeout")]
    pub connect_timeout: String,
    #[serde(default = "default_redis_response_timeout")]
    pub response_timeout: String,
    /// Replicas that must have every write that ends a session before success is claimed.
    #[serde(default)]
    pub replica_acks: u32,
}

/// `session_store.redis.cluster`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// `host:port` of one or more nodes (the rest are discovered).
    pub nodes: Vec<String>,
    /// For every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `session_store.redis.sentinel`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSentinel {
    pub master_name: String,
    /// `host:port` of each sentinel.
    pub nodes: Vec<String>,
    /// For the master and replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// For the sentinels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel_password: Option<String>,
}

impl RawRedis {
    /// Redis at `url` with the default timeouts.
    pub fn new(url: impl Into<String>) -> Self {
        RawRedis {
            url: Some(url.into()),
            sentinel: None,
            cluster: None,
            connect_timeout: default_redis_connect_timeout(),
            response_timeout: default_redis_response_timeout(),
            replica_acks: 0,
        }
    }
}

fn default_redis_connect_timeout() -> String {
    "500ms".into()
}
fn default_redis_response_timeout() -> String {
    "500ms".into()
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    /// The application's name, shown on the confirmation page when the request proved it.
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub default_post_logout_redirect_uri: Option<String>,
    #[serde(default)]
    pub frontchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub frontchannel_logout_session_required: bool,
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    /// The client's secret at the upstream, used only to revoke its tokens there (RFC 7009).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// How the gateway authenticates as this client at the revocation endpoint:
    /// `client_secret_basic` (default with a secret), `client_secret_post`, or `none` (public client).
    #[serde(default)]
    pub revocation_auth: Option<String>,
}

/// `revocation`: revoke a logged-out session's tokens at the upstream (RFC 7009).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRevocation {
    /// 32 random bytes, base64: encrypts the tokens kept for revocation (AES-256-GCM), so the
    /// store never holds a usable token.
    pub encryption_key: String,
    /// Per revocation call.
    #[serde(default = "default_revocation_timeout")]
    pub timeout: String,
}
fn default_revocation_timeout() -> String {
    "5s".into()
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// A tracing filter such as `info` or `logout_gateway=debug,pingora=warn`; RUST_LOG wins.
    #[serde(default)]
    pub level: Option<String>,
    /// `text` (default) or `json`.
    #[serde(default)]
    pub format: Option<String>,
    /// One structured line per request (target `logout_gateway::access`); default on.
    #[serde(default)]
    pub access: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Worker threads of the public proxy service.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Whether the worker threads of a service share one work-stealing runtime (true, pingora's
    /// default) or each run its own single-threaded runtime, a connection staying on the thread
    /// that accepted it (false). Measured in docs/performance.md: no consistent difference.
    #[serde(default = "default_work_stealing")]
    pub work_stealing: bool,
    /// After SIGTERM: how long listeners stay open for in-flight requests (pingora's default is 300 s).
    #[serde(default = "default_grace")]
    pub grace_period: String,
    /// Then: how long runtimes get to finish before the process exits.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: String,
    /// Unix socket over which `run --upgrade` takes the listening sockets of the running process.
    #[serde(default = "default_upgrade_sock")]
    pub upgrade_sock: String,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            threads: default_threads(),
            work_stealing: default_work_stealing(),
            grace_period: default_grace(),
            shutdown_timeout: default_shutdown_timeout(),
            upgrade_sock: default_upgrade_sock(),
        }
    }
}
fn default_upgrade_sock() -> String {
    "/tmp/logout-gateway-upgrade.sock".into()
}
fn default_work_stealing() -> bool {
    true
}
fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
fn default_grace() -> String {
    "5s".into()
}
fn default_shutdown_timeout() -> String {
    "5s".into()
}

/// Back-channel logout delivery and the logout-token signing key.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawBackchannel {
    /// PEM or private-JWK file (RSA for RS256, EC P-256 for ES256); none: generated and kept in the store.
    pub signing_key_file: Option<String>,
    /// Algorithm of generated keys: RS256 or ES256.
    pub algorithm: String,
    pub key_rotation: String,
    pub timeout: String,
    pub max_attempts: u32,
    pub retry_initial: String,
    pub retry_max: String,
    pub concurrency: usize,
    pub claim_after: String,
    pub wait_before_redirect: String,
    pub poll_interval: String,
}

impl Default for RawBackchannel {
    fn default() -> Self {
        RawBackchannel {
            signing_key_file: None,
            algorithm: "RS256".into(),
            key_rotation: "30d".into(),
            timeout: "5s".into(),
            max_attempts: 8,
            retry_initial: "1s".into(),
            retry_max: "5m".into(),
            concurrency: 16,
            claim_after: "30s".into(),
            wait_before_redirect: "0s".into(),
            poll_interval: "200ms".into(),
        }
    }
}

/// `limits`: what the public listener accepts from one client.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Open client connections per instance; more are answered 503 and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The whole request header (from the connection's or the request's first byte) must
    /// arrive within this.
    #[serde(default = "default_header_timeout")]
    pub header_timeout: String,
    /// An idle keep-alive connection is closed after this.
    #[serde(default = "default_keepalive_timeout")]
    pub keepalive_timeout: String,
    /// Longest request target (path and query), 414 beyond.
    #[serde(default = "default_max_uri")]
    pub max_uri_length: usize,
    /// Most request headers, 431 beyond.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
    /// Largest request header block (names and values), 431 beyond.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// The same three, stricter, for end_session and its confirmation.
    #[serde(default = "default_es_max_uri")]
    pub end_session_max_uri_length: usize,
    #[serde(default = "default_es_max_headers")]
    pub end_session_max_headers: usize,
    #[serde(default = "default_es_max_header_bytes")]
    pub end_session_max_header_bytes: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_connections: default_max_connections(),
            header_timeout: default_header_timeout(),
            keepalive_timeout: default_keepalive_timeout(),
            max_uri_length: default_max_uri(),
            max_headers: default_max_headers(),
            max_header_bytes: default_max_header_bytes(),
            end_session_max_uri_length: default_es_max_uri(),
            end_session_max_headers: default_es_max_headers(),
            end_session_max_header_bytes: default_es_max_header_bytes(),
        }
    }
}
fn default_max_connections() -> usize {
    10_000
}
fn default_header_timeout() -> String {
    "10s".into()
}
fn default_keepalive_timeout() -> String {
    "60s".into()
}
fn default_max_uri() -> usize {
    16 * 1024
}
fn default_max_headers() -> usize {
    100
}
fn default_max_header_bytes() -> usize {
    64 * 1024
}
fn default_es_max_uri() -> usize {
    8 * 1024
}
fn default_es_max_headers() -> usize {
    50
}
fn default_es_max_header_bytes() -> usize {
    16 * 1024
}

/// `rate_limit`: requests per client address to end_session and its confirmation.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// Sustained requests per second per client address; 0 turns the limit off.
    #[serde(default = "default_rate")]
    pub per_second: u32,
    /// Requests a client may make at once before the rate applies.
    #[serde(default = "default_burst")]
    pub burst: u32,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        RawRateLimit { per_second: default_rate(), burst: default_burst() }
    }
}
fn default_rate() -> u32 {
    10
}
fn default_burst() -> u32 {
    50
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_config_reads_back_to_the_same_values() {
        let mut c = RawConfig::new("http://127.0.0.1:3000", "https://op.example");
        c.session_store.redis = Some(RawRedis::new("redis://127.0.0.1:6379/0"));
        c.clients.insert(
            "rp".into(),
            RawClient {
                post_logout_redirect_uris: vec!["https://rp.example/out".into()],
                frontchannel_logout_uri: Some("https://rp.example/fc?a=1".into()),
                ..RawClient::default()
            },
        );
        c.revocation = Some(RawRevocation { encryption_key: "k".into(), timeout: "2s".into() });
        let text = c.to_yaml();
        let (back, problems, _) = crate::config::yaml::parse(&text, &|_| None).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(back.unwrap().to_yaml(), text);
        // And a file naming only the required keys parses to `new`'s defaults.
        let minimal = "upstream:\n  url: \"http://127.0.0.1:3000\"\nissuer: \"https://op.example\"\n";
        let (parsed, _, _) = crate::config::yaml::parse(minimal, &|_| None).unwrap();
        assert_eq!(parsed.unwrap().to_yaml(), RawConfig::new("http://127.0.0.1:3000", "https://op.example").to_yaml());
    }
}
