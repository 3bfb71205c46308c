//! Delivering notices: one POST per notice (no redirects, guarded addresses for untrusted
//! URIs), the answer classified, and the worker pass that claims a batch from the queue and
//! settles each (done, or due again after backoff with jitter).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{now_ms, Backchannel};
use crate::metrics::Metrics;
use crate::session::{Claimed, Notice, NoticeKind, StoreError};

/// The HTTP client deliveries use: no redirects, no proxy, `timeout` for connect and whole
/// request. With a resolver (for learned clients): https only, connecting where it says.
pub(super) fn delivery_client(
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

/// What one delivery attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    Delivered,
    /// Not worth retrying (400, other 4xx, 3xx).
    Final(u16),
    /// May work later (network error, timeout, 408, 429, 5xx).
    Retry,
}

impl Attempt {
    /// An answer's status: 200 and 204 delivered (202 too for a SET, RFC 8935); 408, 429 and 5xx
    /// worth retrying; anything else final.
    fn of(status: u16, accepted_202: bool) -> Attempt {
        match status {
            200 | 204 => Attempt::Delivered,
            202 if accepted_202 => Attempt::Delivered,
            408 | 429 | 500..=599 => Attempt::Retry,
            code => Attempt::Final(code),
        }
    }

    /// The metric label of this outcome from `[delivered, final, retry]`.
    fn label(self, labels: [&'static str; 3]) -> &'static str {
        match self {
            Attempt::Delivered => labels[0],
            Attempt::Final(_) => labels[1],
            Attempt::Retry => labels[2],
        }
    }
}

impl Backchannel {
    /// One POST (BCL-16), classified (BCL-17..19).
    pub(super) async fn deliver(&self, n: &Notice) -> Attempt {
        if let NoticeKind::Set { authorization, .. } = &n.kind {
            return self.push_set(n, authorization.as_deref()).await;
        }
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
            Ok(r) => Attempt::of(r.status().as_u16(), false),
            Err(e) if crate::address::refused_by_resolver(&e) => {
                return refused(n, "the name resolves to an address that is not public")
            }
            Err(_) => Attempt::Retry,
        };
        let label = outcome.label(["success", "failed", "retry"]);
        Metrics::get().backchannel_deliveries.with_label_values(&[label]).inc();
        outcome
    }

    /// RFC 8935 push of one SET to a Shared Signals stream: 202 (200 and 204 too) is
    /// delivered; 400 and other final answers are refused; the rest is retried like a logout
    /// token, with the same SET. The URL was checked when the authenticated receiver set it.
    async fn push_set(&self, n: &Notice, authorization: Option<&str>) -> Attempt {
        let mut req = self
            .http
            .post(&n.uri)
            .header("content-type", "application/secevent+jwt")
            .header("accept", "application/json")
            .body(n.token.clone());
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let outcome = req.send().await.map_or(Attempt::Retry, |r| Attempt::of(r.status().as_u16(), true));
        let label = outcome.label(["delivered", "refused", "retried"]);
        Metrics::get().ssf_deliveries.with_label_values(&[label]).inc();
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
    pub(super) async fn work_once(self: &Arc<Self>) -> Result<usize, StoreError> {
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
                let attempt = me.deliver(&c.notice).await;
                me.settle(c, attempt).await
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

    /// Record what an attempt came to: done (delivered, refused for good, or out of attempts),
    /// or due again after the backoff; and in the session's receipt.
    async fn settle(&self, c: Claimed, attempt: Attempt) -> Result<(), StoreError> {
        let mut notice = c.notice;
        match attempt {
            Attempt::Delivered => {
                self.receipt(&notice, "delivered", true).await;
                self.store.finish_notice(&c.id).await
            }
            Attempt::Final(code) => {
                tracing::warn!(client = %notice.client_id, status = code, "back-channel logout refused by the RP; not retried");
                // Code 0: refused by the address rules, never sent.
                self.receipt(&notice, "refused", code != 0).await;
                self.store.finish_notice(&c.id).await
            }
            Attempt::Retry => {
                notice.attempt += 1;
                if notice.attempt >= self.config.max_attempts {
                    tracing::warn!(client = %notice.client_id, attempts = notice.attempt, uri = %notice.uri, "delivery gave up");
                    let family = match notice.kind {
                        NoticeKind::Logout => &Metrics::get().backchannel_deliveries,
                        NoticeKind::Set { .. } => &Metrics::get().ssf_deliveries,
                    };
                    family.with_label_values(&["gave_up"]).inc();
                    self.receipt(&notice, "gave_up", true).await;
                    self.store.finish_notice(&c.id).await
                } else {
                    self.receipt(&notice, "pending", true).await;
                    let due = now_ms() + self.backoff(notice.attempt).as_millis() as u64;
                    self.store.retry_notice(&c.id, &notice, due).await
                }
            }
        }
    }

    /// The delivery's line in its session's receipt (`bc:<client>`, and `bca:<client>` counting
    /// attempts made), and the audit log line. Best effort: the queue's state does not wait on it.
    async fn receipt(&self, n: &Notice, result: &'static str, attempted: bool) {
        if let NoticeKind::Set { stream, .. } = &n.kind {
            tracing::info!(target: "logout_gateway::receipt", sid = %n.session, client = %n.client_id, stream = %stream, ssf = result, "receipt");
            if n.session.is_empty() || n.client_id.is_empty() {
                return;
            }
            let notes = [(format!("ssf:{}", n.client_id), result.to_string())];
            if let Err(e) = self.store.note_receipt(&n.session, &notes, false, None).await {
                tracing::debug!(error = %e, "logout receipt not updated");
            }
            return;
        }
        if n.session.is_empty() {
            return;
        }
        let notes = [(format!("bc:{}", n.client_id), result.to_string())];
        let count = attempted.then(|| format!("bca:{}", n.client_id));
        if let Err(e) = self.store.note_receipt(&n.session, &notes, false, count.as_deref()).await {
            tracing::debug!(error = %e, "logout receipt not updated");
        }
        tracing::info!(target: "logout_gateway::receipt", sid = %n.session, client = %n.client_id, backchannel = result, "receipt");
    }
}
