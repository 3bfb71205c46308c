//! RP-initiated logout at end_session (OpenID Connect RP-Initiated Logout 1.0 with Front-Channel
//! Logout 1.0), answered by the gateway itself.
//!
//! One request: parse strictly ([`params`]), validate the hint (`oidc::hint`), plan with the
//! decision table ([`decide`]), make the one session-store call the plan needs, and reply: a
//! redirect, the front-channel page, the logged-out page, the confirmation page, or an error.
//! Confirmations carry a single-use token kept in the store and bound, through a hash, to an
//! HttpOnly cookie set with the page. Nothing claims success unless the store confirmed it:
//! store trouble is a 503 page without a redirect (GW-08). This module does not touch pingora
//! types; `proxy` reads the request into an [`Input`] and writes the [`Reply`].

pub(crate) mod decide;
pub(crate) mod failure;
pub(crate) mod notify;
pub(crate) mod params;
pub(crate) mod uri;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use self::decide::{EndRequest, HintCheck, Next, Outcome, Plan, Policy, StoreAnswer};
use self::failure::{Failure, InLang, LogoutError};
use self::params::LogoutParams;
use crate::backchannel::Backchannel;
use crate::clients::Clients;
use crate::config::{Client, Config};
use crate::metrics::Metrics;
use crate::oidc::jwks::Jwks;
use crate::render::{Answer, ErrorKind, Frame, Page, Pages};
use crate::revoke::Revoker;
use crate::session::{EndResult, SessionStore, SessionView};

/// Name of the cookie that binds a confirmation page to the browser that saw it (over http).
pub(crate) const CONFIRM_COOKIE: &str = "lgw_confirm";

/// Its name over https: the `__Host-` prefix makes browsers refuse it from a sibling domain or
/// from http, so a same-site neighbour cannot plant a binder of its own.
pub(crate) const CONFIRM_COOKIE_HOST: &str = "__Host-lgw_confirm";

/// The request as the logout flow needs it (read by `proxy` from the pingora session).
#[derive(Debug, Default)]
pub(crate) struct Input<'a> {
    pub(crate) method: &'a str,
    pub(crate) query: &'a [u8],
    pub(crate) content_type: Option<&'a str>,
    /// The body of a POST (already size-capped).
    pub(crate) body: &'a [u8],
    pub(crate) cookie: Option<&'a str>,
    /// The path the confirmation form posts to.
    pub(crate) confirm_action: String,
}

/// What to send back, and how it counts in `logouts_total{outcome}`.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) answer: Answer,
    pub(crate) outcome: &'static str,
}

impl Reply {
    fn page(page: Page, headers: Vec<(&'static str, String)>, outcome: &'static str) -> Reply {
        Reply { answer: Answer::Page { page, headers }, outcome }
    }
}

/// The confirmation context kept in the store under the page's token.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    next: NextJson,
    end: Option<EndJson>,
    lang: String,
    /// SHA-256 (hex) of the binder cookie's value.
    binder: String,
    /// SHA-256 (hex) of the OP session cookies the browser presented on the GET: the POST must
    /// present the same ones.
    #[serde(default)]
    op: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct NextJson {
    client_id: Option<String>,
    redirect: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct EndJson {
    sid: String,
    sub: String,
    accept_unknown: bool,
}

/// Everything one logout needs; shared by all requests.
pub(crate) struct Logout {
    pub(crate) clients: Arc<Clients>,
    pub(crate) issuer: String,
    pub(crate) policy: Policy,
    pub(crate) session_cookies: Vec<String>,
    /// `Path` attributes the OP cookies are expired on (`upstream.session_cookie_expiry_paths`).
    pub(crate) session_cookie_expiry_paths: Vec<String>,
    pub(crate) frontchannel_timeout: Duration,
    pub(crate) confirmation_ttl: Duration,
    /// Janssen endSessionWithAccessToken: a learned access token may stand in for the hint.
    pub(crate) accept_access_token_hint: bool,
    /// Cookies get `Secure` when the issuer is https.
    pub(crate) secure_cookies: bool,
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) jwks: Arc<Jwks>,
    pub(crate) pages: Arc<Pages>,
    /// Tells the RPs of ended sessions (back-channel) and revokes their tokens at the upstream.
    pub(crate) notifier: notify::Notifier,
}

/// A participant RP and the sid it knows.
struct Participant<'a> {
    client_id: &'a str,
    sid: Option<String>,
}

impl Logout {
    pub(crate) fn new(
        config: &Config,
        clients: Arc<Clients>,
        revoker: Option<Arc<Revoker>>,
        store: Arc<dyn SessionStore>,
        jwks: Arc<Jwks>,
        pages: Arc<Pages>,
        backchannel: Arc<Backchannel>,
    ) -> Logout {
        let es = &config.end_session;
        Logout {
            clients,
            issuer: config.issuer.clone(),
            policy: Policy {
                require_hint: es.require_id_token_hint,
                reject_expired: es.reject_expired_id_token_hint,
                accept_unknown_sid: es.accept_unknown_sid,
                unregistered_redirect_patterns: es.unregistered_redirect_uri_patterns.clone(),
                registered_redirect_patterns: config.registration.redirect_patterns.clone(),
            },
            session_cookies: config.upstream.session_cookies.clone(),
            session_cookie_expiry_paths: config.upstream.session_cookie_expiry_paths.clone(),
            frontchannel_timeout: es.frontchannel_timeout,
            accept_access_token_hint: es.accept_access_token_hint,
            confirmation_ttl: es.confirmation_ttl,
            secure_cookies: config.issuer.starts_with("https://"),
            store,
            jwks,
            pages,
            notifier: notify::Notifier { backchannel, revoker },
        }
    }

    /// end_session itself (GET query or POST form, RPI-01, GW-10).
    pub(crate) async fn end_session(&self, input: &Input<'_>) -> Reply {
        self.end_session_steps(input).await.unwrap_or_else(|f| self.fail(f))
    }

    async fn end_session_steps(&self, input: &Input<'_>) -> Result<Reply, Failure> {
        let p = LogoutParams::parse(self.raw_params(input)?)?;
        let lang = self.pages.pick_lang(p.ui_locales.as_deref()).to_string();
        let hint = self.check_hint(&p).await.in_lang(&lang)?;
        let plan = self.plan(&p, &hint).await;
        match plan {
            Plan::Reject(r) => Err(LogoutError::Refused(r.code())).in_lang(&lang),
            Plan::Confirm { next, end } => self.ask(next, end, &lang, input).await,
            Plan::End { next, end } => self.end_hinted(next, end, &hint, &lang, input).await,
        }
    }

    /// What the request's `id_token_hint` proves (or, with `accept_access_token_hint`, a
    /// learned access token in its place).
    async fn check_hint(&self, p: &LogoutParams) -> Result<HintCheck, LogoutError> {
        let Some(t) = &p.id_token_hint else { return Ok(HintCheck::Absent) };
        let hint = crate::oidc::hint::check(t, &self.jwks, &self.issuer, &self.clients)
            .await
            .map_err(|e| LogoutError::Keys(e.to_string()))?;
        let hint = match hint {
            HintCheck::Invalid(_) if self.accept_access_token_hint => self.access_token_hint(t).await?,
            h => h,
        };
        if let HintCheck::Invalid(why) = &hint {
            tracing::info!(reason = why, "id_token_hint refused");
        }
        Ok(hint)
    }

    /// Stage one of the decision table, handed the (at most two) clients the request names.
    async fn plan(&self, p: &LogoutParams, hint: &HintCheck) -> Plan {
        let mut named = BTreeMap::new();
        let hint_client_id = match hint {
            HintCheck::Valid(c) => Some(c.client_id.as_str()),
            _ => None,
        };
        for id in [p.client_id.as_deref(), hint_client_id].into_iter().flatten() {
            if let Some(c) = self.clients.get(id).await {
                named.insert(id.to_string(), Client::clone(&c));
            }
        }
        decide::plan(
            hint,
            p.client_id.as_deref(),
            p.post_logout_redirect_uri.as_deref(),
            p.state.as_deref(),
            &named,
            &self.policy,
        )
    }

    /// A valid hint names the session to end: end it (unless it is not the browser's own,
    /// RPI-15), then stage two of the decision table.
    async fn end_hinted(
        &self,
        next: Next,
        end: EndRequest,
        hint: &HintCheck,
        lang: &str,
        input: &Input<'_>,
    ) -> Result<Reply, Failure> {
        let browser = self.browser_session(input.cookie).await.in_lang(lang)?;
        if let Some(bsid) = &browser {
            if self.store.get_session(&end.sid).await.in_lang(lang)?.is_some_and(|v| &v.sid != bsid) {
                tracing::info!("hint names another session than the browser's: asking");
                return self.ask(next, None, lang, input).await;
            }
        }
        let res = self.store.end_session(&end.sid, Some(&end.sub), end.accept_unknown).await.in_lang(lang)?;
        let answer = match &res {
            EndResult::Ended(_) => StoreAnswer::Ended,
            EndResult::AlreadyEnded(_) => StoreAnswer::AlreadyEnded,
            EndResult::Recorded => StoreAnswer::Recorded,
            EndResult::Unknown => StoreAnswer::Unknown,
            EndResult::SubjectMismatch => StoreAnswer::SubjectMismatch,
        };
        let hint_sid = Some(end.sid.clone());
        let next = match decide::after_store(next, end, answer) {
            Outcome::Confirm { next, end } => return self.ask(next, end, lang, input).await,
            Outcome::LoggedOut(next) => next,
        };
        let (client, sub) = match hint {
            HintCheck::Valid(c) => (Some(c.client_id.clone()), Some(c.sub.as_str())),
            _ => (None, None),
        };
        let who = client.map(|c| vec![(c, hint_sid)]).unwrap_or_default();
        let mut sessions: Vec<SessionView> = session_of(&res).into_iter().collect();
        // An unknown sid accepted (accept_unknown_sid): the browser's own session is the one to end.
        if let (EndResult::Recorded, Some(bsid)) = (&res, &browser) {
            sessions.extend(session_of(&self.store.end_session(bsid, None, false).await.in_lang(lang)?));
        }
        self.finish(next, &who, sessions, sub, input.cookie, lang).await
    }

    /// The confirmation form's POST: a valid, unused token bound to this browser logs out.
    pub(crate) async fn confirm(&self, input: &Input<'_>) -> Reply {
        self.confirm_steps(input).await.unwrap_or_else(|f| self.fail(f))
    }

    async fn confirm_steps(&self, input: &Input<'_>) -> Result<Reply, Failure> {
        if input.method != "POST" {
            return Err(LogoutError::Method("POST").into());
        }
        if !is_form(input.content_type) {
            return Err(LogoutError::NotForm.into());
        }
        let (mut token, mut action) = (None, None);
        for pair in input.body.split(|b| *b == b'&') {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            match crate::uri::decode(k).as_slice() {
                b"token" => token = Some(String::from_utf8_lossy(&crate::uri::decode(v)).into_owned()),
                b"action" => action = Some(crate::uri::decode(v)),
                _ => {}
            }
        }
        let Some(token) = token.filter(|t| t.len() <= 64 && !t.is_empty()) else {
            return Err(LogoutError::ConfirmationInvalid("no token").into());
        };
        let pending = self.store.take_pending(&token).await?;
        let Some(pending) = pending.and_then(|p| serde_json::from_str::<Pending>(&p).ok()) else {
            return Err(LogoutError::ConfirmationInvalid("token unknown, expired or replayed").into());
        };
        let lang = pending.lang.clone();
        let binder = cookie_value(input.cookie, self.confirm_cookie()).map(|v| hex_sha256(v.as_bytes()));
        if binder.as_deref() != Some(pending.binder.as_str())
            || action.as_deref() != Some(b"logout")
            || self.op_binding(input.cookie) != pending.op
        {
            let why = "not bound to this browser or its OP session, or not a logout";
            return Err(LogoutError::ConfirmationInvalid(why)).in_lang(&lang);
        }
        let next = Next { client_id: pending.next.client_id, redirect: pending.next.redirect };
        let initiator = next.client_id.clone();
        // End what the context names (a hint's session, or an unknown sid as a tombstone) and
        // the browser's own session, found by its OP cookie (RPI-16).
        let mut sessions: Vec<SessionView> = Vec::new();
        let (mut sid, mut sub) = (None, None);
        if let Some(e) = pending.end {
            let r = self.store.end_session(&e.sid, Some(&e.sub), e.accept_unknown).await.in_lang(&lang)?;
            sessions.extend(session_of(&r));
            sid = Some(e.sid);
            sub = Some(e.sub);
        }
        if let Some(bsid) = self.browser_session(input.cookie).await.in_lang(&lang)? {
            if !sessions.iter().any(|v| v.sid == bsid) {
                sessions.extend(session_of(&self.store.end_session(&bsid, None, false).await.in_lang(&lang)?));
            }
        }
        let who = initiator.map(|c| vec![(c, sid)]).unwrap_or_default();
        let mut reply = self.finish(next, &who, sessions, sub.as_deref(), input.cookie, &lang).await?;
        let clear = self.binder_cookie("", &input.confirm_action, 0);
        reply.answer.push_header("set-cookie", clear);
        Ok(reply)
    }

    /// endSessionWithAccessToken: an access token the gateway learned (by hash) names its
    /// session and client as a valid hint would; anything else stays invalid.
    async fn access_token_hint(&self, token: &str) -> Result<HintCheck, crate::session::StoreError> {
        let hash = crate::crypto::token_hash(token.as_bytes());
        let Some((sid, client)) = self.store.session_by_token(&hash).await? else {
            return Ok(HintCheck::Invalid("neither a valid ID token nor a known access token"));
        };
        let Some(v) = self.store.get_session(&sid).await? else {
            return Ok(HintCheck::Invalid("the access token's session is gone"));
        };
        if !self.clients.knows(&client).await {
            return Ok(HintCheck::Invalid("the access token's client is not configured"));
        }
        let client_sid = v.sid_for(&client).to_string();
        Ok(HintCheck::Valid(decide::HintClaims {
            client_id: client,
            sub: v.sub,
            sid: Some(client_sid),
            expired: false,
        }))
    }

    /// The session the browser's OP cookie is bound to (learned from the code flow), if any.
    async fn browser_session(&self, cookie: Option<&str>) -> Result<Option<String>, crate::session::StoreError> {
        for hash in crate::cookies::op_cookie_hashes(cookie, &self.session_cookies)
            .into_iter()
            .take(crate::cookies::MAX_OP_COOKIES)
        {
            if let Some(sid) = self.store.session_by_cookie(&hash).await? {
                return Ok(Some(sid));
            }
        }
        Ok(None)
    }

    /// The presented OP cookies (at most `MAX_OP_COOKIES`) a logout that ended `sessions` may
    /// revoke: those bound to no session or to one of them (or to a session no longer active).
    async fn revocable_cookies(
        &self,
        cookie: Option<&str>,
        sessions: &[SessionView],
    ) -> Result<Vec<String>, crate::session::StoreError> {
        let mut out = Vec::new();
        for hash in crate::cookies::op_cookie_hashes(cookie, &self.session_cookies)
            .into_iter()
            .take(crate::cookies::MAX_OP_COOKIES)
        {
            let keep = match self.store.session_by_cookie(&hash).await? {
                None => true,
                Some(sid) if sessions.iter().any(|v| v.sid == sid || v.client_sids.values().any(|s| *s == sid)) => true,
                Some(sid) => self.store.get_session(&sid).await?.is_none_or(|v| !v.is_active()),
            };
            if keep {
                out.push(hash);
            }
        }
        Ok(out)
    }

    fn raw_params<'a>(&self, input: &Input<'a>) -> Result<&'a [u8], LogoutError> {
        match input.method {
            "GET" if input.query.len() > params::MAX_INPUT => Err(LogoutError::TooLarge),
            "GET" => Ok(input.query),
            // GW-10: a POST's parameters come from its form body only.
            "POST" if !is_form(input.content_type) => Err(LogoutError::NotForm),
            "POST" => Ok(input.body),
            _ => Err(LogoutError::Method("GET, POST")),
        }
    }

    /// The one mapping from a failure to its answer: status, page, metric label, log line.
    fn fail(&self, f: Failure) -> Reply {
        let (status, kind, outcome) = f.error.answer();
        if status >= 500 {
            tracing::warn!(error = %f.error, "logout not completed");
        } else {
            tracing::info!(reason = %f.error, "logout request refused");
        }
        let mut r = self.error(status, kind, f.lang.as_deref(), outcome);
        if let LogoutError::Method(allow) = &f.error {
            r.answer.push_header("allow", allow.to_string());
        }
        r
    }

    /// An error page; counted under `outcome`.
    pub(crate) fn error(&self, status: u16, kind: ErrorKind, lang: Option<&str>, outcome: &'static str) -> Reply {
        let mut answer = self.pages.error_answer(status, kind, lang.unwrap_or(crate::render::DEFAULT_LANG));
        if status == 503 {
            answer.push_header("retry-after", "5".to_string());
        }
        Reply { answer, outcome }
    }

    /// Keep the context under a fresh token and show the confirmation page, with the cookie
    /// that binds the token to this browser.
    async fn ask(&self, next: Next, end: Option<EndRequest>, lang: &str, input: &Input<'_>) -> Result<Reply, Failure> {
        // The page names where the browser goes afterwards: the host (or a native app's scheme).
        let destination = next.redirect.as_deref().and_then(|r| url::Url::parse(r).ok()).map(|u| match u.host_str() {
            Some(h) => h.to_string(),
            None => format!("{}:", u.scheme()),
        });
        let token = crate::crypto::random_token();
        let binder = crate::crypto::random_token();
        let pending = Pending {
            next: NextJson { client_id: next.client_id, redirect: next.redirect },
            end: end.map(|e| EndJson { sid: e.sid, sub: e.sub, accept_unknown: e.accept_unknown }),
            lang: lang.to_string(),
            binder: hex_sha256(binder.as_bytes()),
            op: self.op_binding(input.cookie),
        };
        let json = serde_json::to_string(&pending).map_err(|e| LogoutError::Render(e.to_string())).in_lang(lang)?;
        if !self.store.put_pending(&token, &json, self.confirmation_ttl).await.in_lang(lang)? {
            Metrics::get().limited.with_label_values(&["confirmations"]).inc();
            return Err(LogoutError::ConfirmationsCapped).in_lang(lang);
        }
        let page = self
            .pages
            .confirm(lang, &input.confirm_action, &token, destination.as_deref())
            .map_err(LogoutError::Render)
            .in_lang(lang)?;
        let cookie = self.binder_cookie(&binder, &input.confirm_action, self.confirmation_ttl.as_secs().max(1));
        Ok(Reply::page(page, vec![("set-cookie", cookie)], "confirm"))
    }

    /// The binder cookie's name: `__Host-` prefixed over https.
    fn confirm_cookie(&self) -> &'static str {
        if self.secure_cookies {
            CONFIRM_COOKIE_HOST
        } else {
            CONFIRM_COOKIE
        }
    }

    /// The binder cookie (`max_age` 0 clears it). Over https it is `__Host-` (Secure, Path=/);
    /// over http it is scoped to the confirmation path.
    fn binder_cookie(&self, value: &str, confirm_action: &str, max_age: u64) -> String {
        let name = self.confirm_cookie();
        let path = if self.secure_cookies { "/" } else { confirm_action };
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
    }

    /// What binds a confirmation to the browser's OP session: a hash of the OP session cookies
    /// it presented (by name, in order; at most `MAX_OP_COOKIES`).
    fn op_binding(&self, cookie: Option<&str>) -> String {
        let mut pairs: Vec<(&str, &str)> = crate::cookies::op_cookie_pairs(cookie, &self.session_cookies)
            .take(crate::cookies::MAX_OP_COOKIES)
            .collect();
        pairs.sort_unstable();
        let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        hex_sha256(joined.join("; ").as_bytes())
    }

    /// One front-channel iframe per participant with a `frontchannel_logout_uri` (FCL-05..07):
    /// every client of the ended sessions with the sid it knows, then the initiator's.
    async fn frames(&self, sessions: &[SessionView], initiator: &[(String, Option<String>)]) -> Vec<Frame> {
        let mut who: Vec<Participant<'_>> = Vec::new();
        for s in sessions {
            for c in &s.clients {
                if !who.iter().any(|p| p.client_id == c) {
                    who.push(Participant { client_id: c, sid: Some(s.sid_for(c).to_string()) });
                }
            }
        }
        for (c, sid) in initiator {
            if !who.iter().any(|p| p.client_id == c) {
                who.push(Participant { client_id: c, sid: sid.clone() });
            }
        }
        let mut frames: Vec<Frame> = Vec::new();
        for p in &who {
            let Some(client) = self.clients.get(p.client_id).await else { continue };
            let Some(fc) = client.frontchannel_logout_uri.as_deref() else { continue };
            let src =
                uri::frontchannel_url(fc, client.frontchannel_logout_session_required, &self.issuer, p.sid.as_deref());
            if let Some(origin) = uri::origin(&src) {
                frames.push(Frame { src, origin });
            }
        }
        frames
    }

    /// The user is logged out (the store said so): accept the back-channel notices, clear the
    /// OP's cookies, load every participant's front-channel URI, then go where `next` says
    /// (RPI-17/22, FCL-05..10, BCL).
    async fn finish(
        &self,
        next: Next,
        initiator: &[(String, Option<String>)],
        sessions: Vec<SessionView>,
        sub: Option<&str>,
        cookie: Option<&str>,
        lang: &str,
    ) -> Result<Reply, Failure> {
        let frames = self.frames(&sessions, initiator).await;
        // The browser's OP cookies are refused from now on (GW-02), whether a learned session
        // has them or the gateway never saw them bound; a cookie bound to a session this logout
        // did not end (another user's, planted) is left alone.
        let presented = self.revocable_cookies(cookie, &sessions).await.in_lang(lang)?;
        self.store.revoke_hashes(&presented).await.in_lang(lang)?;
        // Back-channel notices are accepted (durably) before anything says "signed out".
        self.notifier.sessions_ended(&sessions, initiator, sub).await.in_lang(lang)?;
        let headers = self.clear_op_cookies();
        let m = Metrics::get();
        m.frontchannel_iframes.inc_by(frames.len() as u64);
        let outcome = if next.redirect.is_some() { "redirect" } else { "logged_out" };
        tracing::info!(
            outcome,
            client = next.client_id.as_deref().unwrap_or("-"),
            iframes = frames.len(),
            "logged out"
        );
        if frames.is_empty() {
            if let Some(location) = next.redirect {
                return Ok(Reply { answer: Answer::Redirect { location, headers }, outcome: "redirect" });
            }
        }
        let page = if frames.is_empty() {
            self.pages.logged_out(lang)
        } else {
            let ms = self.frontchannel_timeout.as_millis().min(60_000) as u64;
            self.pages.frontchannel(lang, &frames, next.redirect.as_deref(), ms)
        };
        Ok(match page {
            Ok(page) => Reply::page(page, headers, outcome),
            Err(e) => {
                // The session is ended: count it as such, and still clear the OP cookies.
                tracing::error!(error = %e, "logged-out page failed to render");
                let mut r = self.error(500, ErrorKind::Internal, Some(lang), outcome);
                for (k, v) in headers {
                    r.answer.push_header(k, v);
                }
                r
            }
        })
    }

    /// Expire the upstream OP's own session cookies in the browser: one `Set-Cookie` per name
    /// and configured cookie path.
    fn clear_op_cookies(&self) -> Vec<(&'static str, String)> {
        crate::cookies::expiring_cookies(&self.session_cookies, &self.session_cookie_expiry_paths, self.secure_cookies)
            .map(|c| ("set-cookie", c))
            .collect()
    }
}

fn session_of(r: &EndResult) -> Option<SessionView> {
    match r {
        EndResult::Ended(v) | EndResult::AlreadyEnded(v) => Some(v.clone()),
        _ => None,
    }
}

fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// The value of cookie `name` in a Cookie header.
pub(crate) fn cookie_value<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?.split(';').filter_map(|kv| kv.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

fn hex_sha256(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_forms() {
        assert_eq!(cookie_value(Some("a=1; lgw_confirm=xyz; b=2"), "lgw_confirm"), Some("xyz"));
        assert_eq!(cookie_value(Some("xlgw_confirm=1"), "lgw_confirm"), None);
        assert_eq!(cookie_value(None, "x"), None);
        assert!(is_form(Some("application/x-www-form-urlencoded; charset=UTF-8")));
        assert!(!is_form(Some("application/json")));
        assert!(!is_form(None));
        assert_eq!(hex_sha256(b"").len(), 64);
    }
}
