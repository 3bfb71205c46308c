//! The long-lived parts of the process (upstream peer, session store, upstream keys, clients,
//! back-channel, revoker, the OP's cookies) and the one function that assembles a public
//! listener's [`Gateway`] from them and a configuration: at start, and again at each reload.

use std::sync::Arc;

use crate::backchannel::Backchannel;
use crate::clients::Clients;
use crate::config::Config;
use crate::cookies::OpCookies;
use crate::learn::Learner;
use crate::logout::notify::Notifier;
use crate::logout::Logout;
use crate::oidc::jwks::Jwks;
use crate::proxy::upstream::UpstreamPeer;
use crate::proxy::{Gateway, Published};
use crate::render::Pages;
use crate::revoke::Revoker;
use crate::session::SessionStore;

/// What outlives a reload: connections, caches, learned state, background work.
pub(crate) struct Parts {
    pub(crate) upstream: Arc<UpstreamPeer>,
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) jwks: Arc<Jwks>,
    pub(crate) clients: Arc<Clients>,
    pub(crate) revoker: Option<Arc<Revoker>>,
    pub(crate) backchannel: Arc<Backchannel>,
    pub(crate) notifier: Notifier,
    /// One value for the OP's cookies: what the edge learns of where they live, logout uses.
    pub(crate) cookies: OpCookies,
    /// The Shared Signals transmitter, when `ssf` is configured.
    pub(crate) ssf: Option<Arc<crate::ssf::Transmitter>>,
}

impl Parts {
    /// The public listener's state for `config` (the end_session policy and paths, pages,
    /// limits, learning settings) over these parts.
    pub(crate) fn gateway(&self, config: &Config, pages: Arc<Pages>) -> Gateway {
        let logout = Arc::new(Logout::new(
            config,
            self.clients.clone(),
            self.store.clone(),
            self.jwks.clone(),
            pages.clone(),
            self.notifier.clone(),
            self.cookies.clone(),
        ));
        let learner = Arc::new(Learner::new(
            config,
            self.jwks.clone(),
            self.clients.clone(),
            self.store.clone(),
            self.revoker.clone(),
            self.cookies.clone(),
        ));
        let issuer_origin =
            url::Url::parse(&config.issuer).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        let published = Published {
            discovery_path: self.jwks.discovery_url().path().to_string(),
            end_session_endpoint: format!(
                "{issuer_origin}{}",
                config.end_session.paths.first().cloned().unwrap_or_default()
            ),
            jwks: self.jwks.clone(),
            signing_keys: self.backchannel.keys.clone(),
            global_revocation_endpoint: config.global_revocation.as_ref().map(|g| format!("{issuer_origin}{}", g.path)),
            ssf: self.ssf.clone(),
            check_session: self
                .cookies
                .browser_state
                .clone()
                .zip(config.session_management.as_ref())
                .map(|(bs, sm)| (sm.path.clone(), format!("{issuer_origin}{}", sm.path), bs)),
            mtls_end_session_endpoint: config.mtls.as_ref().map(|m| {
                format!("{}{}", m.public_origin, config.end_session.paths.first().cloned().unwrap_or_default())
            }),
        };
        let trust = config.upstream.trust_forwarded_headers;
        Gateway {
            upstream: self.upstream.clone(),
            end_session_paths: config.end_session.paths.clone(),
            pages,
            trust_forwarded_headers: trust,
            logout,
            published,
            learner,
            limits: crate::proxy::limits::Limits::new(&config.limits, config.rate_limit, trust),
            access_log: config.log.access,
            #[cfg(feature = "fault-injection")]
            fault_armed: crate::fault::armed_by_env(),
        }
    }
}
