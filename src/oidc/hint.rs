//! id_token_hint validation (RPI-03/06, CORE-01/03, BCL-23).
//!
//! A hint is accepted only when it is a compact JWS whose header names an allowed asymmetric
//! algorithm that fits one of the upstream's keys (by `kid` when given), whose signature
//! verifies, whose `iss` is the configured issuer byte for byte, and whose audience is a
//! configured client (`aud`, or `azp` when `aud` has several values). `exp` is not a reason to
//! refuse (RPI-04): it is reported so the decision table can ask the session store. `jku`,
//! `x5u`, `jwk` and `x5c` headers are never used; the kid is only a lookup key. Logout tokens
//! (an `events` claim or `typ: logout+jwt`) and other typed JWTs are refused as hints.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

use super::jwks::Jwks;
use crate::clients::Clients;

/// What validating `id_token_hint` concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HintCheck {
    Absent,
    /// Signature, issuer, audience, algorithm or shape failed; the reason is for logs only.
    Invalid(&'static str),
    Valid(HintClaims),
}

/// The claims of a validly signed hint that the decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintClaims {
    /// The configured client the token was issued to (`aud`, or `azp` with several audiences).
    pub client_id: String,
    pub sub: String,
    pub sid: Option<String>,
    pub expired: bool,
}

/// Leeway for `exp`, in seconds.
const LEEWAY: u64 = 60;
/// Larger hints are refused before any decoding.
pub const MAX_HINT: usize = 16 * 1024;

#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Audience,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    exp: u64,
    /// Not before (RFC 7519 §4.1.5): a hint that is not valid yet is refused.
    #[serde(default)]
    nbf: Option<u64>,
    /// Present in logout tokens only (BCL-23).
    #[serde(default)]
    events: Option<serde_json::Value>,
    /// Some OPs type their JWTs in the payload (`ID`, `Bearer`, `Refresh`).
    #[serde(default)]
    typ: Option<String>,
    /// Access tokens carry scopes; ID tokens do not.
    #[serde(default)]
    scope: Option<serde_json::Value>,
}

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3); anything else refuses the hint.
#[derive(Debug, PartialEq)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// By hand rather than `#[serde(untagged)]`, which buffers the value and then tries each variant
/// on the copy: this is on every logout's path.
impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Audience;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Audience, E> {
                Ok(Audience::One(v.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
                let mut all = Vec::new();
                while let Some(a) = seq.next_element::<String>()? {
                    all.push(a);
                }
                Ok(Audience::Many(all))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Hint validation could not run: the keys are not available (fail closed, 503).
#[derive(Debug, thiserror::Error)]
#[error("upstream signing keys are not available")]
pub(crate) struct KeysUnavailable;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What may be used of a hint's header once [`inspect_header`] accepted it: the algorithm and
/// the kid, an opaque lookup key. Nothing else of the header (`jku`, `x5u`, `jwk`, `x5c` in
/// particular) leaves that function, so nothing after it can fetch or trust a key it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderVerdict {
    pub alg: Algorithm,
    pub kid: Option<String>,
}

/// The checks that run before any key is looked up: the size cap (before any decoding), the
/// compact-JWS shape, the header's JSON, `typ`, `crit` and the algorithm family. Pure, so it
/// can be fuzzed; the error is the reason [`HintCheck::Invalid`] reports.
pub fn inspect_header(token: &str) -> Result<HeaderVerdict, &'static str> {
    if token.len() > MAX_HINT {
        return Err("too large");
    }
    if memchr::memchr_iter(b'.', token.as_bytes()).count() != 2 {
        // A JWE (five parts) is not decrypted here (CORE-02): treated as invalid.
        return Err("not a compact JWS");
    }
    let Some((header, _, _)) = parts(token) else {
        return Err("not a compact JWS");
    };
    // Decoded as jsonwebtoken decodes a header (base64url without padding, then its `Header`).
    let header = URL_SAFE_NO_PAD.decode(header).ok();
    let Some(header) = header.and_then(|h| serde_json::from_slice::<jsonwebtoken::Header>(&h).ok()) else {
        return Err("bad header");
    };
    if header
        .typ
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("jwt") && !t.eq_ignore_ascii_case("application/jwt"))
    {
        return Err("not an ID token type");
    }
    if header.crit.is_some() {
        return Err("unsupported critical header");
    }
    if matches!(header.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err("symmetric algorithm");
    }
    Ok(HeaderVerdict { alg: header.alg, kid: header.kid })
}

/// Validate `token` against the upstream keys. Invalid hints are a verdict, not an error.
pub(crate) async fn check(
    token: &str,
    jwks: &Jwks,
    issuer: &str,
    clients: &Clients,
) -> Result<HintCheck, KeysUnavailable> {
    let header = match inspect_header(token) {
        Ok(h) => h,
        Err(reason) => return Ok(HintCheck::Invalid(reason)),
    };
    let kid = header.kid.as_deref();
    let mut keys = jwks.keys();
    if keys.keys.is_empty() || kid.is_some_and(|k| !keys.has_kid(k)) {
        jwks.refresh_for_unknown_kid().await;
        keys = jwks.keys();
        if keys.keys.is_empty() {
            return Err(KeysUnavailable);
        }
    }
    let candidates = keys.candidates(kid, header.alg);
    if candidates.is_empty() {
        return Ok(HintCheck::Invalid("no key fits kid and alg"));
    }
    let Some(c) = verified(token, header.alg, &candidates) else {
        return Ok(HintCheck::Invalid("signature or claims"));
    };
    if c.iss != issuer {
        return Ok(HintCheck::Invalid("issuer"));
    }
    if c.nbf.is_some_and(|nbf| nbf > now().saturating_add(LEEWAY)) {
        return Ok(HintCheck::Invalid("not valid yet (nbf)"));
    }
    if c.events.is_some() {
        return Ok(HintCheck::Invalid("a logout token is not a hint"));
    }
    if c.scope.is_some() || c.typ.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("ID")) {
        return Ok(HintCheck::Invalid("an access or refresh token is not a hint"));
    }
    let Some(client_id) = client_of(&c, clients).await else {
        return Ok(HintCheck::Invalid("audience is not a configured client"));
    };
    if c.sub.is_empty() || c.sid.as_deref().is_some_and(|s| s.is_empty() || s.len() > 256) {
        return Ok(HintCheck::Invalid("sub or sid"));
    }
    Ok(HintCheck::Valid(HintClaims {
        client_id,
        sub: c.sub,
        sid: c.sid,
        expired: c.exp.saturating_add(LEEWAY) < now(),
    }))
}

/// The claims of `token` if one of `candidates` verifies its signature under `alg`. The claims
/// the caller needs (`iss`, `sub`, `aud`, `exp`) are required by [`Claims`]'s shape; the issuer,
/// expiry, nbf and audience are checked by the caller.
fn verified<K: std::ops::Deref<Target = super::jwks::Key>>(
    token: &str,
    alg: Algorithm,
    candidates: &[K],
) -> Option<Claims> {
    let (_, payload, signature) = parts(token)?;
    let message = &token[..token.len() - signature.len() - 1];
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    if !candidates.iter().any(|k| k.verifies(alg, message.as_bytes(), &signature)) {
        return None;
    }
    // Only after the signature verified: the payload is decoded as jsonwebtoken decodes it.
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// A compact JWS's header, payload and signature, split at its first and last dot (memchr: a
/// hint is about a kilobyte); None without two distinct dots. [`inspect_header`] refuses a token
/// with more than two before anything else reads it.
fn parts(token: &str) -> Option<(&str, &str, &str)> {
    let first = memchr::memchr(b'.', token.as_bytes())?;
    let last = memchr::memrchr(b'.', token.as_bytes())?;
    (first < last).then(|| (&token[..first], &token[first + 1..last], &token[last + 1..]))
}

/// The configured client a hint was issued to: its single audience, or with several the
/// `azp` among them, or else the one known client among the first eight.
async fn client_of(c: &Claims, clients: &Clients) -> Option<String> {
    let client = match (&c.aud, &c.azp) {
        (Audience::One(a), _) => Some(a.clone()),
        (Audience::Many(list), Some(azp)) if list.contains(azp) => Some(azp.clone()),
        (Audience::Many(list), None) => {
            let mut known = Vec::new();
            for a in list.iter().take(8) {
                if clients.knows(a).await {
                    known.push(a);
                }
            }
            (known.len() == 1).then(|| known[0].clone())
        }
        _ => None,
    };
    match client {
        Some(id) if clients.knows(&id).await => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    use super::*;

    fn token(header: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header))
    }

    #[test]
    fn header_checks_before_any_key() {
        let ok = inspect_header(&token(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#));
        assert_eq!(ok, Ok(HeaderVerdict { alg: Algorithm::RS256, kid: Some("k1".into()) }));
        for (header, reason) in [
            (r#"{"alg":"none"}"#, "bad header"),
            (r#"{"alg":"HS256"}"#, "symmetric algorithm"),
            (r#"{"alg":"RS256","typ":"logout+jwt"}"#, "not an ID token type"),
            (r#"{"alg":"RS256","crit":["exp"]}"#, "unsupported critical header"),
        ] {
            assert_eq!(inspect_header(&token(header)), Err(reason), "{header}");
        }
        assert_eq!(inspect_header("a.b.c.d.e"), Err("not a compact JWS"));
        // The size cap comes first: a well-formed header does not get it decoded.
        let big = format!("{}{}", token(r#"{"alg":"RS256"}"#), "A".repeat(MAX_HINT));
        assert_eq!(inspect_header(&big), Err("too large"));
    }

    #[test]
    fn a_token_splits_at_its_first_and_last_dot() {
        assert_eq!(parts("h.p.s"), Some(("h", "p", "s")));
        assert_eq!(parts("h..s"), Some(("h", "", "s")));
        assert_eq!(parts(".p."), Some(("", "p", "")));
        assert_eq!(parts("h.p"), None);
        assert_eq!(parts("hps"), None);
        // More dots are refused by inspect_header first; split, the middle keeps them.
        assert_eq!(parts("h.p.q.s"), Some(("h", "p.q", "s")));
        assert_eq!(inspect_header("h.p.q.s"), Err("not a compact JWS"));
        assert_eq!(inspect_header(".e30.c2ln"), Err("bad header"));
    }

    #[test]
    fn an_audience_is_a_string_or_an_array_of_strings() {
        let aud = |json: &str| serde_json::from_str::<Audience>(json).ok();
        assert_eq!(aud(r#""rp-a""#), Some(Audience::One("rp-a".into())));
        assert_eq!(aud(r#""r\u0070-a""#), Some(Audience::One("rp-a".into())));
        assert_eq!(aud(r#"["rp-a","rp-b"]"#), Some(Audience::Many(vec!["rp-a".into(), "rp-b".into()])));
        assert_eq!(aud("[]"), Some(Audience::Many(vec![])));
        for bad in ["1", "null", "true", r#"{"rp-a":1}"#, r#"["rp-a",1]"#, r#"[["rp-a"]]"#] {
            assert_eq!(aud(bad), None, "{bad}");
        }
    }

    #[test]
    fn key_locating_headers_are_never_passed_on() {
        // jku/x5u/x5c are ignored: the verdict is the one without them (only alg and kid leave).
        let plain = inspect_header(&token(r#"{"alg":"ES256","kid":"k"}"#));
        let hostile = inspect_header(&token(
            r#"{"alg":"ES256","kid":"k","jku":"https://evil/jwks","x5u":"https://evil/c","x5c":["AA=="]}"#,
        ));
        assert_eq!(plain, hostile);
    }
}
