//! `upstream` (the OP's origin, its endpoints and session cookies) and `end_session`.

use std::path::Path;
use std::time::Duration;

use url::Url;

use super::V;
use crate::config::raw::{RawEndSession, RawEndpoints, RawGlobalRevocation, RawUpstream};
use crate::config::{EndSession, EndpointPaths, GlobalRevocation, Secret, Upstream};

pub(super) fn upstream(v: &mut V, raw: RawUpstream, base: &Path) -> Upstream {
    let connect_timeout = v.duration("upstream.connect_timeout", &raw.connect_timeout, Duration::from_secs(2));
    let read_timeout = v.duration("upstream.read_timeout", &raw.read_timeout, Duration::from_secs(30));
    let idle_timeout = v.duration("upstream.idle_timeout", &raw.idle_timeout, Duration::from_secs(4));
    let mut up = Upstream {
        url: raw.url.clone(),
        host: String::new(),
        port: 0,
        tls: false,
        sni: String::new(),
        tls_server_name: None,
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
    up.endpoints = endpoints(v, raw.endpoints);
    origin(v, &mut up);
    if let Some(name) = raw.tls_server_name {
        if !up.tls {
            v.err("upstream.tls_server_name", "only applies to an https upstream.url");
        } else if !is_dns_name(&name) {
            v.err(
                "upstream.tls_server_name",
                format!("must be a DNS name such as login.internal.example (got {name:?})"),
            );
        }
        up.sni = name.to_ascii_lowercase();
        up.tls_server_name = Some(up.sni.clone());
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

/// `upstream.endpoints`: absolute paths without a query.
fn endpoints(v: &mut V, raw: RawEndpoints) -> EndpointPaths {
    let mut path = |key: &str, p: Option<String>| {
        let p = p?;
        if !p.starts_with('/') || p.contains(['?', '#']) || p.bytes().any(|b| b <= 0x20) {
            v.err(format!("upstream.endpoints.{key}"), "must be an absolute path such as /token (no query)");
        }
        Some(p)
    };
    EndpointPaths {
        authorization: path("authorization", raw.authorization),
        token: path("token", raw.token),
        userinfo: path("userinfo", raw.userinfo),
        introspection: path("introspection", raw.introspection),
        revocation: path("revocation", raw.revocation),
        registration: path("registration", raw.registration),
    }
}

/// `upstream.url`: an origin; fills in scheme, host, port and SNI.
fn origin(v: &mut V, up: &mut Upstream) {
    match Url::parse(&up.url) {
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
        _ => v.err("upstream.url", format!("must be an absolute http or https URL (got {:?})", up.url)),
    }
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

/// A host name as a certificate names it: dot-separated labels of letters, digits and inner
/// hyphens, not all digits (an IP address is not a server name here).
fn is_dns_name(s: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    s.len() <= 253 && s.split('.').all(label) && !s.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

/// RFC 7230 token characters: what a cookie name may hold.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `end_session`: the paths the gateway answers and the logout options.
pub(super) fn end_session(v: &mut V, raw: &RawEndSession) -> EndSession {
    let mut patterns = Vec::new();
    for (i, p) in raw.unregistered_redirect_uri_patterns.iter().enumerate() {
        match crate::uri::RedirectPattern::parse(p) {
            Ok(pat) => patterns.push(pat),
            Err(e) => v.err(format!("end_session.unregistered_redirect_uri_patterns[{i}]"), e),
        }
    }
    let frontchannel_timeout =
        v.duration("end_session.frontchannel_timeout", &raw.frontchannel_timeout, Duration::from_secs(5));
    if frontchannel_timeout > Duration::from_secs(60) {
        v.err("end_session.frontchannel_timeout", "must be at most 60s");
    }
    // One mode in this version (the gateway answers end_session itself); the key is kept so a
    // config written for a later version fails loudly rather than behaving differently.
    match raw.mode.as_str() {
        "terminate" => {}
        "forward" => v.err("end_session.mode", "forward is not supported by this version; use terminate"),
        other => v.err("end_session.mode", format!("must be terminate (got {other:?})")),
    }
    EndSession {
        paths: end_session_paths(v, &raw.paths),
        require_id_token_hint: raw.require_id_token_hint,
        reject_expired_id_token_hint: raw.reject_expired_id_token_hint,
        accept_unknown_sid: raw.accept_unknown_sid,
        accept_access_token_hint: raw.accept_access_token_hint,
        unregistered_redirect_uri_patterns: patterns,
        frontchannel_timeout,
        confirmation_ttl: v.duration("end_session.confirmation_ttl", &raw.confirmation_ttl, Duration::from_secs(600)),
    }
}

/// `end_session.paths`, canonical (lower case), each once.
fn end_session_paths(v: &mut V, paths: &[String]) -> Vec<String> {
    if paths.is_empty() {
        v.err("end_session.paths", "must name at least one path");
    }
    let mut out: Vec<String> = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let key = format!("end_session.paths[{i}]");
        if let Some(canon) = plain_path(v, &key, p) {
            if out.contains(&canon) {
                v.err(key, "duplicate path (paths match without regard to case)");
            }
            out.push(canon);
        }
    }
    out
}

/// A path the gateway answers itself, in its canonical form (lower case), or None after saying
/// why not: absolute, plain segments only, nothing a request could spell two ways.
pub(super) fn plain_path(v: &mut V, key: &str, p: &str) -> Option<String> {
    let bad_segment = p.split('/').skip(1).any(|s| s.is_empty() || s == "." || s == "..");
    if !p.starts_with('/') || p.len() < 2 {
        v.err(key, format!("must be an absolute path such as /session/end (got {p:?})"));
    } else if bad_segment && p != "/" {
        v.err(key, "must not contain empty, '.' or '..' segments or end with '/'");
    } else if !p.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b)) {
        v.err(key, "may only contain letters, digits and / - . _ ~ (no query, ';' or percent-escapes)");
    } else {
        return Some(p.to_ascii_lowercase());
    }
    None
}

/// `global_token_revocation`: a plain path of its own (not an end_session path or below one),
/// and at least one bearer token of 32 characters or more.
pub(super) fn global_revocation(v: &mut V, raw: RawGlobalRevocation, es: &EndSession) -> GlobalRevocation {
    let key = "global_token_revocation.path";
    let path = plain_path(v, key, &raw.path).unwrap_or_default();
    if es.paths.iter().any(|p| path == *p || path.starts_with(&format!("{p}/"))) {
        v.err(key, "must not be an end_session path or below one");
    }
    if raw.tokens.is_empty() {
        v.err("global_token_revocation.tokens", "must name at least one bearer token");
    }
    for (i, t) in raw.tokens.iter().enumerate() {
        if t.len() < 32 || t.bytes().any(|b| !b.is_ascii_graphic()) {
            v.err(
                format!("global_token_revocation.tokens[{i}]"),
                "must be at least 32 printable characters without spaces",
            );
        }
    }
    GlobalRevocation { path, tokens: raw.tokens.into_iter().map(Secret::new).collect() }
}
