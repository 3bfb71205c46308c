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
pub(crate) const MAX_METADATA: usize = 64 * 1024;

/// A learned client (or the knowledge that there is none) and until when the cache may answer.
type Cached = (Option<Arc<Client>>, Instant);

fn shared(configured: &BTreeMap<String, Client>) -> BTreeMap<String, Arc<Client>> {
    configured.iter().map(|(k, v)| (k.clone(), Arc::new(v.clone()))).collect()
}

pub(crate) struct Clients {
    /// proxy.yaml's clients; replaced whole on a reload (SIGHUP).
    configured: arc_swap::ArcSwap<BTreeMap<String, Arc<Client>>>,
    /// A learned client with a back-channel URI was seen (then logout tokens must be signable).
    learned_backchannel: std::sync::atomic::AtomicBool,
    /// client_id → (learned client or None, when looked up).
    cache: Mutex<HashMap<String, Cached>>,
    store: Arc<dyn SessionStore>,
    /// `registration`: limits on learned clients.
    limits: crate::config::Registration,
}

impl Clients {
    pub(crate) fn new(
        configured: &BTreeMap<String, Client>,
        limits: crate::config::Registration,
        store: Arc<dyn SessionStore>,
    ) -> Self {
        Clients {
            configured: arc_swap::ArcSwap::from_pointee(shared(configured)),
            cache: Mutex::new(HashMap::new()),
            learned_backchannel: std::sync::atomic::AtomicBool::new(false),
            store,
            limits,
        }
    }

    /// proxy.yaml's clients from now on (a reload): lookups that start after this see them;
    /// learned clients are untouched.
    pub(crate) fn replace_configured(&self, configured: &BTreeMap<String, Client>) {
        self.configured.store(Arc::new(shared(configured)));
    }

    /// `registration.allowed_networks`: where registered clients' back-channel URIs may reach
    /// besides public addresses.
    pub(crate) fn allowed_networks(&self) -> &[crate::address::Network] {
        &self.limits.allowed_networks
    }

    /// Whether any known client takes back-channel logout notices.
    pub(crate) fn any_backchannel(&self) -> bool {
        self.configured.load().values().any(|c| c.backchannel_logout_uri.is_some())
            || self.learned_backchannel.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A configured client, without any lookup.
    pub(crate) fn configured_client(&self, id: &str) -> Option<Arc<Client>> {
        self.configured.load().get(id).cloned()
    }

    /// The client `id` names: proxy.yaml's, else a learned one (cache, then one store lookup).
    /// A store failure answers None (the caller treats the client as unknown) and is logged.
    pub(crate) async fn get(&self, id: &str) -> Option<Arc<Client>> {
        if let Some(c) = self.configured.load().get(id) {
            return Some(c.clone());
        }
        if let Some(hit) = self.cached(id) {
            return hit;
        }
        let (found, life) = match self.store.registered_client(id).await {
            Ok(Some(json)) => self.parse(id, &json),
            Ok(None) => (None, CACHE_TTL),
            Err(e) => {
                tracing::warn!(error = %e, "registered client not looked up (store unavailable)");
                return None;
            }
        };
        self.remember_until(id, found.clone(), Instant::now() + life.min(CACHE_TTL));
        found
    }

    /// Whether `id` is a known client.
    pub(crate) async fn knows(&self, id: &str) -> bool {
        self.get(id).await.is_some()
    }

    /// The upstream accepted a registration (or an update) for `id` with these metadata:
    /// learn the client's logout metadata, unless proxy.yaml configures it or they break the
    /// rules for clients (then it is logged and not learned).
    pub(crate) async fn learn(&self, id: &str, metadata: &serde_json::Value) {
        if self.configured.load().contains_key(id) {
            return tracing::debug!(client = %id, "registration for a proxy.yaml client; proxy.yaml wins");
        }
        let client = match crate::config::registered_client(id, metadata, &self.limits.allowed_networks) {
            Ok(c) => c,
            Err(problems) => {
                return tracing::warn!(client = %id, problems = %problems.join("; "), "registered client not learned")
            }
        };
        let mut kept = kept_metadata(metadata);
        kept["learned_at"] = crate::session::unix_now().into();
        let kept = kept.to_string();
        if kept.len() > MAX_METADATA {
            return tracing::warn!(client = %id, "registered client's logout metadata too large; not learned");
        }
        let (max, lifetime) = (self.limits.max_clients, self.limits.client_lifetime);
        match self.store.set_registered_client(id, Some(&kept), max, lifetime).await {
            Ok(true) => {
                tracing::info!(client = %id, "client learned from dynamic registration");
                crate::metrics::Metrics::get().learned.with_label_values(&["client"]).inc();
                let life = self.limits.client_lifetime.min(CACHE_TTL);
                self.remember_until(id, Some(Arc::new(client)), Instant::now() + life);
            }
            Ok(false) => {
                crate::metrics::Metrics::get().learned.with_label_values(&["client_refused"]).inc();
                tracing::warn!(client = %id, max, "registered client not learned: registration.max_clients reached");
            }
            Err(e) => tracing::warn!(error = %e, client = %id, "registered client not learned (store unavailable)"),
        }
    }

    /// The upstream deleted the registration of `id` (RFC 7592): forget the learned client.
    pub(crate) async fn forget(&self, id: &str) {
        if self.configured.load().contains_key(id) {
            return;
        }
        match self.store.set_registered_client(id, None, 0, Duration::ZERO).await {
            Ok(_) => {
                tracing::info!(client = %id, "registered client deleted");
                self.remember(id, None);
            }
            Err(e) => tracing::warn!(error = %e, client = %id, "deleted client not forgotten (store unavailable)"),
        }
    }

    fn cached(&self, id: &str) -> Option<Option<Arc<Client>>> {
        let cache = self.cache.lock().ok()?;
        cache.get(id).filter(|(_, until)| Instant::now() < *until).map(|(c, _)| c.clone())
    }

    fn remember(&self, id: &str, client: Option<Arc<Client>>) {
        self.remember_until(id, client, Instant::now() + CACHE_TTL);
    }

    fn remember_until(&self, id: &str, client: Option<Arc<Client>>, until: Instant) {
        if client.as_ref().is_some_and(|c| c.backchannel_logout_uri.is_some()) {
            self.learned_backchannel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(id.to_string(), (client, until));
        }
    }
}

/// The logout metadata of a registration (and the name the confirmation page shows), the only
/// part kept (no secrets, no other metadata).
fn kept_metadata(metadata: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for k in [
        "client_name",
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

impl Clients {
    /// A stored learned client, checked again by today's rules; None once older than
    /// `registration.client_lifetime` (a registration update renews it).
    /// With how much longer it is valid.
    fn parse(&self, id: &str, json: &str) -> (Option<Arc<Client>>, Duration) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else { return (None, CACHE_TTL) };
        let learned = v.get("learned_at").and_then(|t| t.as_u64()).unwrap_or(0);
        let end = learned + self.limits.client_lifetime.as_secs();
        let now = crate::session::unix_now();
        if end <= now {
            tracing::info!(client = %id, "learned client past registration.client_lifetime; no longer known");
            return (None, CACHE_TTL);
        }
        match crate::config::registered_client(id, &v, &self.limits.allowed_networks) {
            Ok(c) => (Some(Arc::new(c)), Duration::from_secs(end - now)),
            Err(problems) => {
                tracing::warn!(client = %id, problems = %problems.join("; "), "stored registered client is unusable");
                (None, CACHE_TTL)
            }
        }
    }
}

/// The client_id a registration management request (RFC 7592) is about: the one path segment
/// below the registration endpoint (decoded; the endpoint's segments matched after dot-segment
/// and `;param` removal, in any case), or, when the path names none, a `client_id` query
/// parameter (Janssen's form). Err when both name one and they differ, or the query repeats
/// it: the OP might act on one and the gateway learn about the other.
pub(crate) fn managed_client_id(
    registration_path: &str,
    path: &str,
    query: Option<&str>,
) -> Result<Option<String>, &'static str> {
    let from_query: Vec<String> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k.eq_ignore_ascii_case("client_id"))
                .map(|(_, v)| v.into_owned())
                .collect()
        })
        .unwrap_or_default();
    if from_query.len() > 1 {
        return Err("client_id is repeated");
    }
    let from_query = from_query.into_iter().next().filter(|v| !v.is_empty());
    match (path_client_id(registration_path, path), from_query) {
        (Some(p), Some(q)) if p != q => Err("the query's client_id differs from the path's"),
        (Some(p), _) => Ok(Some(p)),
        (None, q) => Ok(q),
    }
}

/// The segment below `registration_path` in `path`, decoded, when there is exactly one.
fn path_client_id(registration_path: &str, path: &str) -> Option<String> {
    fn segments(p: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for seg in p.split('/') {
            let seg = seg.split(';').next().unwrap_or("");
            let decoded = String::from_utf8_lossy(&crate::uri::percent_decode(seg.as_bytes(), false)).into_owned();
            match decoded.as_str() {
                "" | "." => {}
                ".." => {
                    out.pop();
                }
                _ => out.push(decoded),
            }
        }
        out
    }
    let reg = segments(registration_path);
    let mut segs = segments(path);
    if segs.len() != reg.len() + 1 || !reg.iter().zip(&segs).all(|(a, b)| a.eq_ignore_ascii_case(b)) {
        return None;
    }
    segs.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_management_paths() {
        let id = |r: &str, p: &str, q: Option<&str>| managed_client_id(r, p, q);
        assert_eq!(id("/reg", "/reg/abc", None), Ok(Some("abc".into())));
        assert_eq!(id("/reg", "/reg/a%20b", None), Ok(Some("a b".into())));
        assert_eq!(id("/reg", "/REG/x/../AbC;jsessionid=1/", None), Ok(Some("AbC".into())));
        assert_eq!(id("/register", "/register", Some("client_id=x1")), Ok(Some("x1".into())));
        assert_eq!(id("/reg", "/reg/abc", Some("client_id=abc")), Ok(Some("abc".into())));
        assert!(id("/reg", "/reg/abc", Some("client_id=victim")).is_err(), "RFC 7592: the path names the client");
        assert!(id("/reg", "/reg/abc", Some("CLIENT_ID=victim")).is_err());
        assert!(id("/register", "/register", Some("client_id=a&client_id=b")).is_err());
        assert_eq!(id("/reg", "/regx/abc", None), Ok(None));
        assert_eq!(id("/reg", "/reg", None), Ok(None));
        assert_eq!(id("/reg", "/reg/a/b", None), Ok(None));
    }

    #[test]
    fn only_logout_metadata_is_kept() {
        let m = serde_json::json!({"client_secret": "s3cret", "frontchannel_logout_uri": "https://rp/fc",
            "post_logout_redirect_uris": ["https://rp/bye"], "redirect_uris": ["https://rp/cb"], "client_name": "RP"});
        let kept = kept_metadata(&m);
        assert!(kept.get("client_secret").is_none() && kept.get("redirect_uris").is_none());
        assert_eq!(kept["frontchannel_logout_uri"], "https://rp/fc");
        assert_eq!(kept["client_name"], "RP");
    }
}
