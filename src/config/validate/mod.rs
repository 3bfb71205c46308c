//! Validation: from the raw serde structs to the internal model, listing every problem.
//!
//! Each check names the key path it looked at, so `check` can point at the line. Checks are
//! about meaning: absolute URLs without fragments, exact-match redirect URIs that cannot be
//! abused (no `javascript:`/`data:`, no http off loopback), durations, listen addresses, a
//! templates_dir that exists. Nothing here opens a socket.

//!
//! One file per part of proxy.yaml: `upstream.rs` (the upstream, its cookies, end_session),
//! `clients.rs` (relying parties, registration, URL rules), `store.rs` (session store,
//! revocation, back-channel), `server.rs` (limits, rate limit, log, server).

mod clients;
mod listeners;
mod server;
mod ssf;
mod store;
#[cfg(test)]
mod tests;
mod upstream;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::raw::{RawAdmin, RawConfig, RawJwks};
use super::*;
pub(crate) use clients::registered_client;
use clients::{check_url, UrlRule};

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
    let (listen, tls, mtls) =
        listeners::listeners(&mut v, raw.listen.as_deref(), raw.tls.as_ref(), raw.mtls.as_ref(), base);
    let admin = admin(&mut v, raw.admin);
    let tls_listen = tls.as_ref().map(|t| t.listen);
    let mtls_listen = mtls.as_ref().map(|m| m.tls.listen);
    let addrs = [
        ("listen", listen),
        ("tls.listen", tls_listen),
        ("mtls.listen", mtls_listen),
        ("admin.listen", Some(admin.listen)),
    ];
    listeners::distinct(&mut v, &addrs);
    let upstream = upstream::upstream(&mut v, raw.upstream, base);
    check_url(&mut v, "issuer", &raw.issuer, UrlRule::Issuer);
    let jwks = jwks(&mut v, &raw.jwks);
    let end_session = upstream::end_session(&mut v, &raw.end_session);
    let global_revocation = raw.global_token_revocation.map(|g| upstream::global_revocation(&mut v, g, &end_session));
    let ssf = raw.ssf.map(|x| ssf::ssf(&mut v, x, &end_session, global_revocation.as_ref(), &raw.clients));
    let session_management = raw.session_management.map(|x| ssf::session_management(&mut v, x, &end_session));
    let session_store = store::session_store(&mut v, raw.session_store);
    let clients = clients::clients(&mut v, raw.clients);
    let registration = clients::registration(&mut v, &raw.registration);
    let revocation = raw.revocation.map(|r| store::revocation(&mut v, r));
    let templates_dir = base.join(&raw.templates_dir);
    if !templates_dir.is_dir() {
        v.err("templates_dir", format!("{} is not a directory", templates_dir.display()));
    }
    let backchannel = store::backchannel(&mut v, &raw.backchannel, base);
    let limits = server::limits(&mut v, &raw.limits);
    let rate_limit = server::rate_limit(&mut v, &raw.rate_limit);
    let log = server::log(&mut v, raw.log);
    let server = server::server(&mut v, &raw.server);
    if !v.problems.is_empty() {
        return Err(v.problems);
    }
    Ok(Config {
        listen,
        tls,
        mtls,
        admin,
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
        global_revocation,
        ssf,
        session_management,
    })
}

fn admin(v: &mut V, raw: RawAdmin) -> Admin {
    let admin_listen = v.addr("admin.listen", &raw.listen);
    let token = raw.token.filter(|t| !t.is_empty()).map(Secret::new);
    if token.as_ref().is_some_and(|t| t.expose().len() < 16) {
        v.err("admin.token", "must be at least 16 characters (or empty to disable)");
    }
    // Anyone who reaches the sessions API can end every session.
    let exposed = raw.listen.parse::<SocketAddr>().is_ok() && !admin_listen.ip().is_loopback() && token.is_none();
    if exposed && !raw.allow_without_token {
        v.err(
            "admin.token",
            "needed when admin.listen is not a loopback address (the sessions API ends sessions); \
             set admin.allow_without_token: true to accept that on a private network",
        );
    }
    Admin { listen: admin_listen, token, exposed_without_token: exposed }
}

fn jwks(v: &mut V, raw: &RawJwks) -> Jwks {
    if let Some(u) = &raw.uri {
        check_url(v, "jwks.uri", u, UrlRule::Fetch);
    }
    Jwks {
        uri: raw.uri.clone(),
        refresh_interval: v.duration("jwks.refresh_interval", &raw.refresh_interval, Duration::from_secs(600)),
        min_refresh_interval: v.duration(
            "jwks.min_refresh_interval",
            &raw.min_refresh_interval,
            Duration::from_secs(10),
        ),
    }
}
