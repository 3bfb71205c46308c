//! What the store can do, split by capability: sessions, revocation marks, code bindings,
//! learned clients, confirmations, signing keys and the back-channel notice queue. Both
//! backends implement every trait; `contract.rs` holds them to the same behaviour.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{EndResult, NewSession, PutResult, RevokedSet, SessionView, StoreError};

/// Everything the gateway keeps: every capability, in one backend (`memory` or `redis`).
/// Callers hold `Arc<dyn SessionStore>`; the capability traits' methods are callable on it.
#[async_trait]
pub(crate) trait SessionStore:
    Sessions + Revocations + CodeBindings + LearnedClients + Confirmations + SigningKeys + NoticeQueue + Receipts + Streams
{
    /// `memory` or `redis`, for logs and /readyz.
    fn backend(&self) -> &'static str;

    /// Answers when the store can serve requests; used by /readyz.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Something /readyz should say while still ready (writes that end sessions are failing
    /// closed, for instance), or None.
    fn note(&self) -> Option<String> {
        None
    }
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

/// Logout receipts: what each RP of an ended session was told and how it went (front-channel
/// reports, back-channel results and attempts), kept as long as the session's tombstone; and
/// the single-use tickets the front-channel page reports with.
#[async_trait]
pub(crate) trait Receipts: Send + Sync {
    /// Write `notes` (field, value) into the receipt of the primary sid `sid`; `first_only`:
    /// keep a value already there. `count`: a field to add 1 to. Answers, per note, whether it
    /// was written. Kept `tombstone_ttl` from now. One attempt (a retry could count twice).
    async fn note_receipt(
        &self,
        sid: &str,
        notes: &[(String, String)],
        first_only: bool,
        count: Option<&str>,
    ) -> Result<Vec<bool>, StoreError>;

    /// The receipt of a primary sid: field → value (empty when none was written).
    async fn receipt(&self, sid: &str) -> Result<std::collections::BTreeMap<String, String>, StoreError>;

    /// Keep a front-channel report ticket under a single-use token for `ttl`.
    async fn put_ticket(&self, token: &str, value: &str, ttl: Duration) -> Result<(), StoreError>;

    /// Take (and delete) a ticket: a token works once.
    async fn take_ticket(&self, token: &str) -> Result<Option<String>, StoreError>;
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct Notice {
    pub(crate) client_id: String,
    pub(crate) uri: String,
    pub(crate) token: String,
    /// Attempts made so far.
    pub(crate) attempt: u32,
    /// Unix milliseconds when the notice was accepted.
    pub(crate) accepted_ms: u64,
    /// The primary sid of the ended session, whose receipt records the delivery ("" for a
    /// notice outside any learned session; absent in notices queued by earlier versions).
    #[serde(default)]
    pub(crate) session: String,
    /// What the token is: a logout token (form POST) or a Security Event Token for a Shared
    /// Signals stream (`application/secevent+jwt`, RFC 8935).
    #[serde(default, skip_serializing_if = "NoticeKind::is_logout")]
    pub(crate) kind: NoticeKind,
}

/// How a notice is delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NoticeKind {
    /// Back-channel logout: `logout_token=<token>`, 200 or 204.
    #[default]
    Logout,
    /// RFC 8935 push of a SET to a stream: 202 (200 and 204 too), with the receiver's
    /// `Authorization` value when it gave one.
    Set {
        stream: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        authorization: Option<String>,
    },
}

impl NoticeKind {
    fn is_logout(&self) -> bool {
        *self == NoticeKind::Logout
    }
}

/// Shared Signals streams (`ssf`), shared by every instance: each stream's record (JSON the
/// transmitter owns), its subjects (canonical keys), and the events held for it (poll delivery,
/// or a paused push stream), each under its `jti`, oldest first.
#[async_trait]
pub(crate) trait Streams: Send + Sync {
    /// Every stream's record, by stream id.
    async fn ssf_streams(&self) -> Result<BTreeMap<String, String>, StoreError>;

    /// Write a stream's record: `create` only when no stream has the id, else only when one
    /// has (a stream deleted meanwhile stays deleted). Whether it was written.
    async fn ssf_put_stream(&self, id: &str, record: &str, create: bool) -> Result<bool, StoreError>;

    /// Delete a stream with its subjects and held events; false when there was none.
    async fn ssf_delete_stream(&self, id: &str) -> Result<bool, StoreError>;

    /// Add (or remove) one subject key of a stream.
    async fn ssf_subject(&self, id: &str, key: &str, add: bool) -> Result<(), StoreError>;

    /// Of the streams `ids`, those holding any of the subject `keys`.
    async fn ssf_covering(&self, ids: &[String], keys: &[String]) -> Result<Vec<String>, StoreError>;

    /// Hold events `(jti, value)` for a stream; beyond `cap` held, the oldest are dropped.
    async fn ssf_hold(&self, id: &str, events: &[(String, String)], cap: usize) -> Result<(), StoreError>;

    /// Forget the acknowledged `ack` events (their values are returned), then up to `max` held
    /// events, oldest first, and whether more are held.
    async fn ssf_take(&self, id: &str, ack: &[String], max: usize) -> Result<Taken, StoreError>;

    /// Whether a verification event may be sent for the stream now: at most one per `every`.
    async fn ssf_verify_gate(&self, id: &str, every: Duration) -> Result<bool, StoreError>;
}

/// What [`Streams::ssf_take`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Taken {
    /// The values of the events the call acknowledged.
    pub(crate) acked: Vec<String>,
    /// `(jti, value)`, oldest first.
    pub(crate) events: Vec<(String, String)>,
    pub(crate) more: bool,
}

/// A notice taken from the queue, with the id that acknowledges it.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    pub(crate) id: String,
    pub(crate) notice: Notice,
}
