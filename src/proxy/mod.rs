//! The public listener: a pingora `ProxyHttp` whose hooks stay thin.
//!
//! ```text
//!  request ──> request_filter ──(end_session path)──> answer locally (logout) ───────┐
//!                   │ ──(discovery / JWKS path)──> answer locally (Published) ──────┤
//!                   │ ──(any credential: bearer, params, form, ──> revoked? refuse ┤
//!                   │    OP cookie; revocation set in memory) (edge.rs)    │
//!                   v                                                               │
//!             upstream_peer ──> upstream_request_filter ──> upstream ──> response ──┤
//!                   │ (connect/read failure)   (X-Forwarded-*, revoked OP cookies   │
//!                   v                           stripped, Accept-Encoding narrowed  │
//!             fail_to_proxy: 502/504 page       where the response is read)         │
//!                                               response filters: learn      logging: metrics
//! ```
//!
//! Passthrough does not wait on the session store: a clean request costs a path classification,
//! a credential scan answered by the in-memory revocation set, three header inserts and a counter. The exceptions are listed in ARCHITECTURE.md
//! ("Invariants") and `edge`. Hooks classify and delegate; `Ok(true)` from `request_filter`
//! means "the response is already written".

mod access;
mod body;
mod edge;
mod failure;
mod forwarded;
mod global;
pub(crate) mod guard;
pub(crate) mod limits;
pub(crate) mod live;
mod published;
pub(crate) mod respond;
pub(crate) mod route;
mod sm;
mod ssf;
pub(crate) mod upstream;

use self::body::{read_body, BodyError};
use self::failure::{error_reason, error_status};
use self::forwarded::forwarded_headers;
pub(crate) use self::published::Published;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

use self::route::Route;
use self::upstream::UpstreamPeer;
use crate::logout::{Input, Logout, Reply};
use crate::metrics::Metrics;
use crate::render::{ErrorKind, Pages};

/// Shared state of the public listener; one per process.
pub(crate) struct Gateway {
    pub(crate) upstream: Arc<UpstreamPeer>,
    /// Canonical end_session paths (see `route`).
    pub(crate) end_session_paths: Vec<String>,
    pub(crate) pages: Arc<Pages>,
    /// Keep the client's X-Forwarded-* (the gateway is behind a trusted proxy) or replace them.
    pub(crate) trust_forwarded_headers: bool,
    /// end_session and its confirmation; the only users of the session store.
    pub(crate) logout: Arc<Logout>,
    /// Published documents: the upstream's discovery and keys, as fetched (answered here).
    pub(crate) published: Published,
    /// Learns sessions from token responses.
    pub(crate) learner: Arc<crate::learn::Learner>,
    /// Size limits and the end_session rate limit.
    pub(crate) limits: limits::Limits,
    /// `log.access`: one line per request (target `logout_gateway::access`).
    pub(crate) access_log: bool,
    /// Tests only: `fault::PANIC_PATH` panics (feature `fault-injection` and its env var).
    #[cfg(feature = "fault-injection")]
    pub(crate) fault_armed: bool,
}

/// Per-request state.
pub(crate) struct Ctx {
    start: Instant,
    /// The request was answered by the gateway itself (not counted as proxied).
    local: bool,
    /// Set for token and registration requests: the response is copied to learn from it.
    observe: Option<crate::learn::Observation>,
    /// A DELETE of a registered client (RFC 7592): forgotten when the upstream agrees.
    delete_client: bool,
    /// OP session cookies of ended sessions: removed before the upstream, expired in the response.
    strip_cookies: Vec<String>,
    /// The request is for the authorization endpoint.
    authorize: bool,
    /// Which OP endpoint the request is for (proxied requests).
    endpoint: crate::learn::Endpoint,
    /// A form_post authorization response being copied.
    form_post: Option<crate::learn::FormPost>,
    /// The upstream's status (0: the gateway answered, or no answer came).
    upstream_status: u16,
}

fn set_cookies(resp: &ResponseHeader) -> Vec<String> {
    resp.headers.get_all(http::header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok().map(String::from)).collect()
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            start: Instant::now(),
            local: false,
            observe: None,
            delete_client: false,
            strip_cookies: Vec::new(),
            authorize: false,
            endpoint: crate::learn::Endpoint::Other,
            form_post: None,
            upstream_status: 0,
        }
    }

    /// Ok(true): the gateway answered (end_session, a limit); Ok(false): proxy it.
    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        #[cfg(feature = "fault-injection")]
        crate::fault::panic_if_asked(self.fault_armed, session.req_header().uri.path());
        // Idle keep-alive connections are closed after limits.keepalive_timeout (pingora's
        // default for HTTP/1.1 is never); a client that asked for close keeps its close.
        if session.get_keepalive().is_some() {
            session.set_keepalive(Some(self.limits.keepalive_secs()));
        }
        if let Some(r) = self.limits.check_request(session.req_header(), false) {
            ctx.local = true;
            self.refuse(session, r, &[]).await;
            return Ok(true);
        }
        let req = session.req_header();
        if req.method == http::Method::GET || req.method == http::Method::HEAD {
            if let Some(doc) = self.published.answer(req.uri.path()) {
                ctx.local = true;
                respond::write_published(session, doc).await?;
                return Ok(true);
            }
        }
        let path = session.req_header().uri.path().as_bytes();
        let ssf = self.published.ssf.as_ref().map(|t| t.path());
        match route::classify_public(path, &self.end_session_paths, self.logout.global_path(), ssf) {
            Route::Proxy => self.on_proxied(session, ctx).await,
            route => {
                ctx.local = true;
                if let Some(r) = self.limits.check_request(session.req_header(), true) {
                    self.refuse(session, r, &[]).await;
                    return Ok(true);
                }
                let ip = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
                if let Some(wait) = self.limits.check_rate(ip, session.req_header()) {
                    let r = limits::Refusal { status: 429, kind: ErrorKind::TooManyRequests, label: "rate" };
                    let retry = wait.as_secs().max(1).to_string();
                    self.refuse(session, r, &[("retry-after", retry)]).await;
                    return Ok(true);
                }
                self.answer_logout(session, route).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        self.upstream.get().ok_or_else(|| Error::explain(ConnectNoRoute, "upstream host has not resolved yet")).map_err(
            |mut e| {
                e.esource = ErrorSource::Upstream;
                e
            },
        )
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        forwarded_headers(session, req, self.trust_forwarded_headers)?;
        if !ctx.strip_cookies.is_empty() {
            edge::strip_cookies(req, &ctx.strip_cookies)?;
        }
        if ctx.observe.is_some() || ctx.authorize {
            edge::narrow_accept_encoding(req)?;
        }
        Ok(())
    }

    async fn response_filter(&self, session: &mut Session, resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
        ctx.upstream_status = resp.status.as_u16();
        // Where the OP puts its session cookies (Domain, Path, …), so logout expires them there.
        for v in resp.headers.get_all(http::header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            self.learner.cookies.observe(session.req_header().uri.path(), v);
        }
        if resp.status.is_redirection()
            && self.learner.answers_authorization(ctx.endpoint, session.req_header().uri.path())
        {
            let params = resp
                .headers
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .filter(|l| l.contains("code=") || l.contains("id_token="))
                .map(crate::learn::redirect_params);
            if let Some(params) = params {
                let set = set_cookies(resp);
                let set: Vec<&str> = set.iter().map(String::as_str).collect();
                let cookie = edge::cookie_header(session.req_header());
                self.learner.on_authorization_response(&params, cookie.as_deref(), &set).await;
            }
        } else if resp.status == http::StatusCode::OK
            && (ctx.authorize || edge::sets_op_cookie(&self.learner.cookies.names, resp))
            && self.learner.answers_authorization(ctx.endpoint, session.req_header().uri.path())
        {
            ctx.form_post = edge::start_form_post(session.req_header(), resp);
        }
        self.session_state(session.req_header(), resp, ctx)?;
        // Wherever the OP put them (learned scopes) and on the configured expiry paths.
        for c in self.learner.cookies.expiring(&ctx.strip_cookies) {
            resp.append_header("set-cookie", c)?;
        }
        if ctx.delete_client && resp.status.is_success() {
            let req = session.req_header();
            self.learner.on_client_deleted(req.uri.path(), req.uri.query());
        }
        if let Some(obs) = ctx.observe.as_mut() {
            if !resp.status.is_informational() {
                let h = |n: http::HeaderName| resp.headers.get(n).and_then(|v| v.to_str().ok());
                let (ct, ce) = (h(http::header::CONTENT_TYPE), h(http::header::CONTENT_ENCODING));
                self.learner.on_response_header(obs, resp.status.as_u16(), ct, ce);
            }
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        if let Some(obs) = ctx.observe.as_mut() {
            self.learner.on_body(obs, body.as_ref(), end_of_stream);
        }
        if let Some(page) = ctx.form_post.as_mut() {
            if body.as_ref().is_some_and(|b| !page.push(b)) {
                ctx.form_post = None;
            } else if end_of_stream {
                if let Some(page) = ctx.form_post.take() {
                    self.learner.on_form_post_end(page);
                }
            }
        }
        Ok(None)
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let code = error_status(e);
        if code > 0 {
            if !ctx.local {
                Metrics::get().upstream_errors.with_label_values(&[error_reason(e)]).inc();
            }
            self.write_error(session, code).await;
        }
        FailToProxy { error_code: code, can_reuse_downstream: false }
    }

    /// What pingora's own error lines show of a request: method, path and host, never the query
    /// (it may hold an id_token_hint or state, GW-07).
    fn request_summary(&self, session: &Session, _ctx: &Ctx) -> String {
        let req = session.req_header();
        let host = req.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        format!("{} {}, Host: {host}", req.method, req.uri.path())
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        if self.access_log {
            access::line(session, ctx, status);
        }
        if ctx.local {
            return;
        }
        let m = Metrics::get();
        if status > 0 {
            m.count_proxied(status);
        }
        m.request_duration.observe(ctx.start.elapsed().as_secs_f64());
    }
}

impl Gateway {
    /// end_session and its confirmation: read the request, let `logout` decide, write the reply.
    async fn answer_logout(&self, session: &mut Session, route: Route) -> Result<()> {
        let (idx, confirm) = match route {
            Route::EndSession(i) => (i, false),
            Route::Confirm(i) => (i, true),
            Route::GlobalRevocation => return self.answer_global(session).await,
            Route::Report => return self.answer_report(session).await,
            Route::Ssf => return self.answer_ssf(session).await,
            Route::Proxy => return Ok(()),
        };
        let start = std::time::Instant::now();
        let req = session.req_header();
        let method = req.method.as_str().to_string();
        let query = req.uri.query().unwrap_or("").as_bytes().to_vec();
        let content_type = header_str(req, http::header::CONTENT_TYPE);
        // Every Cookie header: HTTP/2 browsers send one per cookie (RFC 9113 section 8.2.3).
        let cookie = edge::cookie_header(req).map(|c| c.into_owned());
        let accept_language = header_str(req, http::header::ACCEPT_LANGUAGE);
        let authorization = header_str(req, http::header::AUTHORIZATION);
        let base = self.end_session_paths.get(idx).cloned().unwrap_or_default();
        let body = if method == "POST" {
            match read_body(session, crate::logout::params::MAX_INPUT).await {
                Ok(b) => b,
                Err(e) => {
                    let kind = if e == BodyError::TooLarge { ErrorKind::TooLarge } else { ErrorKind::Rejected };
                    let reply = self.logout.error(e.status(), kind, None, "rejected");
                    return self.write_reply(session, reply, start).await;
                }
            }
        } else {
            Vec::new()
        };
        let input = Input {
            method: &method,
            query: &query,
            content_type: content_type.as_deref(),
            body: &body,
            cookie: cookie.as_deref(),
            accept_language: accept_language.as_deref(),
            authorization: authorization.as_deref(),
            confirm_action: format!("{base}{}", route::CONFIRM_SUFFIX),
        };
        let reply = if confirm { self.logout.confirm(&input).await } else { self.logout.end_session(&input).await };
        self.write_reply(session, reply, start).await
    }

    /// Count a logout's answer, with the time from its request header until the answer is
    /// ready (counted before it is sent, so a client that has the answer sees the count), and send it.
    async fn write_reply(&self, session: &mut Session, reply: Reply, start: std::time::Instant) -> Result<()> {
        let m = Metrics::get();
        m.logouts.with_label_values(&[reply.outcome]).inc();
        m.logout_duration.with_label_values(&[reply.outcome]).observe(start.elapsed().as_secs_f64());
        respond::write(session, reply.answer).await
    }

    /// Answer a request a limit refused, with its page (the connection is not kept: the client
    /// may still be sending what was too much).
    async fn refuse(&self, session: &mut Session, r: limits::Refusal, headers: &[(&'static str, String)]) {
        Metrics::get().limited.with_label_values(&[r.label]).inc();
        session.set_keepalive(None);
        let mut answer = self.pages.error_answer(r.status, r.kind, crate::render::DEFAULT_LANG);
        for (k, v) in headers {
            answer.push_header(k, v.clone());
        }
        if let Err(e) = respond::write(session, answer).await {
            tracing::debug!(error = %e, "could not send a limit's page");
        }
    }

    /// Write our error page for `code`; fall back to plain text if the template fails.
    /// 404: a path this listener does not serve (the mutual-TLS alias's non-logout paths).
    async fn not_found(&self, session: &mut Session, ctx: &mut Ctx) {
        ctx.local = true;
        let answer = self.pages.error_answer(404, ErrorKind::NotFound, crate::render::DEFAULT_LANG);
        if let Err(e) = respond::write(session, answer).await {
            tracing::debug!(error = %e, "could not send 404 page");
        }
    }

    async fn write_error(&self, session: &mut Session, code: u16) {
        let kind = match code {
            502 => ErrorKind::BadGateway,
            504 => ErrorKind::GatewayTimeout,
            400 => ErrorKind::Rejected,
            _ => ErrorKind::Internal,
        };
        let answer = self.pages.error_answer(code, kind, crate::render::DEFAULT_LANG);
        if let Err(e) = respond::write(session, answer).await {
            tracing::debug!(error = %e, "could not send error page");
        }
    }
}

fn header_str(req: &RequestHeader, name: http::HeaderName) -> Option<String> {
    req.headers.get(name).and_then(|v| v.to_str().ok()).map(String::from)
}
