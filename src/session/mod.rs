//! The session store: where sessions, tombstones and confirmation contexts live.
//!
//! [`SessionStore`] is the one interface the rest of the gateway sees; `redis.rs` implements it
//! on a real Redis (shared by every gateway instance) and `memory.rs` in process (one instance
//! only, for development and the embedded default), with the same semantics. Passthrough
//! traffic never calls into this module. Every operation is bounded in time: a store that does
//! not answer is [`StoreError::Unavailable`], never a hang, and callers fail closed.
//!
//! The model: a session is one browser session at the OP. It is stored under its primary sid
//! and holds the subject, the participating clients, and each client's own sid (OPs such as
//! node-oidc-provider give every client its own sid). Every other client sid is an alias that
//! points at the primary. Ending a session keeps it as a tombstone for `tombstone_ttl`, so a
//! stale or expired hint for it is still recognised (RPI-04/25, GW-06).

#[cfg(test)]
mod contract;
mod lua;
mod memory;
mod redis;
pub(crate) mod revoked;
#[cfg(test)]
mod testing;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
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
    /// The Redis URL cannot be used.
    #[error("session store unavailable: bad redis url: {0}")]
    Url(String),
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

    /// The sid `client` received: its own if the OP gave it one, else the primary.
    pub(crate) fn sid_for(&self, client: &str) -> &str {
        self.client_sids.get(client).map_or(self.sid.as_str(), String::as_str)
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

/// Everything the gateway keeps: every capability, in one backend (`memory` or `redis`).
/// Callers hold `Arc<dyn SessionStore>`; the capability traits' methods are callable on it.
#[async_trait]
pub(crate) trait SessionStore:
    Sessions + Revocations + CodeBindings + LearnedClients + Confirmations + SigningKeys + NoticeQueue
{
    /// `memory` or `redis`, for logs and /readyz.
    fn backend(&self) -> &'static str;

    /// Answers when the store can serve requests; used by /readyz.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Sessions: recording, reading, ending, and finding them by token or OP cookie.
#[async_trait]
pub(crate) trait Sessions: Send + Sync {
    /// Record a session or merge clients into it.
    async fn put_session(&self, s: &NewSession) -> Result<PutResult, StoreError>;

    /// The session any of its sids names, active or ended.
    async fn get_session(&self, sid: &str) -> Result<Option<SessionView>, StoreError>;

    /// Every remembered session of a subject.
    async fn sessions_of(&self, sub: &str) -> Result<Vec<SessionView>, StoreError>;

    /// The logout: end the session `sid` names, in one round trip for a primary sid.
    /// `expect_sub`: end only if the session is that subject's. `record_unknown`: an unknown sid
    /// becomes a tombstone (for `expect_sub`).
    async fn end_session(
        &self,
        sid: &str,
        expect_sub: Option<&str>,
        record_unknown: bool,
    ) -> Result<EndResult, StoreError>;

    /// The (primary sid, client) an access or refresh token (by hash) was issued in.
    async fn session_by_token(&self, token_hash: &str) -> Result<Option<(String, String)>, StoreError>;

    /// The primary sid of the session an OP cookie (by hash) is bound to.
    async fn session_by_cookie(&self, cookie_hash: &str) -> Result<Option<String>, StoreError>;
}

/// Revoked credentials (token and cookie hashes) and the edge's in-memory set of them.
#[async_trait]
pub(crate) trait Revocations: Send + Sync {
    /// The edge's in-memory copy of every revocation (see `revoked`), kept current by this
    /// store (memory) or by its follower (Redis).
    fn revoked_set(&self) -> Arc<RevokedSet>;

    /// Whether a token or cookie (by its SHA-256 hex) belongs to an ended session.
    #[cfg(test)]
    async fn is_revoked(&self, token_hash: &str) -> Result<bool, StoreError>;

    /// Mark tokens or OP cookies (by hash) as belonging to an ended session, for `tombstone_ttl`.
    async fn revoke_hashes(&self, hashes: &[String]) -> Result<(), StoreError>;

    /// Mark tokens or OP cookies (by hash) as belonging to an ended session, each for its own
    /// duration (one round trip).
    async fn revoke_marks(&self, marks: &[(String, Duration)]) -> Result<(), StoreError>;

    /// Which of these hashes are revoked (one round trip).
    async fn revoked_among(&self, hashes: &[String]) -> Result<Vec<bool>, StoreError>;
}

/// Authorization codes bound to the OP cookies of the browser they were issued to.
#[async_trait]
pub(crate) trait CodeBindings: Send + Sync {
    /// Remember which OP cookies the browser had when the OP issued an authorization code.
    async fn bind_code(&self, code_hash: &str, cookie_hashes: &[String], ttl: Duration) -> Result<(), StoreError>;

    /// Take (once) the cookies bound to a code.
    async fn take_code(&self, code_hash: &str) -> Result<Vec<String>, StoreError>;
}

/// Clients learned from dynamic registration.
#[async_trait]
pub(crate) trait LearnedClients: Send + Sync {
    /// A client learned from dynamic registration (JSON metadata), or None.
    async fn registered_client(&self, client_id: &str) -> Result<Option<String>, StoreError>;

    /// Remember (Some) or forget (None) a client learned from dynamic registration.
    /// With metadata: keep a learned client (JSON with `learned_at`, unix seconds), unless
    /// `max` clients are kept already and it is a new one (then false; entries older than
    /// `lifetime` are dropped first). None: forget it.
    async fn set_registered_client(
        &self,
        client_id: &str,
        metadata: Option<&str>,
        max: u64,
        lifetime: Duration,
    ) -> Result<bool, StoreError>;
}

/// Confirmation contexts of the logout page (single use, capped).
#[async_trait]
pub(crate) trait Confirmations: Send + Sync {
    /// Keep a confirmation context under a single-use token for `ttl`.
    /// Returns false (nothing kept) when [`MAX_PENDING`] contexts were created in the current
    /// window of `ttl`: contexts come from unauthenticated requests, so their number is bounded.
    async fn put_pending(&self, token: &str, value: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Take (and delete) a confirmation context: a token works once.
    async fn take_pending(&self, token: &str) -> Result<Option<String>, StoreError>;
}

/// The gateway's logout-token signing keys, shared by every instance.
#[async_trait]
pub(crate) trait SigningKeys: Send + Sync {
    /// The gateway's stored signing keys (JSON of `backchannel::keys::StoredKey`).
    async fn signing_keys(&self) -> Result<Vec<String>, StoreError>;

    /// Install `candidate` unless a key younger than `rotate_after` exists; keep the newest two.
    /// Returns the keys after the call. Atomic across instances.
    async fn install_signing_key(
        &self,
        kid: &str,
        created: u64,
        candidate: &str,
        rotate_after: Duration,
    ) -> Result<Vec<String>, StoreError>;
}

/// The back-channel delivery queue: at least once, shared by every instance.
#[async_trait]
pub(crate) trait NoticeQueue: Send + Sync {
    /// Accept notices durably (all or none).
    async fn enqueue_notices(&self, notices: &[Notice]) -> Result<(), StoreError>;

    /// Up to `count` notices for `consumer`: new ones, and ones another consumer took more
    /// than `claim_after` ago without finishing (it died).
    async fn claim_notices(
        &self,
        consumer: &str,
        count: usize,
        claim_after: Duration,
    ) -> Result<Vec<Claimed>, StoreError>;

    /// The notice is done (delivered, or failed for good).
    async fn finish_notice(&self, id: &str) -> Result<(), StoreError>;

    /// Try the notice again at `due_ms` (unix milliseconds).
    async fn retry_notice(&self, id: &str, notice: &Notice, due_ms: u64) -> Result<(), StoreError>;

    /// Move retries that are due back into the queue; returns how many moved.
    async fn promote_due_notices(&self, now_ms: u64) -> Result<u64, StoreError>;

    /// Notices waiting (queued, in flight or scheduled for retry).
    async fn notice_depth(&self) -> Result<u64, StoreError>;
}

/// One back-channel logout notice: a signed logout token for one RP (BCL-16). The same token
/// is sent on every retry (BCL-24).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct Notice {
    pub(crate) client_id: String,
    pub(crate) uri: String,
    pub(crate) token: String,
    /// Attempts made so far.
    pub(crate) attempt: u32,
    /// Unix milliseconds when the notice was accepted.
    pub(crate) accepted_ms: u64,
}

/// A notice taken from the queue, with the id that acknowledges it.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    pub(crate) id: String,
    pub(crate) notice: Notice,
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
