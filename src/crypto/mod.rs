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
    sha2::Sha256::digest(token).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a presented secret equals the expected one, in time that depends on neither (their
/// SHA-256 digests are compared without an early exit).
pub(crate) fn secrets_match(presented: &[u8], expected: &[u8]) -> bool {
    use sha2::Digest;
    let (a, b) = (sha2::Sha256::digest(presented), sha2::Sha256::digest(expected));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
