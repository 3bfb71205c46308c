//! The proxy's side of learning and enforcement: for a request on its way to the upstream, which
//! OP endpoint it is for, whether its response is read (token, registration, authorization),
//! the edge checks (`learn::enforce` decides, this module reads bodies, writes refusals and
//! removes cookies), and what is sent upstream so the response can be read.
//!
//! Store lookups happen only here, and only for: a token at userinfo, introspection or the
//! token endpoint; an OP session cookie at the authorization endpoint or under
//! `upstream.session_cookie_paths`. Every other proxied request leaves without one.

use pingora::prelude::*;
use pingora::proxy::Session;

use super::{header_str, read_body, Ctx, Gateway};
use crate::learn::{Endpoint, FormPost, Learner, Observation, Purpose};

/// Largest form body read for a token check (larger ones are not inspected).
const MAX_FORM: usize = 64 * 1024;

impl Gateway {
    /// A request that goes to the upstream unless an edge check refuses it: classify it, set
    /// up what its response teaches, and check it. Ok(true): answered here.
    pub(super) async fn on_proxied(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let req = session.req_header();
        let endpoint = self.learner.endpoint(req.uri.path());
        let method = &req.method;
        match endpoint {
            Endpoint::Other => {
                // The OP's own login and resume paths read its session cookie too.
                if !self.learner.session_cookie_paths.is_empty() {
                    let cookie = cookie_header(req);
                    if self.learner.guards_cookies_at(req.uri.path(), cookie.as_deref()) {
                        ctx.strip_cookies = self.learner.revoked_cookies(cookie.as_deref()).await;
                    }
                }
                return Ok(false);
            }
            Endpoint::Registration => {
                if method == http::Method::POST || method == http::Method::PUT {
                    ctx.observe = Some(Observation::new(Purpose::Registration));
                }
                ctx.delete_client = method == http::Method::DELETE;
                return Ok(false);
            }
            Endpoint::Authorization => {
                ctx.authorize = true;
                ctx.strip_cookies = self.learner.revoked_cookies(cookie_header(req).as_deref()).await;
                return Ok(false);
            }
            Endpoint::Token if method == http::Method::POST => {
                ctx.observe = Some(Observation::new(Purpose::Token { code_hash: None, refresh_hash: None }));
            }
            _ => {}
        }
        self.enforce(session, endpoint, ctx).await
    }

    /// Refuse a token of an ended session at userinfo, introspection or the token endpoint.
    /// Form bodies are read with retry buffering on, so pingora replays them to the upstream
    /// when the request goes on (bodies over 64 KiB are not inspected). Ok(true): answered.
    async fn enforce(&self, session: &mut Session, endpoint: Endpoint, ctx: &mut Ctx) -> Result<bool> {
        let req = session.req_header();
        let authorization = header_str(req, http::header::AUTHORIZATION);
        let is_form = req.method == http::Method::POST
            && header_str(req, http::header::CONTENT_TYPE)
                .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
        let small = req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n <= MAX_FORM);
        let form = if is_form && small {
            session.enable_retry_buffering();
            match read_body(session, MAX_FORM).await {
                Ok(b) => b,
                Err(status) => {
                    ctx.local = true;
                    self.write_error(session, status).await;
                    return Ok(true);
                }
            }
        } else {
            Vec::new()
        };
        let presented = self.learner.presented_token(endpoint, authorization.as_deref(), &form);
        if let Some(Purpose::Token { code_hash, refresh_hash }) = ctx.observe.as_mut().map(|o| &mut o.purpose) {
            *code_hash = Learner::redeemed_code(&form);
            *refresh_hash = presented.as_deref().map(|t| crate::learn::token_hash(t.as_bytes()));
        }
        let Some(token) = presented else { return Ok(false) };
        let Some(refusal) = self.learner.check(endpoint, &token).await else { return Ok(false) };
        ctx.local = true;
        ctx.observe = None;
        write_refusal(session, refusal).await?;
        Ok(true)
    }
}

/// Write the refusal of a token of an ended session (`no-store`, as token endpoint answers are).
async fn write_refusal(session: &mut Session, refusal: crate::learn::Refusal) -> Result<()> {
    let (status, content_type, body, extra) = refusal;
    let mut h = ResponseHeader::build(status, Some(5))?;
    h.insert_header("content-type", content_type)?;
    h.insert_header("content-length", body.len().to_string())?;
    h.insert_header("cache-control", "no-store")?;
    h.insert_header("pragma", "no-cache")?;
    if let Some((k, v)) = extra {
        h.insert_header(k, v)?;
    }
    session.write_response_header(Box::new(h), false).await?;
    session.write_response_body(Some(bytes::Bytes::from_static(body.as_bytes())), true).await
}

/// Every Cookie header of a request as one (HTTP/2 clients may send several); borrowed, without
/// allocating, in the usual case of a single header (this runs on proxied requests).
pub(super) fn cookie_header(req: &RequestHeader) -> Option<std::borrow::Cow<'_, str>> {
    let mut values = req.headers.get_all(http::header::COOKIE).iter().filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    Some(values.fold(std::borrow::Cow::Borrowed(first), |acc, v| format!("{acc}; {v}").into()))
}

/// A 200 HTML page from the authorization endpoint, or one that sets an OP cookie, may be a
/// response_mode=form_post page (some OPs answer the login form's POST with it, on a path of
/// their own): copy it to read its code.
pub(super) fn start_form_post(req: &RequestHeader, resp: &ResponseHeader) -> Option<FormPost> {
    let h = |n: http::HeaderName| resp.headers.get(n).and_then(|v| v.to_str().ok());
    let html = h(http::header::CONTENT_TYPE).is_some_and(|c| c.to_ascii_lowercase().starts_with("text/html"));
    if !html {
        return None;
    }
    FormPost::start(
        h(http::header::CONTENT_ENCODING),
        cookie_header(req).map(|c| c.into_owned()),
        super::set_cookies(resp),
    )
}

/// Ask the upstream only for content codings the gateway can decode, for a response it reads
/// (`learn::codings`): the client's gzip/deflate entries, else identity.
pub(super) fn narrow_accept_encoding(req: &mut RequestHeader) -> Result<()> {
    let offered: Vec<&str> =
        req.headers.get_all(http::header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).collect();
    let offered = (!offered.is_empty()).then(|| offered.join(", "));
    let narrowed = crate::learn::codings::narrow_accept_encoding(offered.as_deref());
    req.insert_header(http::header::ACCEPT_ENCODING, narrowed)?;
    Ok(())
}

/// Remove the named cookies from every Cookie header of the upstream request.
pub(super) fn strip_cookies(req: &mut RequestHeader, names: &[String]) -> Result<()> {
    let kept: Vec<String> = req
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|kv| !kv.is_empty() && !names.iter().any(|n| kv.split('=').next() == Some(n.as_str())))
        .map(String::from)
        .collect();
    req.remove_header("cookie");
    if !kept.is_empty() {
        req.insert_header("cookie", kept.join("; "))?;
    }
    Ok(())
}
