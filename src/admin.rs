//! The admin listener: `/metrics`, `/healthz`, `/readyz`, and the sessions API of docs/admin-api.md
//! (`PUT|GET|DELETE /sessions/{sid}`, `GET /sessions?sub=`), behind an optional bearer token.
//! Its own pingora service and runtime, so a flooded public listener does not starve health
//! checks and scrapes. Not meant to be exposed beyond the operator's network.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde::Deserialize;

use crate::config::Secret;
use crate::session::{EndResult, NewSession, PutResult, SessionStore};
use crate::uri::decode;

/// Largest sessions API body.
const MAX_BODY: usize = 64 * 1024;

pub(crate) struct AdminApp {
    pub(crate) store: Arc<dyn SessionStore>,
    /// When set, the sessions API needs `Authorization: Bearer <token>`.
    pub(crate) token: Option<Secret>,
    /// Which listeners serve, and whether a shutdown began (health and readiness).
    pub(crate) serving: Arc<crate::serving::Serving>,
    /// DELETE tells the session's RPs (back-channel) and revokes its tokens at the upstream,
    /// as a logout does.
    pub(crate) notifier: crate::logout::notify::Notifier,
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Vec<u8>>) -> Response<Vec<u8>> {
    let body = body.into();
    let mut r = Response::new(Vec::new());
    *r.status_mut() = status;
    let h = r.headers_mut();
    if let Ok(v) = content_type.parse() {
        h.insert(http::header::CONTENT_TYPE, v);
    }
    h.insert(http::header::CONTENT_LENGTH, body.len().into());
    h.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    *r.body_mut() = body;
    r
}

fn text(status: StatusCode, body: &str) -> Response<Vec<u8>> {
    reply(status, "text/plain; charset=utf-8", format!("{body}\n"))
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<Vec<u8>> {
    reply(status, "application/json", v.to_string())
}

fn method_not_allowed(allow: &'static str) -> Response<Vec<u8>> {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
    r
}

/// Body of `PUT /sessions/{sid}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    sub: String,
    #[serde(default)]
    clients: Vec<String>,
    #[serde(default)]
    client_sids: BTreeMap<String, String>,
}

/// A sid, subject or client id the API accepts: 1..=256 printable ASCII characters.
fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let method = req.method.clone();
        let path = req.uri.path().to_string();
        let query = req.uri.query().unwrap_or("").to_string();
        let get = method == http::Method::GET || method == http::Method::HEAD;
        match path.as_str() {
            "/metrics" | "/healthz" | "/readyz" if !get => method_not_allowed("GET, HEAD"),
            "/metrics" => {
                // Only for its side effect: `logout_gateway_ready` says what /readyz would now.
                let _verdict = self.readiness().await;
                match crate::metrics::encode() {
                    Ok(body) => reply(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", body),
                    Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("encoding metrics failed: {e}")),
                }
            }
            "/healthz" => match self.serving.not_serving() {
                Some(why) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("not serving: {why}")),
                None => text(StatusCode::OK, "ok"),
            },
            "/readyz" => self.readyz().await,
            "/sessions" | "/sessions/" => match self.authorize(session) {
                Some(denied) => denied,
                None if get => self.by_subject(&query, false).await,
                None if method == http::Method::DELETE => self.by_subject(&query, true).await,
                None => method_not_allowed("GET, DELETE"),
            },
            p if p.starts_with("/sessions/") => {
                if let Some(denied) = self.authorize(session) {
                    return denied;
                }
                let sid = String::from_utf8(decode(&p.as_bytes()["/sessions/".len()..])).unwrap_or_default();
                if !valid_id(&sid) {
                    return text(StatusCode::BAD_REQUEST, "invalid sid");
                }
                match method.as_str() {
                    "GET" | "HEAD" => self.get(&sid).await,
                    "PUT" => self.put(session, sid).await,
                    "DELETE" => self.delete(&sid).await,
                    _ => method_not_allowed("GET, PUT, DELETE"),
                }
            }
            _ => text(StatusCode::NOT_FOUND, "not found"),
        }
    }
}

impl AdminApp {
    /// 200 when the session store answers; 503 with the reason otherwise.
    async fn readyz(&self) -> Response<Vec<u8>> {
        match self.readiness().await {
            Ok(None) => text(StatusCode::OK, "ready"),
            Ok(Some(note)) => text(StatusCode::OK, &format!("ready; {note}")),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("not ready: {why}")),
        }
    }

    /// Ready (with a note that does not stop it), or why not; also sets `logout_gateway_ready`,
    /// so a scrape sees what `/readyz` would answer at that moment.
    async fn readiness(&self) -> Result<Option<String>, String> {
        let verdict = self.judge().await;
        crate::metrics::Metrics::get().ready.set(i64::from(verdict.is_ok()));
        verdict
    }

    async fn judge(&self) -> Result<Option<String>, String> {
        if let Some(why) = self.serving.not_ready() {
            return Err(why);
        }
        let set = self.store.revoked_set();
        let ping = self.store.ping().await;
        crate::metrics::Metrics::get().store_up.set(i64::from(ping.is_ok()));
        if let Err(e) = ping {
            tracing::warn!(backend = self.store.backend(), error = %e, "not ready");
            return Err(e.to_string());
        }
        if !set.loaded() {
            return Err("revocation set not loaded yet".into());
        }
        if !set.is_current() {
            return Err("revocation set behind the store (feed interrupted)".into());
        }
        if !self.notifier.backchannel.ready() {
            return Err("logout-token signing keys not loaded".into());
        }
        Ok(self.store.note())
    }

    /// None when allowed; else the 401 to send.
    fn authorize(&self, session: &ServerSession) -> Option<Response<Vec<u8>>> {
        let want = self.token.as_ref()?;
        let got = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if got.is_some_and(|g| crate::crypto::secrets_match(g.as_bytes(), want.expose().as_bytes())) {
            return None;
        }
        let mut r = text(StatusCode::UNAUTHORIZED, "unauthorized");
        r.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        Some(r)
    }

    /// The session; an ended one with its receipt (what each RP was told and how it went).
    async fn get(&self, sid: &str) -> Response<Vec<u8>> {
        let v = match self.store.get_session(sid).await {
            Ok(Some(v)) => v,
            Ok(None) => return text(StatusCode::NOT_FOUND, "no such session"),
            Err(e) => return text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        };
        let mut body = serde_json::to_value(&v).unwrap_or_default();
        if !v.is_active() {
            let clients = &self.notifier.backchannel.clients;
            match crate::logout::receipt::receipt_of(self.store.as_ref(), clients, &v).await {
                Ok(r) => body["receipt"] = serde_json::to_value(r).unwrap_or_default(),
                Err(e) => return text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
            }
        }
        json(StatusCode::OK, &body)
    }

    /// GET: the subject's sessions; DELETE: end every one of them, notifying their RPs.
    async fn by_subject(&self, query: &str, end_all: bool) -> Response<Vec<u8>> {
        let sub = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "sub")
            .map(|(_, v)| String::from_utf8(decode(v.as_bytes())).unwrap_or_default());
        let Some(sub) = sub.filter(|s| valid_id(s)) else {
            return text(StatusCode::BAD_REQUEST, "query parameter sub is required");
        };
        if end_all {
            // As a global token revocation does: every session ends, then one batch of notices.
            return match crate::logout::subject::end_subject(self.store.as_ref(), &self.notifier, &sub).await {
                Ok(_) => reply(StatusCode::NO_CONTENT, "text/plain", Vec::new()),
                Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
            };
        }
        match self.store.sessions_of(&sub).await {
            Ok(list) => json(StatusCode::OK, &serde_json::json!({ "sessions": list })),
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        }
    }

    async fn put(&self, session: &mut ServerSession, sid: String) -> Response<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_BODY => body.extend_from_slice(&chunk),
                Ok(Some(_)) => return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
                Ok(None) => break,
                Err(_) => return text(StatusCode::BAD_REQUEST, "could not read body"),
            }
        }
        let b: PutBody = match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return text(StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
        };
        let ids_ok = valid_id(&b.sub)
            && b.clients.iter().all(|c| valid_id(c))
            && b.client_sids.iter().all(|(c, s)| valid_id(c) && valid_id(s))
            && b.clients.len() + b.client_sids.len() <= 256;
        if !ids_ok {
            return text(StatusCode::BAD_REQUEST, "sub, clients and sids must be 1 to 256 printable characters");
        }
        let new = NewSession {
            sid,
            sub: b.sub,
            clients: b.clients,
            client_sids: b.client_sids,
            tokens: Vec::new(),
            cookie_hashes: Vec::new(),
        };
        match self.store.put_session(&new).await {
            Ok(PutResult::Stored(_)) => reply(StatusCode::NO_CONTENT, "text/plain", Vec::new()),
            Ok(PutResult::Conflict(why)) => text(StatusCode::CONFLICT, &why.to_string()),
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        }
    }

    async fn delete(&self, sid: &str) -> Response<Vec<u8>> {
        match self.store.end_session(sid, None, false).await {
            Ok(EndResult::Ended(v)) => match self
                .notifier
                .sessions_ended(std::slice::from_ref(&v), &[], None, crate::ssf::Initiator::Admin)
                .await
            {
                Ok(()) => reply(StatusCode::NO_CONTENT, "text/plain", Vec::new()),
                Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("session ended, {e}")),
            },
            // Idempotent: ending what is already ended, or unknown, leaves the same state.
            Ok(EndResult::AlreadyEnded(_) | EndResult::Unknown) => {
                reply(StatusCode::NO_CONTENT, "text/plain", Vec::new())
            }
            Ok(other) => text(StatusCode::CONFLICT, &format!("{other:?}")),
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        }
    }
}
