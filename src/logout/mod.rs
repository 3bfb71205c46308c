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

mod backend;
mod confirm;
pub(crate) mod decide;
pub(crate) mod failure;
mod finish;
pub(crate) mod global;
pub(crate) mod notify;
pub(crate) mod params;
pub(crate) mod receipt;
pub(crate) mod report;
pub(crate) mod subject;
pub(crate) mod uri;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use self::decide::{EndRequest, HintCheck, Next, Outcome, Plan, Policy, StoreAnswer};
use self::failure::{Failure, InLang, LogoutError};
use self::params::LogoutParams;
use crate::clients::Clients;
use crate::config::{Client, Config};
use crate::cookies::OpCookies;
use crate::metrics::Metrics;
use crate::oidc::jwks::Jwks;
use crate::render::{Answer, ErrorKind, Page, Pages};
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
    /// The `Authorization` header (HTTP Basic client authentication of a back-end logout).
    pub(crate) authorization: Option<&'a str>,
    /// The browser's `Accept-Language`: the page language when `ui_locales` names none we have.
    pub(crate) accept_language: Option<&'a str>,
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

/// Everything one logout needs; shared by all requests.
pub(crate) struct Logout {
    pub(crate) clients: Arc<Clients>,
    pub(crate) issuer: String,
    pub(crate) policy: Policy,
    /// The OP's session cookies: read to find the browser's session, expired at logout.
    pub(crate) cookies: OpCookies,
    pub(crate) frontchannel_timeout: Duration,
    pub(crate) confirmation_ttl: Duration,
    /// Janssen endSessionWithAccessToken: a learned access token may stand in for the hint.
    pub(crate) accept_access_token_hint: bool,
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) jwks: Arc<Jwks>,
    pub(crate) pages: Arc<Pages>,
    /// Tells the RPs of ended sessions (back-channel) and revokes their tokens at the upstream.
    pub(crate) notifier: notify::Notifier,
    /// The global token revocation endpoint (`global.rs`); None: off.
    pub(crate) global: Option<crate::config::GlobalRevocation>,
    /// Where front-channel pages report (`report.rs`): the first end_session path's report path.
    pub(crate) report_path: String,
}

impl Logout {
    pub(crate) fn new(
        config: &Config,
        clients: Arc<Clients>,
        store: Arc<dyn SessionStore>,
        jwks: Arc<Jwks>,
        pages: Arc<Pages>,
        notifier: notify::Notifier,
        cookies: OpCookies,
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
            cookies,
            frontchannel_timeout: es.frontchannel_timeout,
            accept_access_token_hint: es.accept_access_token_hint,
            confirmation_ttl: es.confirmation_ttl,
            store,
            jwks,
            pages,
            notifier,
            global: config.global_revocation.clone(),
            report_path: format!("{}{}", es.paths.first().map_or("", String::as_str), report::REPORT_SUFFIX),
        }
    }

    /// end_session itself (GET query or POST form, RPI-01, GW-10).
    pub(crate) async fn end_session(&self, input: &Input<'_>) -> Reply {
        self.end_session_steps(input).await.unwrap_or_else(|f| self.fail(f))
    }

    async fn end_session_steps(&self, input: &Input<'_>) -> Result<Reply, Failure> {
        let fallback = self.pages.pick_lang(None, input.accept_language);
        let p = LogoutParams::parse(self.raw_params(input).in_lang(fallback)?).in_lang(fallback)?;
        if p.refresh_token.is_some() {
            return Ok(self.backend_logout(&p, input).await);
        }
        let lang = self.pages.pick_lang(p.ui_locales.as_deref(), input.accept_language).to_string();
        let hint = self.check_hint(&p).await.in_lang(&lang)?;
        let plan = self.plan(&p, &hint).await;
        match plan {
            Plan::Reject(r) => Err(LogoutError::Refused(r.code())).in_lang(&lang),
            Plan::Confirm { next, end } => self.ask(next, end, &hint, &lang, input).await,
            Plan::End { next, end } => self.end_hinted(next, end, &hint, &lang, input).await,
            Plan::EndBrowserSession { next, sub } => {
                Metrics::get().without_sid.with_label_values(&["hint"]).inc();
                match self.browser_session_of(&sub, input.cookie).await.in_lang(&lang)? {
                    Some(sid) => {
                        let end = EndRequest { sid, sub, accept_unknown: false };
                        self.end_hinted(next, end, &hint, &lang, input).await
                    }
                    None => self.ask(next, None, &hint, &lang, input).await,
                }
            }
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
                return self.ask(next, None, hint, lang, input).await;
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
        // The initiator's front-channel frame carries the sid it was given, if any.
        let hint_sid = match hint {
            HintCheck::Valid(c) if c.sid.is_none() => None,
            _ => Some(end.sid.clone()),
        };
        let next = match decide::after_store(next, end, answer) {
            Outcome::Confirm { next, end } => return self.ask(next, end, hint, lang, input).await,
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
        // The client's sid names the session; a client that knows none is named by the primary.
        let client_sid = v.client_sid(&client).unwrap_or(&v.sid).to_string();
        Ok(HintCheck::Valid(decide::HintClaims {
            client_id: client,
            sub: v.sub,
            sid: Some(client_sid),
            expired: false,
        }))
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
    }
}
