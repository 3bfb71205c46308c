//! Validation: from the raw serde structs to the internal model, listing every problem.
//!
//! Each check names the key path it looked at, so `check` can point at the line. Checks are
//! about meaning: absolute URLs without fragments, exact-match redirect URIs that cannot be
//! abused (no `javascript:`/`data:`, no http off loopback), durations, listen addresses, a
//! templates_dir that exists. Nothing here opens a socket.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use url::Url;

use super::raw::{RawBackchannel, RawClient, RawConfig, RawLimits, RawRevocation, RawSessionStore, RawUpstream};
use super::*;

/// Collects problems while building the model.
struct V {
    problems: Vec<Problem>,
}

impl V {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { path: path.into(), line: None, message: message.into() });
    }

    fn duration(&mut self, path: &str, s: &str, fallback: Duration) -> Duration {
        match parse_duration(s) {
            Ok(d) => d,
            Err(m) => {
                self.err(path, m);
                fallback
            }
        }
    }

    fn addr(&mut self, path: &str, s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|_| {
            self.err(path, format!("must be an IP address and port such as 0.0.0.0:8080 (got {s:?})"));
            SocketAddr::from(([0, 0, 0, 0], 0))
        })
    }
}

/// `500ms`, `5s`, `10m`, `24h`, `1h 30m`; zero is refused.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("not a duration such as 500ms, 5s, 10m or 24h (got {s:?}: {e})"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

pub(super) fn validate(raw: RawConfig, base: &Path) -> Result<Config, Vec<Problem>> {
    let mut v = V { problems: Vec::new() };
    let listen = v.addr("listen", &raw.listen);
    let admin_listen = v.addr("admin.listen", &raw.admin.listen);
    if listen == admin_listen && listen.port() != 0 {
        v.err("admin.listen", "must differ from listen");
    }
    let token = raw.admin.token.filter(|t| !t.is_empty()).map(Secret::new);
    if token.as_ref().is_some_and(|t| t.expose().len() < 16) {
        v.err("admin.token", "must be at least 16 characters (or empty to disable)");
    }
    let upstream = upstream(&mut v, raw.upstream, base);
    check_url(&mut v, "issuer", &raw.issuer, UrlRule::Issuer);
    if let Some(u) = &raw.jwks.uri {
        check_url(&mut v, "jwks.uri", u, UrlRule::Fetch);
    }
    let jwks = Jwks {
        uri: raw.jwks.uri.clone(),
        refresh_interval: v.duration("jwks.refresh_interval", &raw.jwks.refresh_interval, Duration::from_secs(600)),
        min_refresh_interval: v.duration(
            "jwks.min_refresh_interval",
            &raw.jwks.min_refresh_interval,
            Duration::from_secs(10),
        ),
    };
    let mut end_session = end_session(&mut v, &raw.end_session.paths, &raw.end_session.mode);
    let es = &raw.end_session;
    end_session.require_id_token_hint = es.require_id_token_hint;
    end_session.reject_expired_id_token_hint = es.reject_expired_id_token_hint;
    end_session.accept_unknown_sid = es.accept_unknown_sid;
    end_session.accept_access_token_hint = es.accept_access_token_hint;
    for (i, p) in es.unregistered_redirect_uri_patterns.iter().enumerate() {
        match crate::uri::RedirectPattern::parse(p) {
            Ok(pat) => end_session.unregistered_redirect_uri_patterns.push(pat),
            Err(e) => v.err(format!("end_session.unregistered_redirect_uri_patterns[{i}]"), e),
        }
    }
    end_session.frontchannel_timeout =
        v.duration("end_session.frontchannel_timeout", &es.frontchannel_timeout, Duration::from_secs(5));
    if end_session.frontchannel_timeout > Duration::from_secs(60) {
        v.err("end_session.frontchannel_timeout", "must be at most 60s");
    }
    end_session.confirmation_ttl =
        v.duration("end_session.confirmation_ttl", &es.confirmation_ttl, Duration::from_secs(600));
    let session_store = session_store(&mut v, raw.session_store);
    let mut clients = BTreeMap::new();
    for (id, c) in raw.clients {
        let client = client(&mut v, &format!("clients.{id}"), &id, c);
        clients.insert(id, client);
    }
    let registration = registration(&mut v, &raw.registration);
    let revocation = raw.revocation.map(|r| revocation(&mut v, r));
    let limits = limits(&mut v, &raw.limits);
    let rate_limit = match (raw.rate_limit.per_second, raw.rate_limit.burst) {
        (0, _) => None,
        (p, b) => {
            let burst = std::num::NonZeroU32::new(b);
            if burst.is_none() {
                v.err("rate_limit.burst", "must be at least 1 (set rate_limit.per_second: 0 to turn the limit off)");
            }
            Some(RateLimit {
                per_second: std::num::NonZeroU32::new(p).unwrap_or(std::num::NonZeroU32::MIN),
                burst: burst.unwrap_or(std::num::NonZeroU32::MIN),
            })
        }
    };
    if revocation.is_none() {
        if let Some(id) = clients.iter().find(|(_, c)| c.revocation.is_some()).map(|(id, _)| id) {
            v.err(format!("clients.{id}.client_secret"), "revocation credentials need the revocation section");
        }
    }
    let templates_dir = base.join(&raw.templates_dir);
    if !templates_dir.is_dir() {
        v.err("templates_dir", format!("{} is not a directory", templates_dir.display()));
    }
    let backchannel = backchannel(&mut v, &raw.backchannel, base);
    let log = Log {
        level: raw.log.level.unwrap_or_else(|| "info".into()),
        format: match raw.log.format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                v.err("log.format", format!("must be text or json (got {other:?})"));
                LogFormat::Text
            }
        },
    };
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log.level) {
        v.err("log.level", format!("not a valid filter: {e}"));
    }
    if raw.server.threads == 0 || raw.server.threads > 1024 {
        v.err("server.threads", "must be between 1 and 1024");
    }
    let server = Server {
        threads: raw.server.threads,
        grace_period: v.duration("server.grace_period", &raw.server.grace_period, Duration::from_secs(5)),
        shutdown_timeout: v.duration("server.shutdown_timeout", &raw.server.shutdown_timeout, Duration::from_secs(5)),
    };
    if !v.problems.is_empty() {
        return Err(v.problems);
    }
    Ok(Config {
        listen,
        admin: Admin { listen: admin_listen, token },
        upstream,
        issuer: raw.issuer,
        jwks,
        end_session,
        session_store,
        clients,
        registration,
        templates_dir,
        backchannel,
        revocation,
        limits,
        rate_limit,
        log,
        server,
    })
}

fn backchannel(v: &mut V, raw: &RawBackchannel, base: &Path) -> BackchannelConfig {
    let signing_key_pem = raw.signing_key_file.as_ref().and_then(|f| {
        let path = base.join(f);
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|t| {
            // A JSON file is a private JWK; anything else is PEM.
            if t.trim_start().starts_with('{') {
                crate::crypto::keys::jwk_to_pem(&t)
            } else {
                Ok(t)
            }
        });
        match text {
            Ok(pem) => match crate::crypto::keys::from_pem(&pem, 0) {
                Ok(_) => Some(Secret::new(pem)),
                Err(e) => {
                    v.err("backchannel.signing_key_file", format!("{}: {e}", path.display()));
                    None
                }
            },
            Err(e) => {
                v.err("backchannel.signing_key_file", format!("{}: {e}", path.display()));
                None
            }
        }
    });
    let algorithm = match raw.algorithm.as_str() {
        "RS256" => jsonwebtoken::Algorithm::RS256,
        "ES256" => jsonwebtoken::Algorithm::ES256,
        other => {
            v.err("backchannel.algorithm", format!("must be RS256 or ES256 (got {other:?})"));
            jsonwebtoken::Algorithm::RS256
        }
    };
    if raw.max_attempts == 0 || raw.max_attempts > 100 {
        v.err("backchannel.max_attempts", "must be between 1 and 100");
    }
    if raw.concurrency == 0 || raw.concurrency > 1024 {
        v.err("backchannel.concurrency", "must be between 1 and 1024");
    }
    let d = |v: &mut V, k: &str, s: &str| v.duration(&format!("backchannel.{k}"), s, Duration::from_secs(1));
    let timeout = d(v, "timeout", &raw.timeout);
    let claim_after = d(v, "claim_after", &raw.claim_after);
    if claim_after <= timeout {
        v.err("backchannel.claim_after", "must be longer than backchannel.timeout (or live deliveries get taken over)");
    }
    let wait_before_redirect = if raw.wait_before_redirect.trim().trim_end_matches(['s', 'm']).trim() == "0" {
        Duration::ZERO
    } else {
        d(v, "wait_before_redirect", &raw.wait_before_redirect)
    };
    BackchannelConfig {
        signing_key_pem,
        algorithm,
        key_rotation: d(v, "key_rotation", &raw.key_rotation),
        timeout,
        max_attempts: raw.max_attempts,
        retry_initial: d(v, "retry_initial", &raw.retry_initial),
        retry_max: d(v, "retry_max", &raw.retry_max),
        concurrency: raw.concurrency,
        claim_after,
        wait_before_redirect,
        poll_interval: d(v, "poll_interval", &raw.poll_interval),
    }
}

fn upstream(v: &mut V, raw: RawUpstream, base: &Path) -> Upstream {
    let connect_timeout = v.duration("upstream.connect_timeout", &raw.connect_timeout, Duration::from_secs(2));
    let read_timeout = v.duration("upstream.read_timeout", &raw.read_timeout, Duration::from_secs(30));
    let idle_timeout = v.duration("upstream.idle_timeout", &raw.idle_timeout, Duration::from_secs(4));
    let mut up = Upstream {
        url: raw.url.clone(),
        host: String::new(),
        port: 0,
        tls: false,
        sni: String::new(),
        connect_timeout,
        read_timeout,
        idle_timeout,
        ca_file: None,
        trust_forwarded_headers: raw.trust_forwarded_headers,
        session_cookies: Vec::new(),
        session_cookie_paths: cookie_paths(v, "session_cookie_paths", raw.session_cookie_paths, true),
        session_cookie_expiry_paths: cookie_paths(
            v,
            "session_cookie_expiry_paths",
            raw.session_cookie_expiry_paths,
            false,
        ),
        endpoints: Default::default(),
    };
    let mut path = |key: &str, p: Option<String>| {
        let p = p?;
        if !p.starts_with('/') || p.contains(['?', '#']) || p.bytes().any(|b| b <= 0x20) {
            v.err(format!("upstream.endpoints.{key}"), "must be an absolute path such as /token (no query)");
        }
        Some(p)
    };
    up.endpoints.authorization = path("authorization", raw.endpoints.authorization);
    up.endpoints.token = path("token", raw.endpoints.token);
    up.endpoints.userinfo = path("userinfo", raw.endpoints.userinfo);
    up.endpoints.introspection = path("introspection", raw.endpoints.introspection);
    up.endpoints.revocation = path("revocation", raw.endpoints.revocation);
    up.endpoints.registration = path("registration", raw.endpoints.registration);
    match Url::parse(&raw.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            if !u.username().is_empty() || u.password().is_some() {
                v.err("upstream.url", "must not contain user information");
            }
            if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
                v.err("upstream.url", "must be an origin (scheme, host, port) without path, query or fragment; request paths are forwarded unchanged");
            }
            up.tls = u.scheme() == "https";
            let host = u.host_str().unwrap_or_default();
            up.host = host.trim_start_matches('[').trim_end_matches(']').to_string();
            up.port = u.port_or_known_default().unwrap_or(80);
            up.sni = up.host.clone();
        }
        _ => v.err("upstream.url", format!("must be an absolute http or https URL (got {:?})", raw.url)),
    }
    if let Some(ca) = raw.ca_file {
        let p = base.join(&ca);
        if !up.tls {
            v.err("upstream.ca_file", "only applies to an https upstream.url");
        } else if !p.is_file() {
            v.err("upstream.ca_file", format!("{} is not a readable file", p.display()));
        }
        up.ca_file = Some(p);
    }
    for (i, name) in raw.session_cookies.into_iter().enumerate() {
        if !is_token(&name) {
            v.err(format!("upstream.session_cookies[{i}]"), format!("{name:?} is not a valid cookie name"));
        }
        up.session_cookies.push(name);
    }
    up
}

/// `upstream.session_cookie_paths` (prefixes, kept canonical: matched against the normalised
/// request path) or `upstream.session_cookie_expiry_paths` (cookie `Path` attributes, kept as
/// written). Each starts with '/' and holds no query, `;`, quote, comma or control character.
fn cookie_paths(v: &mut V, key: &str, raw: Vec<String>, canonical: bool) -> Vec<String> {
    if raw.is_empty() && !canonical {
        v.err(format!("upstream.{key}"), "must name at least one path (default [\"/\"])");
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, p) in raw.into_iter().enumerate() {
        if !p.starts_with('/') || p.bytes().any(|b| b <= 0x20 || b >= 0x7f || b"?#;,\"\\".contains(&b)) {
            v.err(format!("upstream.{key}[{i}]"), format!("{p:?} must be an absolute path such as /login (no query)"));
            continue;
        }
        out.push(if canonical {
            String::from_utf8_lossy(&crate::uri::normalize(p.as_bytes())).into_owned()
        } else {
            p
        });
    }
    out
}

/// RFC 7230 token characters: what a cookie name may hold.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn end_session(v: &mut V, paths: &[String], mode: &str) -> EndSession {
    if paths.is_empty() {
        v.err("end_session.paths", "must name at least one path");
    }
    let mut out: Vec<String> = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let key = format!("end_session.paths[{i}]");
        let bad_segment = p.split('/').skip(1).any(|s| s.is_empty() || s == "." || s == "..");
        if !p.starts_with('/') || p.len() < 2 {
            v.err(key, format!("must be an absolute path such as /session/end (got {p:?})"));
        } else if bad_segment && p != "/" {
            v.err(key, "must not contain empty, '.' or '..' segments or end with '/'");
        } else if !p.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b)) {
            v.err(key, "may only contain letters, digits and / - . _ ~ (no query, ';' or percent-escapes)");
        } else {
            let canon = p.to_ascii_lowercase();
            if out.contains(&canon) {
                v.err(key, "duplicate path (paths match without regard to case)");
            }
            out.push(canon);
        }
    }
    // One mode in this version (the gateway answers end_session itself); the key is kept so a
    // config written for a later version fails loudly rather than behaving differently.
    match mode {
        "terminate" => {}
        "forward" => v.err("end_session.mode", "forward is not supported by this version; use terminate"),
        other => v.err("end_session.mode", format!("must be terminate (got {other:?})")),
    }
    EndSession {
        paths: out,
        require_id_token_hint: false,
        reject_expired_id_token_hint: false,
        accept_unknown_sid: false,
        accept_access_token_hint: false,
        unregistered_redirect_uri_patterns: Vec::new(),
        frontchannel_timeout: Duration::from_secs(5),
        confirmation_ttl: Duration::from_secs(600),
    }
}

fn session_store(v: &mut V, raw: RawSessionStore) -> SessionStore {
    if raw.backend == "memory" && raw.redis.is_some() {
        v.err("session_store.redis", "only applies to backend redis");
    }
    let backend = match raw.backend.as_str() {
        "memory" => Backend::Memory,
        "redis" => match raw.redis {
            None => {
                v.err("session_store.redis", "backend redis needs session_store.redis.url");
                Backend::Memory
            }
            Some(r) => {
                match Url::parse(&r.url) {
                    Ok(u) if matches!(u.scheme(), "redis" | "rediss" | "unix" | "redis+unix") => {}
                    _ => v.err("session_store.redis.url", "must be a redis://, rediss:// or unix:// URL"),
                }
                Backend::Redis(RedisConfig {
                    url: Secret::new(r.url),
                    connect_timeout: v.duration(
                        "session_store.redis.connect_timeout",
                        &r.connect_timeout,
                        Duration::from_millis(500),
                    ),
                    response_timeout: v.duration(
                        "session_store.redis.response_timeout",
                        &r.response_timeout,
                        Duration::from_millis(500),
                    ),
                })
            }
        },
        other => {
            v.err("session_store.backend", format!("must be redis or memory (got {other:?})"));
            Backend::Memory
        }
    };
    // Braces would break the `{sid}` hash tags that keep a session's keys in one cluster slot.
    if raw.key_prefix.is_empty() || raw.key_prefix.len() > 64 || raw.key_prefix.contains(['{', '}', ' ']) {
        v.err("session_store.key_prefix", "must be 1 to 64 characters without spaces or braces");
    }
    SessionStore {
        backend,
        key_prefix: raw.key_prefix,
        session_ttl: v.duration("session_store.session_ttl", &raw.session_ttl, Duration::from_secs(86400)),
        tombstone_ttl: v.duration("session_store.tombstone_ttl", &raw.tombstone_ttl, Duration::from_secs(86400)),
        access_token_ttl: v.duration(
            "session_store.access_token_ttl",
            &raw.access_token_ttl,
            Duration::from_secs(86400),
        ),
        refresh_token_ttl: v.duration(
            "session_store.refresh_token_ttl",
            &raw.refresh_token_ttl,
            Duration::from_secs(30 * 86400),
        ),
    }
}

fn limits(v: &mut V, raw: &RawLimits) -> Limits {
    // pingora refuses more than 256 headers or 1 MiB of header by itself (400); ours apply below.
    let mut count = |key: &str, n: usize, min: usize, max: usize| {
        if n < min || n > max {
            v.err(format!("limits.{key}"), format!("must be between {min} and {max}"));
        }
        n
    };
    let l = Limits {
        max_connections: count("max_connections", raw.max_connections, 1, 1_000_000),
        max_uri_length: count("max_uri_length", raw.max_uri_length, 256, 1 << 20),
        max_headers: count("max_headers", raw.max_headers, 8, 256),
        max_header_bytes: count("max_header_bytes", raw.max_header_bytes, 1024, 1 << 20),
        end_session_max_uri_length: count("end_session_max_uri_length", raw.end_session_max_uri_length, 256, 1 << 20),
        end_session_max_headers: count("end_session_max_headers", raw.end_session_max_headers, 8, 256),
        end_session_max_header_bytes: count(
            "end_session_max_header_bytes",
            raw.end_session_max_header_bytes,
            1024,
            1 << 20,
        ),
        header_timeout: Duration::ZERO,
        keepalive_timeout: Duration::ZERO,
    };
    Limits {
        header_timeout: v.duration("limits.header_timeout", &raw.header_timeout, Duration::from_secs(10)),
        keepalive_timeout: v.duration("limits.keepalive_timeout", &raw.keepalive_timeout, Duration::from_secs(60)),
        ..l
    }
}

fn revocation(v: &mut V, raw: RawRevocation) -> Revocation {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode(raw.encryption_key.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.encryption_key.trim()))
        .ok()
        .filter(|k| k.len() == 32);
    if key.is_none() {
        v.err("revocation.encryption_key", "must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)");
    }
    Revocation {
        encryption_key: TokenKey(key.unwrap_or_default()),
        timeout: v.duration("revocation.timeout", &raw.timeout, Duration::from_secs(5)),
    }
}

/// A client as a dynamic registration response describes it (RFC 7591 metadata), checked by
/// the same rules as proxy.yaml's `clients` entries. Err: every problem, for the log.
/// The `registration` block.
fn registration(v: &mut V, raw: &super::raw::RawRegistration) -> Registration {
    let mut out = Registration::default();
    for (i, p) in raw.post_logout_redirect_uri_patterns.iter().enumerate() {
        match crate::uri::RedirectPattern::parse(p) {
            Ok(pat) => out.redirect_patterns.push(pat),
            Err(e) => v.err(format!("registration.post_logout_redirect_uri_patterns[{i}]"), e),
        }
    }
    for (i, n) in raw.allowed_networks.iter().enumerate() {
        match crate::address::Network::parse(n) {
            Ok(net) => out.allowed_networks.push(net),
            Err(e) => v.err(format!("registration.allowed_networks[{i}]"), e),
        }
    }
    if raw.max_clients == 0 || raw.max_clients > 100_000 {
        v.err("registration.max_clients", "must be between 1 and 100000");
    }
    out.max_clients = raw.max_clients;
    out.client_lifetime =
        v.duration("registration.client_lifetime", &raw.client_lifetime, Duration::from_secs(90 * 86_400));
    out
}

/// Most `post_logout_redirect_uris` a registered client may have.
pub(super) const MAX_REGISTERED_REDIRECT_URIS: usize = 20;

/// Longest URI a registered client may name.
pub(super) const MAX_REGISTERED_URI: usize = 2048;

/// A client learned from dynamic registration, checked like proxy.yaml's clients and more
/// strictly (its metadata is anyone's input): at most [`MAX_REGISTERED_REDIRECT_URIS`]
/// post-logout URIs of at most [`MAX_REGISTERED_URI`] bytes; no plain http anywhere (not even
/// on loopback, which only proxy.yaml's clients may use); front- and back-channel URIs must
/// not name `localhost` or an address that is not public unless it is in `allowed` (names are
/// checked again at each delivery, see `address`).
pub(crate) fn registered_client(
    id: &str,
    metadata: &serde_json::Value,
    allowed: &[crate::address::Network],
) -> Result<Client, Vec<String>> {
    let mut problems = Vec::new();
    let plrus = metadata.get("post_logout_redirect_uris").and_then(|v| v.as_array());
    if plrus.is_some_and(|a| a.len() > MAX_REGISTERED_REDIRECT_URIS) {
        problems.push(format!(
            "registration.post_logout_redirect_uris: at most {MAX_REGISTERED_REDIRECT_URIS} are accepted"
        ));
    }
    for (i, u) in plrus.into_iter().flatten().enumerate() {
        let u = u.as_str().unwrap_or("");
        if u.len() > MAX_REGISTERED_URI {
            problems
                .push(format!("registration.post_logout_redirect_uris[{i}]: longer than {MAX_REGISTERED_URI} bytes"));
        } else if u.starts_with("http:") || u.starts_with("HTTP:") {
            problems.push(format!("registration.post_logout_redirect_uris[{i}]: must not be plain http"));
        }
    }
    for k in ["frontchannel_logout_uri", "backchannel_logout_uri"] {
        if let Some(u) = metadata.get(k).and_then(|v| v.as_str()) {
            if u.len() > MAX_REGISTERED_URI {
                problems.push(format!("registration.{k}: longer than {MAX_REGISTERED_URI} bytes"));
            } else if let Err(why) = crate::address::check_uri(u, allowed) {
                problems.push(format!("registration.{k}: {why} (registered clients need https to a public address)"));
            }
        }
    }
    match registered_client_rules(id, metadata) {
        Ok(c) if problems.is_empty() => Ok(c),
        Ok(_) => Err(problems),
        Err(more) => Err(problems.into_iter().chain(more).collect()),
    }
}

fn registered_client_rules(id: &str, metadata: &serde_json::Value) -> Result<Client, Vec<String>> {
    let s = |k: &str| metadata.get(k).and_then(|v| v.as_str()).map(String::from);
    let b = |k: &str| metadata.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
    let raw = RawClient {
        post_logout_redirect_uris: metadata
            .get("post_logout_redirect_uris")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|u| u.as_str().map(String::from)).collect())
            .unwrap_or_default(),
        default_post_logout_redirect_uri: None,
        frontchannel_logout_uri: s("frontchannel_logout_uri"),
        frontchannel_logout_session_required: b("frontchannel_logout_session_required"),
        backchannel_logout_uri: s("backchannel_logout_uri"),
        backchannel_logout_session_required: b("backchannel_logout_session_required"),
        client_secret: None,
        revocation_auth: None,
    };
    let mut v = V { problems: Vec::new() };
    let mut client = client(&mut v, "registration", id, raw);
    client.registered = true;
    if v.problems.is_empty() {
        Ok(client)
    } else {
        Err(v.problems.into_iter().map(|p| format!("{}: {}", p.path, p.message)).collect())
    }
}

fn client(v: &mut V, base: &str, id: &str, raw: RawClient) -> Client {
    // client_id syntax: VSCHAR (RFC 6749 A.1), printable ASCII.
    if id.is_empty() || !id.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        v.err(base, "client_id must be printable ASCII (RFC 6749 VSCHAR)");
    }
    for (i, u) in raw.post_logout_redirect_uris.iter().enumerate() {
        check_url(v, &format!("{base}.post_logout_redirect_uris[{i}]"), u, UrlRule::Redirect);
        if raw.post_logout_redirect_uris[..i].contains(u) {
            v.err(format!("{base}.post_logout_redirect_uris[{i}]"), "listed twice");
        }
    }
    if let Some(d) = &raw.default_post_logout_redirect_uri {
        if !raw.post_logout_redirect_uris.contains(d) {
            v.err(
                format!("{base}.default_post_logout_redirect_uri"),
                "must be one of post_logout_redirect_uris, byte for byte",
            );
        }
    }
    if let Some(u) = &raw.frontchannel_logout_uri {
        check_url(v, &format!("{base}.frontchannel_logout_uri"), u, UrlRule::Fetch);
    } else if raw.frontchannel_logout_session_required {
        v.err(format!("{base}.frontchannel_logout_session_required"), "needs frontchannel_logout_uri");
    }
    if let Some(u) = &raw.backchannel_logout_uri {
        check_url(v, &format!("{base}.backchannel_logout_uri"), u, UrlRule::Fetch);
    } else if raw.backchannel_logout_session_required {
        v.err(format!("{base}.backchannel_logout_session_required"), "needs backchannel_logout_uri");
    }
    let secret = raw.client_secret.filter(|s| !s.is_empty()).map(Secret::new);
    let revocation = match (raw.revocation_auth.as_deref(), secret) {
        (None, None) => None,
        (None | Some("client_secret_basic"), Some(s)) => Some(RevocationAuth::Basic(s)),
        (Some("client_secret_post"), Some(s)) => Some(RevocationAuth::Post(s)),
        (Some("none"), None) => Some(RevocationAuth::Public),
        (Some("none"), Some(_)) => {
            v.err(format!("{base}.client_secret"), "a public client (revocation_auth: none) has no secret");
            None
        }
        (Some("client_secret_basic" | "client_secret_post"), None) => {
            v.err(format!("{base}.client_secret"), "needed by revocation_auth");
            None
        }
        (Some(other), _) => {
            v.err(
                format!("{base}.revocation_auth"),
                format!("must be client_secret_basic, client_secret_post or none (got {other:?})"),
            );
            None
        }
    };
    Client {
        revocation,
        post_logout_redirect_uris: raw.post_logout_redirect_uris,
        default_post_logout_redirect_uri: raw.default_post_logout_redirect_uri,
        frontchannel_logout_uri: raw.frontchannel_logout_uri,
        frontchannel_logout_session_required: raw.frontchannel_logout_session_required,
        backchannel_logout_uri: raw.backchannel_logout_uri,
        backchannel_logout_session_required: raw.backchannel_logout_session_required,
        registered: false,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum UrlRule {
    /// The issuer: https (http on loopback), no query, no fragment.
    Issuer,
    /// Something the gateway or a browser frame loads: http(s), no fragment (FCL-02/04, BCL-04).
    Fetch,
    /// A post-logout redirect target: https, http on loopback, or a private-use scheme of a
    /// native app (RPI-10); never javascript:, data: and the like; no fragment (RPI-23).
    Redirect,
}

fn check_url(v: &mut V, path: &str, s: &str, rule: UrlRule) {
    if s.bytes().any(|b| b <= 0x20 || b == 0x7f || b == b'\\') {
        return v.err(path, "must not contain spaces, control characters or backslashes");
    }
    let u = match Url::parse(s) {
        Ok(u) => u,
        Err(e) => return v.err(path, format!("must be an absolute URL ({e}; got {s:?})")),
    };
    if u.fragment().is_some() || s.contains('#') {
        return v.err(path, "must not contain a fragment (#)");
    }
    if !u.username().is_empty() || u.password().is_some() {
        return v.err(path, "must not contain user information (user@host)");
    }
    let scheme = u.scheme();
    let web = matches!(scheme, "http" | "https");
    if web && u.host_str().is_none_or(str::is_empty) {
        return v.err(path, "must name a host");
    }
    if scheme == "http" && !u.host_str().is_some_and(is_loopback_host) {
        return v.err(path, "must use https (plain http only for localhost/loopback)");
    }
    match rule {
        UrlRule::Issuer if !web => v.err(path, "must be an https URL"),
        UrlRule::Issuer if u.query().is_some() => v.err(path, "must not contain a query"),
        UrlRule::Fetch if !web => v.err(path, "must be an http or https URL"),
        // RFC 8252 §7.1: a private-use scheme is a reverse domain name, so it has a dot.
        UrlRule::Redirect if !web && !scheme.contains('.') => v.err(
            path,
            format!("scheme {scheme:?} is not allowed (https, or a reverse-domain private-use scheme such as com.example.app:)"),
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_for(rule: UrlRule, s: &str) -> Vec<Problem> {
        let mut v = V { problems: Vec::new() };
        check_url(&mut v, "k", s, rule);
        v.problems
    }

    #[test]
    fn redirect_uris_refuse_dangerous_shapes() {
        for bad in [
            "javascript:alert(1)",
            "data:text/html,<script>",
            "https://a.example/x#frag",
            "https://user@a.example/x",
            "http://a.example/x",
            "/relative",
            "https://a.example/ x",
            "https://a.example/\\evil",
            "https://a.example/\r\nx",
            "file:///etc/passwd",
        ] {
            assert!(!problems_for(UrlRule::Redirect, bad).is_empty(), "{bad} accepted");
        }
        for good in
            ["https://a.example/bye?lang=en", "http://127.0.0.1:9/x", "http://localhost/x", "com.example.app:/logout"]
        {
            assert!(problems_for(UrlRule::Redirect, good).is_empty(), "{good} refused");
        }
    }

    #[test]
    fn frame_and_backchannel_uris_must_be_web_urls() {
        assert!(!problems_for(UrlRule::Fetch, "com.example.app:/fc").is_empty());
        assert!(!problems_for(UrlRule::Fetch, "https://a.example/fc#x").is_empty());
        assert!(problems_for(UrlRule::Fetch, "https://a.example/fc?tenant=t1").is_empty());
    }

    fn load(extra: &str) -> Result<Config, Vec<String>> {
        let text = format!(
            "upstream:\n  url: \"http://127.0.0.1:3000\"\nissuer: \"http://127.0.0.1:8080\"\n\
             session_store:\n  backend: memory\ntemplates_dir: \".\"\n{extra}"
        );
        super::super::load_str(&text, Path::new("."), &|_| None)
            .map_err(|p| p.0.into_iter().map(|p| format!("{}: {}", p.path, p.message)).collect())
    }

    #[test]
    fn revocation_needs_a_key_and_consistent_client_credentials() {
        let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        let ok = load(&format!(
            "revocation:\n  encryption_key: \"{key}\"\nclients:\n  a:\n    client_secret: \"s\"\n  \
             b:\n    client_secret: \"s\"\n    revocation_auth: client_secret_post\n  c:\n    revocation_auth: none\n"
        ))
        .unwrap();
        assert_eq!(ok.clients["a"].revocation, Some(RevocationAuth::Basic(Secret::new("s"))));
        assert_eq!(ok.clients["b"].revocation, Some(RevocationAuth::Post(Secret::new("s"))));
        assert_eq!(ok.clients["c"].revocation, Some(RevocationAuth::Public));
        assert!(!format!("{ok:?}").contains(key), "the key never prints");
        let errs = load("revocation:\n  encryption_key: \"c2hvcnQ=\"\n").unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with("revocation.encryption_key: must be 32")), "{errs:?}");
        let errs = load("clients:\n  a:\n    client_secret: \"s\"\n").unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with("clients.a.client_secret: revocation credentials need")), "{errs:?}");
        let errs = load(&format!(
            "revocation:\n  encryption_key: \"{key}\"\nclients:\n  a:\n    revocation_auth: client_secret_jwt\n  \
             b:\n    revocation_auth: client_secret_basic\n"
        ))
        .unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with("clients.a.revocation_auth: must be")), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("clients.b.client_secret: needed")), "{errs:?}");
    }

    #[test]
    fn token_lifetimes_default_and_parse() {
        let c = load("").unwrap();
        assert_eq!(c.session_store.access_token_ttl, Duration::from_secs(86400));
        assert_eq!(c.session_store.refresh_token_ttl, Duration::from_secs(30 * 86400));
    }

    #[test]
    fn registered_clients_follow_the_client_rules() {
        let ok = registered_client(
            "d",
            &serde_json::json!({"post_logout_redirect_uris": ["https://d.example/bye"],
            "frontchannel_logout_uri": "https://d.example/fc", "frontchannel_logout_session_required": true}),
            &[],
        )
        .unwrap();
        assert!(ok.registered);
        assert_eq!(ok.frontchannel_logout_uri.as_deref(), Some("https://d.example/fc"));
        assert!(ok.revocation.is_none());
        let bad =
            registered_client("d", &serde_json::json!({"frontchannel_logout_uri": "javascript:x"}), &[]).unwrap_err();
        assert!(bad[0].starts_with("registration.frontchannel_logout_uri"), "{bad:?}");
        assert!(registered_client("d\n", &serde_json::json!({}), &[]).is_err(), "client_id must be VSCHAR");
        // Stricter than proxy.yaml: no http, not even on loopback; no private back-channel.
        for m in [
            serde_json::json!({"post_logout_redirect_uris": ["http://127.0.0.1/bye"]}),
            serde_json::json!({"backchannel_logout_uri": "http://127.0.0.1:9/bc"}),
            serde_json::json!({"backchannel_logout_uri": "https://10.0.0.1/bc"}),
            serde_json::json!({"frontchannel_logout_uri": "https://localhost/fc"}),
            serde_json::json!({"post_logout_redirect_uris": vec!["https://d.example/x"; 21]}),
        ] {
            assert!(registered_client("d", &m, &[]).is_err(), "{m}");
        }
        let nets = [crate::address::Network::parse("10.0.0.0/8").unwrap()];
        assert!(registered_client("d", &serde_json::json!({"backchannel_logout_uri": "https://10.0.0.1/bc"}), &nets)
            .is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86400)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("127.0.0.2"));
        assert!(is_loopback_host("[::1]"));
        assert!(is_loopback_host("LOCALHOST"));
        assert!(!is_loopback_host("127.0.0.1.evil.example"));
        assert!(!is_loopback_host("10.0.0.1"));
    }

    #[test]
    fn session_cookie_paths_and_expiry_paths() {
        let c = load("").unwrap();
        assert!(c.upstream.session_cookie_paths.is_empty());
        assert_eq!(c.upstream.session_cookie_expiry_paths, ["/"]);
        let text = |extra: &str| {
            format!(
                "upstream:\n  url: \"http://127.0.0.1:3000\"\n{extra}issuer: \"http://127.0.0.1:8080\"\n\
                 session_store:\n  backend: memory\ntemplates_dir: \".\"\n"
            )
        };
        let load2 = |extra: &str| {
            super::super::load_str(&text(extra), Path::new("."), &|_| None)
                .map_err(|p| p.0.into_iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>())
        };
        let c = load2(
            "  session_cookie_paths: [\"/Realms/R/login-actions/\", \"/interaction\"]\n  \
             session_cookie_expiry_paths: [\"/\", \"/realms/R/\"]\n",
        )
        .unwrap();
        assert_eq!(c.upstream.session_cookie_paths, ["/realms/r/login-actions", "/interaction"]);
        assert_eq!(c.upstream.session_cookie_expiry_paths, ["/", "/realms/R/"]);
        let errs = load2("  session_cookie_paths: [\"login\"]\n  session_cookie_expiry_paths: [\"/a;b\", \"/\"]\n")
            .unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with("upstream.session_cookie_paths[0]: ")), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("upstream.session_cookie_expiry_paths[0]: ")), "{errs:?}");
        assert_eq!(errs.len(), 2, "{errs:?}");
        let errs = load2("  session_cookie_expiry_paths: []\n").unwrap_err();
        assert!(errs[0].starts_with("upstream.session_cookie_expiry_paths: must name"), "{errs:?}");
    }

    #[test]
    fn end_session_paths_are_canonical_and_plain() {
        let mut v = V { problems: Vec::new() };
        let es = end_session(&mut v, &["/Session/End".into(), "/oxauth/restv1/end_session".into()], "terminate");
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(es.paths, ["/session/end", "/oxauth/restv1/end_session"]);
        for bad in ["session/end", "/a//b", "/a/./b", "/a/", "/a;x", "/a%2Fb", "/a?x=1"] {
            let mut v = V { problems: Vec::new() };
            end_session(&mut v, &[bad.into()], "terminate");
            assert_eq!(v.problems.len(), 1, "{bad}");
            assert_eq!(v.problems[0].path, "end_session.paths[0]");
        }
        let mut v = V { problems: Vec::new() };
        end_session(&mut v, &["/a".into(), "/A".into()], "sideways");
        assert_eq!(v.problems.len(), 2);
    }
}
