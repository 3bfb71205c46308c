//! The decision table (docs/requirements.md, "The decision table") as plain functions.
//!
//! Stage one ([`plan`]) needs no I/O: from the parsed parameters, the hint's validation result
//! and the configuration it decides to reject, to ask first, or to end a session named by the
//! hint, and it fixes where the browser may go afterwards. Stage two ([`after_store`]) reads
//! what the session store's one logout call answered. Nothing here redirects unless the target
//! is a registered URI of the client the request proved (RPI-09/20/21/24).

use std::collections::BTreeMap;

use super::uri::redirect_with_state;
use crate::config::Client;
pub use crate::oidc::hint::{HintCheck, HintClaims};
use crate::uri::RedirectPattern;

/// Switches that change the table (README maps them to Janssen's properties).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Janssen forceIdTokenHintPrecense: refuse requests without a hint.
    pub require_hint: bool,
    /// Janssen rejectEndSessionIfIdTokenExpired: refuse expired hints even for known sessions.
    pub reject_expired: bool,
    /// Janssen allowEndSessionWithUnmatchedSid: log out on a valid hint whose sid is unknown
    /// instead of asking (RPI-05 says the request is suspect; off by default).
    pub accept_unknown_sid: bool,
    /// Janssen allowPostLogoutRedirectWithoutValidation + clientWhiteList: unregistered redirect
    /// URIs matching these patterns are allowed. Empty (the default) allows none. Dangerous.
    pub unregistered_redirect_patterns: Vec<RedirectPattern>,
    /// `registration.post_logout_redirect_uri_patterns`: a client learned from dynamic
    /// registration is redirected at once only to a URI matching one of these; to its other
    /// registered URIs only after the user confirmed (open registration must not mint open
    /// redirects). Empty (the default): always ask.
    pub registered_redirect_patterns: Vec<RedirectPattern>,
}

/// Why a request is refused. Shown to the user as fixed wording, never with request data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    BadParameters,
    HintRequired,
    HintInvalid,
    HintExpired,
    UnknownClient,
    ClientMismatch,
    RedirectNotRegistered,
}

impl Reject {
    /// Short stable name for logs.
    pub fn code(self) -> &'static str {
        match self {
            Reject::BadParameters => "bad_parameters",
            Reject::HintRequired => "hint_required",
            Reject::HintInvalid => "hint_invalid",
            Reject::HintExpired => "hint_expired",
            Reject::UnknownClient => "unknown_client",
            Reject::ClientMismatch => "client_mismatch",
            Reject::RedirectNotRegistered => "redirect_not_registered",
        }
    }
}

/// Where the browser goes once the user is logged out: the client the request proved, and the
/// final URL (registered URI + state) when a redirect is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Next {
    pub client_id: Option<String>,
    pub redirect: Option<String>,
}

/// What the store's single logout call should do for a hint-named session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndRequest {
    pub sid: String,
    /// The session must belong to this subject, or nothing is ended (RPI-15).
    pub sub: String,
    /// Unknown sid: record a tombstone and treat as logged out (accept_unknown_sid, fresh hints only).
    pub accept_unknown: bool,
}

/// Stage one's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Reject(Reject),
    /// Ask the user first (RPI-14/20/27); `end` is what to end once confirmed, if anything.
    Confirm {
        next: Next,
        end: Option<EndRequest>,
    },
    /// Ask the store to end the hint's session, then decide with [`after_store`].
    End {
        next: Next,
        end: EndRequest,
    },
}

/// What the store answered to an end request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreAnswer {
    /// The session was active and is now ended.
    Ended,
    /// The session had already ended (RPI-25: not an error).
    AlreadyEnded,
    /// Unknown sid, and a tombstone was recorded (accept_unknown).
    Recorded,
    /// Unknown sid; nothing changed.
    Unknown,
    /// The sid belongs to another subject; nothing changed.
    SubjectMismatch,
}

/// The final outcome after the store answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    LoggedOut(Next),
    Confirm { next: Next, end: Option<EndRequest> },
}

/// The decision table (docs/requirements.md): what a request with this hint, client_id and
/// redirect URI may do, before the store is asked.
pub fn plan(
    hint: &HintCheck,
    client_id: Option<&str>,
    post_logout_redirect_uri: Option<&str>,
    state: Option<&str>,
    clients: &BTreeMap<String, Client>,
    policy: &Policy,
) -> Plan {
    let claims = match hint {
        HintCheck::Invalid(_) => return Plan::Reject(Reject::HintInvalid), // T4, RPI-03/24
        HintCheck::Absent if policy.require_hint => return Plan::Reject(Reject::HintRequired),
        HintCheck::Absent => None,
        HintCheck::Valid(c) => Some(c),
    };
    if let Some(r) = refused(claims, client_id, clients, policy) {
        return Plan::Reject(r);
    }
    // The client the request identifies: the hint's (proved) or client_id's (claimed).
    let client = claims.map(|c| c.client_id.as_str()).or(client_id);
    let (next, unvetted) = match client.and_then(|id| clients.get(id).map(|c| (id, c))) {
        None => (Next::default(), false), // T5/T9/T10: no client, no redirect (RPI-20); the URI is ignored
        Some((id, c)) => match destination(id, c, post_logout_redirect_uri, state, policy) {
            Ok(d) => d,
            Err(r) => return Plan::Reject(r),
        },
    };
    if unvetted {
        // The user is asked first, the page naming where they will be sent; what the hint
        // names is ended once they confirm.
        let end = claims.filter(|c| c.sid.is_some()).map(|c| end_request(c, policy));
        return Plan::Confirm { next, end };
    }
    match claims {
        None => Plan::Confirm { next, end: None }, // T5, T6, T9, T10 (RPI-14)
        // A valid hint without a sid names no session the store could end: nothing may claim
        // a logout happened without the user's say (the client is proved, so the redirect is
        // allowed after confirming).
        Some(HintClaims { sid: None, .. }) => Plan::Confirm { next, end: None },
        Some(c) => Plan::End { next, end: end_request(c, policy) },
    }
}

/// What refuses the request whatever else it says: an unknown client_id (RPI-07a), a client_id
/// other than the hint's (T7, RPI-06), an expired hint when those are refused.
fn refused(
    claims: Option<&HintClaims>,
    client_id: Option<&str>,
    clients: &BTreeMap<String, Client>,
    policy: &Policy,
) -> Option<Reject> {
    if client_id.is_some_and(|id| !clients.contains_key(id)) {
        return Some(Reject::UnknownClient);
    }
    if let (Some(c), Some(id)) = (claims, client_id) {
        if c.client_id != id {
            return Some(Reject::ClientMismatch);
        }
    }
    claims.is_some_and(|c| c.expired && policy.reject_expired).then_some(Reject::HintExpired)
}

/// Where client `id` sends the browser afterwards, and whether that is unvetted (a registered
/// client's URI no operator pattern allows, so the user is asked first).
fn destination(
    id: &str,
    c: &Client,
    post_logout_redirect_uri: Option<&str>,
    state: Option<&str>,
    policy: &Policy,
) -> Result<(Next, bool), Reject> {
    let target = match post_logout_redirect_uri {
        Some(uri) if is_allowed(c, uri, policy) => Some(uri.to_string()),
        Some(_) => return Err(Reject::RedirectNotRegistered), // T8, RPI-21
        None => c.default_post_logout_redirect_uri.clone(),
    };
    let unvetted = c.registered
        && target.as_deref().is_some_and(|t| !policy.registered_redirect_patterns.iter().any(|p| p.matches(t)));
    let next = Next { client_id: Some(id.to_string()), redirect: target.map(|t| redirect_with_state(&t, state)) };
    Ok((next, unvetted))
}

/// The store call for the session a valid hint names.
fn end_request(c: &HintClaims, policy: &Policy) -> EndRequest {
    EndRequest {
        sid: c.sid.clone().unwrap_or_default(),
        sub: c.sub.clone(),
        accept_unknown: policy.accept_unknown_sid && !c.expired,
    }
}

/// Byte-exact match against the client's list, or an opted-in pattern.
fn is_allowed(client: &Client, uri: &str, policy: &Policy) -> bool {
    client.post_logout_redirect_uris.iter().any(|r| r == uri)
        || policy.unregistered_redirect_patterns.iter().any(|p| p.matches(uri))
}

/// Stage two: the store's answer to [`Plan::End`].
pub(crate) fn after_store(next: Next, end: EndRequest, answer: StoreAnswer) -> Outcome {
    match answer {
        // T1, T2, T12 (RPI-04, RPI-25)
        StoreAnswer::Ended | StoreAnswer::AlreadyEnded | StoreAnswer::Recorded => Outcome::LoggedOut(next),
        // RPI-05: a valid hint for a session we never saw is suspect: ask. Confirming records
        // the sid as ended (harmless: it names no live session).
        StoreAnswer::Unknown => Outcome::Confirm { next, end: Some(EndRequest { accept_unknown: true, ..end }) },
        // RPI-15/T3: the hint does not belong to that session's user: ask, and end nothing of
        // that session on confirmation.
        StoreAnswer::SubjectMismatch => Outcome::Confirm { next, end: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A_BYE: &str = "https://a.example.org/logged-out";

    fn clients() -> BTreeMap<String, Client> {
        let mut m = BTreeMap::new();
        m.insert(
            "rp-a".to_string(),
            Client {
                post_logout_redirect_uris: vec![A_BYE.into(), "https://a.example.org/bye?lang=en".into()],
                ..Client::default()
            },
        );
        m.insert(
            "rp-b".to_string(),
            Client {
                post_logout_redirect_uris: vec!["https://b.example.net/out".into()],
                default_post_logout_redirect_uri: Some("https://b.example.net/out".into()),
                ..Client::default()
            },
        );
        m
    }

    fn valid(client: &str, expired: bool) -> HintCheck {
        HintCheck::Valid(HintClaims { client_id: client.into(), sub: "U1".into(), sid: Some("SA".into()), expired })
    }

    fn end_a(next: Option<&str>) -> Plan {
        Plan::End {
            next: Next { client_id: Some("rp-a".into()), redirect: next.map(String::from) },
            end: EndRequest { sid: "SA".into(), sub: "U1".into(), accept_unknown: false },
        }
    }

    fn p(hint: &HintCheck, client: Option<&str>, uri: Option<&str>, state: Option<&str>) -> Plan {
        plan(hint, client, uri, state, &clients(), &Policy::default())
    }

    #[test]
    fn a_registered_clients_redirect_is_confirmed_unless_the_operator_allows_it() {
        let mut m = clients();
        m.get_mut("rp-a").unwrap().registered = true;
        let hint = valid("rp-a", false);
        let asked = plan(&hint, None, Some(A_BYE), Some("s"), &m, &Policy::default());
        assert_eq!(
            asked,
            Plan::Confirm {
                next: Next {
                    client_id: Some("rp-a".into()),
                    redirect: Some("https://a.example.org/logged-out?state=s".into())
                },
                end: Some(EndRequest { sid: "SA".into(), sub: "U1".into(), accept_unknown: false }),
            }
        );
        let policy = Policy {
            registered_redirect_patterns: vec![RedirectPattern::parse("https://a.example.org").unwrap()],
            ..Policy::default()
        };
        assert_eq!(
            plan(&hint, None, Some(A_BYE), Some("s"), &m, &policy),
            end_a(Some("https://a.example.org/logged-out?state=s"))
        );
        // No redirect asked for: nothing to vet.
        assert_eq!(plan(&hint, None, None, None, &m, &Policy::default()), end_a(None));
    }

    #[test]
    fn t1_t2_t12_valid_hint_and_registered_uri_end_the_session_with_state() {
        assert_eq!(
            p(&valid("rp-a", false), None, Some(A_BYE), Some("s1")),
            end_a(Some("https://a.example.org/logged-out?state=s1"))
        );
        assert_eq!(
            p(&valid("rp-a", true), None, Some(A_BYE), Some("s2")),
            end_a(Some("https://a.example.org/logged-out?state=s2"))
        );
    }

    #[test]
    fn t4_invalid_hint_is_rejected_even_with_a_registered_uri() {
        assert_eq!(p(&HintCheck::Invalid("bad signature"), None, Some(A_BYE), None), Plan::Reject(Reject::HintInvalid));
    }

    #[test]
    fn t5_t9_t10_no_hint_no_client_asks_and_never_redirects() {
        let confirm = Plan::Confirm { next: Next::default(), end: None };
        assert_eq!(p(&HintCheck::Absent, None, Some(A_BYE), Some("s3")), confirm);
        assert_eq!(p(&HintCheck::Absent, None, None, None), confirm);
        assert_eq!(p(&HintCheck::Absent, None, None, Some("only-state")), confirm);
    }

    #[test]
    fn t6_client_id_and_registered_uri_asks_then_may_redirect() {
        assert_eq!(
            p(&HintCheck::Absent, Some("rp-a"), Some(A_BYE), Some("s")),
            Plan::Confirm {
                next: Next { client_id: Some("rp-a".into()), redirect: Some(format!("{A_BYE}?state=s")) },
                end: None
            }
        );
        // ... but an unregistered URI for that client is refused outright.
        assert_eq!(
            p(&HintCheck::Absent, Some("rp-a"), Some("https://evil.example/"), None),
            Plan::Reject(Reject::RedirectNotRegistered)
        );
    }

    #[test]
    fn t7_client_id_mismatch_and_unknown_clients_are_rejected() {
        assert_eq!(
            p(&valid("rp-a", false), Some("rp-b"), Some("https://b.example.net/out"), None),
            Plan::Reject(Reject::ClientMismatch)
        );
        assert_eq!(p(&HintCheck::Absent, Some("nope"), None, None), Plan::Reject(Reject::UnknownClient));
    }

    #[test]
    fn t8_rpi21_only_byte_exact_registered_uris() {
        for bad in [
            "https://a.example.org/logged-out?foo=bar",
            "https://a.example.org:443/logged-out",
            "https://A.EXAMPLE.ORG/logged-out",
            "https://a.example.org/logged-out/",
            "https://b.example.net/out",
            "https://a.example.org/logged-out#x",
        ] {
            assert_eq!(
                p(&valid("rp-a", false), None, Some(bad), None),
                Plan::Reject(Reject::RedirectNotRegistered),
                "{bad}"
            );
        }
    }

    #[test]
    fn t11_valid_hint_without_uri_uses_the_default_or_no_redirect() {
        assert_eq!(p(&valid("rp-a", false), None, None, Some("s")), end_a(None));
        match p(&valid("rp-b", false), None, None, Some("s")) {
            Plan::End { next, .. } => assert_eq!(next.redirect.as_deref(), Some("https://b.example.net/out?state=s")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_hint_without_sid_asks() {
        let h = HintCheck::Valid(HintClaims { client_id: "rp-a".into(), sub: "U1".into(), sid: None, expired: false });
        assert_eq!(
            p(&h, None, Some(A_BYE), None),
            Plan::Confirm { next: Next { client_id: Some("rp-a".into()), redirect: Some(A_BYE.into()) }, end: None }
        );
    }

    #[test]
    fn switches() {
        let strict = Policy { require_hint: true, reject_expired: true, ..Policy::default() };
        assert_eq!(plan(&HintCheck::Absent, None, None, None, &clients(), &strict), Plan::Reject(Reject::HintRequired));
        assert_eq!(
            plan(&valid("rp-a", true), None, None, None, &clients(), &strict),
            Plan::Reject(Reject::HintExpired)
        );
        let lax = Policy {
            accept_unknown_sid: true,
            unregistered_redirect_patterns: vec![RedirectPattern::parse("https://*.example.org").unwrap()],
            ..Policy::default()
        };
        match plan(&valid("rp-a", false), None, Some("https://x.example.org/y"), None, &clients(), &lax) {
            Plan::End { end, next } => {
                assert!(end.accept_unknown);
                assert_eq!(next.redirect.as_deref(), Some("https://x.example.org/y"));
            }
            other => panic!("{other:?}"),
        }
        // Expired hints never log out an unknown sid, whatever the switch says (RPI-04/05).
        match plan(&valid("rp-a", true), None, None, None, &clients(), &lax) {
            Plan::End { end, .. } => assert!(!end.accept_unknown),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn store_answers() {
        let next = Next { client_id: Some("rp-a".into()), redirect: Some(A_BYE.into()) };
        let end = EndRequest { sid: "SA".into(), sub: "U1".into(), accept_unknown: false };
        for a in [StoreAnswer::Ended, StoreAnswer::AlreadyEnded, StoreAnswer::Recorded] {
            assert_eq!(after_store(next.clone(), end.clone(), a), Outcome::LoggedOut(next.clone()));
        }
        assert!(matches!(
            after_store(next.clone(), end.clone(), StoreAnswer::Unknown),
            Outcome::Confirm { end: Some(_), .. }
        ));
        assert_eq!(after_store(next.clone(), end, StoreAnswer::SubjectMismatch), Outcome::Confirm { next, end: None });
    }
}
