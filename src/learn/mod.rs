//! Learning sessions from the traffic the gateway already proxies (docs/design.md: sessions are
//! learned from traffic), and enforcing logouts at the edge with what was learned (`enforce`).
//!
//! Learning watches the token endpoint: from a successful token response it takes the
//! `id_token`, verifies it like a hint (signature, issuer, audience), and records the session
//! (sid, subject, client) in the store, so a later logout with that RP's hint finds it without
//! anyone calling the admin API. Only a verified ID token consumes the binding of its code to
//! the browser's OP cookies (`authz`), so a response that does not verify leaves it in place.
//!
//! Token hashes live as long as the tokens (`expires_in`, `refresh_expires_in`, bounded by
//! `session_store.access_token_ttl` / `refresh_token_ttl`). A refresh_token grant whose response
//! carries no new id_token binds its new tokens to the session of the refresh token it
//! redeemed. With `revocation` configured, the tokens of clients that have revocation
//! credentials are also kept sealed for RFC 7009 (see `revoke`). Tokens the upstream issues
//! for a session the gateway already ended (an OP that never ended its own session) are not
//! learned: they are marked revoked at once, so the edge refuses them like the session's others.
//!
//! The registration endpoint is watched too: a successful registration (or RFC 7592 update)
//! teaches the gateway the client's logout metadata; a deletion forgets it (see `clients`).
//!
//! The client's response is never altered or delayed: the body is copied (capped) as it streams
//! through, decoded from gzip/deflate when the upstream compressed it (`codings`; the upstream
//! is asked for nothing else), and handed to a spawned task at the end; a store outage only
//! costs the learning, never the response. Responses that cannot be read are counted in
//! `logout_gateway_learn_skipped_total{reason}`.

mod authz;
pub(crate) mod codings;
pub(crate) mod credentials;
mod enforce;
mod record;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub(crate) use self::authz::{redirect_params, FormPost};
use self::codings::{count_skipped, decode, Encoding};
pub(crate) use self::enforce::{lookup_budget, Endpoint, MAX_CREDENTIALS, REPEATED};
use crate::clients::Clients;
use crate::config::EndpointPaths;
use crate::crypto::token_hash;
use crate::oidc::jwks::Jwks;
use crate::revoke::Revoker;
use crate::session::{NewSession, SessionStore, Token};

/// Largest token response body that is observed.
const MAX_BODY: usize = 256 * 1024;

/// Per-request state of an observed response (token or registration endpoint).
#[derive(Debug)]
pub(crate) struct Observation {
    pub(crate) purpose: Purpose,
    /// The response qualifies (success, JSON) and is being copied.
    active: bool,
    encoding: Encoding,
    buf: Vec<u8>,
}

/// What an observed response may teach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A token request.
    Token {
        /// Hash of the authorization code being redeemed (authorization_code grants).
        code_hash: Option<String>,
        /// Hash of the refresh token being redeemed (refresh_token grants).
        refresh_hash: Option<String>,
    },
    /// A client registration (POST), or an update (PUT, RFC 7592) of the client the request
    /// path names: an answer about another client is not learned.
    Registration { client_id: Option<String> },
}

impl Observation {
    pub(crate) fn new(purpose: Purpose) -> Self {
        Observation { purpose, active: false, encoding: Encoding::Identity, buf: Vec::new() }
    }
}

/// A token from a token or authorization response, held only until it is hashed (and sealed).
struct RawToken {
    value: String,
    /// `access_token` or `refresh_token`.
    hint: &'static str,
    ttl: Duration,
}

pub(crate) struct Learner {
    pub(crate) jwks: Arc<Jwks>,
    pub(crate) issuer: String,
    pub(crate) clients: Arc<Clients>,
    pub(crate) store: Arc<dyn SessionStore>,
    /// Seals tokens for RFC 7009 revocation; None: `revocation` is off.
    pub(crate) revoker: Option<Arc<Revoker>>,
    /// `session_store.access_token_ttl` and `refresh_token_ttl`.
    pub(crate) access_token_ttl: Duration,
    pub(crate) refresh_token_ttl: Duration,
    /// `session_store.tombstone_ttl`: how long OP cookies of an ended session stay refused.
    pub(crate) tombstone_ttl: Duration,
    /// Configured endpoint paths (`upstream.endpoints`); unset ones come from discovery.
    pub(crate) endpoints: EndpointPaths,
    /// The OP's session cookies: bound to sessions at login, checked and expired at the edge.
    pub(crate) cookies: crate::cookies::OpCookies,
    /// Budget of store lookups by the edge while the revocation set is stale (`enforce`).
    pub(crate) lookups: governor::DefaultDirectRateLimiter,
}

impl Learner {
    /// A learner for `config`'s upstream, issuer, cookies and token lifetimes.
    pub(crate) fn new(
        config: &crate::config::Config,
        jwks: Arc<Jwks>,
        clients: Arc<Clients>,
        store: Arc<dyn SessionStore>,
        revoker: Option<Arc<Revoker>>,
        cookies: crate::cookies::OpCookies,
    ) -> Learner {
        let (up, st) = (&config.upstream, &config.session_store);
        Learner {
            jwks,
            issuer: config.issuer.clone(),
            clients,
            store,
            revoker,
            access_token_ttl: st.access_token_ttl,
            refresh_token_ttl: st.refresh_token_ttl,
            tombstone_ttl: st.tombstone_ttl,
            endpoints: up.endpoints.clone(),
            cookies,
            lookups: lookup_budget(),
        }
    }

    /// A DELETE below the registration endpoint succeeded (RFC 7592): forget the client.
    pub(crate) fn on_client_deleted(self: &Arc<Self>, path: &str, query: Option<&str>) {
        let Some(reg) = self.registration_path() else { return };
        if let Ok(Some(id)) = crate::clients::managed_client_id(&reg, path, query) {
            let me = self.clone();
            tokio::spawn(async move { me.clients.forget(&id).await });
        }
    }

    /// Decide from the response header whether to copy the body. A success in a coding the
    /// gateway cannot decode is counted and warned about once.
    pub(crate) fn on_response_header(
        &self,
        obs: &mut Observation,
        status: u16,
        content_type: Option<&str>,
        encoding: Option<&str>,
    ) {
        let json = content_type.is_some_and(|c| c.to_ascii_lowercase().contains("json"));
        let ok = status == 200 || (status == 201 && matches!(obs.purpose, Purpose::Registration { .. }));
        if !(ok && json) {
            return;
        }
        match Encoding::parse(encoding) {
            Some(e) => {
                obs.encoding = e;
                obs.active = true;
            }
            None => {
                count_skipped("encoding");
                tracing::warn!(
                    "a token or registration response in a content coding the gateway cannot decode; not learned"
                );
            }
        }
    }

    /// Copy a body chunk; at the end, learn from the whole body in the background.
    pub(crate) fn on_body(self: &Arc<Self>, obs: &mut Observation, chunk: Option<&Bytes>, end: bool) {
        if !obs.active {
            return;
        }
        if let Some(c) = chunk {
            if obs.buf.len() + c.len() > MAX_BODY {
                obs.active = false;
                obs.buf = Vec::new();
                count_skipped("too_large");
                return;
            }
            obs.buf.extend_from_slice(c);
        }
        if end {
            obs.active = false;
            let body = std::mem::take(&mut obs.buf);
            let encoding = obs.encoding;
            let purpose = obs.purpose.clone();
            let me = self.clone();
            tokio::spawn(async move { me.learn(body, encoding, purpose).await });
        }
    }

    async fn learn(&self, body: Vec<u8>, encoding: Encoding, purpose: Purpose) {
        let Some(body) = decode(body, encoding, MAX_BODY * 8) else {
            count_skipped("corrupt");
            return tracing::warn!("an observed response did not decode; not learned");
        };
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else { return };
        let (code_hash, refresh_hash) = match purpose {
            Purpose::Registration { client_id } => return self.learn_client(&json, client_id.as_deref()).await,
            Purpose::Token { code_hash, refresh_hash } => (code_hash, refresh_hash),
        };
        let tokens = self.tokens_of(&json);
        let Some(id_token) = json.get("id_token").and_then(|v| v.as_str()) else {
            if let Some(h) = refresh_hash {
                self.learn_refreshed(&h, tokens).await;
            }
            return;
        };
        // Verify first: a response that does not verify must not consume the code's binding.
        let Some(claims) = self.verify(id_token).await else { return };
        // The OP cookies the browser had when this code was issued now belong to the session.
        let cookie_hashes = match code_hash {
            Some(h) => self.store.take_code(&h).await.unwrap_or_default(),
            None => Vec::new(),
        };
        self.store_session(claims, tokens, cookie_hashes).await;
    }

    /// The access and refresh tokens of a token response, with how long each stays valid.
    fn tokens_of(&self, json: &serde_json::Value) -> Vec<RawToken> {
        let secs = |k: &str| json.get(k).and_then(|v| v.as_u64()).filter(|n| *n > 0);
        let mut out = Vec::new();
        for (key, ttl) in [
            ("access_token", bounded(secs("expires_in"), self.access_token_ttl)),
            ("refresh_token", bounded(secs("refresh_expires_in"), self.refresh_token_ttl)),
        ] {
            if let Some(t) = json.get(key).and_then(|v| v.as_str()).filter(|t| !t.is_empty()) {
                out.push(RawToken { value: t.to_string(), hint: key, ttl });
            }
        }
        out
    }

    /// How the store keeps `client`'s tokens: hashed, with their expiry, sealed when revocable.
    fn entries(&self, client: &str, tokens: Vec<RawToken>) -> Vec<Token> {
        let now = crate::session::unix_now();
        tokens
            .into_iter()
            .map(|t| Token {
                hash: token_hash(t.value.as_bytes()),
                expires_at: now + t.ttl.as_secs().max(1),
                sealed: self.revoker.as_ref().and_then(|r| r.seal(client, t.hint, &t.value)),
            })
            .collect()
    }

    /// A refresh_token grant answered without an id_token: its new tokens join the session of
    /// the refresh token it redeemed (when that session is known); when that session has ended,
    /// they are refused like its other tokens.
    async fn learn_refreshed(&self, refresh_hash: &str, tokens: Vec<RawToken>) {
        if tokens.is_empty() {
            return;
        }
        let found = match self.store.session_by_token(refresh_hash).await {
            Ok(Some(found)) => found,
            Ok(None) => return tracing::debug!("refreshed tokens of an unknown session; not learned"),
            Err(e) => return tracing::warn!(error = %e, "refreshed tokens not learned (store unavailable)"),
        };
        let (sid, client) = found;
        let session = match self.store.get_session(&sid).await {
            Ok(Some(v)) => v,
            Ok(None) => return,
            Err(e) => return tracing::warn!(error = %e, "refreshed tokens not learned (store unavailable)"),
        };
        let tokens = self.entries(&client, tokens);
        if !session.is_active() {
            return self.refuse_reissued(&client, &tokens, &[]).await;
        }
        let new = NewSession {
            sid: session.sid,
            sub: session.sub,
            clients: vec![client.clone()],
            tokens,
            ..NewSession::default()
        };
        self.put(new, "refresh").await;
    }

    /// A registration response: the client's logout metadata (`clients` checks and keeps them).
    async fn learn_client(&self, json: &serde_json::Value, updated: Option<&str>) {
        let Some(id) = json.get("client_id").and_then(|v| v.as_str()).filter(|c| !c.is_empty()) else { return };
        if updated.is_some_and(|u| u != id) {
            count_skipped("mismatch");
            return tracing::warn!(client = %id, "an update's answer names another client than its path; not learned");
        }
        self.clients.learn(id, json).await;
    }
}

/// A lifetime the OP stated, bounded by the configured maximum (which also stands in for it).
fn bounded(stated_secs: Option<u64>, max: Duration) -> Duration {
    stated_secs.map_or(max, |s| Duration::from_secs(s).min(max))
}
