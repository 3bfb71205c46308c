//! OpenID Connect Back-Channel Logout 1.0 (errata 1) from the gateway.
//!
//! At logout, one signed logout token per participating RP that registered a
//! `backchannel_logout_uri` is accepted into a durable queue in the session store (a Redis
//! stream with a consumer group) before the user's answer is sent, so a notice accepted by one
//! gateway is delivered even if that process dies: another instance, or the restarted one,
//! claims what was left in flight. Workers POST `logout_token=...` in parallel with a timeout and
//! no redirects: 200/204 is success, 400 and other non-retryable answers are final, network
//! errors, 408, 429 and 5xx are retried with exponential backoff and jitter up to
//! `max_attempts`, always with the same token (BCL-16..19, BCL-24). Optionally the logout waits
//! up to `wait_before_redirect` for the deliveries itself (RPI-22).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jsonwebtoken::Header;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::sync::Notify;

use crate::config::{BackchannelConfig, Config};
use crate::crypto::keys::{self, KeyRing, Keys, StoredKey};
use crate::session::{Notice, NoticeKind, SessionStore, StoreError};

mod delivery;

use self::delivery::{delivery_client, Attempt};

/// How long a logout token is valid (BCL-22: at most two minutes).
pub(crate) const TOKEN_LIFETIME: u64 = 120;
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub(crate) struct Backchannel {
    pub(crate) config: BackchannelConfig,
    pub(crate) issuer: String,
    pub(crate) clients: Arc<crate::clients::Clients>,
    pub(crate) keys: Arc<Keys>,
    pub(crate) store: Arc<dyn SessionStore>,
    http: reqwest::Client,
    /// For clients learned from dynamic registration: https only, and it connects only to
    /// addresses `address` permits (see `address::GuardedResolver`).
    guarded: reqwest::Client,
    /// Wakes the local worker when this instance accepted notices.
    wake: Notify,
    /// Load the signing keys at the worker's next turn (a reload may have added the first
    /// client with a back-channel URI).
    keys_wanted: std::sync::atomic::AtomicBool,
    /// This process's consumer name in the group.
    consumer: String,
    /// Keys are needed whatever the clients are: the Shared Signals transmitter signs with them.
    always_sign: bool,
}

impl Backchannel {
    pub(crate) fn new(
        config: &Config,
        clients: Arc<crate::clients::Clients>,
        store: Arc<dyn SessionStore>,
    ) -> Result<Arc<Backchannel>, String> {
        let bc = &config.backchannel;
        let http = delivery_client(bc.timeout, None)?;
        let allowed = Arc::new(config.registration.allowed_networks.clone());
        let guarded = delivery_client(bc.timeout, Some(crate::address::GuardedResolver { allowed }))?;
        Ok(Arc::new(Backchannel {
            guarded,
            config: bc.clone(),
            issuer: config.issuer.clone(),
            clients,
            keys: Arc::new(Keys::default()),
            store,
            http,
            wake: Notify::new(),
            keys_wanted: std::sync::atomic::AtomicBool::new(false),
            consumer: format!("{}-{}", std::process::id(), crate::crypto::random_token()),
            always_sign: config.ssf.is_some(),
        }))
    }

    /// Whether tokens must be signable: a known client takes back-channel notices, or the
    /// Shared Signals transmitter is on.
    pub(crate) fn enabled(&self) -> bool {
        self.always_sign || self.clients.any_backchannel()
    }

    /// Logout tokens for the participants that registered a back-channel URI. `participants`
    /// are (client_id, the sid that client knows); `sub` is the session's subject; `session`
    /// the ended session's primary sid, whose receipt records each delivery ("" for none).
    pub(crate) async fn notices_for(
        &self,
        participants: &[(String, Option<String>)],
        sub: Option<&str>,
        session: &str,
    ) -> Result<Vec<Notice>, String> {
        let mut takers = Vec::new();
        for (client_id, sid) in participants {
            if let Some(client) = self.clients.get(client_id).await.filter(|c| c.backchannel_logout_uri.is_some()) {
                takers.push((client_id, sid, client));
            }
        }
        if takers.is_empty() {
            return Ok(Vec::new());
        }
        if self.keys.load().active().is_none() {
            // A client learned from registration made back-channel logout needed just now.
            self.refresh_keys().await?;
        }
        let ring = self.keys.load();
        let mut out = Vec::new();
        for (client_id, sid, client) in takers {
            let Some(uri) = &client.backchannel_logout_uri else { continue };
            // BCL-05: a client that requires sid gets it when the OP gave one; when the OP's ID
            // tokens carry none, the token names the subject alone (the RP was never given a
            // sid to match). BCL-08: never neither sub nor sid.
            let sid = sid.as_deref().filter(|s| !s.is_empty());
            if sid.is_none() && sub.is_none() {
                tracing::warn!(client = %client_id, "no sid and no sub for a logout token; notice skipped");
                continue;
            }
            if sid.is_none() && client.backchannel_logout_session_required {
                tracing::debug!(client = %client_id, "the client requires sid; the OP gave none: sub only");
            }
            let token = self.sign(&ring, client_id, sub, sid)?;
            out.push(Notice {
                client_id: client_id.clone(),
                uri: uri.clone(),
                token,
                attempt: 0,
                accepted_ms: now_ms(),
                session: session.to_string(),
                kind: NoticeKind::Logout,
            });
        }
        Ok(out)
    }

    fn sign(&self, ring: &KeyRing, aud: &str, sub: Option<&str>, sid: Option<&str>) -> Result<String, String> {
        let key = ring.active().ok_or("no signing key loaded")?;
        let iat = now_secs();
        let mut claims = serde_json::json!({
            "iss": self.issuer,
            "aud": aud,
            "iat": iat,
            "exp": iat + TOKEN_LIFETIME,
            "jti": crate::crypto::random_token(),
            "events": { EVENT: {} },
        });
        if let Some(s) = sub {
            claims["sub"] = s.into();
        }
        if let Some(s) = sid {
            claims["sid"] = s.into();
        }
        let mut h = Header::new(key.alg);
        h.typ = Some("logout+jwt".into()); // BCL-13
        h.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&h, &claims, &key.key).map_err(|e| format!("signing a logout token: {e}"))
    }

    /// Accept notices for delivery before the user's answer goes out. With
    /// `wait_before_redirect`, deliver them here first (in parallel, within that bound) and queue
    /// only what did not succeed in time.
    pub(crate) async fn accept(self: &Arc<Self>, notices: Vec<Notice>) -> Result<(), StoreError> {
        if notices.is_empty() {
            return Ok(());
        }
        let pending = if self.config.wait_before_redirect.is_zero() {
            notices
        } else {
            let deadline = self.config.wait_before_redirect;
            let tasks: Vec<_> = notices
                .into_iter()
                .map(|n| {
                    let me = self.clone();
                    tokio::spawn(async move {
                        let r = tokio::time::timeout(deadline, me.deliver(&n)).await;
                        (n, r)
                    })
                })
                .collect();
            let mut left = Vec::new();
            for t in tasks {
                match t.await {
                    Ok((_, Ok(Attempt::Delivered))) => {}
                    Ok((n, Ok(Attempt::Final(code)))) => {
                        tracing::warn!(client = %n.client_id, status = code, "back-channel logout refused by the RP");
                    }
                    Ok((mut n, _)) => {
                        n.attempt = 1;
                        left.push(n);
                    }
                    Err(_) => {}
                }
            }
            left
        };
        self.store.enqueue_notices(&pending).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Load the configured key, or make sure a shared generated key exists and load the store's.
    async fn refresh_keys(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        if let Some(pem) = &self.config.signing_key_pem {
            let k = keys::from_pem(pem.expose(), 0)?;
            self.keys.store(KeyRing { keys: vec![Arc::new(k)] });
            return Ok(());
        }
        let mut stored = self.store.signing_keys().await.map_err(|e| e.to_string())?;
        let newest = stored.iter().filter_map(|s| serde_json::from_str::<StoredKey>(s).ok()).map(|k| k.created).max();
        if newest.is_none_or(|n| n + self.config.key_rotation.as_secs() <= now_secs()) {
            let alg = self.config.algorithm;
            let cand = tokio::task::spawn_blocking(move || keys::generate(alg, now_secs()))
                .await
                .map_err(|e| e.to_string())??;
            let json = serde_json::to_string(&cand).map_err(|e| e.to_string())?;
            stored = self
                .store
                .install_signing_key(&cand.kid, cand.created, &json, self.config.key_rotation)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!("logout-token signing key installed or rotated");
        }
        let mut ring = KeyRing::default();
        for s in stored {
            let Ok(sk) = serde_json::from_str::<StoredKey>(&s) else { continue };
            match keys::from_pem(&sk.pem, sk.created) {
                Ok(k) => ring.keys.push(Arc::new(k)),
                Err(e) => tracing::warn!(error = %e, "unusable stored signing key"),
            }
        }
        if ring.keys.is_empty() {
            return Err("no usable signing key".into());
        }
        self.keys.store(ring);
        Ok(())
    }

    /// The clients changed (a reload): if tokens cannot be signed yet, load the keys now.
    pub(crate) fn clients_changed(&self) {
        if !self.ready() {
            self.keys_wanted.store(true, std::sync::atomic::Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    /// Whether tokens can be signed (for /readyz).
    pub(crate) fn ready(&self) -> bool {
        !self.enabled() || self.keys.load().active().is_some()
    }
}

/// Background service: signing keys (at start, then every minute, or half the rotation period
/// when shorter, to follow rotations) and the delivery worker.
pub(crate) struct BackchannelService(pub Arc<Backchannel>);

#[async_trait]
impl BackgroundService for BackchannelService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let bc = &self.0;
        let mut next_keys = Instant::now();
        let mut key_wait = Duration::from_millis(200);
        // A closed shutdown channel is not a shutdown request; stop watching it.
        let mut watching = true;
        loop {
            if Instant::now() >= next_keys || bc.keys_wanted.swap(false, std::sync::atomic::Ordering::Relaxed) {
                match bc.refresh_keys().await {
                    Ok(()) => {
                        key_wait = Duration::from_millis(200);
                        // Follow rotations made by any instance soon after they happen.
                        next_keys = Instant::now() + (bc.config.key_rotation / 2).min(Duration::from_secs(60));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "logout-token signing keys not loaded");
                        next_keys = Instant::now() + key_wait;
                        key_wait = (key_wait * 2).min(Duration::from_secs(10));
                    }
                }
            }
            let busy = match bc.work_once().await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::debug!(error = %e, "back-channel worker waiting for the store");
                    false
                }
            };
            let pause = if busy { Duration::ZERO } else { bc.config.poll_interval };
            tokio::select! {
                changed = shutdown.changed(), if watching => {
                    if changed.is_err() { watching = false; } else if *shutdown.borrow() { return; }
                }
                _ = bc.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}
