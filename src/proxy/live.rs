//! The public listener's state, replaceable while serving (SIGHUP): pingora owns the
//! `ProxyHttp` value for the life of the service, so the value it owns is [`Live`], which holds
//! the current [`Gateway`] behind an `ArcSwap`. Each request takes the gateway current when it
//! starts and keeps it to its end (every hook of one request sees one configuration); a reload
//! swaps in a new gateway for the requests that start after it. Connections are not touched.

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

use super::{Ctx, Gateway};

/// What pingora owns: the current gateway, and whether this listener answers only end_session
/// (the mutual-TLS alias: every other path is 404 there, never proxied).
pub(crate) struct Live {
    pub(crate) current: Arc<ArcSwap<Gateway>>,
    pub(crate) only_logout: bool,
}

/// Per-request state: the gateway the request started with, and its own state.
pub(crate) struct LiveCtx {
    gw: Arc<Gateway>,
    ctx: Ctx,
}

#[async_trait]
impl ProxyHttp for Live {
    type CTX = LiveCtx;

    fn new_ctx(&self) -> LiveCtx {
        let gw = self.current.load_full();
        let ctx = gw.new_ctx();
        LiveCtx { gw, ctx }
    }

    async fn request_filter(&self, session: &mut Session, c: &mut LiveCtx) -> Result<bool> {
        if self.only_logout {
            let path = session.req_header().uri.path().as_bytes();
            if matches!(super::route::classify(path, &c.gw.end_session_paths), super::route::Route::Proxy) {
                c.gw.not_found(session, &mut c.ctx).await;
                return Ok(true);
            }
        }
        c.gw.request_filter(session, &mut c.ctx).await
    }

    async fn upstream_peer(&self, session: &mut Session, c: &mut LiveCtx) -> Result<Box<HttpPeer>> {
        c.gw.upstream_peer(session, &mut c.ctx).await
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        c: &mut LiveCtx,
    ) -> Result<()> {
        c.gw.upstream_request_filter(session, req, &mut c.ctx).await
    }

    async fn response_filter(&self, session: &mut Session, resp: &mut ResponseHeader, c: &mut LiveCtx) -> Result<()> {
        c.gw.response_filter(session, resp, &mut c.ctx).await
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        c: &mut LiveCtx,
    ) -> Result<Option<std::time::Duration>> {
        c.gw.response_body_filter(session, body, end_of_stream, &mut c.ctx)
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, c: &mut LiveCtx) -> FailToProxy {
        c.gw.fail_to_proxy(session, e, &mut c.ctx).await
    }

    fn request_summary(&self, session: &Session, c: &LiveCtx) -> String {
        c.gw.request_summary(session, &c.ctx)
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, c: &mut LiveCtx) {
        c.gw.logging(session, e, &mut c.ctx).await
    }
}
