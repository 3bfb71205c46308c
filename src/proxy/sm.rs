//! Session Management 1.0 on proxied authorization traffic (SM-01): a successful authorization
//! response (a redirect from the authorization endpoint, below it, or an OP login path, with a
//! `code`, `id_token` or `access_token`) gets the gateway's `session_state` for the client, the
//! redirect URI's origin and the browser's state (a new browser-state cookie when it has none),
//! replacing any the OP put there. The client comes from the request (`client_id`), or from the
//! cookie that remembered it when the browser was sent to the authorization endpoint for that
//! origin; with neither, the response passes unchanged. Form_post responses are not changed.

use pingora::prelude::*;

use super::{edge, Ctx, Gateway};

/// The one `client_id` of a query, if it has exactly one.
fn client_id(query: Option<&str>) -> Option<String> {
    one(query, "client_id")
}

fn one(query: Option<&str>, name: &str) -> Option<String> {
    let mut it = url::form_urlencoded::parse(query?.as_bytes()).filter(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    let first = it.next()?;
    it.next().is_none().then_some(first).filter(|v| !v.is_empty() && v.len() <= 256)
}

fn origin(uri: &str) -> Option<String> {
    let u = url::Url::parse(uri).ok()?;
    matches!(u.scheme(), "http" | "https").then(|| u.origin().ascii_serialization())
}

impl Gateway {
    /// Add `session_state` to an authorization response, or remember the client being
    /// authorized for its redirect URI's origin.
    pub(super) fn session_state(&self, req: &RequestHeader, resp: &mut ResponseHeader, ctx: &Ctx) -> Result<()> {
        let Some(bs) = self.learner.cookies.browser_state.as_ref() else { return Ok(()) };
        if !self.learner.answers_authorization(ctx.endpoint, req.uri.path()) {
            return Ok(());
        }
        let cookie = edge::cookie_header(req);
        let location = resp.headers.get(http::header::LOCATION).and_then(|v| v.to_str().ok()).map(String::from);
        let granted = location.as_deref().filter(|_| resp.status.is_redirection()).filter(|l| {
            crate::learn::redirect_params(l)
                .iter()
                .any(|(k, _)| ["code", "id_token", "access_token"].contains(&k.as_str()))
        });
        if let Some(loc) = granted {
            let Some(origin) = origin(loc) else { return Ok(()) };
            let Some(client) = client_id(req.uri.query()).or_else(|| bs.client_for(cookie.as_deref(), &origin)) else {
                tracing::debug!("authorization response without a known client: no session_state");
                return Ok(());
            };
            let (state, fresh) = match bs.value(cookie.as_deref()) {
                Some(v) => (v, false),
                None => (crate::cookies::browser_state::BrowserState::fresh(), true),
            };
            let salt = crate::crypto::random_token();
            let ss = crate::cookies::browser_state::session_state(&client, &origin, &state, &salt[..11]);
            let loc = crate::cookies::browser_state::with_session_state(loc, &ss);
            resp.insert_header(http::header::LOCATION, loc)?;
            if fresh {
                resp.append_header(http::header::SET_COOKIE, bs.set_cookie(&state))?;
            }
            return Ok(());
        }
        // On the way to the login form: which client, for which redirect URI's origin.
        if ctx.endpoint == crate::learn::Endpoint::Authorization {
            let (client, redirect) = (client_id(req.uri.query()), one(req.uri.query(), "redirect_uri"));
            if let (Some(client), Some(origin)) = (client, redirect.as_deref().and_then(origin)) {
                resp.append_header(http::header::SET_COOKIE, bs.client_cookie(&origin, &client))?;
            }
        }
        Ok(())
    }
}
