//! The relying parties the gateway knows: proxy.yaml's `clients`, and the clients registered
//! through the gateway with OpenID Connect Dynamic Client Registration (learned from the
//! upstream's registration responses, kept in the session store so every instance knows them).
//!
//! proxy.yaml wins: a client_id configured there is never replaced or removed by a
//! registration. Learned clients carry the logout metadata only (post-logout, front-channel and
//! back-channel URIs), checked by the same rules as proxy.yaml's; they never carry revocation
//! credentials. Lookups of learned clients go through a small per-process cache (negative answers
//! included), so an unknown client_id costs at most one store lookup per [`CACHE_TTL`].
//! This module does not decide anything about logouts; it only answers "who is this client".

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Client;
use crate::session::SessionStore;

/// How long a learned client (or its absence) is trusted from the cache. A registration update
/// made through another instance is seen here within this time.
const CACHE_TTL: Duration = Duration::from_secs(30);

/// Cache entries before the cache is emptied (bounds memory against random client_ids).
const CACHE_MAX: usize = 10_000;

/// Largest registration metadata document that is learned.
pub const MAX_METADATA: usize = 64 * 1024;

/// A learned client (or the knowledge that there is none) and when it was looked up.
type Cached = (Option<Arc<Client>>, Instant);

pub struct Clients {
    configured: BTreeMap<String, Arc<Client>>,
    /// A learned client with a back-channel URI was seen (then logout tokens must be signable).
    learned_backchannel: std::sync::atomic::AtomicBool,
    /// client_id → (learned client or None, when looked up).
    cache: Mutex<HashMap<String, Cached>>,
    store: Arc<dyn SessionStore>,
}

impl Clients {
    pub fn new(configured: &BTreeMap<String, Client>, store: Arc<dyn SessionStore>) -> Self {
        Clients {
            configured: configured.iter().map(|(k, v)| (k.clone(), Arc::new(v.clone()))).collect(),
            cache: Mutex::new(HashMap::new()),
            learned_backchannel: std::sync::atomic::AtomicBool::new(false),
            store,
        }
    }

    /// Whether any known client takes back-channel logout notices.
    pub fn any_backchannel(&self) -> bool {
        self.configured.values().any(|c| c.backchannel_logout_uri.is_some())
            || self.learned_backchannel.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// proxy.yaml's clients.
    pub fn configured(&self) -> impl Iterator<Item = (&String, &Arc<Client>)> {
        self.configured.iter()
    }

    /// A configured client, without any lookup.
    pub fn configured_client(&self, id: &str) -> Option<Arc<Client>> {
        self.configured.get(id).cloned()
    }

    /// The client `id` names: proxy.yaml's, else a learned one (cache, then one store lookup).
    /// A store failure answers None (the caller treats the client as unknown) and is logged.
    pub async fn get(&self, id: &str) -> Option<Arc<Client>> {
        if let Some(c) = self.configured.get(id) {
            return Some(c.clone());
        }
        if let Some(hit) = self.cached(id) {
            return hit;
        }
        let found = match self.store.registered_client(id).await {
            Ok(Some(json)) => parse(id, &json),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "registered client not looked up (store unavailable)");
                return None;
            }
        };
        self.remember(id, found.clone());
        found
    }

    /// Whether `id` is a known client.
    pub async fn knows(&self, id: &str) -> bool {
        self.get(id).await.is_some()
    }

    /// The upstream accepted a registration (or an update) for `id` with these metadata:
    /// learn the client's logout metadata, unless proxy.yaml configures it or they break the
    /// rules for clients (then it is logged and not learned).
    pub async fn learn(&self, id: &str, metadata: &serde_json::Value) {
        if self.configured.contains_key(id) {
            return tracing::debug!(client = %id, "registration for a proxy.yaml client; proxy.yaml wins");
        }
        let client = match crate::config::registered_client(id, metadata) {
            Ok(c) => c,
            Err(problems) => {
                return tracing::warn!(client = %id, problems = %problems.join("; "), "registered client not learned")
            }
        };
        let kept = kept_metadata(metadata);
        match self.store.set_registered_client(id, Some(&kept.to_string())).await {
            Ok(()) => {
                tracing::info!(client = %id, "client learned from dynamic registration");
                crate::metrics::Metrics::get().learned.with_label_values(&["client"]).inc();
                self.remember(id, Some(Arc::new(client)));
            }
            Err(e) => tracing::warn!(error = %e, client = %id, "registered client not learned (store unavailable)"),
        }
    }

    /// The upstream deleted the registration of `id` (RFC 7592): forget the learned client.
    pub async fn forget(&self, id: &str) {
        if self.configured.contains_key(id) {
            return;
        }
        match self.store.set_registered_client(id, None).await {
            Ok(()) => {
                tracing::info!(client = %id, "registered client deleted");
                self.remember(id, None);
            }
            Err(e) => tracing::warn!(error = %e, client = %id, "deleted client not forgotten (store unavailable)"),
        }
    }

    fn cached(&self, id: &str) -> Option<Option<Arc<Client>>> {
        let cache = self.cache.lock().ok()?;
        cache.get(id).filter(|(_, at)| at.elapsed() < CACHE_TTL).map(|(c, _)| c.clone())
    }

    fn remember(&self, id: &str, client: Option<Arc<Client>>) {
        if client.as_ref().is_some_and(|c| c.backchannel_logout_uri.is_some()) {
            self.learned_backchannel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(id.to_string(), (client, Instant::now()));
        }
    }
}

/// The logout metadata of a registration, the only part kept (no secrets, no other metadata).
fn kept_metadata(metadata: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for k in [
        "post_logout_redirect_uris",
        "frontchannel_logout_uri",
        "frontchannel_logout_session_required",
        "backchannel_logout_uri",
        "backchannel_logout_session_required",
    ] {
        if let Some(v) = metadata.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    serde_json::Value::Object(out)
}

fn parse(id: &str, json: &str) -> Option<Arc<Client>> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    match crate::config::registered_client(id, &v) {
        Ok(c) => Some(Arc::new(c)),
        Err(problems) => {
            tracing::warn!(client = %id, problems = %problems.join("; "), "stored registered client is unusable");
            None
        }
    }
}

/// The client_id a registration management request (RFC 7592) is about: the last path segment
/// below the registration endpoint, or a `client_id` query parameter (Janssen's form).
pub fn managed_client_id(registration_path: &str, path: &str, query: Option<&str>) -> Option<String> {
    if let Some(q) = query {
        if let Some((_, v)) = url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "client_id") {
            return Some(v.into_owned()).filter(|v| !v.is_empty());
        }
    }
    let rest = path.strip_prefix(registration_path)?.strip_prefix('/')?;
    let seg = rest.rsplit('/').next().filter(|s| !s.is_empty())?;
    String::from_utf8(crate::logout::params::percent_decode(seg.as_bytes(), false)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_management_paths() {
        assert_eq!(managed_client_id("/reg", "/reg/abc", None).as_deref(), Some("abc"));
        assert_eq!(managed_client_id("/reg", "/reg/a%20b", None).as_deref(), Some("a b"));
        assert_eq!(managed_client_id("/register", "/register", Some("client_id=x1")).as_deref(), Some("x1"));
        assert_eq!(managed_client_id("/reg", "/regx/abc", None), None);
        assert_eq!(managed_client_id("/reg", "/reg", None), None);
    }

    #[test]
    fn only_logout_metadata_is_kept() {
        let m = serde_json::json!({"client_secret": "s3cret", "frontchannel_logout_uri": "https://rp/fc",
            "post_logout_redirect_uris": ["https://rp/bye"], "redirect_uris": ["https://rp/cb"]});
        let kept = kept_metadata(&m);
        assert!(kept.get("client_secret").is_none() && kept.get("redirect_uris").is_none());
        assert_eq!(kept["frontchannel_logout_uri"], "https://rp/fc");
    }
}
