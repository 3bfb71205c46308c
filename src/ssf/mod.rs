//! OpenID Shared Signals Framework 1.0 transmitter: every ended session, whatever ended it (a
//! logout, the admin API, global token revocation, an RP's back-end logout), becomes a CAEP
//! `session-revoked` Security Event Token (RFC 8417, `typ: secevent+jwt`, signed with the
//! gateway's logout-token key published in its JWKS) for each stream whose subjects cover the
//! session. Receivers (`ssf.receivers`, each with its own bearer token) manage their streams
//! through the SSF 1.0 management API (`api.rs`); streams, their subjects and held events live
//! in the session store (`session::Streams`), so they survive restarts and every instance
//! shares them.
//!
//! Delivery: a push stream's SETs (RFC 8935) are notices in the back-channel queue, delivered
//! and retried by its worker with the same SET (same `jti`); a poll stream's (RFC 8936), and a
//! paused push stream's, are held in the store until the receiver acknowledges them (or the
//! stream is enabled again). See docs/ssf.md.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use crate::config::{Ssf, SsfReceiver};
use crate::crypto::keys::Keys;
use crate::session::{Notice, NoticeKind, SessionStore, SessionView, StoreError};

pub(crate) mod api;
mod poll;
mod set;
mod stream;

pub(crate) use self::stream::Stream;

/// CAEP 1.0 session revoked.
pub(crate) const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
/// SSF 1.0 verification event.
pub(crate) const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
/// RFC 8935 push delivery.
pub(crate) const PUSH: &str = "urn:ietf:rfc:8935";
/// RFC 8936 poll delivery.
pub(crate) const POLL: &str = "urn:ietf:rfc:8936";
/// Events held per stream at most; beyond it the oldest are dropped (SSF 1.0 permits dropping
/// a paused stream's events; a poll receiver that stops polling loses the oldest).
pub(crate) const HOLD_CAP: usize = 10_000;

/// Who ended the sessions: CAEP's `initiating_entity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Initiator {
    /// The user (end_session, an RP's back-end logout).
    User,
    /// An administrator or a trusted system (the admin API, global token revocation).
    Admin,
}

impl Initiator {
    fn as_str(self) -> &'static str {
        match self {
            Initiator::User => "user",
            Initiator::Admin => "admin",
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The transmitter: its receivers, where its endpoints are, the store and the signing keys.
pub(crate) struct Transmitter {
    config: Ssf,
    issuer: String,
    /// The issuer's origin followed by `ssf.path`: the base of every endpoint URL.
    base_url: String,
    store: Arc<dyn SessionStore>,
    keys: Arc<Keys>,
    /// Wakes this instance's long polls when it held events.
    held: Notify,
}

/// Why the ended sessions' events could not be made or accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SsfError {
    #[error("no signing key loaded")]
    NoKey,
    #[error("signing a SET: {0}")]
    Sign(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Transmitter {
    pub(crate) fn new(config: Ssf, issuer: &str, store: Arc<dyn SessionStore>, keys: Arc<Keys>) -> Arc<Self> {
        let origin = url::Url::parse(issuer).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        let base_url = format!("{origin}{}", config.path);
        Arc::new(Transmitter { config, issuer: issuer.to_string(), base_url, store, keys, held: Notify::new() })
    }

    /// The canonical path the endpoints sit below.
    pub(crate) fn path(&self) -> &str {
        &self.config.path
    }

    /// The receiver whose token `authorization` carries (`Bearer`, any letter case), or None.
    /// Every token is compared, so the time taken does not say which one nearly matched.
    pub(crate) fn receiver(&self, authorization: Option<&str>) -> Option<&SsfReceiver> {
        let presented = authorization.and_then(|a| {
            let (scheme, token) = a.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })?;
        self.config.receivers.iter().fold(None, |hit, r| {
            let m = crate::crypto::secrets_match(presented.as_bytes(), r.token.expose().as_bytes());
            if m {
                Some(r)
            } else {
                hit
            }
        })
    }

    /// The paths of the transmitter configuration document: `/.well-known/ssf-configuration`
    /// followed by the issuer's path (SSF 1.0 section 6.2), and without it.
    pub(crate) fn configuration_paths(&self) -> Vec<String> {
        let issuer_path = url::Url::parse(&self.issuer).map(|u| u.path().to_string()).unwrap_or_default();
        let issuer_path = issuer_path.trim_end_matches('/');
        let mut out = vec!["/.well-known/ssf-configuration".to_string()];
        if !issuer_path.is_empty() {
            out.push(format!("/.well-known/ssf-configuration{issuer_path}"));
        }
        out
    }

    /// The transmitter configuration metadata.
    pub(crate) fn configuration(&self, jwks_uri: Option<String>) -> Vec<u8> {
        let b = &self.base_url;
        let mut doc = serde_json::json!({
            "spec_version": "1_0",
            "issuer": self.issuer,
            "delivery_methods_supported": [PUSH, POLL],
            "configuration_endpoint": format!("{b}/streams"),
            "status_endpoint": format!("{b}/status"),
            "add_subject_endpoint": format!("{b}/subjects:add"),
            "remove_subject_endpoint": format!("{b}/subjects:remove"),
            "verification_endpoint": format!("{b}/verify"),
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}],
            "default_subjects": "NONE",
        });
        if let Some(j) = jwks_uri {
            doc["jwks_uri"] = j.into();
        }
        serde_json::to_vec(&doc).unwrap_or_default()
    }

    /// `sessions` have ended: a session-revoked SET for each stream covering each of them.
    /// Push streams' SETs are returned as notices for the caller to accept with the
    /// back-channel notices; poll (and paused) streams' are held in the store before this
    /// returns.
    pub(crate) async fn sessions_ended(
        &self,
        sessions: &[SessionView],
        why: Initiator,
    ) -> Result<Vec<Notice>, SsfError> {
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        let streams: Vec<Stream> = self.live_streams().await?;
        let wanting: Vec<&Stream> = streams.iter().filter(|s| s.delivers(SESSION_REVOKED)).collect();
        if wanting.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = wanting.iter().map(|s| s.id.clone()).collect();
        let mut notices = Vec::new();
        for view in sessions {
            let covering = self.store.ssf_covering(&ids, &set::event_keys(view)).await?;
            let txn = crate::crypto::random_token();
            for s in wanting.iter().filter(|s| covering.contains(&s.id)) {
                let receiver = self.config.receivers.iter().find(|r| r.name == s.receiver);
                let client = receiver.and_then(|r| r.client_id.clone()).unwrap_or_default();
                let sid = Some(client.as_str()).filter(|c| !c.is_empty()).and_then(|c| view.client_sid(c));
                let sub_id = set::session_subject(&self.issuer, &view.sub, sid.unwrap_or(&view.sid));
                let event = serde_json::json!({ "event_timestamp": now_secs(), "initiating_entity": why.as_str() });
                let (jti, token) = self.sign(s, sub_id, SESSION_REVOKED, event, Some(&txn))?;
                self.deliver(s, jti, token, &view.sid, &client, &mut notices).await?;
                tracing::info!(target: "logout_gateway::receipt", sid = %view.sid, stream = %s.id, receiver = %s.receiver, "session-revoked SET issued");
            }
        }
        Ok(notices)
    }

    /// Every stream that is not disabled.
    async fn live_streams(&self) -> Result<Vec<Stream>, StoreError> {
        let all = self.store.ssf_streams().await?;
        Ok(all
            .values()
            .filter_map(|r| serde_json::from_str::<Stream>(r).ok())
            .filter(|s| s.status != "disabled")
            .collect())
    }

    /// A SET for stream `s`: `(jti, compact JWS)`.
    fn sign(
        &self,
        s: &Stream,
        sub_id: serde_json::Value,
        event_type: &str,
        event: serde_json::Value,
        txn: Option<&str>,
    ) -> Result<(String, String), SsfError> {
        let ring = self.keys.load();
        let key = ring.active().ok_or(SsfError::NoKey)?;
        let jti = crate::crypto::random_token();
        let token =
            set::sign(key, &self.issuer, &s.aud, &jti, sub_id, event_type, event, txn).map_err(SsfError::Sign)?;
        Ok((jti, token))
    }

    /// Hand a SET to its stream: a notice for an enabled push stream, else held in the store.
    /// A receiver tied to a client gets `ssf:<client>` in the session's receipt.
    async fn deliver(
        &self,
        s: &Stream,
        jti: String,
        token: String,
        session: &str,
        client: &str,
        notices: &mut Vec<Notice>,
    ) -> Result<(), SsfError> {
        if s.is_push() && s.status == "enabled" {
            notices.push(Notice {
                client_id: client.to_string(),
                uri: s.delivery.endpoint_url.clone().unwrap_or_default(),
                token,
                attempt: 0,
                accepted_ms: now_ms(),
                session: session.to_string(),
                kind: NoticeKind::Set { stream: s.id.clone(), authorization: s.delivery.authorization_header.clone() },
            });
        } else {
            let held = poll::Held { set: token, session: session.to_string(), client: client.to_string() };
            self.store.ssf_hold(&s.id, &[(jti, held.to_json())], HOLD_CAP).await?;
            self.held.notify_waiters();
        }
        if !client.is_empty() && !session.is_empty() {
            let note = [(format!("ssf:{client}"), "pending".to_string())];
            if let Err(e) = self.store.note_receipt(session, &note, false, None).await {
                tracing::debug!(error = %e, "logout receipt not updated");
            }
        }
        Ok(())
    }
}

impl Transmitter {
    /// A push stream enabled (again): its held events become notices, then are forgotten.
    pub(crate) async fn release(&self, s: &Stream) -> Result<(), StoreError> {
        loop {
            let taken = self.store.ssf_take(&s.id, &[], 500).await?;
            if taken.events.is_empty() {
                return Ok(());
            }
            let mut notices = Vec::new();
            let mut jtis = Vec::new();
            for (jti, value) in taken.events {
                let Ok(h) = serde_json::from_str::<poll::Held>(&value) else { continue };
                notices.push(Notice {
                    client_id: h.client,
                    uri: s.delivery.endpoint_url.clone().unwrap_or_default(),
                    token: h.set,
                    attempt: 0,
                    accepted_ms: now_ms(),
                    session: h.session,
                    kind: NoticeKind::Set {
                        stream: s.id.clone(),
                        authorization: s.delivery.authorization_header.clone(),
                    },
                });
                jtis.push(jti);
            }
            // Queued before forgotten: a crash between the two sends an event twice, never never.
            self.store.enqueue_notices(&notices).await?;
            self.store.ssf_take(&s.id, &jtis, 0).await?;
        }
    }

    /// A stream disabled: its held events are dropped.
    pub(crate) async fn discard(&self, s: &Stream) -> Result<(), StoreError> {
        loop {
            let taken = self.store.ssf_take(&s.id, &[], 1000).await?;
            if taken.events.is_empty() {
                return Ok(());
            }
            let jtis: Vec<String> = taken.events.into_iter().map(|(j, _)| j).collect();
            self.store.ssf_take(&s.id, &jtis, 0).await?;
        }
    }
}
