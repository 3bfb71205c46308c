//! The proxy's side of learning and enforcement: for a request on its way to the upstream, which
//! OP endpoint it is for, whether its response is read (token, registration, authorization),
//! the credential check (`learn::enforce` decides, this module reads bodies, writes refusals
//! and removes cookies), and what is sent upstream so the response can be read.
//!
//! Every proxied request is checked, on every path: its `Authorization` headers, its query,
//! its form body (read with retry buffering on, so pingora replays it to the upstream; whatever
//! the framing), and its OP session cookies. A clean request costs no store round trip (the
//! revocation set answers). A body the gateway must read but cannot (over [`MAX_FORM`],
//! broken framing, too slow, compressed, multipart where the OP might parse it) is refused,
//! never passed on unchecked.

use pingora::prelude::*;
use pingora::proxy::Session;

use super::{read_body, BodyError, Ctx, Gateway};
use crate::cookies::MAX_OP_COOKIES;
use crate::crypto::token_hash;
use crate::learn::credentials::{self, Source};
use crate::learn::{Endpoint, FormPost, Observation, Purpose, MAX_CREDENTIALS};
use crate::render::Answer;

/// Largest request body read for a credential check (pingora replays at most 64 KiB).
pub(super) const MAX_FORM: usize = 64 * 1024;

/// What to do with a request's body before it goes upstream.
enum BodyPlan {
    /// Nothing to read: no body, or one no OP parses for credentials.
    Skip,
    /// Read it (capped) and check the credentials in it.
    Read,
    /// Refuse the request: the body must be checked but cannot be.
    Refuse(Answer),
}

fn unreadable(status: u16, why: &'static str) -> Answer {
    Answer::json(status, why)
}

const TOO_LARGE: &str = r#"{"error":"invalid_request","error_description":"request body too large to be checked"}"#;
const BAD_BODY: &str = r#"{"error":"invalid_request","error_description":"request body could not be read"}"#;
const ENCODED: &str = r#"{"error":"invalid_request","error_description":"compressed request bodies are not accepted"}"#;
const MULTIPART: &str =
    r#"{"error":"invalid_request","error_description":"use application/x-www-form-urlencoded at this endpoint"}"#;
const CLIENT_ID_MISMATCH: &str =
    r#"{"error":"invalid_request","error_description":"the client_id in the query must match the one in the path"}"#;
const TOO_MANY_CREDENTIALS: &str = r#"{"error":"invalid_request","error_description":"too many credentials"}"#;
const TOO_MANY_COOKIES: &str = r#"{"error":"invalid_request","error_description":"too many session cookies"}"#;

/// Whether (and how) the body of a request to `endpoint` is read: form bodies everywhere, any
/// body at the endpoints that take credentials in their body.
fn body_plan(req: &RequestHeader, endpoint: Endpoint) -> BodyPlan {
    let h = |n: http::HeaderName| req.headers.get(n).and_then(|v| v.to_str().ok());
    let length = req.headers.get(http::header::CONTENT_LENGTH);
    let has_body =
        req.headers.contains_key(http::header::TRANSFER_ENCODING) || length.is_some_and(|v| v.as_bytes() != b"0");
    if !has_body {
        return BodyPlan::Skip;
    }
    let ct = h(http::header::CONTENT_TYPE).unwrap_or("").trim_start().to_ascii_lowercase();
    let form = ct.starts_with("application/x-www-form-urlencoded");
    if !(form || endpoint.reads_body()) {
        return BodyPlan::Skip;
    }
    if h(http::header::CONTENT_ENCODING).is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity")) {
        return BodyPlan::Refuse(unreadable(415, ENCODED));
    }
    if ct.starts_with("multipart/") {
        return BodyPlan::Refuse(unreadable(415, MULTIPART));
    }
    if length.and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<usize>().ok()).is_some_and(|n| n > MAX_FORM) {
        return BodyPlan::Refuse(unreadable(413, TOO_LARGE));
    }
    BodyPlan::Read
}

impl Gateway {
    /// A request that goes to the upstream unless the credential check refuses it: classify
    /// it, set up what its response teaches, check it. Ok(true): answered here.
    pub(super) async fn on_proxied(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let req = session.req_header();
        let endpoint = self.learner.endpoint(req.uri.path());
        ctx.endpoint = endpoint;
        let method = &req.method;
        match endpoint {
            Endpoint::Registration => {
                let managed = self
                    .learner
                    .registration_path()
                    .map(|reg| crate::clients::managed_client_id(&reg, req.uri.path(), req.uri.query()));
                let client_id = match managed {
                    Some(Err(_)) => {
                        let r = unreadable(400, CLIENT_ID_MISMATCH);
                        return self.refuse_credential(session, ctx, r, "repeated_param").await;
                    }
                    Some(Ok(id)) => id,
                    None => None,
                };
                if method == http::Method::POST {
                    ctx.observe = Some(Observation::new(Purpose::Registration { client_id: None }));
                } else if method == http::Method::PUT {
                    // An update names its client in the path; without one nothing is learned.
                    if client_id.is_some() {
                        ctx.observe = Some(Observation::new(Purpose::Registration { client_id }));
                    }
                }
                ctx.delete_client = method == http::Method::DELETE;
            }
            Endpoint::Authorization => ctx.authorize = true,
            Endpoint::Token if method == http::Method::POST => {
                ctx.observe = Some(Observation::new(Purpose::Token { code_hash: None, refresh_hash: None }));
            }
            _ => {}
        }
        let body = match body_plan(req, endpoint) {
            BodyPlan::Skip => Vec::new(),
            BodyPlan::Refuse(r) => return self.refuse_credential(session, ctx, r, "unreadable_body").await,
            BodyPlan::Read => {
                session.enable_retry_buffering();
                match read_body(session, MAX_FORM).await {
                    Ok(b) if !session.retry_buffer_truncated() => b,
                    Ok(_) => {
                        return self
                            .refuse_credential(session, ctx, unreadable(413, TOO_LARGE), "unreadable_body")
                            .await
                    }
                    Err(e) => {
                        let r = unreadable(e.status(), if e == BodyError::TooLarge { TOO_LARGE } else { BAD_BODY });
                        return self.refuse_credential(session, ctx, r, "unreadable_body").await;
                    }
                }
            }
        };
        self.check(session, ctx, endpoint, &body).await
    }

    /// The credential check proper, once the body (if any) is read. Ok(true): answered.
    async fn check(&self, session: &mut Session, ctx: &mut Ctx, endpoint: Endpoint, body: &[u8]) -> Result<bool> {
        let req = session.req_header();
        let query = req.uri.query().unwrap_or("").as_bytes();
        let json = !body.is_empty()
            && req
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|c| c.to_ascii_lowercase().contains("json"));
        let params = if json {
            match credentials::scan_json(query, body) {
                Ok(p) => p,
                Err(_) => {
                    return self.refuse_credential(session, ctx, unreadable(400, BAD_BODY), "unreadable_body").await
                }
            }
        } else {
            credentials::scan(query, body)
        };
        if params.repeated.is_some() {
            return self.refuse_credential(session, ctx, crate::learn::REPEATED, "repeated_param").await;
        }
        note_grant(ctx, &params);
        let headers = req
            .headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(credentials::authorization_token)
            .map(|(s, t)| (s, t.as_bytes()));
        let in_params = params.credentials.iter().map(|(n, v)| (Source::Param(n), v.as_bytes()));
        if params.credentials.len() + req.headers.get_all(http::header::AUTHORIZATION).iter().count() > MAX_CREDENTIALS
        {
            return self.refuse_credential(session, ctx, unreadable(400, TOO_MANY_CREDENTIALS), "repeated_param").await;
        }
        let cookie = cookie_header(req);
        let cookies: Vec<(&str, &str)> = self.learner.cookies.all_pairs(cookie.as_deref()).collect();
        if cookies.len() > MAX_OP_COOKIES {
            let r = unreadable(400, TOO_MANY_COOKIES);
            return self.refuse_credential(session, ctx, r, "unreadable_body").await;
        }
        let decision = self.learner.check_credentials(endpoint, headers.chain(in_params), cookies).await;
        ctx.strip_cookies = decision.strip_cookies;
        match decision.refusal {
            Some(r) => {
                ctx.local = true;
                ctx.observe = None;
                super::respond::write(session, r).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Answer a request whose credentials cannot be checked (or a repeated parameter). Counted.
    async fn refuse_credential(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        r: Answer,
        label: &'static str,
    ) -> Result<bool> {
        crate::metrics::Metrics::get().edge.with_label_values(&[label]).inc();
        ctx.local = true;
        ctx.observe = None;
        // The client may still be sending what was not read.
        session.set_keepalive(None);
        super::respond::write(session, r).await?;
        Ok(true)
    }
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

/// A token request: remember which code or refresh token it redeems, so the response's tokens
/// are joined to the right session.
fn note_grant(ctx: &mut Ctx, params: &credentials::Params) {
    let Some(Purpose::Token { code_hash, refresh_hash }) = ctx.observe.as_mut().map(|o| &mut o.purpose) else {
        return;
    };
    match params.grant_type.as_deref() {
        Some("authorization_code") => *code_hash = params.code.as_deref().map(|c| token_hash(c.as_bytes())),
        Some("refresh_token") => {
            *refresh_hash =
                params.credentials.iter().find(|(n, _)| *n == "refresh_token").map(|(_, v)| token_hash(v.as_bytes()))
        }
        _ => {}
    }
}

/// Whether the response sets one of the OP's session cookies `names` (cheap when it sets none).
pub(super) fn sets_op_cookie(names: &[String], resp: &ResponseHeader) -> bool {
    resp.headers.get_all(http::header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split_once('=').is_some_and(|(name, value)| {
            names.iter().any(|n| n == name.trim()) && !value.starts_with(';') && !value.is_empty()
        })
    })
}
