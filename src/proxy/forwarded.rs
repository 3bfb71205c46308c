//! The headers that tell the upstream who the client is: X-Forwarded-For/Proto/Host set by the
//! gateway, and every spoofable variant dropped unless the gateway sits behind a trusted proxy.

use pingora::prelude::*;
use pingora::proxy::Session;

/// Headers that tell an upstream who the client is, where it came from, or which path or method
/// it "really" asked for. From an untrusted client (`trust_forwarded_headers: false`) none of
/// them may reach the OP: the gateway sets X-Forwarded-For/Proto/Host itself and drops the rest.
const SPOOFABLE: [&str; 22] = [
    "forwarded",
    "x-real-ip",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-url-scheme",
    "front-end-https",
    "true-client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-original-forwarded-for",
    "x-original-url",
    "x-rewrite-url",
    "x-original-host",
    "x-host",
    "x-http-method-override",
];

/// X-Forwarded-For/Proto/Host for the upstream (OPs build absolute URLs from them).
pub(super) fn forwarded_headers(session: &Session, req: &mut RequestHeader, trust: bool) -> Result<()> {
    if !trust {
        // One pass over the request's few header names rather than a lookup per spoofable name.
        let spoofed: Vec<http::HeaderName> =
            req.headers.keys().filter(|n| SPOOFABLE.contains(&n.as_str())).cloned().collect();
        for h in &spoofed {
            req.remove_header(h);
        }
    }
    let client_ip = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_string());
    if let Some(ip) = client_ip {
        let prior = req.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).filter(|_| trust);
        let value = match prior {
            Some(p) if !p.trim().is_empty() => format!("{p}, {ip}"),
            _ => ip,
        };
        req.insert_header("x-forwarded-for", value)?;
    }
    if !(trust && req.headers.contains_key("x-forwarded-proto")) {
        // The scheme of the listener the request came in on.
        let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let proto = http::HeaderValue::from_static(if tls { "https" } else { "http" });
        req.insert_header("x-forwarded-proto", proto)?;
    }
    if !(trust && req.headers.contains_key("x-forwarded-host")) {
        let host = req
            .headers
            .get(http::header::HOST)
            .cloned()
            .or_else(|| req.uri.authority().and_then(|a| http::HeaderValue::from_str(a.as_str()).ok()));
        match host {
            Some(h) => req.insert_header("x-forwarded-host", h)?,
            None => {
                req.remove_header("x-forwarded-host");
            }
        }
    }
    Ok(())
}
