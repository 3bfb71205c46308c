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

/// Switches that change the table (docs/providers.md maps them to Janssen's properties).
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
    /// A valid hint without a sid (an OP whose ID tokens carry none): end the browser's own
    /// session (found by its OP cookie) when it belongs to the hint's subject; else ask.
    EndBrowserSession {
        next: Next,
        sub: String,
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
        // A valid hint without a sid names no session by itself: the browser's OP cookie must
        // name one of the hint's subject, or the user is asked (the client is proved, so the
        // redirect is allowed either way).
        Some(HintClaims { sid: None, sub, .. }) => Plan::EndBrowserSession { next, sub: sub.clone() },
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
mod tests;
