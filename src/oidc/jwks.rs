//! The upstream OP's signing keys: fetched, cached, refreshed.
//!
//! Keys come from `jwks.uri`, or from the `jwks_uri` of the upstream's discovery document. A URL
//! on the issuer's origin (the gateway's own public origin) is fetched from the upstream
//! directly, with the issuer's Host, so the gateway never loops through itself. The key set is
//! swapped atomically; a background service refreshes it every `jwks.refresh_interval`, and an
//! unknown `kid` triggers a refresh at most once per `jwks.min_refresh_interval` (failed attempts
//! included), single flight.
//! Which keys are kept, and for which algorithms, is `keyset`'s business.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use url::Url;

use super::discovery::{published_jwks_path, say_whether_ops_give_sid};
pub(crate) use super::keyset::{build_keyset, Key, KeySet};
use crate::config::{Config, EndpointPaths};

/// Largest JWKS or discovery document accepted.
const MAX_DOC: usize = 512 * 1024;

/// Why keys could not be fetched. Never contains a token.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JwksError {
    #[error("fetching {0}: {1}")]
    Fetch(String, String),
    #[error("{0} is not a usable document: {1}")]
    Parse(String, String),
    /// Another task's attempt, started while this one waited, failed so.
    #[error("a concurrent fetch failed: {0}")]
    Concurrent(String),
}

/// A fetch attempt: when it started and, if it failed, why.
struct Attempt {
    started: Instant,
    error: Option<String>,
}

pub(crate) struct Jwks {
    current: ArcSwap<KeySet>,
    /// The upstream's JWKS `keys` array as fetched, for publishing merged with the gateway's.
    raw_keys: ArcSwap<Vec<serde_json::Value>>,
    /// The upstream's discovery document as fetched.
    discovery: ArcSwap<Option<serde_json::Value>>,
    /// Path of the JWKS URL when it is on the issuer's origin (the gateway answers it).
    jwks_path: ArcSwap<Option<String>>,
    /// Paths of discovery's token, userinfo and introspection endpoints on the issuer's origin.
    endpoints: ArcSwap<EndpointPaths>,
    /// Single flight for fetches, and the last attempt (for the unknown-kid rate limit).
    fetching: tokio::sync::Mutex<Option<Attempt>>,
    http: reqwest::Client,
    upstream: Url,
    issuer: Url,
    configured: Option<Url>,
    /// `upstream.tls_server_name`: requests to the upstream name it (resolved to its address).
    tls_server_name: Option<String>,
    min_refresh: Duration,
}

impl Jwks {
    pub(crate) fn new(config: &Config) -> Result<Arc<Jwks>, String> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.upstream.connect_timeout)
            .timeout(config.upstream.read_timeout.min(Duration::from_secs(10)))
            .no_proxy();
        if let Some(name) = &config.upstream.tls_server_name {
            let target = config.upstream.host.clone();
            b = b.dns_resolver(Arc::new(crate::address::PinnedResolver { name: name.clone(), target }));
        }
        if let Some(ca) = &config.upstream.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("upstream.ca_file: {e}"))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("upstream.ca_file: {e}"))? {
                b = b.add_root_certificate(cert);
            }
        }
        let http = b.build().map_err(|e| format!("http client: {e}"))?;
        let parse = |s: &str, what: &str| Url::parse(s).map_err(|e| format!("{what}: {e}"));
        Ok(Arc::new(Jwks {
            current: ArcSwap::from_pointee(KeySet::default()),
            raw_keys: ArcSwap::from_pointee(Vec::new()),
            discovery: ArcSwap::from_pointee(None),
            jwks_path: ArcSwap::from_pointee(None),
            endpoints: ArcSwap::from_pointee(EndpointPaths::default()),
            fetching: tokio::sync::Mutex::new(None),
            http,
            upstream: parse(&config.upstream.url, "upstream.url")?,
            issuer: parse(&config.issuer, "issuer")?,
            configured: config.jwks.uri.as_deref().map(|u| parse(u, "jwks.uri")).transpose()?,
            tls_server_name: config.upstream.tls_server_name.clone(),
            min_refresh: config.jwks.min_refresh_interval,
        }))
    }

    pub(crate) fn keys(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    /// The upstream's published keys (raw JWKs), empty until fetched.
    pub(crate) fn raw_keys(&self) -> Arc<Vec<serde_json::Value>> {
        self.raw_keys.load_full()
    }

    /// The upstream's discovery document, once fetched.
    pub(crate) fn discovery(&self) -> Option<serde_json::Value> {
        self.discovery.load().as_ref().clone()
    }

    /// Whether `path` is the JWKS path the gateway answers (the keys URL is on the issuer's
    /// origin). Allocation-free: it runs for every GET on the public listener.
    pub(crate) fn is_jwks_path(&self, path: &str) -> bool {
        self.jwks_path.load().as_deref() == Some(path)
    }

    /// The endpoint paths discovery named on the issuer's origin (empty until fetched).
    pub(crate) fn endpoints(&self) -> arc_swap::Guard<Arc<EndpointPaths>> {
        self.endpoints.load()
    }

    /// Where discovery lives for this issuer (OIDC Discovery §4: below the issuer's path).
    pub(crate) fn discovery_url(&self) -> Url {
        let base = self.issuer.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/.well-known/openid-configuration")).unwrap_or_else(|_| self.issuer.clone())
    }

    /// Same origin as the issuer (the gateway's public face): fetch from the upstream instead.
    /// A URL on the upstream names `upstream.tls_server_name` when set (see `PinnedResolver`).
    fn route(&self, url: &Url) -> Url {
        let mut u = if url.origin() == self.issuer.origin() {
            let mut u = self.upstream.clone();
            u.set_path(url.path());
            u.set_query(url.query());
            u
        } else {
            url.clone()
        };
        if let Some(name) = self.tls_server_name.as_deref().filter(|_| u.origin() == self.upstream.origin()) {
            // Only an https upstream has a tls_server_name; setting a valid DNS name cannot fail.
            let _ = u.set_host(Some(name));
        }
        u
    }

    /// A request for `url`, sent to the upstream (with the issuer's Host) when `url` is on the
    /// issuer's origin.
    fn request(&self, method: reqwest::Method, url: &Url) -> reqwest::RequestBuilder {
        let target = self.route(url);
        let mut req = self.http.request(method, target);
        if url.origin() == self.issuer.origin() {
            // Ask the upstream as a browser would ask the gateway.
            if let Some(h) = self.issuer.host_str() {
                let host = match self.issuer.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                };
                req = req.header("host", host.clone()).header("x-forwarded-host", host);
            }
            req = req.header("x-forwarded-proto", self.issuer.scheme());
        }
        req
    }

    /// POST a form to the upstream endpoint at `path` (on the issuer's origin); the status, or
    /// why nothing was answered. Used for RFC 7009 revocation.
    pub(crate) async fn post_form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<u16, String> {
        let mut url = self.issuer.clone();
        url.set_path(path);
        url.set_query(None);
        let mut req = self.request(reqwest::Method::POST, &url).timeout(timeout).form(form);
        if let Some((user, pass)) = basic {
            req = req.basic_auth(user, Some(pass));
        }
        let resp = req.send().await.map_err(without_url)?;
        Ok(resp.status().as_u16())
    }

    async fn get_json(&self, url: &Url) -> Result<serde_json::Value, JwksError> {
        let req = self.request(reqwest::Method::GET, url).header("accept", "application/json");
        let fail = |e: String| JwksError::Fetch(url.to_string(), e);
        let resp = req.send().await.map_err(|e| fail(without_url(e)))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status().as_u16())));
        }
        if resp.content_length().is_some_and(|n| n as usize > MAX_DOC) {
            return Err(fail("document too large".into()));
        }
        let body = resp.bytes().await.map_err(|e| fail(without_url(e)))?;
        if body.len() > MAX_DOC {
            return Err(fail("document too large".into()));
        }
        serde_json::from_slice(&body).map_err(|e| JwksError::Parse(url.to_string(), e.to_string()))
    }

    /// Fetch discovery (kept for publishing) and pick the keys URL: `jwks.uri`, else discovery's.
    async fn jwks_url(&self) -> Result<Url, JwksError> {
        let disc = self.discovery_url();
        let doc = match self.get_json(&disc).await {
            Ok(doc) if doc.is_object() => {
                let path = |key: &str| {
                    let u = doc.get(key).and_then(|v| v.as_str()).and_then(|u| Url::parse(u).ok())?;
                    (u.origin() == self.issuer.origin()).then(|| u.path().to_string())
                };
                self.endpoints.store(Arc::new(EndpointPaths {
                    authorization: path("authorization_endpoint"),
                    token: path("token_endpoint"),
                    userinfo: path("userinfo_endpoint"),
                    introspection: path("introspection_endpoint"),
                    revocation: path("revocation_endpoint"),
                    registration: path("registration_endpoint"),
                }));
                if self.discovery.load().is_none() {
                    say_whether_ops_give_sid(&doc);
                }
                self.discovery.store(Arc::new(Some(doc.clone())));
                Some(doc)
            }
            Ok(_) => None,
            Err(e) if self.configured.is_some() => {
                tracing::debug!(error = %e, "discovery not fetched; keys come from jwks.uri");
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(u) = &self.configured {
            return Ok(u.clone());
        }
        let uri = doc
            .as_ref()
            .and_then(|d| d.get("jwks_uri"))
            .and_then(|v| v.as_str())
            .ok_or_else(|| JwksError::Parse(disc.to_string(), "no jwks_uri".into()))?;
        Url::parse(uri).map_err(|e| JwksError::Parse(disc.to_string(), format!("jwks_uri: {e}")))
    }

    /// Fetch now (single flight): when another task's attempt started while we waited, its
    /// outcome is ours (the background refresher's path).
    pub(crate) async fn refresh(&self) -> Result<(), JwksError> {
        self.fetch_gated(Duration::ZERO).await.unwrap_or(Ok(()))
    }

    /// Refresh for an unknown kid, unless an attempt started within `min_refresh` (rate limit)
    /// or while this one waited (single flight). Failed attempts count as much as successful
    /// ones: an upstream that answers badly is not asked once per waiting hint.
    pub(crate) async fn refresh_for_unknown_kid(&self) {
        if let Some(Err(e)) = self.fetch_gated(self.min_refresh).await {
            tracing::warn!(error = %e, "refreshing upstream keys for an unknown kid failed");
        }
    }

    /// Fetch, unless the last attempt started after we asked or less than `min_gap` ago: then
    /// None, or the covering attempt's error for a caller that wants it ([`Jwks::refresh`]).
    /// The lock is held across the fetch on purpose: it is the single flight (a tokio mutex).
    async fn fetch_gated(&self, min_gap: Duration) -> Option<Result<(), JwksError>> {
        let asked = Instant::now();
        let mut last = self.fetching.lock().await;
        if let Some(a) = last.as_ref() {
            if a.started >= asked {
                return a.error.clone().map(|e| Err(JwksError::Concurrent(e)));
            }
            if a.started.elapsed() < min_gap {
                return None;
            }
        }
        let started = Instant::now();
        let res = self.fetch().await;
        *last = Some(Attempt { started, error: res.as_ref().err().map(ToString::to_string) });
        Some(res)
    }

    /// One fetch: discovery (unless `jwks.uri` makes it optional), then the keys; swapped in
    /// only when usable.
    async fn fetch(&self) -> Result<(), JwksError> {
        let m = crate::metrics::Metrics::get();
        let res = self.fetch_keys().await;
        m.keys_refreshes.with_label_values(&[if res.is_ok() { "ok" } else { "failed" }]).inc();
        if res.is_ok() {
            m.keys_last_success.set(crate::metrics::unix_now());
        }
        res
    }

    async fn fetch_keys(&self) -> Result<(), JwksError> {
        let url = self.jwks_url().await?;
        let doc = self.get_json(&url).await?;
        let raw = doc.get("keys").and_then(|k| k.as_array()).cloned().unwrap_or_default();
        let set: JwkSet = serde_json::from_value(doc).map_err(|e| JwksError::Parse(url.to_string(), e.to_string()))?;
        let ks = build_keyset(&set);
        if ks.keys.is_empty() {
            return Err(JwksError::Parse(url.to_string(), "no usable signature keys".into()));
        }
        tracing::info!(keys = ks.keys.len(), %url, "upstream signing keys loaded");
        self.current.store(Arc::new(ks));
        self.raw_keys.store(Arc::new(raw));
        self.jwks_path.store(Arc::new(published_jwks_path(self.discovery().as_ref(), &url, &self.issuer)));
        Ok(())
    }

    /// The `jwks_uri` the gateway publishes: its own origin and the path it answers with the
    /// merged keys (None until the keys were fetched).
    pub(crate) fn published_jwks_uri(&self) -> Option<String> {
        let path = self.jwks_path.load();
        path.as_deref().map(|p| format!("{}{p}", self.issuer.origin().ascii_serialization()))
    }
}

/// reqwest errors name the URL; keep only the kind.
fn without_url(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        e.without_url().to_string()
    }
}

/// Background service: fetch at start (retrying with backoff from 1 s to a minute until the
/// upstream answers), then every `interval`.
pub(crate) struct JwksRefresher {
    pub(crate) jwks: Arc<Jwks>,
    pub(crate) interval: Duration,
}

#[async_trait]
impl BackgroundService for JwksRefresher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut wait = Duration::ZERO;
        let mut backoff = Duration::from_secs(1);
        loop {
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_ok() && *shutdown.borrow() { return; }
                    if changed.is_err() { std::future::pending::<()>().await; }
                }
                _ = tokio::time::sleep(wait) => {
                    wait = match self.jwks.refresh().await {
                        Ok(()) => {
                            backoff = Duration::from_secs(1);
                            self.interval
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, retry_in = ?backoff, "upstream signing keys not refreshed");
                            // Keep the old keys; try again soon, backing off up to a minute.
                            let w = backoff.min(self.interval);
                            backoff = (backoff * 2).min(Duration::from_secs(60));
                            w
                        }
                    };
                }
            }
        }
    }
}
