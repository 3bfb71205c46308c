//! RFC 7009 revocation at the upstream after a logout (optional, `revocation` in proxy.yaml).
//!
//! The edge already refuses a logged-out session's tokens; revoking them at the OP as well
//! covers whatever reaches the OP without passing the gateway (an RP or resource server on an
//! internal address) and outlives the gateway's revocation markers. Revocation needs the token
//! itself, which the gateway never stores in the clear: when a session is learned, the tokens of
//! clients that have revocation credentials are sealed (AES-256-GCM under
//! `revocation.encryption_key`, a key the store never sees) and kept with the session; the
//! logout that ends the session gets them back once and revokes them in the background.
//!
//! What this does not do: it never blocks or fails a logout (the logout already succeeded in
//! the store); a failed call is retried twice, then logged and counted, not queued durably.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::clients::Clients;
use crate::config::EndpointPaths;
use crate::config::{Revocation, RevocationAuth};
use crate::metrics::Metrics;
use crate::oidc::jwks::Jwks;

/// Binds ciphertexts to this use (a sealed value means nothing elsewhere).
const AAD: &[u8] = b"logout-gateway revocation v1";

/// What a sealed value holds.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// client_id the token was issued to.
    c: String,
    /// `access_token` or `refresh_token` (the RFC 7009 token_type_hint).
    h: String,
    /// The token.
    t: String,
}

/// AES-256-GCM sealing of tokens: a random nonce per token, the nonce sent along.
pub(crate) struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    pub(crate) fn new(key: &[u8]) -> Result<Sealer, String> {
        let key = UnboundKey::new(&AES_256_GCM, key).map_err(|_| "not an AES-256 key".to_string())?;
        Ok(Sealer { key: LessSafeKey::new(key) })
    }

    fn seal(&self, client: &str, hint: &str, token: &str) -> Option<String> {
        let mut buf = serde_json::to_vec(&Sealed { c: client.into(), h: hint.into(), t: token.into() }).ok()?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).ok()?;
        self.key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(AAD), &mut buf).ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Some(B64.encode(out))
    }

    fn open(&self, sealed: &str) -> Option<Sealed> {
        let raw = B64.decode(sealed).ok()?;
        if raw.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = rest.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(AAD), &mut buf).ok()?;
        serde_json::from_slice(plain).ok()
    }
}

pub(crate) struct Revoker {
    sealer: Sealer,
    timeout: Duration,
    clients: Arc<Clients>,
    jwks: Arc<Jwks>,
    /// `upstream.endpoints.revocation`; None: discovery's `revocation_endpoint`.
    configured_path: Option<String>,
}

impl Revoker {
    pub(crate) fn new(
        config: &Revocation,
        endpoints: &EndpointPaths,
        clients: Arc<Clients>,
        jwks: Arc<Jwks>,
    ) -> Result<Arc<Revoker>, String> {
        let sealer = Sealer::new(&config.encryption_key.0).map_err(|e| format!("revocation.encryption_key: {e}"))?;
        Ok(Arc::new(Revoker {
            sealer,
            timeout: config.timeout,
            clients,
            jwks,
            configured_path: endpoints.revocation.clone(),
        }))
    }

    /// Seal `token` (of kind `hint`) for later revocation, when `client` is set up for it.
    pub(crate) fn seal(&self, client: &str, hint: &str, token: &str) -> Option<String> {
        self.clients.configured_client(client)?.revocation.as_ref()?;
        self.sealer.seal(client, hint, token)
    }

    /// Revoke these sealed tokens at the upstream, in the background.
    pub(crate) fn submit(self: &Arc<Self>, sealed: Vec<String>) {
        if sealed.is_empty() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            for s in sealed {
                me.revoke(&s).await;
            }
        });
    }

    async fn revoke(&self, sealed: &str) {
        let m = Metrics::get();
        let Some(t) = self.sealer.open(sealed) else {
            // Sealed under another key (rotated) or damaged: nothing to do with it.
            m.upstream_revocations.with_label_values(&["unreadable"]).inc();
            return tracing::warn!("a sealed token could not be opened (encryption key changed?)");
        };
        let Some(auth) = self.clients.configured_client(&t.c).and_then(|c| c.revocation.clone()) else {
            m.upstream_revocations.with_label_values(&["skipped"]).inc();
            return;
        };
        let path = self.configured_path.clone().or_else(|| self.jwks.endpoints().revocation.clone());
        let Some(path) = path else {
            m.upstream_revocations.with_label_values(&["no_endpoint"]).inc();
            return tracing::warn!("no revocation endpoint (discovery has none; set upstream.endpoints.revocation)");
        };
        let mut form = vec![("token", t.t.as_str()), ("token_type_hint", t.h.as_str())];
        let basic = match &auth {
            RevocationAuth::Basic(secret) => Some((t.c.as_str(), secret.expose())),
            RevocationAuth::Post(secret) => {
                form.push(("client_id", t.c.as_str()));
                form.push(("client_secret", secret.expose()));
                None
            }
            RevocationAuth::Public => {
                form.push(("client_id", t.c.as_str()));
                None
            }
        };
        let mut wait = Duration::from_millis(200);
        for attempt in 1..=3 {
            match self.jwks.post_form(&path, basic, &form, self.timeout).await {
                // RFC 7009 §2.2: 200 also for tokens that were already invalid.
                Ok(200) => {
                    m.upstream_revocations.with_label_values(&["revoked"]).inc();
                    return tracing::debug!(client = %t.c, hint = %t.h, "token revoked at the upstream");
                }
                // §2.2.1: 503 may be retried; so may network failures. Other answers are final.
                Ok(503) | Err(_) if attempt < 3 => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Ok(status) => {
                    m.upstream_revocations.with_label_values(&["failed"]).inc();
                    return tracing::warn!(client = %t.c, status, "the upstream refused a token revocation");
                }
                Err(e) => {
                    m.upstream_revocations.with_label_values(&["failed"]).inc();
                    return tracing::warn!(client = %t.c, error = %e, "token revocation at the upstream failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_tokens_open_only_with_their_key_and_unaltered() {
        let s = Sealer::new(&[7u8; 32]).unwrap();
        let sealed = s.seal("rp 1", "refresh_token", "rt-secret").unwrap();
        assert!(!sealed.contains("rt-secret") && !sealed.contains(' '));
        let t = s.open(&sealed).unwrap();
        assert_eq!((t.c.as_str(), t.h.as_str(), t.t.as_str()), ("rp 1", "refresh_token", "rt-secret"));
        assert_ne!(sealed, s.seal("rp 1", "refresh_token", "rt-secret").unwrap(), "a fresh nonce each time");
        assert!(Sealer::new(&[8u8; 32]).unwrap().open(&sealed).is_none(), "another key");
        let mut raw = B64.decode(&sealed).unwrap();
        raw[NONCE_LEN + 1] ^= 1;
        assert!(s.open(&B64.encode(raw)).is_none(), "tampered");
        assert!(s.open("").is_none() && s.open("!!").is_none());
        assert!(Sealer::new(&[0u8; 16]).is_err());
    }
}
