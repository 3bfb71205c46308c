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
use crate::metrics::Metrics;
use crate::session::{Notice, SessionStore, StoreError};

/// How long a logout token is valid (BCL-22: at most two minutes).
pub(crate) const TOKEN_LIFETIME: u64 = 120;
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The HTTP client deliveries use: no redirects, no proxy, `timeout` for connect and whole
/// request. With a resolver (for learned clients): https only, connecting where it says.
fn delivery_client(
    timeout: Duration,
    guard: Option<crate::address::GuardedResolver>,
) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .no_proxy()
        .user_agent(concat!("logout-gateway/", env!("CARGO_PKG_VERSION")));
    if let Some(g) = guard {
        b = b.https_only(true).dns_resolver(Arc::new(g));
    }
    b.build().map_err(|e| format!("back-channel http client: {e}"))
}

/// A delivery the address rules refuse: never attempted, never retried; counted as `refused`.
fn refused(n: &Notice, why: &'static str) -> Attempt {
    tracing::warn!(client = %n.client_id, reason = why, "back-channel logout not delivered: the URI may not be reached");
    Metrics::get().backchannel_deliveries.with_label_values(&["refused"]).inc();
    Attempt::Final(0)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    Delivered,
    /// Not worth retrying (400, other 4xx, 3xx).
    Final(u16),
    /// May work later (network error, timeout, 408, 429, 5xx).
    Retry,
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
    /// This process's consumer name in the group.
    consumer: String,
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
            consumer: format!("{}-{}", std::process::id(), crate::crypto::random_token()),
        }))
    }

    /// Whether any known client takes back-channel notices.
    pub(crate) fn enabled(&self) -> bool {
        self.clients.any_backchannel()
    }

    /// Logout tokens for the participants that registered a back-channel URI. `participants`
    /// are (client_id, the sid that client knows); `sub` is the session's subject.
    pub(crate) async fn notices_for(
        &self,
        participants: &[(String, Option<String>)],
        sub: Option<&str>,
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
            // BCL-05: a client that requires sid gets it; BCL-08: never neither sub nor sid.
            let sid = sid.as_deref().filter(|s| !s.is_empty());
            if (client.backchannel_logout_session_required && sid.is_none()) || (sid.is_none() && sub.is_none()) {
                tracing::warn!(client = %client_id, "no sid/sub for a logout token; notice skipped");
                continue;
            }
            let token = self.sign(&ring, client_id, sub, sid)?;
            out.push(Notice {
                client_id: client_id.clone(),
                uri: uri.clone(),
                token,
                attempt: 0,
                accepted_ms: now_ms(),
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

    /// One POST (BCL-16), classified (BCL-17..19).
    async fn deliver(&self, n: &Notice) -> Attempt {
        // Only a proxy.yaml client's own URI is trusted; any other (a learned client's) is
        // checked before and while connecting (`address`).
        let trusted = self
            .clients
            .configured_client(&n.client_id)
            .is_some_and(|c| c.backchannel_logout_uri.as_deref() == Some(n.uri.as_str()));
        if !trusted {
            if let Err(why) = crate::address::check_uri(&n.uri, self.clients.allowed_networks()) {
                return refused(n, why);
            }
        }
        let http = if trusted { &self.http } else { &self.guarded };
        let start = Instant::now();
        let res = http
            .post(&n.uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cache-control", "no-store")
            .body(format!("logout_token={}", n.token))
            .send()
            .await;
        Metrics::get().backchannel_latency.observe(start.elapsed().as_secs_f64());
        let outcome = match res {
            Ok(r) => match r.status().as_u16() {
                200 | 204 => Attempt::Delivered,
                408 | 429 | 500..=599 => Attempt::Retry,
                code => Attempt::Final(code),
            },
            Err(e) if crate::address::refused_by_resolver(&e) => {
                return refused(n, "the name resolves to an address that is not public")
            }
            Err(_) => Attempt::Retry,
        };
        let label = match outcome {
            Attempt::Delivered => "success",
            Attempt::Final(_) => "failed",
            Attempt::Retry => "retry",
        };
        Metrics::get().backchannel_deliveries.with_label_values(&[label]).inc();
        outcome
    }

    /// Exponential backoff with full jitter: between half and all of initial * 2^(attempt-1).
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.config.retry_initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let cap = exp.min(self.config.retry_max);
        let mut b = [0u8; 2];
        let _ = getrandom::fill(&mut b);
        let frac = 0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0;
        cap.mul_f64(frac)
    }

    /// One pass of the worker: promote due retries, claim a batch, deliver it in parallel.
    async fn work_once(self: &Arc<Self>) -> Result<usize, StoreError> {
        self.store.promote_due_notices(now_ms()).await?;
        let batch = self.store.claim_notices(&self.consumer, self.config.concurrency, self.config.claim_after).await?;
        let n = batch.len();
        let mut tasks = tokio::task::JoinSet::new();
        for c in batch {
            let me = self.clone();
            tasks.spawn(async move {
                if c.notice.uri.is_empty() {
                    return me.store.finish_notice(&c.id).await;
                }
                let mut notice = c.notice;
                match me.deliver(&notice).await {
                    Attempt::Delivered => me.store.finish_notice(&c.id).await,
                    Attempt::Final(code) => {
                        tracing::warn!(client = %notice.client_id, status = code, "back-channel logout refused by the RP; not retried");
                        me.store.finish_notice(&c.id).await
                    }
                    Attempt::Retry => {
                        notice.attempt += 1;
                        if notice.attempt >= me.config.max_attempts {
                            tracing::warn!(client = %notice.client_id, attempts = notice.attempt, "back-channel logout gave up");
                            Metrics::get().backchannel_deliveries.with_label_values(&["gave_up"]).inc();
                            me.store.finish_notice(&c.id).await
                        } else {
                            let due = now_ms() + me.backoff(notice.attempt).as_millis() as u64;
                            me.store.retry_notice(&c.id, &notice, due).await
                        }
                    }
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            if let Ok(Err(e)) = r {
                tracing::warn!(error = %e, "back-channel queue update failed; the notice will be claimed again");
            }
        }
        if let Ok(d) = self.store.notice_depth().await {
            Metrics::get().backchannel_queue_depth.set(d as i64);
        }
        Ok(n)
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
            if Instant::now() >= next_keys {
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
