//! Cryptographic primitives every layer may use: the gateway's signing keys (`keys`), random
//! tokens, and the SHA-256 under which credentials are stored and looked up. Imports nothing of
//! the crate.

use base64::Engine;

pub(crate) mod keys;

/// 128 random bits, URL-safe base64 without padding (nothing handlebars would escape).
pub(crate) fn random_token() -> String {
    let mut b = [0u8; 16];
    // getrandom fails only when the OS has no entropy source at all; there is no safe way to
    // go on without one.
    if getrandom::fill(&mut b).is_err() {
        tracing::error!("no OS randomness available");
        std::process::abort();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// SHA-256 (hex) of a token: how tokens are stored and looked up.
pub fn token_hash(token: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(token))
}

/// Lowercase hex of `bytes` (without a `format!` per byte).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// Whether a presented secret equals the expected one, in time that depends on neither (their
/// SHA-256 digests are compared without an early exit).
pub(crate) fn secrets_match(presented: &[u8], expected: &[u8]) -> bool {
    use sha2::Digest;
    let (a, b) = (sha2::Sha256::digest(presented), sha2::Sha256::digest(expected));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_hash_is_lowercase_hex_sha256() {
        // FIPS 180-2, appendix B.1 and B.2.
        assert_eq!(super::token_hash(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(
            super::token_hash(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(super::hex(&[]), "");
    }
}
