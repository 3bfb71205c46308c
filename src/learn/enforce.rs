//! Enforcing logouts at the edge (GW-02): a credential of an ended session is refused wherever
//! it appears, on every proxied path, whatever the path's spelling.
//!
//! `credentials` finds them (Authorization in any scheme case, query and form parameters, OP
//! cookies); each is looked up in this instance's revocation set (`session::revoked`), which
//! costs no store round trip. The answer depends on where the credential was used:
//! - a bearer (`Authorization`, `access_token`): 401 with `WWW-Authenticate: Bearer` (or `DPoP`)
//!   `error="invalid_token"`;
//! - `token` at introspection: `{"active": false}`; at the revocation endpoint it is let through
//!   (revoking an ended credential at the OP too is the one use that helps); elsewhere 401;
//! - `refresh_token`, `subject_token`, `actor_token`, or any credential parameter at the token
//!   endpoint: 400 `invalid_grant`;
//! - an OP session cookie: removed from the request and expired in the response.
//!
//! When the set is stale (its feed from the store is interrupted), the credentials it does not
//! already know are looked up in the store in one round trip; if the store does not answer
//! either, the request is refused with 503 at the token, userinfo and introspection endpoints
//! (fail closed), and elsewhere let through, logged and counted
//! (`logout_gateway_edge_unchecked_total`). Which endpoint a path is, is decided here, on the
//! path normalised like end_session's (`proxy::route::normalize`); the HTTP side (reading
//! bodies, writing refusals, removing cookies) is `proxy`'s.

use super::credentials::Source;
use super::Learner;
use crate::metrics::Metrics;
use crate::session::revoked::{key_of_digest, Verdict};

/// Which endpoint a request is for, as far as learning and enforcement care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Authorization,
    Token,
    Userinfo,
    Introspection,
    Revocation,
    /// The registration endpoint, or a client's configuration below it (RFC 7592).
    Registration,
    Other,
}

impl Endpoint {
    /// Endpoints whose request body is read (and checked) whatever its content type says: an
    /// OP may parse a form it was not told was one.
    pub(crate) fn reads_body(self) -> bool {
        matches!(self, Endpoint::Token | Endpoint::Userinfo | Endpoint::Introspection | Endpoint::Revocation)
    }

    /// Endpoints that refuse a credential the gateway cannot check (stale set, store down).
    fn fails_closed(self) -> bool {
        matches!(self, Endpoint::Token | Endpoint::Userinfo | Endpoint::Introspection)
    }
}

use crate::render::Answer;

const INVALID_TOKEN: &str = r#"{"error":"invalid_token","error_description":"the session of this token has ended"}"#;
const BEARER_CHALLENGE: &str =
    r#"Bearer error="invalid_token", error_description="the session of this token has ended""#;
const DPOP_CHALLENGE: &str = r#"DPoP error="invalid_token", error_description="the session of this token has ended""#;
const INVALID_GRANT: &str = r#"{"error":"invalid_grant","error_description":"the session of this token has ended"}"#;
const UNAVAILABLE: &str =
    r#"{"error":"temporarily_unavailable","error_description":"revocations cannot be checked right now"}"#;

/// The refusal of a repeated security parameter.
pub(crate) const REPEATED: Answer =
    Answer::json(400, r#"{"error":"invalid_request","error_description":"a parameter was repeated"}"#);

/// What the edge does with a request's credentials.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Answer the request with this instead of passing it on.
    pub(crate) refusal: Option<Answer>,
    /// Names of OP cookies of ended sessions: removed before the upstream, expired in the response.
    pub(crate) strip_cookies: Vec<String>,
}

/// One credential of a request, hashed.
struct Found {
    source: Option<Source>,
    cookie: Option<String>,
    hash: [u8; 32],
}

impl Found {
    fn hex(&self) -> String {
        crate::crypto::hex(&self.hash)
    }
}

fn digest(value: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(value).into()
}

/// The answer for a revoked credential from `source` at `endpoint`, or None to let it through.
fn refusal_for(endpoint: Endpoint, source: Source) -> Option<Answer> {
    let invalid_token = |dpop: bool| {
        let challenge = if dpop { DPOP_CHALLENGE } else { BEARER_CHALLENGE };
        Answer::Json { status: 401, body: INVALID_TOKEN, header: Some(("www-authenticate", challenge)) }
    };
    let invalid_grant = Answer::json(400, INVALID_GRANT);
    Some(match (endpoint, source) {
        (_, Source::Header { dpop }) => invalid_token(dpop),
        (_, Source::Param("access_token")) => invalid_token(false),
        (Endpoint::Introspection, Source::Param("token")) => Answer::json(200, r#"{"active":false}"#),
        (Endpoint::Revocation, Source::Param("token")) => return None,
        (Endpoint::Token, _) => invalid_grant,
        (_, Source::Param("token")) => invalid_token(false),
        (_, Source::Param(_)) => invalid_grant,
    })
}

/// 401 before 400 before an introspection answer: the caller's own credential first.
fn rank(r: &Answer) -> u8 {
    match r.status() {
        401 => 0,
        400 => 1,
        _ => 2,
    }
}

fn edge_label(r: &Answer) -> &'static str {
    match r.status() {
        401 => "invalid_token",
        400 => "invalid_grant",
        503 => "unavailable",
        _ => "inactive",
    }
}

impl Learner {
    /// Classify a path, normalised as end_session paths are (decoding, dot segments,
    /// `;params`, case, trailing slash): configured paths first, then discovery's. A plain
    /// path (the usual case) is compared without allocating.
    pub(crate) fn endpoint(&self, path: &str) -> Endpoint {
        let canon = crate::uri::canonical(path.as_bytes());
        let learned = self.jwks.endpoints();
        let is = |configured: &Option<String>, discovered: &Option<String>| {
            configured.as_deref().or(discovered.as_deref()).is_some_and(|e| crate::uri::same_path(&canon, e))
        };
        if is(&self.endpoints.authorization, &learned.authorization) {
            Endpoint::Authorization
        } else if is(&self.endpoints.token, &learned.token) {
            Endpoint::Token
        } else if is(&self.endpoints.userinfo, &learned.userinfo) {
            Endpoint::Userinfo
        } else if is(&self.endpoints.introspection, &learned.introspection) {
            Endpoint::Introspection
        } else if is(&self.endpoints.revocation, &learned.revocation) {
            Endpoint::Revocation
        } else if self
            .endpoints
            .registration
            .as_deref()
            .or(learned.registration.as_deref())
            .is_some_and(|r| crate::uri::under_path(&canon, r))
        {
            Endpoint::Registration
        } else {
            Endpoint::Other
        }
    }

    /// The registration endpoint's path: configured, else discovery's.
    pub(crate) fn registration_path(&self) -> Option<String> {
        self.endpoints.registration.clone().or_else(|| self.jwks.endpoints().registration.clone())
    }

    /// Whether a response to `path` may carry an authorization response the gateway learns
    /// from: the authorization endpoint and the paths below it (node-oidc-provider resumes at
    /// `/auth/<uid>`), or one of `upstream.session_cookie_paths` (the OP's own login paths that
    /// answer the login form with the code redirect, Keycloak's `login-actions/`). Never any
    /// other path: a redirect elsewhere cannot bind a code to the browser's cookies.
    pub(crate) fn answers_authorization(&self, endpoint: Endpoint, path: &str) -> bool {
        if endpoint == Endpoint::Authorization {
            return true;
        }
        let canon = crate::uri::canonical(path.as_bytes());
        let authz = self.endpoints.authorization.clone().or_else(|| self.jwks.endpoints().authorization.clone());
        if authz.is_some_and(|a| crate::uri::under_path(&canon, &a)) {
            return true;
        }
        self.cookies.login_paths.iter().any(|p| crate::uri::under_path(&canon, p))
    }

    /// Check every credential of a request: `tokens` (from headers and parameters) and the OP
    /// cookies by (name, value). No store call unless the revocation set is stale.
    pub(crate) async fn check_credentials<'a>(
        &self,
        endpoint: Endpoint,
        tokens: impl IntoIterator<Item = (Source, &'a [u8])>,
        cookies: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Decision {
        let found: Vec<Found> = tokens
            .into_iter()
            .map(|(s, v)| Found { source: Some(s), cookie: None, hash: digest(v) })
            .chain(cookies.into_iter().map(|(n, v)| Found {
                source: None,
                cookie: Some(n.to_string()),
                hash: digest(v.as_bytes()),
            }))
            .collect();
        if found.is_empty() {
            return Decision::default();
        }
        let set = self.store.revoked_set();
        let mut revoked: Vec<bool> = Vec::with_capacity(found.len());
        let mut unsure = Vec::new();
        for (i, f) in found.iter().enumerate() {
            match set.verdict(key_of_digest(&f.hash)) {
                Verdict::Revoked => revoked.push(true),
                Verdict::Clean => revoked.push(false),
                Verdict::Unsure => {
                    revoked.push(false);
                    unsure.push(i);
                }
            }
        }
        if !unsure.is_empty() {
            if let Err(refused) = self.look_up(endpoint, &found, &unsure, &mut revoked).await {
                return refused;
            }
        }
        let decision = decide(endpoint, &found, &revoked);
        let m = Metrics::get();
        match &decision.refusal {
            Some(r) => m.edge.with_label_values(&[edge_label(r)]).inc(),
            None if !decision.strip_cookies.is_empty() => m.edge.with_label_values(&["cookie_stripped"]).inc(),
            None => {}
        }
        decision
    }

    /// The revocation set could not answer for `found[unsure]` (it is stale): ask the store,
    /// within the lookup budget, and fill `revoked`. When the store does not answer, Err with
    /// the 503 refusal where the endpoint fails closed; elsewhere they pass on, counted.
    async fn look_up(
        &self,
        endpoint: Endpoint,
        found: &[Found],
        unsure: &[usize],
        revoked: &mut [bool],
    ) -> Result<(), Decision> {
        let hashes: Vec<String> = unsure.iter().map(|i| found[*i].hex()).collect();
        let answer = if self.lookups.check().is_ok() {
            self.store.revoked_among(&hashes).await
        } else {
            Metrics::get().limited.with_label_values(&["lookups"]).inc();
            Err(crate::session::StoreError::OverBudget)
        };
        let e = match answer {
            Ok(flags) => {
                for (i, r) in unsure.iter().zip(flags) {
                    revoked[*i] = r;
                }
                return Ok(());
            }
            Err(e) => e,
        };
        if endpoint.fails_closed() && unsure.iter().any(|i| found[*i].source.is_some()) {
            tracing::warn!(error = %e, "revocations cannot be checked; credential refused (fail closed)");
            Metrics::get().edge.with_label_values(&["unavailable"]).inc();
            return Err(Decision {
                refusal: Some(Answer::Json { status: 503, body: UNAVAILABLE, header: Some(("retry-after", "1")) }),
                strip_cookies: Vec::new(),
            });
        }
        tracing::warn!(error = %e, "revocations cannot be checked; credentials passed on unchecked");
        for i in unsure {
            let kind = if found[*i].source.is_some() { "token" } else { "cookie" };
            Metrics::get().edge_unchecked.with_label_values(&[kind]).inc();
        }
        Ok(())
    }
}

/// Most credentials (bearer headers and credential parameters) one request may carry; more
/// are refused (400), so one request cannot make the edge hash and look up without bound.
pub(crate) const MAX_CREDENTIALS: usize = 16;

/// Store lookups the edge may make per second (burst: twice that) when the revocation set is
/// stale; past it, the lookup counts as failed (fail closed where that applies).
pub(super) const LOOKUPS_PER_SECOND: u32 = 2000;

/// The edge's store lookup budget (see [`LOOKUPS_PER_SECOND`]).
pub(crate) fn lookup_budget() -> governor::DefaultDirectRateLimiter {
    let per_second = std::num::NonZeroU32::new(LOOKUPS_PER_SECOND).unwrap_or(std::num::NonZeroU32::MIN);
    governor::RateLimiter::direct(
        governor::Quota::per_second(per_second)
            .allow_burst(per_second.saturating_mul(std::num::NonZeroU32::new(2).unwrap_or(std::num::NonZeroU32::MIN))),
    )
}

/// What the revoked ones among `found` mean at `endpoint`: revoked cookies are stripped, and the
/// strongest refusal any revoked token earns is the answer.
fn decide(endpoint: Endpoint, found: &[Found], revoked: &[bool]) -> Decision {
    let mut decision = Decision::default();
    for (f, _) in found.iter().zip(revoked).filter(|(_, r)| **r) {
        match (&f.cookie, f.source) {
            (Some(name), _) => {
                if !decision.strip_cookies.contains(name) {
                    decision.strip_cookies.push(name.clone());
                }
            }
            (None, Some(source)) => {
                if let Some(r) = refusal_for(endpoint, source) {
                    if decision.refusal.as_ref().is_none_or(|d| rank(&r) < rank(d)) {
                        decision.refusal = Some(r);
                    }
                }
            }
            (None, None) => {}
        }
    }
    decision
}
