//! `ssf`: the Shared Signals transmitter's path (its own, clear of end_session's and global
//! revocation's) and its receivers (names, tokens of 32 characters or more, none shared,
//! clients that proxy.yaml names). `session_management`: the iframe's path and the cookie name.

use std::collections::BTreeMap;

use super::upstream::plain_path;
use super::V;
use crate::config::raw::{RawClient, RawSessionManagement, RawSsf};
use crate::config::{EndSession, GlobalRevocation, Secret, SessionManagement, Ssf, SsfReceiver};

pub(super) fn ssf(
    v: &mut V,
    raw: RawSsf,
    es: &EndSession,
    global: Option<&GlobalRevocation>,
    clients: &BTreeMap<String, RawClient>,
) -> Ssf {
    let key = "ssf.path";
    let path = plain_path(v, key, &raw.path).unwrap_or_default();
    let overlaps = |p: &str| path == p || path.starts_with(&format!("{p}/")) || p.starts_with(&format!("{path}/"));
    if !path.is_empty() && es.paths.iter().any(|p| overlaps(p)) {
        v.err(key, "must not be an end_session path, below one or above one");
    }
    if !path.is_empty() && global.is_some_and(|g| overlaps(&g.path)) {
        v.err(key, "must not overlap global_token_revocation.path");
    }
    if path.starts_with("/.well-known") {
        v.err(key, "must not be below /.well-known");
    }
    if raw.receivers.is_empty() {
        v.err("ssf.receivers", "must name at least one receiver");
    }
    let mut receivers = Vec::new();
    for (name, r) in raw.receivers {
        let at = format!("ssf.receivers.{name}");
        if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            v.err(&at, "a receiver's name is 1 to 64 letters, digits, '-', '.' or '_'");
        }
        if r.token.len() < 32 || r.token.bytes().any(|b| !b.is_ascii_graphic()) {
            v.err(format!("{at}.token"), "must be at least 32 printable characters without spaces");
        }
        if receivers.iter().any(|o: &SsfReceiver| o.token.expose() == r.token.as_str()) {
            v.err(format!("{at}.token"), "is another receiver's token: each receiver needs its own");
        }
        if let Some(c) = &r.client_id {
            if !clients.contains_key(c) {
                v.err(format!("{at}.client_id"), format!("{c:?} is not a client of proxy.yaml"));
            }
        }
        if r.max_streams == 0 || r.max_streams > 100 {
            v.err(format!("{at}.max_streams"), "must be between 1 and 100");
        }
        receivers.push(SsfReceiver {
            name,
            token: Secret::new(r.token),
            client_id: r.client_id,
            max_streams: r.max_streams as usize,
        });
    }
    Ssf { path, receivers }
}

pub(super) fn session_management(v: &mut V, raw: RawSessionManagement, es: &EndSession) -> SessionManagement {
    let path = plain_path(v, "session_management.path", &raw.path).unwrap_or_default();
    if es.paths.iter().any(|p| path == *p || path.starts_with(&format!("{p}/"))) {
        v.err("session_management.path", "must not be an end_session path or below one");
    }
    let c = &raw.cookie;
    if c.is_empty() || c.len() > 64 || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
        v.err("session_management.cookie", "a cookie name of 1 to 64 letters, digits, '-' or '_'");
    }
    SessionManagement { path, cookie: raw.cookie }
}
