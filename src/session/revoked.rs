//! The revocation set: each instance's in-memory copy of every credential a logout revoked, so
//! the edge can check every credential of every proxied request without a store round trip.
//!
//! An entry is the first 64 bits of the credential's SHA-256 with the unix second it expires
//! (the token's own expiry, or `tombstone_ttl` for OP cookies). A hit is treated as revoked
//! without asking the store: a clean credential collides with one of a million entries with
//! probability 2^-44 per request (and an attacker who manufactured a collision would only get
//! its own token refused). 16 bytes an entry in a hash table kept at most 7/8 full: 18 to 36 MB
//! per million entries (`bytes_per_entry` below, measured in bench/).
//!
//! Keeping it current (ARCHITECTURE.md, "The revocation set"):
//! - the memory store is the only store of its single instance: it feeds the set directly and
//!   the set is always current;
//! - with Redis, every revocation is written (atomically, one MULTI) to a sorted set (the
//!   snapshot) and to a stream (the live feed); this instance also inserts it at once. A
//!   background follower (`redis::follow`) loads the snapshot at start, then reads the stream
//!   with a blocking read; after a reconnect it continues from the last entry it saw, or
//!   reloads the snapshot when the stream was trimmed past it.
//! - `synced_ms` is when the follower last knew it had everything (the moment its last read
//!   was sent). If that is older than `max_lag` the set is *stale*: the edge then asks the store
//!   for each credential, and refuses where the store cannot answer (see `learn::enforce`).
//! - Expired entries are dropped on lookup and swept every minute.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

/// The key of a credential in the set: the first 64 bits of its SHA-256.
pub(crate) type Key = u64;

/// Bytes a hash-table slot takes (key, expiry, alignment) plus its control byte.
#[cfg(test)]
const BYTES_PER_SLOT: usize = std::mem::size_of::<(Key, u32)>() + 1;

/// The key of a SHA-256 digest.
pub fn key_of_digest(digest: &[u8; 32]) -> Key {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(b)
}

/// The key of a SHA-256 in hex (as the store keeps hashes), or None when it is not hex.
pub(crate) fn key_of_hex(hex: &str) -> Option<Key> {
    u64::from_str_radix(hex.get(..16)?, 16).ok()
}

/// The hex form of a key (what the Redis snapshot and feed carry).
pub(crate) fn hex_of_key(key: Key) -> String {
    format!("{key:016x}")
}

/// Keys are already uniformly distributed (SHA-256): hash them as themselves.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map = HashMap<Key, u32, BuildHasherDefault<Identity>>;

/// What the set can say about a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// In the set: a logout revoked it.
    Revoked,
    /// Not in the set, and the set is current: not revoked.
    Clean,
    /// Not in the set, but the set may be missing recent revocations: ask the store.
    Unsure,
}

pub struct RevokedSet {
    entries: RwLock<Map>,
    /// Unix milliseconds up to which the set is known to hold every revocation (0: never).
    synced_ms: AtomicU64,
    /// The set is the only copy (memory store): always current.
    authoritative: bool,
    /// How old `synced_ms` may be before the set counts as stale.
    max_lag: Duration,
    /// Unix seconds of the last sweep of expired entries.
    swept: AtomicU64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl RevokedSet {
    /// A set fed only by this process (memory store): always current.
    pub fn authoritative() -> Self {
        Self::new(true, Duration::ZERO)
    }

    /// A set followed from a shared store: stale until first synced, and when the last sync
    /// is older than `max_lag`.
    pub(crate) fn followed(max_lag: Duration) -> Self {
        Self::new(false, max_lag)
    }

    fn new(authoritative: bool, max_lag: Duration) -> Self {
        RevokedSet {
            entries: RwLock::new(Map::default()),
            synced_ms: AtomicU64::new(0),
            authoritative,
            max_lag,
            swept: AtomicU64::new(0),
        }
    }

    /// Add (or extend) revocations: (key, unix second it expires).
    pub fn insert(&self, marks: impl IntoIterator<Item = (Key, u64)>) {
        let now = now_ms() / 1000;
        let Ok(mut map) = self.entries.write() else { return };
        for (k, exp) in marks {
            if exp <= now {
                continue;
            }
            let exp = u32::try_from(exp).unwrap_or(u32::MAX);
            let e = map.entry(k).or_insert(exp);
            *e = (*e).max(exp);
        }
        drop(map);
        self.sweep_if_due(now);
    }

    /// What the set says about `key` now.
    pub fn verdict(&self, key: Key) -> Verdict {
        let now = now_ms() / 1000;
        let hit = self.entries.read().map(|m| m.get(&key).is_some_and(|exp| u64::from(*exp) > now)).unwrap_or(false);
        if hit {
            Verdict::Revoked
        } else if self.is_current() {
            Verdict::Clean
        } else {
            Verdict::Unsure
        }
    }

    /// Whether the set holds every revocation (up to `max_lag`).
    pub(crate) fn is_current(&self) -> bool {
        if self.authoritative {
            return true;
        }
        let synced = self.synced_ms.load(Ordering::Acquire);
        synced != 0 && now_ms().saturating_sub(synced) <= self.max_lag.as_millis() as u64
    }

    /// Whether the set was loaded at least once (for /readyz, with `is_current`).
    pub(crate) fn loaded(&self) -> bool {
        self.authoritative || self.synced_ms.load(Ordering::Acquire) != 0
    }

    /// The follower knows the set held everything written before `at_ms`.
    pub(crate) fn mark_synced(&self, at_ms: u64) {
        self.synced_ms.fetch_max(at_ms, Ordering::AcqRel);
    }

    /// Entries held (expired ones not yet swept included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.read().map(|m| m.len()).unwrap_or(0)
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the table takes now (slots times slot size; allocator overhead aside).
    #[cfg(test)]
    pub(crate) fn table_bytes(&self) -> usize {
        self.entries.read().map(|m| m.capacity() * BYTES_PER_SLOT).unwrap_or(0)
    }

    fn sweep_if_due(&self, now: u64) {
        let last = self.swept.load(Ordering::Relaxed);
        if now < last + 60 || self.swept.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return;
        }
        self.sweep(now);
    }

    /// Drop entries expired at `now` (unix seconds).
    pub(crate) fn sweep(&self, now: u64) {
        if let Ok(mut map) = self.entries.write() {
            map.retain(|_, exp| u64::from(*exp) > now);
        }
    }
}

/// Now in unix milliseconds (for the follower's sync marks).
pub(crate) fn unix_ms() -> u64 {
    now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn later(secs: u64) -> u64 {
        now_ms() / 1000 + secs
    }

    #[test]
    fn a_revoked_key_is_revoked_until_it_expires() {
        let set = RevokedSet::authoritative();
        set.insert([(1, later(60)), (2, later(0))]);
        assert_eq!(set.verdict(1), Verdict::Revoked);
        assert_eq!(set.verdict(2), Verdict::Clean, "an already expired mark is not kept");
        assert_eq!(set.verdict(3), Verdict::Clean);
        set.sweep(later(61));
        assert_eq!(set.verdict(1), Verdict::Clean);
        assert!(set.is_empty());
    }

    #[test]
    fn a_later_expiry_wins() {
        let set = RevokedSet::authoritative();
        set.insert([(7, later(100))]);
        set.insert([(7, later(10))]);
        set.sweep(later(50));
        assert_eq!(set.verdict(7), Verdict::Revoked);
    }

    #[test]
    fn a_followed_set_is_unsure_until_synced_and_when_lagging() {
        let set = RevokedSet::followed(Duration::from_secs(3));
        assert_eq!(set.verdict(5), Verdict::Unsure);
        assert!(!set.loaded());
        set.insert([(5, later(60))]);
        assert_eq!(set.verdict(5), Verdict::Revoked, "a hit needs no sync");
        set.mark_synced(now_ms());
        assert_eq!(set.verdict(6), Verdict::Clean);
        let old = RevokedSet::followed(Duration::from_secs(3));
        old.mark_synced(now_ms() - 4_000);
        assert!(old.loaded());
        assert_eq!(old.verdict(6), Verdict::Unsure);
    }

    #[test]
    fn keys_from_hex_and_digest_agree() {
        use sha2::Digest;
        let d: [u8; 32] = sha2::Sha256::digest(b"token").into();
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(key_of_hex(&hex), Some(key_of_digest(&d)));
        assert_eq!(hex_of_key(key_of_digest(&d)), hex[..16]);
        assert_eq!(key_of_hex("zz"), None);
    }

    #[test]
    fn a_million_entries_fit_the_documented_memory() {
        let set = RevokedSet::authoritative();
        let exp = later(3600);
        set.insert((0..1_000_000u64).map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15), exp)));
        assert_eq!(set.len(), 1_000_000);
        let bytes = set.table_bytes();
        assert!((18_000_000..=36_000_000).contains(&bytes), "{bytes} bytes for a million entries");
    }
}
