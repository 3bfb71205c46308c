//! Enforcing logouts at the edge with what was learned (DESIGN.md: "revoked access tokens are
//! refused at userinfo and introspection, revoked refresh tokens at the token endpoint, revoked
//! session cookies everywhere"; GW-02).
//!
//! - an access token of an ended session is refused at userinfo (401,
//!   `WWW-Authenticate: Bearer error="invalid_token"`) and reported inactive at introspection
//!   (`{"active": false}`); a refresh token of an ended session is refused at the token endpoint
//!   (400 `invalid_grant`);
//! - an OP session cookie of an ended session is removed from the request and expired in the
//!   response, at the authorization endpoint and under `upstream.session_cookie_paths` (the OP's
//!   own login and resume paths, which read the cookie too).
//!
//! Each check is one store lookup, on those requests only: a request without a token there, or
//! without an OP cookie, costs none. When the store does not answer, the request goes on to the
//! upstream (availability first; logged). Which endpoint a path is, is decided here; the HTTP
//! side (reading bodies, writing refusals, removing cookies) is `proxy`'s.

use super::Learner;

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

    /// Whether a request to `path` (not one of the OP's endpoints) gets the revoked-cookie check:
    /// it carries an OP session cookie and its normalised path starts with one of
    /// `upstream.session_cookie_paths`. Free (no allocation) when no prefix is configured or the
    /// request has no OP cookie; such requests never touch the store.
    pub fn guards_cookies_at(&self, path: &str, cookie_header: Option<&str>) -> bool {
        if self.session_cookie_paths.is_empty() {
            return false;
        }
        if op_cookie_pairs(cookie_header, &self.session_cookies).next().is_none() {
            return false;
        }
        let canonical = crate::proxy::route::normalize(path.as_bytes());
        self.session_cookie_paths.iter().any(|p| canonical.starts_with(p.as_bytes()))
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

    /// Names of the OP cookies in this request that belong to ended sessions (one lookup; none
    /// without an OP cookie).
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

    /// The `Set-Cookie` values that expire the named OP cookies in the browser: one per name
    /// and `upstream.session_cookie_expiry_paths` entry (a cookie is only replaced by one with
    /// the same Path; Keycloak sets its cookies on /realms/<realm>/).
    pub fn expiring_cookies<'a>(&'a self, names: &'a [String]) -> impl Iterator<Item = String> + 'a {
        expiring_cookies(names, &self.session_cookie_expiry_paths, self.secure_cookies)
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
}

/// `Set-Cookie` values expiring each of `names` on each of `paths` (HttpOnly; Secure when the
/// issuer is https). Used at logout (`logout`) and at the edge.
pub fn expiring_cookies<'a>(
    names: &'a [String],
    paths: &'a [String],
    secure: bool,
) -> impl Iterator<Item = String> + 'a {
    let secure = if secure { "; Secure" } else { "" };
    names.iter().flat_map(move |n| {
        paths
            .iter()
            .map(move |p| format!("{n}=; Path={p}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly{secure}"))
    })
}

/// The OP session cookies (by `names`) in a Cookie header, as (name, hash of the value).
pub fn op_cookies(cookie_header: Option<&str>, names: &[String]) -> Vec<(String, String)> {
    op_cookie_pairs(cookie_header, names).map(|(k, v)| (k.to_string(), token_hash(v.as_bytes()))).collect()
}

/// The (name, value) pairs of the OP session cookies (by `names`, non-empty values) in a Cookie
/// header: the one parser behind every OP-cookie check.
fn op_cookie_pairs<'a>(
    cookie_header: Option<&'a str>,
    names: &'a [String],
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    cookie_header
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(move |(k, v)| !v.is_empty() && names.iter().any(|n| n == k))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_expiring_cookie_per_name_and_path() {
        let names = ["KEYCLOAK_IDENTITY".to_string(), "KEYCLOAK_SESSION".to_string()];
        let paths = ["/".to_string(), "/realms/r/".to_string()];
        let all: Vec<String> = expiring_cookies(&names, &paths, true).collect();
        assert_eq!(all.len(), 4);
        assert!(all[1].starts_with("KEYCLOAK_IDENTITY=; Path=/realms/r/; Max-Age=0;"), "{all:?}");
        assert!(all.iter().all(|c| c.ends_with("; HttpOnly; Secure")), "{all:?}");
        assert!(expiring_cookies(&names, &paths, false).all(|c| !c.contains("Secure")));
    }

    #[test]
    fn op_cookies_by_name() {
        let names = ["op".to_string()];
        let found = op_cookies(Some("a=1; op=v; op=; xop=w"), &names);
        assert_eq!(found, [("op".to_string(), token_hash(b"v"))]);
        assert!(op_cookies(None, &names).is_empty());
    }
}
