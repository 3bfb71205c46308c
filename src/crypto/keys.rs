//! The gateway's own signing keys for logout tokens (BCL-11, GW-04).
//!
//! Either a configured PEM file (RSA for RS256, EC P-256 for ES256), used as is, or keys the
//! gateway generates and keeps in the session store so every instance signs with the same key:
//! the first instance to find no current key installs one (atomically, in the store), and a key
//! older than `key_rotation` is replaced. The previous key stays published until the next
//! rotation, far longer than the 120 s a logout token lives. Public keys are served merged into
//! the upstream's JWKS.

use std::sync::Arc;

use arc_swap::ArcSwap;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A key as kept in the store: private PEM and metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredKey {
    pub(crate) kid: String,
    pub(crate) alg: String,
    pub(crate) pem: String,
    /// Unix seconds.
    pub(crate) created: u64,
}

/// One usable signing key.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) alg: Algorithm,
    pub(crate) key: EncodingKey,
    /// The public JWK (with kid, alg, use=sig).
    pub(crate) jwk: serde_json::Value,
    pub(crate) created: u64,
}

/// The keys in use: the newest signs, all are published.
#[derive(Default)]
pub(crate) struct KeyRing {
    pub(crate) keys: Vec<Arc<SigningKey>>,
}

impl KeyRing {
    pub(crate) fn active(&self) -> Option<&Arc<SigningKey>> {
        self.keys.iter().max_by_key(|k| k.created)
    }

    pub(crate) fn public_jwks(&self) -> Vec<serde_json::Value> {
        self.keys.iter().map(|k| k.jwk.clone()).collect()
    }
}

/// Shared, swappable key ring.
#[derive(Default)]
pub(crate) struct Keys {
    ring: ArcSwap<KeyRing>,
}

impl Keys {
    pub(crate) fn load(&self) -> Arc<KeyRing> {
        self.ring.load_full()
    }

    pub(crate) fn store(&self, ring: KeyRing) {
        self.ring.store(Arc::new(ring));
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// RFC 7638 thumbprint of the public JWK: a stable kid.
fn thumbprint(jwk: &serde_json::Value) -> String {
    let canon = match jwk["kty"].as_str() {
        Some("RSA") => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            jwk["e"].as_str().unwrap_or(""),
            jwk["n"].as_str().unwrap_or("")
        ),
        _ => format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap_or(""),
            jwk["y"].as_str().unwrap_or("")
        ),
    };
    b64(&Sha256::digest(canon.as_bytes()))
}

/// Build a signing key from a PEM private key (PKCS#8, or PKCS#1 for RSA, or SEC1 for EC).
pub(crate) fn from_pem(pem_text: &str, created: u64) -> Result<SigningKey, String> {
    let block = pem::parse(pem_text).map_err(|e| format!("not a PEM private key: {e}"))?;
    let der = block.contents();
    let (alg, jwk, key) =
        if let Ok(kp) = aws_lc_rs::rsa::KeyPair::from_pkcs8(der).or_else(|_| aws_lc_rs::rsa::KeyPair::from_der(der)) {
            if kp.public_modulus_len() < 256 {
                return Err("RSA keys must have at least 2048 bits".into());
            }
            let pk = kp.public_key();
            let jwk = serde_json::json!({
                "kty": "RSA",
                "n": b64(pk.modulus().big_endian_without_leading_zero()),
                "e": b64(pk.exponent().big_endian_without_leading_zero()),
            });
            let key = EncodingKey::from_rsa_pem(pem_text.as_bytes()).map_err(|e| format!("RSA key: {e}"))?;
            (Algorithm::RS256, jwk, key)
        } else {
            let alg = &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            let kp = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(alg, der)
                .or_else(|_| aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(alg, der))
                .map_err(|_| "neither an RSA nor an EC P-256 private key".to_string())?;
            let pt = kp.public_key().as_ref();
            if pt.len() != 65 {
                return Err("unexpected EC public key encoding".into());
            }
            let jwk = serde_json::json!({ "kty": "EC", "crv": "P-256", "x": b64(&pt[1..33]), "y": b64(&pt[33..65]) });
            let pkcs8 = kp.to_pkcs8v1().map_err(|_| "EC key export failed".to_string())?;
            let key = EncodingKey::from_ec_der(pkcs8.as_ref());
            (Algorithm::ES256, jwk, key)
        };
    let kid = thumbprint(&jwk);
    let mut jwk = jwk;
    jwk["kid"] = kid.clone().into();
    jwk["use"] = "sig".into();
    jwk["alg"] = if alg == Algorithm::RS256 { "RS256" } else { "ES256" }.into();
    Ok(SigningKey { kid, alg, key, jwk, created })
}

/// Turn a private JWK (RSA with n, e, d, p, q, dp, dq, qi; or EC P-256 with x, y, d) into the
/// PEM `from_pem` reads, so a configured key may come as a JWK file too.
pub(crate) fn jwk_to_pem(jwk_text: &str) -> Result<String, String> {
    let jwk: serde_json::Value = serde_json::from_str(jwk_text).map_err(|e| format!("not a JSON JWK: {e}"))?;
    let field = |k: &str| -> Result<Vec<u8>, String> {
        let v = jwk
            .get(k)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("JWK lacks \"{k}\" (a private key is needed)"))?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(v.trim_end_matches('='))
            .map_err(|_| format!("JWK field \"{k}\" is not base64url"))
    };
    match jwk.get("kty").and_then(|v| v.as_str()) {
        Some("RSA") => {
            // PKCS#1 RSAPrivateKey: SEQUENCE { 0, n, e, d, p, q, dp, dq, qi }.
            let mut body = der_integer(&[0]);
            for k in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
                body.extend(der_integer(&field(k)?));
            }
            Ok(pem::encode(&pem::Pem::new("RSA PRIVATE KEY", der_tlv(0x30, &body))))
        }
        Some("EC") if jwk.get("crv").and_then(|v| v.as_str()) == Some("P-256") => {
            let (x, y, d) = (field("x")?, field("y")?, field("d")?);
            let mut point = vec![4u8];
            point.extend(x);
            point.extend(y);
            let alg = &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            let kp = aws_lc_rs::signature::EcdsaKeyPair::from_private_key_and_public_key(alg, &d, &point)
                .map_err(|_| "the EC JWK's d, x and y do not form a P-256 key pair".to_string())?;
            let der = kp.to_pkcs8v1().map_err(|_| "EC key export failed".to_string())?;
            Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec())))
        }
        _ => Err("only RSA and EC P-256 JWKs are supported".into()),
    }
}

/// A DER INTEGER for an unsigned big-endian value.
fn der_integer(v: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    der_tlv(0x02, &v)
}

fn der_tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len: Vec<u8> = n.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
        out.push(0x80 | len.len() as u8);
        out.extend(len);
    }
    out.extend_from_slice(body);
    out
}

/// Generate a fresh key for `alg` (RS256: RSA 2048; ES256: P-256) as a storable PEM.
pub(crate) fn generate(alg: Algorithm, created: u64) -> Result<StoredKey, String> {
    let der = match alg {
        Algorithm::RS256 => {
            let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| "RSA key generation failed".to_string())?;
            kp.as_der().map_err(|_| "RSA key export failed".to_string())?.as_ref().to_vec()
        }
        Algorithm::ES256 => {
            let kp =
                aws_lc_rs::signature::EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| "EC key generation failed".to_string())?;
            kp.to_pkcs8v1().map_err(|_| "EC key export failed".to_string())?.as_ref().to_vec()
        }
        other => return Err(format!("{other:?} is not supported for logout tokens")),
    };
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der));
    let key = from_pem(&pem, created)?;
    Ok(StoredKey { kid: key.kid, alg: format!("{alg:?}"), pem, created })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_pem_and_sign_verifiable_tokens() {
        for alg in [Algorithm::RS256, Algorithm::ES256] {
            let stored = generate(alg, 1).unwrap();
            let key = from_pem(&stored.pem, 1).unwrap();
            assert_eq!(key.kid, stored.kid);
            assert_eq!(key.alg, alg);
            let mut h = jsonwebtoken::Header::new(alg);
            h.kid = Some(key.kid.clone());
            let t = jsonwebtoken::encode(&h, &serde_json::json!({"a": 1}), &key.key).unwrap();
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk.clone()).unwrap();
            let dk = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
            let mut v = jsonwebtoken::Validation::new(alg);
            v.required_spec_claims.clear();
            v.validate_exp = false;
            jsonwebtoken::decode::<serde_json::Value>(&t, &dk, &v).unwrap();
        }
    }

    #[test]
    fn private_jwks_convert_to_the_same_keys() {
        for alg in [Algorithm::RS256, Algorithm::ES256] {
            let stored = generate(alg, 1).unwrap();
            let key = from_pem(&stored.pem, 1).unwrap();
            // Rebuild the private JWK from the PEM with openssl-free parsing: aws-lc exports.
            let der = pem::parse(&stored.pem).unwrap().contents().to_vec();
            let jwk = match alg {
                Algorithm::ES256 => {
                    // PKCS#8 EC: the 32-byte private scalar follows the OCTET STRING tag 04 20.
                    let i = der.windows(2).position(|w| w == [0x04, 0x20]).unwrap() + 2;
                    let mut j = key.jwk.clone();
                    j["d"] = b64(&der[i..i + 32]).into();
                    j
                }
                _ => {
                    // Walk the PKCS#1 structure inside PKCS#8 to pick the integers.
                    let ints = der_integers(&der);
                    let names = ["n", "e", "d", "p", "q", "dp", "dq", "qi"];
                    let mut j = serde_json::json!({"kty": "RSA"});
                    for (k, v) in names.iter().zip(ints.iter().skip(1)) {
                        j[*k] = b64(v).into();
                    }
                    j
                }
            };
            let pem2 = jwk_to_pem(&jwk.to_string()).unwrap();
            assert_eq!(from_pem(&pem2, 1).unwrap().kid, key.kid, "{alg:?}");
        }
        assert!(jwk_to_pem(r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#).unwrap_err().contains("lacks"));
        assert!(jwk_to_pem(r#"{"kty":"oct","k":"AQAB"}"#).is_err());
    }

    /// All INTEGERs of the innermost RSAPrivateKey SEQUENCE (test helper).
    fn der_integers(der: &[u8]) -> Vec<Vec<u8>> {
        // Find "02 01 00 02 82" (version 0 then a long n): the RSAPrivateKey start.
        let start = der.windows(5).rposition(|w| w == [0x02, 0x01, 0x00, 0x02, 0x82]).unwrap();
        let mut i = start;
        let mut out = Vec::new();
        while i < der.len() && der[i] == 0x02 && out.len() < 9 {
            let (len, hdr) = match der[i + 1] {
                l if l < 0x80 => (l as usize, 2),
                0x81 => (der[i + 2] as usize, 3),
                _ => (((der[i + 2] as usize) << 8) | der[i + 3] as usize, 4),
            };
            out.push(der[i + hdr..i + hdr + len].to_vec());
            i += hdr + len;
        }
        out
    }

    #[test]
    fn fixture_pems_load_and_garbage_is_refused() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let rsa = from_pem(&std::fs::read_to_string(dir.join("rsa-op.pem")).unwrap(), 0).unwrap();
        assert_eq!(rsa.alg, Algorithm::RS256);
        let ec = from_pem(&std::fs::read_to_string(dir.join("ec-op.pem")).unwrap(), 0).unwrap();
        assert_eq!(ec.alg, Algorithm::ES256);
        assert!(from_pem("nope", 0).is_err());
        assert!(from_pem(&std::fs::read_to_string(dir.join("rsa-op.pub.pem")).unwrap(), 0).is_err());
    }
}
