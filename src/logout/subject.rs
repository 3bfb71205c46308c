//! Every session of one subject ends as a logout would (tombstones, the sessions' tokens and OP
//! cookies refused at the edge, back-channel notices to their RPs): the admin API's
//! `DELETE /sessions?sub=` and global token revocation (`global.rs`).

use super::notify::{Notifier, NotifyError};
use crate::session::{EndResult, SessionStore, StoreError};

/// Why a subject's sessions could not all be ended and announced; nothing may claim success.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubjectError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("sessions ended, {0}")]
    Notify(#[from] NotifyError),
}

/// What ending a subject's sessions found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubjectEnded {
    /// No session of the subject is remembered, active or ended.
    Unknown,
    /// This many sessions ended now (0: every one was ended already).
    Ended(usize),
}

/// End every active session of `sub`, then hand them to the notifier in one batch.
pub(crate) async fn end_subject(
    store: &dyn SessionStore,
    notifier: &Notifier,
    sub: &str,
) -> Result<SubjectEnded, SubjectError> {
    let list = store.sessions_of(sub).await?;
    if list.is_empty() {
        return Ok(SubjectEnded::Unknown);
    }
    let mut ended = Vec::new();
    for s in list.iter().filter(|s| s.is_active()) {
        // `expect_sub`: a sid reused by another subject meanwhile is not ended for this one.
        match store.end_session(&s.sid, Some(sub), false).await? {
            EndResult::Ended(v) => ended.push(v),
            other => tracing::debug!(sid = %s.sid, result = ?other, "not ended by this call (ended meanwhile)"),
        }
    }
    if !ended.is_empty() {
        notifier.sessions_ended(&ended, &[], Some(sub), crate::ssf::Initiator::Admin).await?;
    }
    Ok(SubjectEnded::Ended(ended.len()))
}
