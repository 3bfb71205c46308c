//! The upstream's keys as the hint check uses them: only signature keys of asymmetric families,
//! each with the algorithms that fit it (never `none`, never HMAC: a public key is not a shared
//! secret), indexed by kid.

use std::collections::HashMap;
use std::str::FromStr;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// One usable verification key.
pub(crate) struct Key {
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) key: DecodingKey,
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
        pool.into_iter().filter(|k| k.algorithms.contains(&alg)).collect()
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
        let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
        if let Some(kid) = &jwk.common.key_id {
            ks.by_kid.entry(kid.clone()).or_default().push(ks.keys.len());
        }
        ks.keys.push(Key { algorithms, key });
    }
    ks
}
