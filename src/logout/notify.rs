//! The end of every logout, whoever asked for it (a browser at end_session, the admin API, and
//! what comes next: global revocation, Shared Signals): the RPs of the ended sessions get
//! back-channel notices, accepted durably before anything says "signed out", and the sessions'
//! sealed tokens go to the upstream's revocation endpoint in the background.

use std::sync::Arc;

use crate::backchannel::Backchannel;
use crate::revoke::Revoker;
use crate::session::{SessionView, StoreError};
use crate::ssf::{Initiator, Transmitter};

/// Why the RPs of ended sessions could not be told. The sessions stay ended; the caller must
/// not claim the logout finished (503).
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotifyError {
    #[error("logout tokens not signed: {0}")]
    Sign(String),
    #[error("back-channel notices not accepted: {0}")]
    Accept(StoreError),
    #[error("security event tokens not issued: {0}")]
    Ssf(#[from] crate::ssf::SsfError),
}

/// Tells the RPs of ended sessions, and revokes their tokens at the upstream.
#[derive(Clone)]
pub(crate) struct Notifier {
    pub(crate) backchannel: Arc<Backchannel>,
    /// RFC 7009 revocation at the upstream; None: off.
    pub(crate) revoker: Option<Arc<Revoker>>,
    /// The Shared Signals transmitter; None: off.
    pub(crate) ssf: Option<Arc<Transmitter>>,
}

impl Notifier {
    /// `sessions` have ended: each session's RPs get a notice with that session's subject (or
    /// `sub` when the session has none); `initiator` clients that are in none of them get one
    /// with `sub`. The sealed tokens are handed to the revoker first; the notices are accepted
    /// (queued durably, or delivered when the back-channel waits) before this returns.
    pub(crate) async fn sessions_ended(
        &self,
        sessions: &[SessionView],
        initiator: &[(String, Option<String>)],
        sub: Option<&str>,
        why: Initiator,
    ) -> Result<(), NotifyError> {
        // The sessions have ended whatever happens next: their tokens go to the upstream's
        // revocation endpoint now (they are handed out once, so a failure below must not lose them).
        if let Some(r) = &self.revoker {
            r.submit(sessions.iter().flat_map(|s| s.sealed.iter().cloned()).collect());
        }
        let mut notices = Vec::new();
        for s in sessions {
            let pairs: Vec<(String, Option<String>)> =
                s.clients.iter().map(|c| (c.clone(), s.client_sid(c).map(String::from))).collect();
            let sub = Some(s.sub.as_str()).filter(|x| !x.is_empty()).or(sub);
            notices.extend(self.backchannel.notices_for(&pairs, sub, &s.sid).await.map_err(NotifyError::Sign)?);
        }
        let extra: Vec<(String, Option<String>)> =
            initiator.iter().filter(|(c, _)| !sessions.iter().any(|s| s.clients.contains(c))).cloned().collect();
        notices.extend(self.backchannel.notices_for(&extra, sub, "").await.map_err(NotifyError::Sign)?);
        // Shared Signals: a session-revoked SET per stream covering each session.
        if let Some(t) = &self.ssf {
            notices.extend(t.sessions_ended(sessions, why).await?);
        }
        self.backchannel.accept(notices).await.map_err(NotifyError::Accept)
    }
}
