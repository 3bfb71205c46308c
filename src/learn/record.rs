//! Recording what was learned: a verified ID token's session (joined to the browser's live
//! session of the same subject when an OP cookie already belongs to one), its tokens and OP
//! cookies; and, when the gateway already ended that session, refusing what the OP re-issued.

use std::collections::BTreeMap;
use std::time::Duration;

use super::codings::count_skipped;
use super::{Learner, RawToken};
use crate::metrics::Metrics;
use crate::oidc::hint::{HintCheck, HintClaims};
use crate::session::{NewSession, PutResult, Token};

impl Learner {
    /// Record the session a (verified) ID token names, with its tokens and OP cookie hashes.
    pub(super) async fn record(&self, id_token: &str, tokens: Vec<RawToken>, cookie_hashes: Vec<String>) {
        if let Some(claims) = self.verify(id_token).await {
            self.store_session(claims, tokens, cookie_hashes).await;
        }
    }

    /// The claims of an ID token seen in OP traffic, or None (counted, logged) when it does not
    /// verify like a hint.
    pub(super) async fn verify(&self, id_token: &str) -> Option<HintClaims> {
        match crate::oidc::hint::check(id_token, &self.jwks, &self.issuer, &self.clients).await {
            Ok(HintCheck::Valid(c)) => Some(c),
            Ok(_) => {
                count_skipped("unverified");
                tracing::info!("an ID token seen in OP traffic does not verify; not learned");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "session not learned");
                None
            }
        }
    }

    /// Store the session verified `claims` name, with its tokens and OP cookie hashes.
    pub(super) async fn store_session(&self, claims: HintClaims, tokens: Vec<RawToken>, cookie_hashes: Vec<String>) {
        let (sid, client_sid) = match claims.sid {
            Some(sid) => (sid.clone(), sid),
            None => {
                Metrics::get().without_sid.with_label_values(&["learned"]).inc();
                let Some(sid) = cookie_keyed_sid(&cookie_hashes, &claims.sub) else {
                    count_skipped("no_cookie");
                    return tracing::info!("an ID token without sid whose code was bound to no OP cookie; not learned");
                };
                // The client was given no sid: recorded as an empty one (never sent to it).
                (sid, String::new())
            }
        };
        let mut client_sids = BTreeMap::new();
        client_sids.insert(claims.client_id.clone(), client_sid);
        let primary = self.primary_sid(sid, &claims.sub, &cookie_hashes).await;
        let new = NewSession {
            sid: primary,
            sub: claims.sub,
            tokens: self.entries(&claims.client_id, tokens),
            clients: vec![claims.client_id],
            client_sids,
            cookie_hashes,
        };
        self.put(new, "session").await;
    }

    /// One browser session, several sids (OPs such as node-oidc-provider give each client its
    /// own): when a cookie already belongs to a live session of the same subject, this client
    /// joins it, its sid becoming an alias of that session. Else `sid` itself.
    async fn primary_sid(&self, sid: String, sub: &str, cookie_hashes: &[String]) -> String {
        for ck in cookie_hashes {
            if let Ok(Some(v)) = crate::session::live_owner(self.store.as_ref(), ck).await {
                if v.sub == sub {
                    return v.sid;
                }
            }
        }
        sid
    }

    /// Put a learned session (or its refreshed tokens), counted as `kind` when stored.
    pub(super) async fn put(&self, new: NewSession, kind: &'static str) {
        let client = new.clients.first().cloned().unwrap_or_default();
        match self.store.put_session(&new).await {
            Ok(PutResult::Stored(_)) => {
                Metrics::get().learned.with_label_values(&[kind]).inc();
                tracing::debug!(client = %client, kind, "learned");
            }
            Ok(r) if r.is_ended() => {
                let cookies = self.not_of_others(&new.sub, &new.cookie_hashes).await;
                self.refuse_reissued(&client, &new.tokens, &cookies).await
            }
            Ok(_) => tracing::info!(client = %client, "the session's sid belongs to another subject; not learned"),
            Err(e) => tracing::warn!(error = %e, "session not learned (store unavailable)"),
        }
    }

    /// The cookies of `hashes` not bound to a live session of another subject than `sub` (those
    /// are never revoked on this session's account). A store failure keeps none.
    async fn not_of_others(&self, sub: &str, hashes: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for ck in hashes {
            match crate::session::live_owner(self.store.as_ref(), ck).await {
                Ok(owner) if owner.as_ref().is_none_or(|v| v.sub == sub) => out.push(ck.clone()),
                _ => {}
            }
        }
        out
    }

    /// The upstream issued tokens in a session the gateway already ended (an OP that never
    /// ended its own session): refuse them at the edge at once, each for its lifetime, and the
    /// OP cookies that obtained them for `tombstone_ttl` (GW-02). One pipelined write.
    pub(super) async fn refuse_reissued(&self, client: &str, tokens: &[Token], cookie_hashes: &[String]) {
        Metrics::get().learned.with_label_values(&["ended_session"]).inc();
        tracing::info!(client = %client, "the upstream issued tokens in a session that has ended; they are refused");
        let now = crate::session::unix_now();
        let marks: Vec<(String, Duration)> = tokens
            .iter()
            .map(|t| (t.hash.clone(), Duration::from_secs(t.expires_at.saturating_sub(now).max(1))))
            .chain(cookie_hashes.iter().map(|c| (c.clone(), self.tombstone_ttl)))
            .collect();
        if let Err(e) = self.store.revoke_marks(&marks).await {
            tracing::warn!(error = %e, "tokens of an ended session not refused (store unavailable)");
        }
    }
}

/// The session key of an OP whose ID tokens carry no sid: the browser's OP session (its
/// cookie, the least hash when it sent several) and the subject, hashed. Every RP the browser
/// signs in to in that OP session lands in the same session; None without a bound cookie.
fn cookie_keyed_sid(cookie_hashes: &[String], sub: &str) -> Option<String> {
    let cookie = cookie_hashes.iter().min()?;
    Some(format!("op-{}", &crate::crypto::token_hash(format!("{cookie}\n{sub}").as_bytes())[..32]))
}
