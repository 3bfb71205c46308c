//! The confirmation step: the page that asks before a logout the request could not prove, the
//! context kept in the store under its single-use token, and the POST that redeems it. The
//! token is bound to this browser twice: to an HttpOnly binder cookie set with the page, and to
//! the OP session cookies the browser presented.

use serde::{Deserialize, Serialize};

use super::decide::{EndRequest, HintCheck, Next};
use super::failure::{Failure, InLang, LogoutError};
use super::{cookie_value, is_form, session_of, Input, Logout, Reply, CONFIRM_COOKIE, CONFIRM_COOKIE_HOST};
use crate::crypto::token_hash;
use crate::metrics::Metrics;
use crate::render::Confirmation;
use crate::session::SessionView;

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

impl Logout {
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
        let (token, action) = confirmation_form(input.body);
        let Some(token) = token.filter(|t| t.len() <= 64 && !t.is_empty()) else {
            return Err(LogoutError::ConfirmationInvalid("no token").into());
        };
        let pending = self.store.take_pending(&token).await?;
        let Some(pending) = pending.and_then(|p| serde_json::from_str::<Pending>(&p).ok()) else {
            return Err(LogoutError::ConfirmationInvalid("token unknown, expired or replayed").into());
        };
        let lang = pending.lang.clone();
        let binder = cookie_value(input.cookie, self.confirm_cookie()).map(|v| token_hash(v.as_bytes()));
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

    /// Keep the context under a fresh token and show the confirmation page, with the cookie
    /// that binds the token to this browser.
    pub(super) async fn ask(
        &self,
        next: Next,
        end: Option<EndRequest>,
        hint: &HintCheck,
        lang: &str,
        input: &Input<'_>,
    ) -> Result<Reply, Failure> {
        // The page names where the browser goes afterwards: the host (or a native app's scheme).
        let destination = next.redirect.as_deref().and_then(|r| url::Url::parse(r).ok()).map(|u| match u.host_str() {
            Some(h) => h.to_string(),
            None => format!("{}:", u.scheme()),
        });
        // "Stay signed in" goes where the RP asked to be returned (it may then show its own
        // signed-out state), else to the OP's root; nothing is ended either way.
        let stay = next.redirect.clone().unwrap_or_else(|| "/".to_string());
        let application = self.application(hint).await;
        let token = crate::crypto::random_token();
        let binder = crate::crypto::random_token();
        let pending = Pending {
            next: NextJson { client_id: next.client_id, redirect: next.redirect },
            end: end.map(|e| EndJson { sid: e.sid, sub: e.sub, accept_unknown: e.accept_unknown }),
            lang: lang.to_string(),
            binder: token_hash(binder.as_bytes()),
            op: self.op_binding(input.cookie),
        };
        let json = serde_json::to_string(&pending).map_err(|e| LogoutError::Render(e.to_string())).in_lang(lang)?;
        if !self.store.put_pending(&token, &json, self.confirmation_ttl).await.in_lang(lang)? {
            Metrics::get().limited.with_label_values(&["confirmations"]).inc();
            return Err(LogoutError::ConfirmationsCapped).in_lang(lang);
        }
        let page = self
            .pages
            .confirm(
                lang,
                &Confirmation {
                    action: &input.confirm_action,
                    token: &token,
                    destination: destination.as_deref(),
                    application: application.as_deref(),
                    stay: &stay,
                },
            )
            .map_err(LogoutError::Render)
            .in_lang(lang)?;
        let cookie = self.binder_cookie(&binder, &input.confirm_action, self.confirmation_ttl.as_secs().max(1));
        Ok(Reply::page(page, vec![("set-cookie", cookie)], "confirm"))
    }

    /// The application a valid hint proved, by its name (or client_id); None without one.
    async fn application(&self, hint: &HintCheck) -> Option<String> {
        let HintCheck::Valid(c) = hint else { return None };
        let client = self.clients.get(&c.client_id).await?;
        Some(client.client_name.clone().unwrap_or_else(|| c.client_id.clone()))
    }

    /// The binder cookie's name: `__Host-` prefixed over https.
    fn confirm_cookie(&self) -> &'static str {
        if self.cookies.secure {
            CONFIRM_COOKIE_HOST
        } else {
            CONFIRM_COOKIE
        }
    }

    /// The binder cookie (`max_age` 0 clears it). Over https it is `__Host-` (Secure, Path=/);
    /// over http it is scoped to the confirmation path.
    fn binder_cookie(&self, value: &str, confirm_action: &str, max_age: u64) -> String {
        let name = self.confirm_cookie();
        let path = if self.cookies.secure { "/" } else { confirm_action };
        let secure = if self.cookies.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
    }

    /// What binds a confirmation to the browser's OP session: a hash of the OP session cookies
    /// it presented (by name, in order; at most `MAX_OP_COOKIES`).
    fn op_binding(&self, cookie: Option<&str>) -> String {
        let mut pairs: Vec<(&str, &str)> = self.cookies.pairs(cookie).collect();
        pairs.sort_unstable();
        let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        token_hash(joined.join("; ").as_bytes())
    }
}

/// The confirmation form's `token` and `action` (the last of each wins).
fn confirmation_form(body: &[u8]) -> (Option<String>, Option<Vec<u8>>) {
    let (mut token, mut action) = (None, None);
    for pair in body.split(|b| *b == b'&') {
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
    (token, action)
}
