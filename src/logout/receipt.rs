//! Logout receipts: for each RP of an ended session, what it was told and how it went, kept
//! as long as the tombstone (`session::Receipts`) and shown by the admin API's
//! `GET /sessions/{sid}`. A support engineer can answer "did rp2 get alice's logout?".
//!
//! Fields: `fc:<client>` (`loaded` / `timeout`, reported by the front-channel page, first report
//! kept), `bc:<client>` (`delivered` / `refused` / `gave_up` / `pending`, written by the
//! back-channel worker), `bca:<client>` (attempts made) and `ssf:<client>` (the Shared Signals
//! SET to the receiver tied to that client, written by the transmitter and the worker).

use crate::clients::Clients;
use crate::session::{SessionStore, SessionView, StoreError};

/// One RP's line, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct ReceiptLine {
    /// `loaded`, `timeout`, or `none` (no iframe, or the page never reported).
    pub(crate) frontchannel: String,
    /// `delivered`, `refused`, `gave_up`, `pending` (queued, or being retried), or `none` (the RP
    /// takes no back-channel notices).
    pub(crate) backchannel: String,
    pub(crate) backchannel_attempts: u64,
    /// The Shared Signals SET to the receiver tied to this client (`ssf.receivers.*.client_id`):
    /// `delivered` (pushed and accepted, or polled and acknowledged), `pending` (queued, held
    /// or being retried), `refused`, `gave_up`, or `none` (no such receiver, or no stream of it
    /// covered the session).
    pub(crate) ssf: String,
}

/// The receipt of an ended session: one line per client of it.
pub(crate) async fn receipt_of(
    store: &dyn SessionStore,
    clients: &Clients,
    view: &SessionView,
) -> Result<std::collections::BTreeMap<String, ReceiptLine>, StoreError> {
    let fields = store.receipt(&view.sid).await?;
    let mut out = std::collections::BTreeMap::new();
    for c in &view.clients {
        let takes_notices = clients.get(c).await.is_some_and(|cl| cl.backchannel_logout_uri.is_some());
        let field = |prefix: &str| fields.get(&format!("{prefix}:{c}")).cloned();
        let line = ReceiptLine {
            frontchannel: field("fc").unwrap_or_else(|| "none".into()),
            backchannel: field("bc").unwrap_or_else(|| if takes_notices { "pending" } else { "none" }.into()),
            backchannel_attempts: field("bca").and_then(|n| n.parse().ok()).unwrap_or(0),
            ssf: field("ssf").unwrap_or_else(|| "none".into()),
        };
        out.insert(c.clone(), line);
    }
    Ok(out)
}
