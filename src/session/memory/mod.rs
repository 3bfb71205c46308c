//! In-process session store: one gateway instance only (no sharing, lost on restart). Same
//! semantics as the Redis store, including TTLs; expired entries are dropped when touched and
//! swept on writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

mod queue;
mod receipts;
mod sessions;
mod streams;
#[cfg(test)]
mod tests;

use super::revoked::RevokedSet;
use super::{
    set_marks, union, Claimed, CodeBindings, Confirmations, Conflict, EndResult, LearnedClients, NewSession, Notice,
    NoticeQueue, PutResult, Revocations, SessionStore, SessionView, Sessions, SigningKeys, Status, StoreError, Ttls,
};

#[derive(Debug, Clone)]
enum Entry {
    Session {
        sub: String,
        ended: bool,
        clients: Vec<String>,
        client_sids: BTreeMap<String, String>,
        /// Encoded [`super::Token`]s.
        tokens: Vec<String>,
        cookies: Vec<String>,
    },
    Alias(String),
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, (Entry, Instant)>,
    by_sub: HashMap<String, Vec<String>>,
    pending: HashMap<String, (String, Instant)>,
    writes: u64,
    keys: Vec<(u64, String)>,
    /// Queued notices by id; `taken` marks the ones handed out.
    queue: BTreeMap<u64, (Notice, bool)>,
    retries: Vec<(u64, Notice)>,
    next_id: u64,
    /// Token and cookie hashes of ended sessions, with their expiry.
    revoked: HashMap<String, Instant>,
    /// Code hash → cookie hashes, with expiry.
    codes: HashMap<String, (Vec<String>, Instant)>,
    /// Cookie hash → primary sid.
    by_cookie: HashMap<String, String>,
    /// Token hash → (primary sid, client), with expiry.
    by_token: HashMap<String, (String, String, Instant)>,
    /// Clients learned from dynamic registration: client_id → metadata JSON.
    registered: HashMap<String, String>,
    /// Logout receipts by primary sid, with expiry.
    receipts: HashMap<String, (BTreeMap<String, String>, Instant)>,
    /// Front-channel report tickets by token, with expiry.
    tickets: HashMap<String, (String, Instant)>,
    /// Shared Signals streams by id.
    streams: streams::StreamsState,
}

pub(crate) struct MemoryStore {
    ttls: Ttls,
    state: Mutex<State>,
    /// The edge's revocation set; this store is its only source, so it is always current.
    set: Arc<RevokedSet>,
}

impl MemoryStore {
    pub(crate) fn new(ttls: Ttls) -> Self {
        MemoryStore { ttls, state: Mutex::new(State::default()), set: Arc::new(RevokedSet::authoritative()) }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, StoreError> {
        self.state.lock().map_err(|_| StoreError::Poisoned)
    }
}

impl State {
    fn live(&mut self, sid: &str) -> Option<Entry> {
        let now = Instant::now();
        match self.sessions.get(sid) {
            Some((e, exp)) if *exp > now => Some(e.clone()),
            Some(_) => {
                self.sessions.remove(sid);
                None
            }
            None => None,
        }
    }

    /// Follow an alias to (primary sid, entry).
    fn resolve(&mut self, sid: &str) -> Option<(String, Entry)> {
        match self.live(sid)? {
            Entry::Alias(p) => self.live(&p).map(|e| (p, e)),
            e => Some((sid.to_string(), e)),
        }
    }

    /// The cookies of `hashes` that may join a session of `sub`: a cookie bound to a session of
    /// another subject (live or ended) stays where it is.
    fn claim_cookies(&mut self, hashes: &[String], sub: &str) -> Vec<String> {
        let mut out = Vec::new();
        for ck in hashes {
            let owner = self.by_cookie.get(ck).cloned();
            let owner_sub = owner.and_then(|o| self.resolve(&o)).and_then(|(_, e)| match e {
                Entry::Session { sub, .. } => Some(sub),
                Entry::Alias(_) => None,
            });
            if owner_sub.is_none_or(|o| o == sub) {
                out.push(ck.clone());
            }
        }
        out
    }

    fn sweep(&mut self) {
        self.writes += 1;
        if self.writes.is_multiple_of(1024) {
            let now = Instant::now();
            self.sessions.retain(|_, (_, exp)| *exp > now);
            self.pending.retain(|_, (_, exp)| *exp > now);
            self.revoked.retain(|_, exp| *exp > now);
            self.by_token.retain(|_, (_, _, exp)| *exp > now);
            self.codes.retain(|_, (_, exp)| *exp > now);
            let sessions = &self.sessions;
            self.by_cookie.retain(|_, sid| sessions.contains_key(sid));
        }
    }
}

fn view(sid: &str, e: &Entry) -> Option<SessionView> {
    match e {
        Entry::Session { sub, ended, clients, client_sids, .. } => Some(SessionView {
            sid: sid.to_string(),
            sub: sub.clone(),
            clients: clients.clone(),
            client_sids: client_sids.clone(),
            status: if *ended { Status::Ended } else { Status::Active },
            sealed: Vec::new(),
        }),
        Entry::Alias(_) => None,
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.lock().map(|_| ())
    }
}

#[async_trait]
impl Revocations for MemoryStore {
    fn revoked_set(&self) -> Arc<RevokedSet> {
        self.set.clone()
    }

    #[cfg(test)]
    async fn is_revoked(&self, token_hash: &str) -> Result<bool, StoreError> {
        let st = self.lock()?;
        Ok(st.revoked.get(token_hash).is_some_and(|exp| *exp > Instant::now()))
    }

    async fn revoked_among(&self, hashes: &[String]) -> Result<Vec<bool>, StoreError> {
        let st = self.lock()?;
        let now = Instant::now();
        Ok(hashes.iter().map(|h| st.revoked.get(h).is_some_and(|exp| *exp > now)).collect())
    }

    async fn revoke_hashes(&self, hashes: &[String]) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        let exp = Instant::now() + self.ttls.tombstone;
        for h in hashes {
            st.revoked.insert(h.clone(), exp);
        }
        let marks: Vec<(String, Duration)> = hashes.iter().map(|h| (h.clone(), self.ttls.tombstone)).collect();
        self.set.insert(set_marks(&marks));
        Ok(())
    }

    async fn revoke_marks(&self, marks: &[(String, Duration)]) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        let now = Instant::now();
        for (h, ttl) in marks {
            st.revoked.insert(h.clone(), now + *ttl);
        }
        self.set.insert(set_marks(marks));
        Ok(())
    }
}

#[async_trait]
impl CodeBindings for MemoryStore {
    async fn bind_code(&self, code_hash: &str, cookie_hashes: &[String], ttl: Duration) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        let now = Instant::now();
        // First writer wins: a live binding is never replaced.
        if st.codes.get(code_hash).is_none_or(|(_, exp)| *exp <= now) {
            st.codes.insert(code_hash.to_string(), (cookie_hashes.to_vec(), now + ttl));
        }
        Ok(())
    }

    async fn take_code(&self, code_hash: &str) -> Result<Vec<String>, StoreError> {
        let mut st = self.lock()?;
        Ok(st.codes.remove(code_hash).filter(|(_, exp)| *exp > Instant::now()).map(|(c, _)| c).unwrap_or_default())
    }
}

#[async_trait]
impl LearnedClients for MemoryStore {
    async fn registered_client(&self, client_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock()?.registered.get(client_id).cloned())
    }

    async fn set_registered_client(
        &self,
        client_id: &str,
        metadata: Option<&str>,
        max: u64,
        lifetime: Duration,
    ) -> Result<bool, StoreError> {
        let mut st = self.lock()?;
        let Some(m) = metadata else {
            st.registered.remove(client_id);
            return Ok(true);
        };
        if !st.registered.contains_key(client_id) && st.registered.len() as u64 >= max {
            let oldest = crate::session::unix_now().saturating_sub(lifetime.as_secs());
            st.registered.retain(|_, json| crate::session::learned_at(json) > oldest);
            if st.registered.len() as u64 >= max {
                return Ok(false);
            }
        }
        st.registered.insert(client_id.to_string(), m.to_string());
        Ok(true)
    }
}

#[async_trait]
impl Confirmations for MemoryStore {
    async fn put_pending(&self, token: &str, value: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut st = self.lock()?;
        st.sweep();
        let now = Instant::now();
        if st.pending.len() as u64 >= crate::session::MAX_PENDING {
            st.pending.retain(|_, (_, exp)| *exp > now);
            if st.pending.len() as u64 >= crate::session::MAX_PENDING {
                return Ok(false);
            }
        }
        st.pending.insert(token.to_string(), (value.to_string(), now + ttl));
        Ok(true)
    }

    async fn take_pending(&self, token: &str) -> Result<Option<String>, StoreError> {
        let mut st = self.lock()?;
        Ok(st.pending.remove(token).filter(|(_, exp)| *exp > Instant::now()).map(|(v, _)| v))
    }
}

#[async_trait]
impl SigningKeys for MemoryStore {
    async fn signing_keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.lock()?.keys.iter().map(|(_, k)| k.clone()).collect())
    }

    async fn install_signing_key(
        &self,
        _kid: &str,
        created: u64,
        candidate: &str,
        rotate_after: Duration,
    ) -> Result<Vec<String>, StoreError> {
        let mut st = self.lock()?;
        let newest = st.keys.iter().map(|(c, _)| *c).max();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        if newest.is_none_or(|n| n + rotate_after.as_secs() <= now) {
            st.keys.push((created, candidate.to_string()));
            st.keys.sort_by_key(|k| std::cmp::Reverse(k.0));
            st.keys.truncate(2);
        }
        Ok(st.keys.iter().map(|(_, k)| k.clone()).collect())
    }
}
