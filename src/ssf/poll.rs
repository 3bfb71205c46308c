//! RFC 8936 poll delivery: a receiver POSTs `{"ack": [...], "setErrs": {...}, "maxEvents": n,
//! "returnImmediately": bool}` to its stream's poll URL and gets `{"sets": {jti: SET},
//! "moreAvailable": bool}`. Events stay held until acknowledged (or reported in `setErrs`), so a
//! lost answer loses nothing; an acknowledged event is delivered for its session's receipt.
//! Without `returnImmediately`, an empty poll waits up to [`LONG_POLL`] for events.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::api::{bad, ApiReply};
use super::{Stream, Transmitter};
use crate::metrics::Metrics;

/// How long an empty poll waits for events.
pub(crate) const LONG_POLL: Duration = Duration::from_secs(10);
/// Most events per answer.
const MAX_EVENTS: u64 = 1000;

/// A held event: the SET, and whose receipt its acknowledgement completes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Held {
    pub(crate) set: String,
    #[serde(default)]
    pub(crate) session: String,
    #[serde(default)]
    pub(crate) client: String,
}

impl Held {
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PollRequest {
    #[serde(default)]
    ack: Vec<String>,
    #[serde(default)]
    set_errs: serde_json::Map<String, Value>,
    max_events: Option<u64>,
    #[serde(default)]
    return_immediately: bool,
}

impl Transmitter {
    /// One poll of stream `s` (the caller checked it is the receiver's and a poll stream).
    pub(super) async fn poll(&self, s: &Stream, body: &[u8]) -> ApiReply {
        let req: PollRequest = match serde_json::from_slice(if body.is_empty() { b"{}" } else { body }) {
            Ok(r) => r,
            Err(_) => return bad("the body must be a JSON poll request (RFC 8936)"),
        };
        if req.ack.len() + req.set_errs.len() > MAX_EVENTS as usize {
            return bad("at most 1000 acknowledgements per poll");
        }
        for (jti, err) in &req.set_errs {
            let code = err.get("err").and_then(Value::as_str).unwrap_or("");
            tracing::warn!(stream = %s.id, jti = %jti, err = %code.chars().take(64).collect::<String>(), "the receiver refused a SET");
        }
        let mut ack = req.ack.clone();
        ack.extend(req.set_errs.keys().cloned());
        let max = req.max_events.unwrap_or(100).min(MAX_EVENTS) as usize;
        let deadline = tokio::time::Instant::now() + LONG_POLL;
        let mut first = true;
        loop {
            let wake = self.held.notified();
            let taken = match self.store.ssf_take(&s.id, if first { &ack } else { &[] }, max).await {
                Ok(t) => t,
                Err(e) => return super::api::unavailable(&e),
            };
            if first {
                self.acknowledged(&taken.acked, &req.set_errs).await;
                first = false;
            }
            let waiting = !req.return_immediately && max > 0 && taken.events.is_empty();
            if !waiting || tokio::time::Instant::now() >= deadline {
                return answer(taken.events, taken.more);
            }
            // Woken by this instance's events, or look again each second for other instances'.
            let _ =
                tokio::time::timeout(Duration::from_secs(1).min(deadline - tokio::time::Instant::now()), wake).await;
        }
    }

    /// Receipts and counts for acknowledged events (`setErrs` ones were refused).
    async fn acknowledged(&self, values: &[String], errs: &serde_json::Map<String, Value>) {
        for v in values {
            let Ok(h) = serde_json::from_str::<Held>(v) else { continue };
            let jti = set_jti(&h.set);
            let refused = jti.as_deref().is_some_and(|j| errs.contains_key(j));
            let result = if refused { "refused" } else { "delivered" };
            Metrics::get().ssf_deliveries.with_label_values(&[result]).inc();
            if !h.client.is_empty() && !h.session.is_empty() {
                let note = [(format!("ssf:{}", h.client), result.to_string())];
                if let Err(e) = self.store.note_receipt(&h.session, &note, false, None).await {
                    tracing::debug!(error = %e, "logout receipt not updated");
                }
            }
        }
    }
}

/// The `jti` of a SET this transmitter signed (read without verifying: it is our own).
fn set_jti(set: &str) -> Option<String> {
    use base64::Engine;
    let payload = set.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?.get("jti")?.as_str().map(String::from)
}

fn answer(events: Vec<(String, String)>, more: bool) -> ApiReply {
    let mut sets = serde_json::Map::new();
    for (jti, value) in events {
        if let Ok(h) = serde_json::from_str::<Held>(&value) {
            sets.insert(jti, h.set.into());
        }
    }
    let mut body = serde_json::json!({ "sets": sets });
    if more {
        body["moreAvailable"] = true.into();
    }
    ApiReply::json(200, body)
}
