//! ID tokens minted by the tests with the fixture keys (tests/fixtures), and forgeries.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Standard ID token claims; `exp_in` seconds from now (negative: expired).
pub fn claims(iss: &str, aud: &str, sub: &str, sid: Option<&str>, exp_in: i64) -> Value {
    let mut c = json!({ "iss": iss, "aud": aud, "sub": sub, "iat": now() - 60, "exp": now() + exp_in, "nonce": "n" });
    if let Some(s) = sid {
        c["sid"] = s.into();
    }
    c
}

pub fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(String::from);
    jsonwebtoken::encode(&h, claims, key).unwrap()
}

pub fn rsa(claims: &Value) -> String {
    sign(Algorithm::RS256, Some("rsa1"), &EncodingKey::from_rsa_pem(&fixture("rsa-op.pem")).unwrap(), claims)
}

pub fn ec(claims: &Value) -> String {
    sign(Algorithm::ES256, Some("ec1"), &EncodingKey::from_ec_pem(&fixture("ec-op.pem")).unwrap(), claims)
}

/// A valid RS256 hint for `aud` with sid, expiring in an hour.
pub fn hint(iss: &str, aud: &str, sub: &str, sid: &str) -> String {
    rsa(&claims(iss, aud, sub, Some(sid), 3600))
}

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

/// Where the forgeries' `jku`/`x5u` point: the fake upstream's attacker paths, which serve the
/// attacker's keys and record every request, so a test can assert nobody asked.
pub const ATTACKER_PATH: &str = "/attacker/";

/// The attacker's key as a JWK (tests/fixtures/jwks-foreign.json, kid `foreign`).
fn foreign_jwk() -> jsonwebtoken::jwk::Jwk {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&fixture("jwks-foreign.json")).unwrap();
    set.keys[0].clone()
}

/// Headers that name a key (docs/requirements.md, "Hints": `jku`, `x5u`, `jwk`, `x5c` are never used), each on
/// a token the attacker signed with the key the header names. `attacker` is a base URL whose
/// `ATTACKER_PATH` serves the attacker's keys.
fn key_header_forgeries(good: &Value, attacker: &str) -> Vec<(&'static str, String)> {
    let foreign = EncodingKey::from_rsa_pem(&fixture("rsa-foreign.pem")).unwrap();
    let rs = |f: &dyn Fn(&mut Header)| {
        let mut h = Header::new(Algorithm::RS256);
        f(&mut h);
        jsonwebtoken::encode(&h, good, &foreign).unwrap()
    };
    // x5c: a self-signed certificate for a fresh P-256 key, and a token that key signed.
    let ec_key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["op.example".to_string()]).unwrap().self_signed(&ec_key).unwrap();
    let x5c = vec![base64::engine::general_purpose::STANDARD.encode(cert.der())];
    let ec_signer = EncodingKey::from_ec_pem(ec_key.serialize_pem().as_bytes()).unwrap();
    let es = |kid: Option<&str>| {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = kid.map(String::from);
        h.x5c = Some(x5c.clone());
        jsonwebtoken::encode(&h, good, &ec_signer).unwrap()
    };
    let url = |q: &str| format!("{attacker}{ATTACKER_PATH}jwks?via={q}");
    vec![
        (
            "jku at the attacker's keys, their kid",
            rs(&|h| {
                h.kid = Some("foreign".into());
                h.jku = Some(url("jku"));
            }),
        ),
        (
            "jku at the attacker's keys, our kid",
            rs(&|h| {
                h.kid = Some("rsa1".into());
                h.jku = Some(url("jku-rsa1"));
            }),
        ),
        (
            "x5u at the attacker's certificate",
            rs(&|h| {
                h.kid = Some("foreign".into());
                h.x5u = Some(url("x5u"));
            }),
        ),
        (
            "embedded jwk, our kid",
            rs(&|h| {
                h.kid = Some("rsa1".into());
                h.jwk = Some(foreign_jwk());
            }),
        ),
        ("embedded jwk, no kid", rs(&|h| h.jwk = Some(foreign_jwk()))),
        ("x5c self-signed, our EC kid", es(Some("ec1"))),
        ("x5c self-signed, no kid", es(None)),
    ]
}

/// Forgeries of a valid hint for rp-a / U1 / SA, by name (docs/requirements.md, "Hints"). `attacker`: see
/// [`key_header_forgeries`].
pub fn forgeries(iss: &str, attacker: &str) -> Vec<(&'static str, String)> {
    let good = claims(iss, "rp-a", "U1", Some("SA"), 3600);
    let valid = rsa(&good);
    let parts: Vec<&str> = valid.split('.').collect();
    let mut tampered_payload = serde_json::to_vec(&good).unwrap();
    // Same claims, sub changed, original signature kept.
    tampered_payload = String::from_utf8(tampered_payload).unwrap().replace("\"U1\"", "\"U2\"").into_bytes();
    let mut sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let pubkey = fixture("rsa-op.pub.pem");
    let foreign = EncodingKey::from_rsa_pem(&fixture("rsa-foreign.pem")).unwrap();
    let mut logout_token = good.clone();
    logout_token["events"] = json!({"http://schemas.openid.net/event/backchannel-logout": {}});
    let mut typed = Header::new(Algorithm::RS256);
    typed.kid = Some("rsa1".into());
    typed.typ = Some("logout+jwt".into());
    let rsa_key = EncodingKey::from_rsa_pem(&fixture("rsa-op.pem")).unwrap();
    let mut all = vec![
        ("alg none", format!("{}.{}.", b64(br#"{"alg":"none","kid":"rsa1"}"#), parts[1])),
        ("alg None", format!("{}.{}.", b64(br#"{"alg":"None","kid":"rsa1"}"#), parts[1])),
        ("foreign key with our kid", sign(Algorithm::RS256, Some("rsa1"), &foreign, &good)),
        ("foreign key without kid", sign(Algorithm::RS256, None, &foreign, &good)),
        ("unknown kid", sign(Algorithm::RS256, Some("nope"), &foreign, &good)),
        ("wrong iss", rsa(&claims("https://evil.example", "rp-a", "U1", Some("SA"), 3600))),
        ("iss with trailing slash", rsa(&claims(&format!("{iss}/"), "rp-a", "U1", Some("SA"), 3600))),
        ("unknown audience", rsa(&claims(iss, "nope", "U1", Some("SA"), 3600))),
        ("tampered payload", format!("{}.{}.{}", parts[0], b64(&tampered_payload), parts[2])),
        ("tampered signature", format!("{}.{}.{}", parts[0], parts[1], b64(&sig))),
        (
            "HS256 keyed with the RSA public key",
            sign(Algorithm::HS256, Some("rsa1"), &EncodingKey::from_secret(&pubkey), &good),
        ),
        ("ES256 header on the RSA key", {
            let h = b64(br#"{"alg":"ES256","kid":"rsa1"}"#);
            format!("{h}.{}.{}", parts[1], parts[2])
        }),
        ("logout token as hint", rsa(&logout_token)),
        ("typ logout+jwt", jsonwebtoken::encode(&typed, &good, &rsa_key).unwrap()),
        ("JWE shape", format!("{}.a.b.c.d", parts[0])),
        ("garbage", "not-a-jwt".to_string()),
        ("bad base64", "!!!.???.***".to_string()),
        ("non-JSON header", format!("{}.{}.{}", b64(b"hello"), parts[1], parts[2])),
        ("no exp", rsa(&json!({"iss": iss, "aud": "rp-a", "sub": "U1", "sid": "SA"}))),
        ("JWT access token (scope)", {
            let mut c = good.clone();
            c["scope"] = "openid profile".into();
            rsa(&c)
        }),
        ("Keycloak-style access token (typ Bearer)", {
            let mut c = good.clone();
            c["typ"] = "Bearer".into();
            rsa(&c)
        }),
        ("not valid yet (nbf an hour ahead)", {
            let mut c = good.clone();
            c["nbf"] = (now() + 3600).into();
            rsa(&c)
        }),
    ];
    all.extend(key_header_forgeries(&good, attacker));
    all
}

/// Control for the key-header forgeries: each parses, names its key as intended, and verifies
/// under the key it names, so a gateway that trusted the header would accept it. Their 400s
/// (logout::t4) are then for not trusting the header, not for a malformed token.
#[test]
fn key_header_forgeries_would_fool_a_verifier_that_trusted_the_header() {
    let good = claims("http://gw.example", "rp-a", "U1", Some("SA"), 3600);
    let foreign = jsonwebtoken::DecodingKey::from_jwk(&foreign_jwk()).unwrap();
    let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
    v.validate_aud = false;
    for (name, token) in key_header_forgeries(&good, "http://attacker.example") {
        let h = jsonwebtoken::decode_header(&token).unwrap_or_else(|e| panic!("{name}: {e}"));
        let named = h.jku.is_some() || h.x5u.is_some() || h.jwk.is_some() || h.x5c.is_some();
        assert!(named, "{name} names a key in its header");
        if h.alg == Algorithm::RS256 {
            jsonwebtoken::decode::<Value>(&token, &foreign, &v).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            assert_eq!(h.x5c_der().unwrap().map(|c| c.len()), Some(1), "{name}");
        }
    }
}
