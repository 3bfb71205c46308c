//! `clients` (proxy.yaml's relying parties), `registration` (what dynamically registered clients
//! may do) and the URL rules both follow.

use std::collections::BTreeMap;
use std::time::Duration;

use url::Url;

use super::V;
use crate::config::raw::{RawClient, RawRegistration};
use crate::config::{is_loopback_host, Client, Registration, RevocationAuth, Secret};

/// proxy.yaml's `clients`, by client_id.
pub(super) fn clients(v: &mut V, raw: BTreeMap<String, RawClient>) -> BTreeMap<String, Client> {
    raw.into_iter().map(|(id, c)| (id.clone(), client(v, &format!("clients.{id}"), &id, c))).collect()
}

/// The `registration` block.
pub(super) fn registration(v: &mut V, raw: &RawRegistration) -> Registration {
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
pub(crate) const MAX_REGISTERED_REDIRECT_URIS: usize = 20;

/// Longest client name shown (a registered client's longer name is not shown).
pub(crate) const MAX_CLIENT_NAME: usize = 100;

/// Longest URI a registered client may name.
pub(crate) const MAX_REGISTERED_URI: usize = 2048;

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
        // A name that breaks the rules is dropped, not the client.
        client_name: s("client_name").filter(|n| {
            !n.trim().is_empty() && n.chars().count() <= MAX_CLIENT_NAME && !n.chars().any(char::is_control)
        }),
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

pub(super) fn client(v: &mut V, base: &str, id: &str, raw: RawClient) -> Client {
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
    if let Some(n) = &raw.client_name {
        if n.trim().is_empty() || n.chars().count() > MAX_CLIENT_NAME || n.chars().any(char::is_control) {
            v.err(
                format!("{base}.client_name"),
                format!("must be 1 to {MAX_CLIENT_NAME} characters without control characters"),
            );
        }
    }
    Client {
        client_name: raw.client_name,
        revocation: revocation_auth(v, base, raw.revocation_auth.as_deref(), secret),
        post_logout_redirect_uris: raw.post_logout_redirect_uris,
        default_post_logout_redirect_uri: raw.default_post_logout_redirect_uri,
        frontchannel_logout_uri: raw.frontchannel_logout_uri,
        frontchannel_logout_session_required: raw.frontchannel_logout_session_required,
        backchannel_logout_uri: raw.backchannel_logout_uri,
        backchannel_logout_session_required: raw.backchannel_logout_session_required,
        registered: false,
    }
}

/// How the gateway authenticates as the client at the revocation endpoint (`revocation_auth`
/// with `client_secret`).
fn revocation_auth(v: &mut V, base: &str, auth: Option<&str>, secret: Option<Secret>) -> Option<RevocationAuth> {
    match (auth, secret) {
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
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum UrlRule {
    /// The issuer: https (http on loopback), no query, no fragment.
    Issuer,
    /// Something the gateway or a browser frame loads: http(s), no fragment (FCL-02/04, BCL-04).
    Fetch,
    /// A post-logout redirect target: https, http on loopback, or a private-use scheme of a
    /// native app (RPI-10); never javascript:, data: and the like; no fragment (RPI-23).
    Redirect,
}

pub(super) fn check_url(v: &mut V, path: &str, s: &str, rule: UrlRule) {
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
