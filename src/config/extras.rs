//! The model of the optional endpoints beside logout: global token revocation, the Shared
//! Signals transmitter, Session Management.

use super::Secret;

/// `global_token_revocation`: where the endpoint is and who may call it.
#[derive(Debug, Clone)]
pub(crate) struct GlobalRevocation {
    /// Canonical (lower case) path on the public listener.
    pub(crate) path: String,
    pub(crate) tokens: Vec<Secret>,
}

/// `session_management`: where the check_session_iframe is, and the browser-state cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionManagement {
    /// Canonical (lower case) path of the iframe page.
    pub(crate) path: String,
    pub(crate) cookie: String,
}

/// `ssf`: where its endpoints are and who its receivers are.
#[derive(Debug, Clone)]
pub(crate) struct Ssf {
    /// Canonical (lower case) path the endpoints sit below.
    pub(crate) path: String,
    pub(crate) receivers: Vec<SsfReceiver>,
}

#[derive(Debug, Clone)]
pub(crate) struct SsfReceiver {
    pub(crate) name: String,
    pub(crate) token: Secret,
    pub(crate) client_id: Option<String>,
    pub(crate) max_streams: usize,
}
