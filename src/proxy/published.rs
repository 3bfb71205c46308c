//! The documents the gateway answers in the OP's name: its discovery document and JWKS.

use std::sync::Arc;

/// What the gateway publishes in the OP's name: discovery with its own logout endpoints and
/// flags (GW-05, FCL-11, BCL-01/02, RPI-18), and the JWKS with its logout-token keys (GW-04).
pub(crate) struct Published {
    pub(crate) jwks: Arc<crate::oidc::jwks::Jwks>,
    pub(crate) signing_keys: Arc<crate::crypto::keys::Keys>,
    /// Path of the discovery document on the public listener.
    pub(crate) discovery_path: String,
    /// The advertised end_session_endpoint (issuer origin + first end_session path).
    pub(crate) end_session_endpoint: String,
    /// Its mutual-TLS alias (`mtls.public_origin` + the same path), when `mtls` is set.
    pub(crate) mtls_end_session_endpoint: Option<String>,
    /// The global token revocation endpoint (issuer origin + its path), when configured.
    pub(crate) global_revocation_endpoint: Option<String>,
    /// The Shared Signals transmitter (its configuration document and endpoints), when on.
    pub(crate) ssf: Option<Arc<crate::ssf::Transmitter>>,
    /// Session Management 1.0: the iframe's path, its URL in discovery, and the page.
    pub(crate) check_session: Option<(String, String, crate::cookies::browser_state::BrowserState)>,
}

/// A document the gateway answers itself.
pub(crate) enum Doc {
    /// JSON (discovery, JWKS, the SSF configuration), cacheable for five minutes.
    Json(Vec<u8>),
    /// The check_session_iframe: HTML, framed by any RP, with this CSP.
    Page { html: String, csp: String },
}

impl Published {
    /// The upstream's discovery document with the gateway's logout metadata, or None (then the
    /// request is proxied unchanged) until it was fetched.
    fn discovery(&self) -> Option<Vec<u8>> {
        let mut doc = self.jwks.discovery()?;
        let map = doc.as_object_mut()?;
        map.insert("end_session_endpoint".into(), self.end_session_endpoint.clone().into());
        if let Some((_, url, _)) = &self.check_session {
            // SM-03: the gateway's iframe, whatever the OP advertised (its session_state values
            // are replaced by the gateway's, which only this iframe can check).
            map.insert("check_session_iframe".into(), url.clone().into());
        }
        if let Some(g) = &self.global_revocation_endpoint {
            map.insert("global_token_revocation_endpoint".into(), g.clone().into());
        }
        if let Some(alias) = &self.mtls_end_session_endpoint {
            // RFC 8705 section 5: the OP's own aliases stay, the end_session one is the gateway's.
            let aliases = map.entry("mtls_endpoint_aliases").or_insert_with(|| serde_json::json!({}));
            if !aliases.is_object() {
                *aliases = serde_json::json!({});
            }
            if let Some(a) = aliases.as_object_mut() {
                a.insert("end_session_endpoint".into(), alias.clone().into());
            }
        }
        // The keys RPs fetch are the gateway's merged set, on its own origin (GW-04).
        if let Some(uri) = self.jwks.published_jwks_uri() {
            map.insert("jwks_uri".into(), uri.into());
        }
        for flag in [
            "frontchannel_logout_supported",
            "frontchannel_logout_session_supported",
            "backchannel_logout_supported",
            "backchannel_logout_session_supported",
        ] {
            map.insert(flag.into(), true.into());
        }
        serde_json::to_vec(&doc).ok()
    }

    /// The upstream's keys plus the gateway's public logout-token keys, or None (proxied) until
    /// the upstream's were fetched.
    fn jwks(&self) -> Option<Vec<u8>> {
        let upstream = self.jwks.raw_keys();
        if upstream.is_empty() {
            return None;
        }
        let mut keys: Vec<serde_json::Value> = upstream.as_ref().clone();
        keys.extend(self.signing_keys.load().public_jwks());
        serde_json::to_vec(&serde_json::json!({ "keys": keys })).ok()
    }

    /// The document for a GET/HEAD of `path`, when the gateway answers it.
    pub(super) fn answer(&self, path: &str) -> Option<Doc> {
        if path == self.discovery_path {
            return self.discovery().map(Doc::Json);
        }
        if self.jwks.is_jwks_path(path) {
            return self.jwks().map(Doc::Json);
        }
        if let Some(t) = self.ssf.as_ref().filter(|t| t.configuration_paths().iter().any(|p| p == path)) {
            return Some(Doc::Json(t.configuration(self.jwks.published_jwks_uri())));
        }
        if let Some((_, _, bs)) = self.check_session.as_ref().filter(|c| c.0 == path) {
            let (html, csp) = bs.page();
            return Some(Doc::Page { html: html.to_string(), csp: csp.to_string() });
        }
        None
    }
}
