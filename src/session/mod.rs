//! The session store: where sessions, tombstones and confirmation contexts live.
//!
//! [`SessionStore`] is the one interface the rest of the gateway sees; `redis.rs` implements it
//! on a real Redis (shared by every gateway instance) and `memory/` in process (one instance
//! only, for development and the embedded default), with the same semantics. Passthrough
//! traffic never calls into this module. Every operation is bounded in time: a store that does
//! not answer is [`StoreError::Unavailable`], never a hang, and callers fail closed.
//!
//! The model: a session is one browser session at the OP. It is stored under its primary sid
//! and holds the subject, the participating clients, and each client's own sid (OPs such as
//! node-oidc-provider give every client its own sid). Every other client sid is an alias that
//! points at the primary. Ending a session keeps it as a tombstone for `tombstone_ttl`, so a
//! stale or expired hint for it is still recognised (RPI-04/25, GW-06).

mod capabilities;
#[cfg(test)]
mod contract;
mod lua;
mod memory;
mod redis;
pub(crate) mod revoked;
#[cfg(test)]
mod testing;

pub(crate) use self::capabilities::{
    Claimed, CodeBindings, Confirmations, LearnedClients, Notice, NoticeKind, NoticeQueue, Receipts, Revocations,
    SessionStore, Sessions, SigningKeys, Streams, Taken,
};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

pub(crate) use self::memory::MemoryStore;
pub(crate) use self::redis::{Follower, RedisStore};
pub(crate) use self::revoked::RevokedSet;
use crate::config::{Backend, SessionStore as StoreConfig};
use crate::metrics::Metrics;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The operation did not finish within its bound (connect + response timeout).
    #[error("session store unavailable: {op} took longer than {deadline:?}")]
    Timeout { op: &'static str, deadline: Duration },
    /// Redis failed (connection refused or lost, an error reply); the detail never holds data.
    #[error("session store unavailable: redis: {0}")]
    Redis(String),
    /// Redis answered something of the wrong shape.
    #[error("session store unavailable: redis: unexpected reply to {0}")]
    BadReply(&'static str),
    /// Fewer replicas than `replica_acks` confirmed a write that ends a session.
    #[error("session store unavailable: {got} of {wanted} replicas acknowledged the write")]
    ReplicaAcks { wanted: u32, got: u32 },
    /// The in-process store's lock was poisoned by a panic.
    #[error("session store unavailable: memory store poisoned")]
    Poisoned,
    /// A lookup the caller's budget does not allow (the edge's, while its set is stale).
    #[error("session store unavailable: lookups over their budget")]
    OverBudget,
}

/// A session as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SessionView {
    /// The primary sid.
    pub(crate) sid: String,
    pub(crate) sub: String,
    pub(crate) clients: Vec<String>,
    pub(crate) client_sids: BTreeMap<String, String>,
    pub(crate) status: Status,
    /// Tokens sealed for revocation at the upstream (RFC 7009), handed out once by the logout
    /// that ends the session; never shown.
    #[serde(skip)]
    pub(crate) sealed: Vec<String>,
}

/// Whether a session is live or a tombstone (shown as `active` / `ended`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Active,
    Ended,
}

impl SessionView {
    /// Whether the session is live (not ended).
    pub(crate) fn is_active(&self) -> bool {
        self.status == Status::Active
    }

    /// The sid `client` received: its own if the OP gave it one, else the primary; None when
    /// the OP gave it none (its ID tokens carry no sid: the session is keyed by the browser's
    /// OP cookie, recorded as an empty client sid).
    pub(crate) fn client_sid(&self, client: &str) -> Option<&str> {
        match self.client_sids.get(client) {
            Some(s) if s.is_empty() => None,
            Some(s) => Some(s),
            None => Some(&self.sid),
        }
    }
}

/// What one logout call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndResult {
    /// Was active, is now a tombstone.
    Ended(SessionView),
    /// Was already a tombstone (idempotent, RPI-25).
    AlreadyEnded(SessionView),
    /// Unknown sid; a tombstone was recorded because the caller asked for it.
    Recorded,
    /// Unknown sid; nothing changed.
    Unknown,
    /// The session belongs to another subject; nothing changed.
    SubjectMismatch,
}

/// What recording a session did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PutResult {
    Stored(SessionView),
    /// Nothing changed, for this reason.
    Conflict(Conflict),
}

/// Why a session was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Conflict {
    /// The sid is known with another subject.
    #[error("another subject")]
    AnotherSubject,
    /// The session has ended (a tombstone).
    #[error("session ended")]
    Ended,
}

impl PutResult {
    /// Nothing was stored because the session has ended (a tombstone).
    pub(crate) fn is_ended(&self) -> bool {
        matches!(self, PutResult::Conflict(Conflict::Ended))
    }
}

/// A session to record or merge (admin `PUT /sessions/{sid}`, and session learning).
#[derive(Debug, Clone, Default)]
pub(crate) struct NewSession {
    pub(crate) sid: String,
    pub(crate) sub: String,
    pub(crate) clients: Vec<String>,
    pub(crate) client_sids: BTreeMap<String, String>,
    /// Access and refresh tokens issued in this session (hashed); revoked at logout.
    pub(crate) tokens: Vec<Token>,
    /// SHA-256 (hex) of the OP session cookies bound to this session; found by, and revoked at logout.
    pub(crate) cookie_hashes: Vec<String>,
}

/// How many OP cookie hashes a session remembers (the newest). Tokens are not capped: a
/// session keeps every token it received until that token expires, so a logout revokes them
/// all however many refreshes came before it.
pub(crate) const MAX_COOKIES: usize = 64;

/// Most confirmation contexts created per window of `end_session.confirmation_ttl`, across all
/// instances (so at most twice as many are alive): about 1 KiB each in the store.
pub(crate) const MAX_PENDING: u64 = 100_000;

/// A token issued in a session, as the store keeps it: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// SHA-256 (hex) of the token.
    pub(crate) hash: String,
    /// Unix seconds when the token expires: refusing it after a logout matters until then.
    pub(crate) expires_at: u64,
    /// The token sealed for RFC 7009 revocation (see `revoke`), when its client is set up for it.
    pub(crate) sealed: Option<String>,
}

impl Token {
    /// `hash expires_at[ sealed]`: the form kept in the session (a list of strings).
    pub(crate) fn encode(&self) -> String {
        match &self.sealed {
            Some(s) => format!("{} {} {s}", self.hash, self.expires_at),
            None => format!("{} {}", self.hash, self.expires_at),
        }
    }

    /// The inverse of [`Token::encode`]; a bare hash (sessions stored by older versions) has
    /// no expiry (0) and is refused for `tombstone_ttl`.
    pub(crate) fn decode(s: &str) -> Token {
        let mut it = s.split(' ');
        let hash = it.next().unwrap_or_default().to_string();
        let expires_at = it.next().and_then(|e| e.parse().ok()).unwrap_or(0);
        Token { hash, expires_at, sealed: it.next().map(String::from) }
    }
}

/// What ending a session revokes: each token still valid and each cookie, with how long its
/// revocation marker must live, and the sealed tokens for the upstream.
pub(crate) fn revocations(
    tokens: &[String],
    cookies: &[String],
    tombstone: Duration,
    now: u64,
) -> (Vec<(String, Duration)>, Vec<String>) {
    let mut marks = Vec::new();
    let mut sealed = Vec::new();
    for t in tokens.iter().map(|t| Token::decode(t)) {
        let ttl = if t.expires_at == 0 { tombstone } else { Duration::from_secs(t.expires_at.saturating_sub(now)) };
        if ttl.is_zero() {
            continue; // expired: the upstream refuses it by itself
        }
        marks.push((t.hash, ttl));
        sealed.extend(t.sealed);
    }
    marks.extend(cookies.iter().map(|c| (c.clone(), tombstone)));
    (marks, sealed)
}

/// Revocation marks as the edge's set keeps them: (key, unix second of expiry).
pub(crate) fn set_marks(marks: &[(String, Duration)]) -> Vec<(revoked::Key, u64)> {
    let now = unix_now();
    marks.iter().filter_map(|(h, ttl)| Some((revoked::key_of_hex(h)?, now + ttl.as_secs().max(1)))).collect()
}

/// Drop the encoded tokens that have expired (an expired token needs no refusing).
pub(crate) fn prune_expired(tokens: &mut Vec<String>, now: u64) {
    tokens.retain(|t| {
        let t = Token::decode(t);
        t.expires_at == 0 || t.expires_at > now
    });
}

/// When a learned client's metadata (JSON) were learned, unix seconds (0: unknown).
pub(crate) fn learned_at(json: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(json).ok().and_then(|v| v.get("learned_at")?.as_u64()).unwrap_or(0)
}

/// The live session an OP cookie (by hash) is bound to: None when it is bound to none, or to a
/// session that has ended or expired. Learning and logout ask this before revoking a cookie on
/// a session's account, so a cookie of another user's live session is never touched.
pub(crate) async fn live_owner(store: &dyn SessionStore, cookie_hash: &str) -> Result<Option<SessionView>, StoreError> {
    let Some(sid) = store.session_by_cookie(cookie_hash).await? else { return Ok(None) };
    Ok(store.get_session(&sid).await?.filter(SessionView::is_active))
}

/// Unix seconds.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// TTLs of the model, from the config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ttls {
    pub(crate) session: Duration,
    pub(crate) tombstone: Duration,
}

/// Build the store `config` asks for, and for Redis the background service that keeps this
/// instance's revocation set current (`revoked`). Connecting is lazy: this never blocks and
/// never fails because the store is down (the gateway starts anyway and /readyz reports it).
pub(crate) fn build(config: &StoreConfig) -> (Arc<dyn SessionStore>, Option<Follower>) {
    let ttls = Ttls { session: config.session_ttl, tombstone: config.tombstone_ttl };
    match &config.backend {
        Backend::Memory => (Arc::new(MemoryStore::new(ttls)), None),
        Backend::Redis(r) => {
            let store = RedisStore::new(r.clone(), config.key_prefix.clone(), ttls);
            let follower = store.follower();
            (Arc::new(store), Some(follower))
        }
    }
}

/// Merge `add` into `list` keeping order and uniqueness.
pub(crate) fn union(list: &mut Vec<String>, add: &[String]) {
    for c in add {
        if !list.contains(c) {
            list.push(c.clone());
        }
    }
}

/// Run one store operation under a deadline and record its duration by name.
pub(crate) async fn timed<T>(
    op: &'static str,
    deadline: Duration,
    fut: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let start = Instant::now();
    let res = match tokio::time::timeout(deadline, fut).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Timeout { op, deadline }),
    };
    Metrics::get().store_duration.with_label_values(&[op]).observe(start.elapsed().as_secs_f64());
    res
}
