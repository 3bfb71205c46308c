//! The end of every logout the store confirmed: the browser's OP cookies refused and expired,
//! back-channel notices accepted, one front-channel iframe per participant, then the redirect
//! or the page.

use super::decide::Next;
use super::failure::{Failure, InLang};
use super::{uri, Logout, Reply};
use crate::metrics::Metrics;
use crate::render::{Answer, ErrorKind, Frame};
use crate::session::SessionView;

/// A participant RP and the sid it knows.
struct Participant<'a> {
    client_id: &'a str,
    sid: Option<String>,
    /// The primary sid of the ended session it was in ("" for an initiator in none of them),
    /// whose receipt records the front-channel report.
    session: &'a str,
}

impl Logout {
    /// One front-channel iframe per participant with a `frontchannel_logout_uri` (FCL-05..07):
    /// every client of the ended sessions with the sid it knows, then the initiator's.
    /// With each frame, the (client_id, primary sid) its report is recorded under.
    async fn frames(
        &self,
        sessions: &[SessionView],
        initiator: &[(String, Option<String>)],
    ) -> (Vec<Frame>, Vec<(String, String)>) {
        let mut who: Vec<Participant<'_>> = Vec::new();
        for s in sessions {
            for c in &s.clients {
                if !who.iter().any(|p| p.client_id == c) {
                    who.push(Participant { client_id: c, sid: s.client_sid(c).map(String::from), session: &s.sid });
                }
            }
        }
        for (c, sid) in initiator {
            if !who.iter().any(|p| p.client_id == c) {
                who.push(Participant { client_id: c, sid: sid.clone(), session: "" });
            }
        }
        let (mut frames, mut reporters) = (Vec::new(), Vec::new());
        for p in &who {
            let Some(client) = self.clients.get(p.client_id).await else { continue };
            let Some(fc) = client.frontchannel_logout_uri.as_deref() else { continue };
            let src =
                uri::frontchannel_url(fc, client.frontchannel_logout_session_required, &self.issuer, p.sid.as_deref());
            if let Some(origin) = uri::origin(&src) {
                frames.push(Frame { src, origin });
                reporters.push((p.client_id.to_string(), p.session.to_string()));
            }
        }
        (frames, reporters)
    }

    /// The user is logged out (the store said so): accept the back-channel notices, clear the
    /// OP's cookies, load every participant's front-channel URI, then go where `next` says
    /// (RPI-17/22, FCL-05..10, BCL).
    pub(super) async fn finish(
        &self,
        next: Next,
        initiator: &[(String, Option<String>)],
        sessions: Vec<SessionView>,
        sub: Option<&str>,
        cookie: Option<&str>,
        lang: &str,
    ) -> Result<Reply, Failure> {
        let (frames, reporters) = self.frames(&sessions, initiator).await;
        // The browser's OP cookies are refused from now on (GW-02), whether a learned session
        // has them or the gateway never saw them bound; a cookie bound to a session this logout
        // did not end (another user's, planted) is left alone.
        let presented = self.revocable_cookies(cookie, &sessions).await.in_lang(lang)?;
        self.store.revoke_hashes(&presented).await.in_lang(lang)?;
        // Back-channel notices are accepted (durably) before anything says "signed out".
        self.notifier.sessions_ended(&sessions, initiator, sub, crate::ssf::Initiator::User).await.in_lang(lang)?;
        let headers = self.ended_headers();
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
            let ticket = self.report_ticket(&reporters).await;
            let report = ticket.as_deref().map(|t| (self.report_path.as_str(), t));
            self.pages.frontchannel(lang, &frames, next.redirect.as_deref(), ms, report)
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

    /// The headers of every answer that ends the browser's session: the upstream OP's own
    /// session cookies expired (one `Set-Cookie` per name and configured cookie path), and
    /// `Set-Login: logged-out`, the browsers' Login Status API (read by FedCM): this origin, the
    /// OP's, tells the browser its user is signed out; and, with Session Management, a new
    /// browser-state cookie.
    fn ended_headers(&self) -> Vec<(&'static str, String)> {
        let mut headers: Vec<_> = self.cookies.expiring_all().map(|c| ("set-cookie", c)).collect();
        headers.push(("set-login", "logged-out".into()));
        // Session Management 1.0 (SM-02): a new browser state, so every RP's check_session
        // iframe answers `changed` from now on.
        if let Some(bs) = &self.cookies.browser_state {
            headers.push(("set-cookie", bs.set_cookie(&crate::cookies::browser_state::BrowserState::fresh())));
        }
        headers
    }

    /// The presented OP cookies (at most `MAX_OP_COOKIES`) a logout that ended `sessions` may
    /// revoke: those bound to no session or to one of them (or to a session no longer active).
    async fn revocable_cookies(
        &self,
        cookie: Option<&str>,
        sessions: &[SessionView],
    ) -> Result<Vec<String>, crate::session::StoreError> {
        let mut out = Vec::new();
        for hash in self.cookies.hashes(cookie) {
            let owner = crate::session::live_owner(self.store.as_ref(), &hash).await?;
            if owner.as_ref().is_none_or(|o| sessions.iter().any(|v| v.sid == o.sid)) {
                out.push(hash);
            }
        }
        Ok(out)
    }

    /// The browser's live session (by its OP cookie) when it belongs to `sub`.
    pub(super) async fn browser_session_of(
        &self,
        sub: &str,
        cookie: Option<&str>,
    ) -> Result<Option<String>, crate::session::StoreError> {
        let Some(sid) = self.browser_session(cookie).await? else { return Ok(None) };
        let view = self.store.get_session(&sid).await?;
        Ok(view.filter(|v| v.is_active() && v.sub == sub).map(|v| v.sid))
    }

    /// The session the browser's OP cookie is bound to (learned from the code flow), if any.
    pub(super) async fn browser_session(
        &self,
        cookie: Option<&str>,
    ) -> Result<Option<String>, crate::session::StoreError> {
        for hash in self.cookies.hashes(cookie) {
            if let Some(sid) = self.store.session_by_cookie(&hash).await? {
                return Ok(Some(sid));
            }
        }
        Ok(None)
    }
}
