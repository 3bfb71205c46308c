//! Writing the gateway's own answers to the downstream session, with the headers every
//! generated page carries (docs/security.md): no caching anywhere, no referrer, no
//! sniffing, and a CSP that forbids framing and allows only the page's own nonce'd style.

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

/// Headers for a generated page of `len` bytes.
pub(crate) fn page_header(status: u16, len: usize, csp: &str) -> Result<ResponseHeader> {
    let mut h = ResponseHeader::build(status, Some(9))?;
    h.insert_header("content-type", "text/html; charset=utf-8")?;
    h.insert_header("content-length", len.to_string())?;
    h.insert_header("cache-control", "no-cache, no-store")?;
    h.insert_header("pragma", "no-cache")?;
    h.insert_header("referrer-policy", "no-referrer")?;
    h.insert_header("x-content-type-options", "nosniff")?;
    h.insert_header("x-frame-options", "DENY")?;
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
    let mut h = page_header(status, text.len(), "default-src 'none'; frame-ancestors 'none'")?;
    h.insert_header("content-type", "text/plain; charset=utf-8")?;
    session.write_response_header(Box::new(h), false).await?;
    session.write_response_body(Some(Bytes::from_static(text.as_bytes())), true).await
}

/// A redirect (303 See Other: the browser GETs the target whatever the request method was)
/// with the headers every generated response carries.
async fn write_redirect(session: &mut Session, location: &str, extra: &[(&'static str, String)]) -> Result<()> {
    let mut h = page_header(303, 0, "default-src 'none'; frame-ancestors 'none'")?;
    h.remove_header("content-type");
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
