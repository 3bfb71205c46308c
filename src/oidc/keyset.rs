//! The upstream's keys as the hint check uses them: only signature keys of asymmetric families,
//! each with the algorithms that fit it (never `none`, never HMAC: a public key is not a shared
//! secret), indexed by kid.
//!
//! Each key is parsed once, when the set is built, into one aws-lc public key per algorithm it
//! may verify. Verifying against a parsed key reuses its Montgomery context, which rebuilding
//! the key from `n` and `e` for every hint set up again each time (docs/performance.md).

use std::collections::HashMap;
use std::str::FromStr;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::Algorithm;

/// One usable verification key: parsed once for each algorithm it may verify.
pub(crate) struct Key {
    parsed: Vec<(Algorithm, ParsedPublicKey)>,
}

impl Key {
    fn fits(&self, alg: Algorithm) -> bool {
        self.parsed.iter().any(|(a, _)| *a == alg)
    }

    /// Whether `signature` (raw bytes) over `message` verifies under `alg` with this key.
    pub(crate) fn verifies(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.parsed.iter().any(|(a, k)| *a == alg && k.verify_sig(message, signature).is_ok())
    }
}

/// The current key set.
#[derive(Default)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<Key>,
    /// Index into `keys` by kid.
    by_kid: HashMap<String, Vec<usize>>,
}

impl KeySet {
    /// Keys that could have signed a token with this header: by kid when given, else all.
    pub(crate) fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<&Key> {
        let pool: Vec<&Key> = match kid {
            Some(k) => self.by_kid.get(k).map(|ix| ix.iter().map(|i| &self.keys[*i]).collect()).unwrap_or_default(),
            None => self.keys.iter().collect(),
        };
        pool.into_iter().filter(|k| k.fits(alg)).collect()
    }

    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }
}

/// The algorithms a JWK may verify: its `alg` if it names an allowed one, else its family's.
pub(crate) fn algorithms_for(jwk: &Jwk) -> Vec<Algorithm> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Vec::new();
    }
    let family: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => &[],
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
        // Symmetric ("oct") keys and anything unknown: never.
        _ => &[],
    };
    match &jwk.common.key_algorithm {
        None => family.to_vec(),
        Some(ka) => {
            let name = serde_json::to_value(ka).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
            match Algorithm::from_str(&name) {
                Ok(a) if family.contains(&a) => vec![a],
                _ => Vec::new(),
            }
        }
    }
}

/// The usable keys of a JWKS.
pub(crate) fn build_keyset(set: &JwkSet) -> KeySet {
    let mut ks = KeySet::default();
    for jwk in &set.keys {
        let algorithms = algorithms_for(jwk);
        if algorithms.is_empty() {
            continue;
        }
        // A key whose material does not parse is left out, like one of an unknown family.
        let Some(parsed) = parse(jwk, &algorithms) else { continue };
        if let Some(kid) = &jwk.common.key_id {
            ks.by_kid.entry(kid.clone()).or_default().push(ks.keys.len());
        }
        ks.keys.push(Key { parsed });
    }
    ks
}

/// aws-lc's verification algorithm for a JWS one of an EC or OKP key (RSA: [`rsa_parameters`]).
fn curve_algorithm(alg: Algorithm) -> Option<&'static dyn sig::VerificationAlgorithm> {
    Some(match alg {
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &sig::ED25519,
        _ => return None,
    })
}

/// aws-lc's parameters for a JWS RSA algorithm (keys of 2048 to 8192 bits).
fn rsa_parameters(alg: Algorithm) -> Option<&'static sig::RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// The JWK's public key parsed for each of `algorithms`, or `None` if its material is malformed
/// (bad base64url, not a point on the curve, inconsistent RSA components).
fn parse(jwk: &Jwk, algorithms: &[Algorithm]) -> Option<Vec<(Algorithm, ParsedPublicKey)>> {
    let b64 = |s: &str| URL_SAFE_NO_PAD.decode(s).ok();
    let mut out = Vec::with_capacity(algorithms.len());
    match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let (n, e) = (b64(&p.n)?, b64(&p.e)?);
            let components = RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() };
            for alg in algorithms {
                out.push((*alg, components.to_parsed_public_key(rsa_parameters(*alg)?).ok()?));
            }
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let mut point = vec![0x04];
            point.extend(b64(&p.x)?);
            point.extend(b64(&p.y)?);
            for alg in algorithms {
                out.push((*alg, ParsedPublicKey::new(curve_algorithm(*alg)?, &point).ok()?));
            }
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            let x = b64(&p.x)?;
            for alg in algorithms {
                out.push((*alg, ParsedPublicKey::new(curve_algorithm(*alg)?, &x).ok()?));
            }
        }
        _ => return None,
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    use serde_json::json;

    fn b64(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(b)
    }

    fn keyset(keys: Vec<serde_json::Value>) -> KeySet {
        build_keyset(&serde_json::from_value(json!({ "keys": keys })).unwrap())
    }

    /// A 2048-bit RSA key: its public JWK (without `alg`) and a signer for any RSA algorithm.
    fn rsa() -> (serde_json::Value, impl Fn(Algorithm, &[u8]) -> Vec<u8>) {
        let stored = crate::crypto::keys::generate(Algorithm::RS256, 1).unwrap();
        let key = crate::crypto::keys::from_pem(&stored.pem, 1).unwrap();
        let mut jwk = key.jwk.clone();
        jwk.as_object_mut().unwrap().remove("alg");
        let sign = move |alg: Algorithm, msg: &[u8]| {
            let t = jsonwebtoken::crypto::sign(msg, &key.key, alg).unwrap();
            URL_SAFE_NO_PAD.decode(t).unwrap()
        };
        (jwk, sign)
    }

    #[test]
    fn an_rsa_key_verifies_every_rsa_algorithm_and_nothing_forged() {
        let (jwk, sign) = rsa();
        let ks = keyset(vec![jwk]);
        let key = &ks.keys[0];
        for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS512] {
            let s = sign(alg, b"h.p");
            assert!(key.verifies(alg, b"h.p", &s), "{alg:?}");
            assert!(!key.verifies(alg, b"h.q", &s), "{alg:?} over another message");
        }
        // A PKCS#1 signature is not a PSS one, nor SHA-256 one a SHA-512 one.
        assert!(!key.verifies(Algorithm::PS256, b"h.p", &sign(Algorithm::RS256, b"h.p")));
        assert!(!key.verifies(Algorithm::RS512, b"h.p", &sign(Algorithm::RS256, b"h.p")));
        assert!(!key.verifies(Algorithm::ES256, b"h.p", &sign(Algorithm::RS256, b"h.p")));
    }

    #[test]
    fn a_keys_alg_restricts_it_and_another_key_does_not_verify() {
        let (mut jwk, sign) = rsa();
        jwk["alg"] = json!("PS256");
        jwk["kid"] = json!("a");
        let (mut other, _) = rsa();
        other["kid"] = json!("b");
        let ks = keyset(vec![jwk, other]);
        assert!(ks.candidates(Some("a"), Algorithm::RS256).is_empty());
        let s = sign(Algorithm::PS256, b"m");
        assert!(ks.candidates(Some("a"), Algorithm::PS256)[0].verifies(Algorithm::PS256, b"m", &s));
        assert!(!ks.candidates(Some("b"), Algorithm::PS256)[0].verifies(Algorithm::PS256, b"m", &s));
        assert_eq!(ks.candidates(None, Algorithm::PS256).len(), 2);
    }

    #[test]
    fn ec_and_ed25519_keys_verify_their_curve() {
        let rng = SystemRandom::new();
        for (signing, alg, crv, n) in [
            (&sig::ECDSA_P256_SHA256_FIXED_SIGNING, Algorithm::ES256, "P-256", 32),
            (&sig::ECDSA_P384_SHA384_FIXED_SIGNING, Algorithm::ES384, "P-384", 48),
        ] {
            let kp = EcdsaKeyPair::generate(signing).unwrap();
            let pt = kp.public_key().as_ref();
            let jwk = json!({"kty": "EC", "crv": crv, "x": b64(&pt[1..1 + n]), "y": b64(&pt[1 + n..])});
            let ks = keyset(vec![jwk]);
            let s = kp.sign(&rng, b"m").unwrap();
            assert!(ks.keys[0].verifies(alg, b"m", s.as_ref()), "{crv}");
            assert!(!ks.keys[0].verifies(alg, b"n", s.as_ref()), "{crv}");
        }
        let kp = Ed25519KeyPair::generate().unwrap();
        let ks = keyset(vec![json!({"kty": "OKP", "crv": "Ed25519", "x": b64(kp.public_key().as_ref())})]);
        let s = kp.sign(b"m");
        assert!(ks.keys[0].verifies(Algorithm::EdDSA, b"m", s.as_ref()));
        assert!(!ks.keys[0].verifies(Algorithm::EdDSA, b"n", s.as_ref()));
    }

    #[test]
    fn malformed_symmetric_and_encryption_keys_are_left_out() {
        let (good, _) = rsa();
        let kp = EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let x = b64(&kp.public_key().as_ref()[1..33]);
        let mut padded = good.clone();
        padded["n"] = json!(format!("{}==", good["n"].as_str().unwrap()));
        let mut enc = good.clone();
        enc["use"] = json!("enc");
        let ks = keyset(vec![
            good.clone(),
            // Not a point on the curve.
            json!({"kty": "EC", "crv": "P-256", "x": x, "y": x}),
            json!({"kty": "EC", "crv": "P-256", "x": "!!", "y": x}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[1; 31])}),
            json!({"kty": "oct", "k": b64(b"a shared secret")}),
            json!({"kty": "RSA", "n": b64(&[0; 256]), "e": "AQAB"}),
            padded,
            enc,
        ]);
        // Only the well-formed signature key is kept.
        assert_eq!(ks.keys.len(), 1);
    }
}
