//! Learning sessions from the traffic the gateway already proxies (DESIGN.md, "How the gateway
//! learns sessions"), and enforcing logouts at the edge with what was learned.
//!
//! Enforcement: an access token of an ended session is refused at userinfo (401,
//! `WWW-Authenticate: Bearer error="invalid_token"`) and reported inactive at introspection
//! (`{"active": false}`); a refresh token of an ended session is refused at the token endpoint
//! (400 `invalid_grant`). Each check is one store lookup, on those endpoints only; when the store
//! does not answer, the request goes on to the upstream (availability first; logged).
//!
//! Learning watches the token endpoint: from a successful token response it
//! takes the `id_token`, verifies it like a hint (signature, issuer, audience), and records the
//! session (sid, subject, client) in the store, so a later logout with that RP's hint finds it
//! without anyone calling the admin API.
//!
//! Token hashes live as long as the tokens (`expires_in`, `refresh_expires_in`, bounded by
//! `session_store.access_token_ttl` / `refresh_token_ttl`). A refresh_token grant whose response
//! carries no new id_token binds its new tokens to the session of the refresh token it
//! redeemed. With `revocation` configured, the tokens of clients that have revocation
//! credentials are also kept sealed for RFC 7009 (see `revoke`).
//!
//! The registration endpoint is watched too: a successful registration (or RFC 7592 update)
//! teaches the gateway the client's logout metadata; a deletion forgets it (see `clients`).
//!
//! The client's response is never altered or delayed: the body is copied (capped) as it streams
//! through, decoded from gzip/deflate when the upstream compressed it, and handed to a spawned
//! task at the end; a store outage only costs the learning, never the response.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;

use std::time::Duration;

use crate::clients::Clients;
use crate::logout::decide::HintCheck;
use crate::metrics::Metrics;
use crate::oidc::jwks::{EndpointPaths, Jwks};
use crate::revoke::Revoker;
use crate::session::{NewSession, SessionStore, Token};

/// Largest token response body that is observed.
const MAX_BODY: usize = 256 * 1024;

/// Per-request state of an observed response (token or registration endpoint).
#[derive(Debug)]
pub struct Observation {
    pub purpose: Purpose,
    /// The response qualifies (success, JSON) and is being copied.
    active: bool,
    encoding: Encoding,
    buf: Vec<u8>,
}

/// What an observed response may teach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// A token request.
    Token {
        /// Hash of the authorization code being redeemed (authorization_code grants).
        code_hash: Option<String>,
        /// Hash of the refresh token being redeemed (refresh_token grants).
        refresh_hash: Option<String>,
    },
    /// A client registration (POST) or update (PUT, RFC 7592).
    Registration,
}

impl Observation {
    pub fn new(purpose: Purpose) -> Self {
        Observation { purpose, active: false, encoding: Encoding::Identity, buf: Vec::new() }
    }
}

/// A token from a token or authorization response, held only until it is hashed (and sealed).
struct RawToken {
    value: String,
    /// `access_token` or `refresh_token`.
    hint: &'static str,
    ttl: Duration,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    #[default]
    Identity,
    Gzip,
    Deflate,
}

pub struct Learner {
    pub jwks: Arc<Jwks>,
    pub issuer: String,
    pub clients: Arc<Clients>,
    pub store: Arc<dyn SessionStore>,
    /// Seals tokens for RFC 7009 revocation; None: `revocation` is off.
    pub revoker: Option<Arc<Revoker>>,
    /// `session_store.access_token_ttl` and `refresh_token_ttl`.
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Configured endpoint paths (`upstream.endpoints`); unset ones come from discovery.
    pub endpoints: EndpointPaths,
    /// Names of the OP's own session cookies (`upstream.session_cookies`).
    pub session_cookies: Vec<String>,
}

/// How long a code's cookie binding waits for the code to be redeemed.
const CODE_BINDING_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// Which endpoint a request is for, as far as learning and enforcement care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Authorization,
    Token,
    Userinfo,
    Introspection,
    /// The registration endpoint, or a client's configuration below it (RFC 7592).
    Registration,
    Other,
}

/// A request the gateway refuses for an ended session: (status, content type, body, extra header).
pub type Refusal = (u16, &'static str, &'static str, Option<(&'static str, &'static str)>);

impl Learner {
    /// Classify a path: configured paths first, then discovery's. Allocation-free.
    pub fn endpoint(&self, path: &str) -> Endpoint {
        let learned = self.jwks.endpoints();
        let is = |configured: &Option<String>, discovered: &Option<String>| {
            configured.as_deref().or(discovered.as_deref()) == Some(path)
        };
        if is(&self.endpoints.authorization, &learned.authorization) {
            Endpoint::Authorization
        } else if is(&self.endpoints.token, &learned.token) {
            Endpoint::Token
        } else if is(&self.endpoints.userinfo, &learned.userinfo) {
            Endpoint::Userinfo
        } else if is(&self.endpoints.introspection, &learned.introspection) {
            Endpoint::Introspection
        } else if self
            .endpoints
            .registration
            .as_deref()
            .or(learned.registration.as_deref())
            .is_some_and(|r| path.strip_prefix(r).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
        {
            Endpoint::Registration
        } else {
            Endpoint::Other
        }
    }

    /// The registration endpoint's path: configured, else discovery's.
    pub fn registration_path(&self) -> Option<String> {
        self.endpoints.registration.clone().or_else(|| self.jwks.endpoints().registration.clone())
    }

    /// A DELETE below the registration endpoint succeeded (RFC 7592): forget the client.
    pub fn on_client_deleted(self: &Arc<Self>, path: &str, query: Option<&str>) {
        let Some(reg) = self.registration_path() else { return };
        if let Some(id) = crate::clients::managed_client_id(&reg, path, query) {
            let me = self.clone();
            tokio::spawn(async move { me.clients.forget(&id).await });
        }
    }

    /// The token a request presents that a logout may have revoked, by endpoint: the bearer
    /// access token at userinfo, `token` at introspection, the refresh token of a
    /// refresh_token grant at the token endpoint. `form` is the request body (POST forms).
    pub fn presented_token(&self, endpoint: Endpoint, authorization: Option<&str>, form: &[u8]) -> Option<String> {
        let field = |name: &str| {
            url::form_urlencoded::parse(form)
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .filter(|v| !v.is_empty())
        };
        match endpoint {
            Endpoint::Userinfo => authorization
                .and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")))
                .map(|t| t.trim().to_string())
                .or_else(|| field("access_token")),
            Endpoint::Introspection => field("token"),
            Endpoint::Token if field("grant_type").as_deref() == Some("refresh_token") => field("refresh_token"),
            _ => None,
        }
    }

    /// Hashes of the OP cookies the browser sent, and of those the response sets.
    fn presented_and_set(&self, request_cookies: Option<&str>, set_cookies: &[&str]) -> Vec<String> {
        let mut hashes = op_cookie_hashes(request_cookies, &self.session_cookies);
        for sc in set_cookies {
            hashes.extend(op_cookie_hashes(Some(sc.split(';').next().unwrap_or("")), &self.session_cookies));
        }
        hashes
    }

    /// An OP redirect carried a code: bind it to the OP cookies the browser sent and the ones
    /// this response sets. Awaited (bounded by the store's timeouts) before the redirect goes
    /// out, so the RP cannot redeem the code before the binding exists; a store failure is only
    /// logged, never a failed response.
    pub async fn bind_code(&self, code_hash: String, request_cookies: Option<&str>, set_cookies: &[&str]) {
        let hashes = self.presented_and_set(request_cookies, set_cookies);
        if hashes.is_empty() {
            return;
        }
        if let Err(e) = self.store.bind_code(&code_hash, &hashes, CODE_BINDING_TTL).await {
            tracing::warn!(error = %e, "code not bound to the OP cookies (store unavailable)");
        }
    }

    /// An authorization response (redirect parameters or a form_post page) seen on its way to
    /// the browser: bind its code to the browser's OP cookies (awaited), and record the session
    /// an ID token in it names (implicit and hybrid flows; in the background).
    pub async fn on_authorization_response(
        self: &Arc<Self>,
        params: &[(String, String)],
        request_cookies: Option<&str>,
        set_cookies: &[&str],
    ) {
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        if let Some(code) = get("code") {
            self.bind_code(token_hash(code.as_bytes()), request_cookies, set_cookies).await;
        }
        if let Some(id_token) = get("id_token") {
            let cookies = self.presented_and_set(request_cookies, set_cookies);
            let expires_in = get("expires_in").and_then(|e| e.parse::<u64>().ok());
            let tokens = get("access_token")
                .map(|t| {
                    vec![RawToken {
                        value: t.to_string(),
                        hint: "access_token",
                        ttl: bounded(expires_in, self.access_token_ttl),
                    }]
                })
                .unwrap_or_default();
            let (me, id_token) = (self.clone(), id_token.to_string());
            tokio::spawn(async move { me.record(&id_token, tokens, cookies).await });
        }
    }

    /// The code an authorization_code grant redeems, hashed.
    pub fn redeemed_code(form: &[u8]) -> Option<String> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(form).into_owned().collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        (get("grant_type") == Some("authorization_code"))
            .then(|| get("code").map(|c| token_hash(c.as_bytes())))
            .flatten()
    }

    /// Names of the OP cookies in this request that belong to ended sessions (one lookup).
    pub async fn revoked_cookies(&self, cookie_header: Option<&str>) -> Vec<String> {
        let found = op_cookies(cookie_header, &self.session_cookies);
        if found.is_empty() {
            return Vec::new();
        }
        let hashes: Vec<String> = found.iter().map(|(_, h)| h.clone()).collect();
        match self.store.revoked_among(&hashes).await {
            Ok(flags) => found.into_iter().zip(flags).filter(|(_, r)| *r).map(|((n, _), _)| n).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cookie revocation check skipped (store unavailable)");
                Vec::new()
            }
        }
    }

    /// The answer for a revoked token at `endpoint`, or None to let the request through.
    pub async fn check(&self, endpoint: Endpoint, token: &str) -> Option<Refusal> {
        match self.store.is_revoked(&token_hash(token.as_bytes())).await {
            Ok(false) => None,
            Ok(true) => Some(match endpoint {
                Endpoint::Userinfo => (
                    401,
                    "application/json",
                    r#"{"error":"invalid_token","error_description":"the session of this token has ended"}"#,
                    Some((
                        "www-authenticate",
                        r#"Bearer error="invalid_token", error_description="the session of this token has ended""#,
                    )),
                ),
                Endpoint::Introspection => (200, "application/json", r#"{"active":false}"#, None),
                _ => (
                    400,
                    "application/json",
                    r#"{"error":"invalid_grant","error_description":"the session of this token has ended"}"#,
                    None,
                ),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "revocation check skipped (store unavailable)");
                None
            }
        }
    }

    /// Decide from the response header whether to copy the body.
    pub fn on_response_header(
        &self,
        obs: &mut Observation,
        status: u16,
        content_type: Option<&str>,
        encoding: Option<&str>,
    ) {
        let json = content_type.is_some_and(|c| c.to_ascii_lowercase().contains("json"));
        obs.encoding = match encoding.map(|e| e.trim().to_ascii_lowercase()) {
            None => Encoding::Identity,
            Some(e) if e.is_empty() || e == "identity" => Encoding::Identity,
            Some(e) if e == "gzip" || e == "x-gzip" => Encoding::Gzip,
            Some(e) if e == "deflate" => Encoding::Deflate,
            // br, zstd, chains: not observed (the response still passes through untouched).
            Some(_) => return,
        };
        let ok = status == 200 || (status == 201 && obs.purpose == Purpose::Registration);
        obs.active = ok && json;
    }

    /// Copy a body chunk; at the end, learn from the whole body in the background.
    pub fn on_body(self: &Arc<Self>, obs: &mut Observation, chunk: Option<&Bytes>, end: bool) {
        if !obs.active {
            return;
        }
        if let Some(c) = chunk {
            if obs.buf.len() + c.len() > MAX_BODY {
                obs.active = false;
                obs.buf = Vec::new();
                return;
            }
            obs.buf.extend_from_slice(c);
        }
        if end {
            obs.active = false;
            let body = std::mem::take(&mut obs.buf);
            let encoding = obs.encoding;
            let purpose = obs.purpose.clone();
            let me = self.clone();
            tokio::spawn(async move { me.learn(body, encoding, purpose).await });
        }
    }

    async fn learn(&self, body: Vec<u8>, encoding: Encoding, purpose: Purpose) {
        let body = match decode(body, encoding) {
            Some(b) => b,
            None => return tracing::debug!("observed response not decodable; not learned"),
        };
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else { return };
        let (code_hash, refresh_hash) = match purpose {
            Purpose::Registration => return self.learn_client(&json).await,
            Purpose::Token { code_hash, refresh_hash } => (code_hash, refresh_hash),
        };
        let tokens = self.tokens_of(&json);
        let Some(id_token) = json.get("id_token").and_then(|v| v.as_str()) else {
            if let Some(h) = refresh_hash {
                self.learn_refreshed(&h, tokens).await;
            }
            return;
        };
        // The OP cookies the browser had when this code was issued now belong to the session.
        let cookie_hashes = match code_hash {
            Some(h) => self.store.take_code(&h).await.unwrap_or_default(),
            None => Vec::new(),
        };
        self.record(id_token, tokens, cookie_hashes).await;
    }

    /// The access and refresh tokens of a token response, with how long each stays valid.
    fn tokens_of(&self, json: &serde_json::Value) -> Vec<RawToken> {
        let secs = |k: &str| json.get(k).and_then(|v| v.as_u64()).filter(|n| *n > 0);
        let mut out = Vec::new();
        for (key, ttl) in [
            ("access_token", bounded(secs("expires_in"), self.access_token_ttl)),
            ("refresh_token", bounded(secs("refresh_expires_in"), self.refresh_token_ttl)),
        ] {
            if let Some(t) = json.get(key).and_then(|v| v.as_str()).filter(|t| !t.is_empty()) {
                out.push(RawToken { value: t.to_string(), hint: key, ttl });
            }
        }
        out
    }

    /// How the store keeps `client`'s tokens: hashed, with their expiry, sealed when revocable.
    fn entries(&self, client: &str, tokens: Vec<RawToken>) -> Vec<Token> {
        let now = crate::session::unix_now();
        tokens
            .into_iter()
            .map(|t| Token {
                hash: token_hash(t.value.as_bytes()),
                expires_at: now + t.ttl.as_secs().max(1),
                sealed: self.revoker.as_ref().and_then(|r| r.seal(client, t.hint, &t.value)),
            })
            .collect()
    }

    /// A refresh_token grant answered without an id_token: its new tokens join the session of
    /// the refresh token it redeemed (when that session is known and active).
    async fn learn_refreshed(&self, refresh_hash: &str, tokens: Vec<RawToken>) {
        if tokens.is_empty() {
            return;
        }
        let found = match self.store.session_by_token(refresh_hash).await {
            Ok(Some(found)) => found,
            Ok(None) => return tracing::debug!("refreshed tokens of an unknown session; not learned"),
            Err(e) => return tracing::warn!(error = %e, "refreshed tokens not learned (store unavailable)"),
        };
        let (sid, client) = found;
        let session = match self.store.get_session(&sid).await {
            Ok(Some(v)) if v.status == "active" => v,
            Ok(_) => return,
            Err(e) => return tracing::warn!(error = %e, "refreshed tokens not learned (store unavailable)"),
        };
        let new = NewSession {
            sid: session.sid,
            sub: session.sub,
            clients: vec![client.clone()],
            tokens: self.entries(&client, tokens),
            ..NewSession::default()
        };
        match self.store.put_session(&new).await {
            Ok(_) => Metrics::get().learned.with_label_values(&["refresh"]).inc(),
            Err(e) => tracing::warn!(error = %e, "refreshed tokens not learned (store unavailable)"),
        }
    }

    /// A registration response: the client's logout metadata (`clients` checks and keeps them).
    async fn learn_client(&self, json: &serde_json::Value) {
        let Some(id) = json.get("client_id").and_then(|v| v.as_str()).filter(|c| !c.is_empty()) else { return };
        self.clients.learn(id, json).await;
    }

    /// Record the session a (verified) ID token names, with its tokens and OP cookie hashes.
    async fn record(&self, id_token: &str, tokens: Vec<RawToken>, cookie_hashes: Vec<String>) {
        let claims = match crate::oidc::hint::check(id_token, &self.jwks, &self.issuer, &self.clients).await {
            Ok(HintCheck::Valid(c)) => c,
            Ok(_) => return tracing::info!("an ID token seen in OP traffic does not verify; not learned"),
            Err(e) => return tracing::warn!(error = %e, "session not learned"),
        };
        let Some(sid) = claims.sid else { return tracing::debug!("ID token without sid; session not learned") };
        let mut client_sids = BTreeMap::new();
        client_sids.insert(claims.client_id.clone(), sid.clone());
        // One browser session, several sids (OPs such as node-oidc-provider give each client its
        // own): when the cookie already belongs to a live session of the same subject, this
        // client joins it, its sid becoming an alias of that session.
        let mut primary = sid;
        for ck in &cookie_hashes {
            if let Ok(Some(existing)) = self.store.session_by_cookie(ck).await {
                if let Ok(Some(v)) = self.store.get_session(&existing).await {
                    if v.status == "active" && v.sub == claims.sub {
                        primary = v.sid;
                        break;
                    }
                }
            }
        }
        let tokens = self.entries(&claims.client_id, tokens);
        let new = NewSession {
            sid: primary,
            sub: claims.sub,
            clients: vec![claims.client_id],
            client_sids,
            tokens,
            cookie_hashes,
        };
        match self.store.put_session(&new).await {
            Ok(_) => {
                Metrics::get().learned.with_label_values(&["session"]).inc();
                tracing::debug!(client = %new.clients[0], "session learned")
            }
            Err(e) => tracing::warn!(error = %e, "session not learned (store unavailable)"),
        }
    }
}

/// A lifetime the OP stated, bounded by the configured maximum (which also stands in for it).
fn bounded(stated_secs: Option<u64>, max: Duration) -> Duration {
    stated_secs.map_or(max, |s| Duration::from_secs(s).min(max))
}

/// The parameters of an authorization redirect: its query and its fragment, decoded.
pub fn redirect_params(location: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (before_frag, frag) = location.split_once('#').unwrap_or((location, ""));
    let query = before_frag.split_once('?').map(|x| x.1).unwrap_or("");
    for part in [query, frag] {
        out.extend(url::form_urlencoded::parse(part.as_bytes()).into_owned());
    }
    out
}

/// The hidden inputs of a form_post page (`<input type="hidden" name=".." value="..">`), with
/// the HTML character references OPs use in attribute values decoded.
pub fn form_post_params(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for tag in html.split("<input").skip(1).take(32) {
        let tag = tag.split('>').next().unwrap_or("");
        let attr = |a: &str| {
            let v = tag.split(&format!("{a}=\"")).nth(1)?.split('"').next()?;
            Some(
                v.replace("&quot;", "\"")
                    .replace("&#x27;", "'")
                    .replace("&#39;", "'")
                    .replace("&#x2F;", "/")
                    .replace("&#x3D;", "=")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&"),
            )
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            out.push((n, v));
        }
    }
    out
}

/// The OP session cookies (by `names`) in a Cookie header, as (name, hash of the value).
pub fn op_cookies(cookie_header: Option<&str>, names: &[String]) -> Vec<(String, String)> {
    let Some(h) = cookie_header else { return Vec::new() };
    h.split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(|(k, v)| !v.is_empty() && names.iter().any(|n| n == k))
        .map(|(k, v)| (k.to_string(), token_hash(v.as_bytes())))
        .collect()
}

/// Hashes of the OP session cookies (by `names`) in a Cookie header.
pub fn op_cookie_hashes(cookie_header: Option<&str>, names: &[String]) -> Vec<String> {
    op_cookies(cookie_header, names).into_iter().map(|(_, h)| h).collect()
}

/// SHA-256 (hex) of a token: how tokens are stored and looked up.
pub fn token_hash(token: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token).iter().map(|b| format!("{b:02x}")).collect()
}

/// The body as sent, decompressed (bounded).
fn decode(body: Vec<u8>, encoding: Encoding) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let limit = (MAX_BODY * 8) as u64;
    match encoding {
        Encoding::Identity => return Some(body),
        Encoding::Gzip => flate2::read::MultiGzDecoder::new(&body[..]).take(limit).read_to_end(&mut out).ok()?,
        Encoding::Deflate => flate2::read::ZlibDecoder::new(&body[..]).take(limit).read_to_end(&mut out).ok()?,
    };
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn authorization_response_parameters() {
        let p = redirect_params("https://rp/cb?code=a%2Bb&state=s#id_token=x.y.z&access_token=at");
        assert!(p.contains(&("code".into(), "a+b".into())));
        assert!(p.contains(&("id_token".into(), "x.y.z".into())));
        let html = r#"<form method="post"><input type="hidden" name="code" value="c&amp;1"/>
            <input type="hidden" name="state" value="&quot;s&quot;"><input name="id_token" value="h.p.s"></form>"#;
        let f = form_post_params(html);
        assert_eq!(f[0], ("code".into(), "c&1".into()));
        assert_eq!(f[1], ("state".into(), "\"s\"".into()));
        assert_eq!(f[2], ("id_token".into(), "h.p.s".into()));
        assert!(form_post_params("<input name=").is_empty());
    }

    #[test]
    fn decodes_gzip_and_deflate_and_refuses_garbage() {
        let text = br#"{"id_token":"x"}"#.to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        assert_eq!(decode(gz.finish().unwrap(), Encoding::Gzip).unwrap(), text);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        assert_eq!(decode(z.finish().unwrap(), Encoding::Deflate).unwrap(), text);
        assert!(decode(b"not gzip".to_vec(), Encoding::Gzip).is_none());
        assert_eq!(decode(text.clone(), Encoding::Identity).unwrap(), text);
    }
}
