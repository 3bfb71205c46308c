//! The access log (`log.access`, target `logout_gateway::access`): one structured line per
//! request, written from the `logging` hook.

use pingora::proxy::Session;

use super::Ctx;

/// Longest path an access log line shows (the rest is cut, marked with `...`).
const ACCESS_PATH_MAX: usize = 200;

/// The access log: one structured line per request (`log.access`). Method, the normalised path
/// without its query, the status sent, the upstream's status (0 when the gateway answered),
/// duration and body bytes sent, the HTTP version and the client address; never a query, a header value, a
/// token or a cookie (GW-07).
pub(super) fn line(session: &Session, ctx: &Ctx, status: u16) {
    // Filtered out (a `log.level` of warn, or `logout_gateway::access=off`): no work at all.
    if !tracing::enabled!(target: "logout_gateway::access", tracing::Level::INFO) {
        return;
    }
    let req = session.req_header();
    let canon = crate::uri::canonical(req.uri.path().as_bytes());
    let mut path = String::from_utf8_lossy(&canon).into_owned();
    if path.len() > ACCESS_PATH_MAX {
        let cut = (0..=ACCESS_PATH_MAX).rev().find(|&i| path.is_char_boundary(i)).unwrap_or(0);
        path.truncate(cut);
        path.push_str("...");
    }
    let client = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_string()).unwrap_or_default();
    tracing::info!(
        target: "logout_gateway::access",
        method = %req.method,
        http = version(req.version),
        path = %path,
        status,
        upstream_status = ctx.upstream_status,
        duration_ms = ctx.start.elapsed().as_secs_f64() * 1000.0,
        bytes = session.body_bytes_sent(),
        client = %client,
        local = ctx.local,
        "request"
    );
}

/// `1.1`, `2`, ...: the HTTP version the client spoke.
fn version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
