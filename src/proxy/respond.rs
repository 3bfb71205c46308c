//! Writing the gateway's own answers to the downstream session, with the headers every
//! generated page carries (docs/security.md): no caching anywhere, no referrer, no
//! sniffing, and a CSP that forbids framing and allows only the page's own nonce'd style.

use std::sync::LazyLock;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

use crate::render::{Answer, Page};

/// The Content-Security-Policy of a generated page: only its own nonce'd style and script,
/// frames only from the RP origins it embeds, forms only to itself, never framed. A page with
/// frames may also send its report to its own origin (`connect-src 'self'`, the beacon).
pub(crate) fn csp(nonce: &str, frame_origins: &[String]) -> String {
    let (frames, connect) = if frame_origins.is_empty() {
        ("'none'".to_string(), "")
    } else {
        (frame_origins.join(" "), " connect-src 'self';")
    };
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:; \
         frame-src {frames};{connect} form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The CSP of an answer without a body of its own (redirects, plain-text fallbacks).
const BARE_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The headers every generated answer carries, under `status`; values are static, so cloning
/// the result copies no header value and parses no header name. Built from constants only, so a
/// failure is a programming error every test run catches, hence `expect`.
#[allow(clippy::expect_used)]
fn fixed_header(status: u16, content_type: Option<&'static str>) -> ResponseHeader {
    let mut h = ResponseHeader::build(status, Some(9)).expect("a valid status");
    let mut set = |name: &'static str, value: &'static str| {
        h.insert_header(name, http::HeaderValue::from_static(value)).expect("a valid header");
    };
    if let Some(t) = content_type {
        set("content-type", t);
    }
    set("cache-control", "no-cache, no-store");
    set("pragma", "no-cache");
    set("referrer-policy", "no-referrer");
    set("x-content-type-options", "nosniff");
    set("x-frame-options", "DENY");
    h
}

/// A page's fixed headers, built once; each page clones them (every logout answers with one of
/// these or [`REDIRECT`], so they are not rebuilt header by header per request).
static PAGE: LazyLock<ResponseHeader> = LazyLock::new(|| fixed_header(200, Some("text/html; charset=utf-8")));

/// The whole header of a 303 but its `location`.
static REDIRECT: LazyLock<ResponseHeader> = LazyLock::new(redirect_header);

#[allow(clippy::expect_used)] // constants, as in `fixed_header`
fn redirect_header() -> ResponseHeader {
    let mut h = fixed_header(303, None);
    h.insert_header("content-length", http::HeaderValue::from_static("0")).expect("a valid header");
    h.insert_header("content-security-policy", http::HeaderValue::from_static(BARE_CSP)).expect("a valid header");
    h
}

/// Headers for a generated page of `len` bytes.
pub(crate) fn page_header(status: u16, len: usize, csp: &str) -> Result<ResponseHeader> {
    let mut h = PAGE.clone();
    h.set_status(status)?;
    h.insert_header("content-length", len)?;
    h.insert_header("content-security-policy", csp)?;
    Ok(h)
}

/// Send `page` as the whole response. HEAD gets the headers only.
async fn write_page(session: &mut Session, page: Page, extra: &[(&'static str, String)]) -> Result<()> {
    let mut h = page_header(page.status, page.html.len(), &csp(&page.nonce, &page.frame_origins))?;
    for (k, v) in extra {
        h.append_header(*k, v.as_str())?;
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    session.write_response_header(Box::new(h), head_only).await?;
    if !head_only {
        session.write_response_body(Some(Bytes::from(page.html)), true).await?;
    }
    Ok(())
}

/// A last-resort answer when even the error template fails: plain text, same headers.
async fn write_plain(session: &mut Session, status: u16, text: &'static str) -> Result<()> {
    let mut h = page_header(status, text.len(), BARE_CSP)?;
    h.insert_header("content-type", "text/plain; charset=utf-8")?;
    session.write_response_header(Box::new(h), false).await?;
    session.write_response_body(Some(Bytes::from_static(text.as_bytes())), true).await
}

/// A redirect (303 See Other: the browser GETs the target whatever the request method was)
/// with the headers every generated response carries.
async fn write_redirect(session: &mut Session, location: &str, extra: &[(&'static str, String)]) -> Result<()> {
    let mut h = REDIRECT.clone();
    h.insert_header("location", location)?;
    for (k, v) in extra {
        h.append_header(*k, v.as_str())?;
    }
    session.write_response_header(Box::new(h), true).await
}

/// A document the gateway publishes (discovery, JWKS, the SSF configuration, the
/// check_session_iframe): cacheable for five minutes.
pub(crate) async fn write_published(session: &mut Session, doc: super::published::Doc) -> Result<()> {
    let (body, content_type, csp) = match doc {
        super::published::Doc::Json(b) => (b, "application/json", None),
        super::published::Doc::Page { html, csp } => (html.into_bytes(), "text/html; charset=utf-8", Some(csp)),
    };
    let mut h = ResponseHeader::build(200, Some(6))?;
    h.insert_header("content-type", content_type)?;
    let page = csp.is_some();
    if let Some(csp) = csp {
        h.insert_header("content-security-policy", csp)?;
        h.insert_header("referrer-policy", "no-referrer")?;
    }
    h.insert_header("content-length", body.len().to_string())?;
    // The iframe is fetched once per RP page; not from a cache that may hold another state's page.
    let cache = if page { "no-cache" } else { "public, max-age=300" };
    h.insert_header("cache-control", cache)?;
    h.insert_header("x-content-type-options", "nosniff")?;
    let head_only = session.req_header().method == http::Method::HEAD;
    session.write_response_header(Box::new(h), head_only).await?;
    if !head_only {
        session.write_response_body(Some(Bytes::from(body)), true).await?;
    }
    Ok(())
}

/// Write any answer the gateway gives itself. HEAD gets the headers only.
pub(crate) async fn write(session: &mut Session, answer: Answer) -> Result<()> {
    match answer {
        Answer::Page { page, headers } => write_page(session, page, &headers).await,
        Answer::Redirect { location, headers } => write_redirect(session, &location, &headers).await,
        Answer::Plain { status, text } => write_plain(session, status, text).await,
        Answer::NoContent => {
            let mut h = ResponseHeader::build(204, Some(2))?;
            h.insert_header("cache-control", "no-store")?;
            h.insert_header("pragma", "no-cache")?;
            session.write_response_header(Box::new(h), true).await
        }
        Answer::Json { status, body, header } => {
            // `no-store`, as token endpoint answers are.
            let mut h = ResponseHeader::build(status, Some(5))?;
            h.insert_header("content-type", "application/json")?;
            h.insert_header("content-length", body.len().to_string())?;
            h.insert_header("cache-control", "no-store")?;
            h.insert_header("pragma", "no-cache")?;
            if let Some((k, v)) = header {
                h.insert_header(k, v)?;
            }
            let head_only = session.req_header().method == http::Method::HEAD;
            session.write_response_header(Box::new(h), head_only).await?;
            if !head_only {
                session.write_response_body(Some(Bytes::from_static(body.as_bytes())), true).await?;
            }
            Ok(())
        }
        Answer::Document { status, body, allow } => write_document(session, status, body, allow).await,
    }
}

/// A JSON answer made for this request, `no-store`; without a body, `Content-Length: 0`
/// (none on a 204).
async fn write_document(
    session: &mut Session,
    status: u16,
    body: Option<String>,
    allow: Option<&'static str>,
) -> Result<()> {
    let mut h = ResponseHeader::build(status, Some(6))?;
    if body.is_some() {
        h.insert_header("content-type", "application/json")?;
    }
    if status != 204 {
        h.insert_header("content-length", body.as_ref().map_or(0, String::len).to_string())?;
    }
    h.insert_header("cache-control", "no-store")?;
    h.insert_header("pragma", "no-cache")?;
    h.insert_header("x-content-type-options", "nosniff")?;
    if let Some(a) = allow {
        h.insert_header("allow", a)?;
    }
    let end = body.is_none() || session.req_header().method == http::Method::HEAD;
    session.write_response_header(Box::new(h), end).await?;
    if let Some(b) = body.filter(|_| !end) {
        session.write_response_body(Some(Bytes::from(b)), true).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(h: &'a ResponseHeader, name: &str) -> Option<&'a str> {
        h.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The wire form: one line per header (the case map pingora writes from agrees with the values).
    fn wire_lines(h: &ResponseHeader) -> usize {
        let mut buf = bytes::BytesMut::new();
        h.header_to_h1_wire(&mut buf);
        std::str::from_utf8(&buf).unwrap().lines().count()
    }

    #[test]
    fn pages_and_redirects_carry_every_fixed_header() {
        let page = page_header(400, 1234, "default-src 'none'; style-src 'nonce-n'").unwrap();
        let mut redirect = REDIRECT.clone();
        redirect.insert_header("location", "https://rp.example/out").unwrap();
        assert_eq!((page.status.as_u16(), redirect.status.as_u16()), (400, 303));
        for h in [&page, &redirect] {
            for (k, v) in [
                ("cache-control", "no-cache, no-store"),
                ("pragma", "no-cache"),
                ("referrer-policy", "no-referrer"),
                ("x-content-type-options", "nosniff"),
                ("x-frame-options", "DENY"),
            ] {
                assert_eq!(get(h, k), Some(v), "{k}");
            }
            assert_eq!(wire_lines(h), h.headers.len());
        }
        assert_eq!(get(&page, "content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(get(&page, "content-length"), Some("1234"));
        assert_eq!(get(&page, "content-security-policy"), Some("default-src 'none'; style-src 'nonce-n'"));
        assert_eq!(get(&redirect, "content-type"), None);
        assert_eq!(get(&redirect, "content-length"), Some("0"));
        assert_eq!(get(&redirect, "location"), Some("https://rp.example/out"));
        assert_eq!(get(&redirect, "content-security-policy"), Some(BARE_CSP));
        // Each answer is a copy: the shared headers keep neither a status nor a length of one.
        assert_eq!(get(&page_header(200, 5, "x").unwrap(), "content-length"), Some("5"));
        assert_eq!((PAGE.status.as_u16(), get(&PAGE, "content-length")), (200, None));
        assert_eq!(get(&REDIRECT, "location"), None);
    }
}
