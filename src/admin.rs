//! The admin listener: `/metrics`, `/healthz`, `/readyz` (and, with the logout capability, the
//! sessions API). Its own pingora service and runtime, so a flooded public listener does not
//! starve health checks and scrapes. Not meant to be exposed beyond the operator's network.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::session::SessionStore;

pub struct AdminApp {
    pub store: Arc<dyn SessionStore>,
}

fn text(status: StatusCode, content_type: &str, body: impl Into<Vec<u8>>) -> Response<Vec<u8>> {
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

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let get = req.method == http::Method::GET || req.method == http::Method::HEAD;
        let path = req.uri.path().to_string();
        match (get, path.as_str()) {
            (true, "/metrics") => match crate::metrics::encode() {
                Ok(body) => text(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", body),
                Err(e) => {
                    text(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("encoding metrics failed: {e}\n"))
                }
            },
            (true, "/healthz") => text(StatusCode::OK, "text/plain", "ok\n"),
            (true, "/readyz") => self.readyz().await,
            (false, "/metrics" | "/healthz" | "/readyz") => {
                let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n");
                r.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static("GET, HEAD"));
                r
            }
            _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        }
    }
}

impl AdminApp {
    /// 200 when the session store answers; 503 with the reason otherwise.
    async fn readyz(&self) -> Response<Vec<u8>> {
        match self.store.ping().await {
            Ok(()) => text(StatusCode::OK, "text/plain", "ready\n"),
            Err(e) => {
                tracing::warn!(backend = self.store.backend(), error = %e, "not ready");
                text(StatusCode::SERVICE_UNAVAILABLE, "text/plain", format!("not ready: {e}\n"))
            }
        }
    }
}
