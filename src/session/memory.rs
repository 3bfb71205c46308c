//! In-process session store: one gateway instance only (no sharing, lost on restart). Same
//! semantics as the Redis store, including TTLs; expired entries are dropped when touched and
//! swept on writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

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
impl Sessions for MemoryStore {
    async fn put_session(&self, s: &NewSession) -> Result<PutResult, StoreError> {
        let mut st = self.lock()?;
        st.sweep();
        let (sid, mut clients, mut client_sids, mut tokens, mut cookies) = match st.resolve(&s.sid) {
            Some((_, Entry::Session { sub, .. })) if sub != s.sub => {
                return Ok(PutResult::Conflict(Conflict::AnotherSubject))
            }
            Some((_, Entry::Session { ended: true, .. })) => return Ok(PutResult::Conflict(Conflict::Ended)),
            Some((p, Entry::Session { clients, client_sids, tokens, cookies, .. })) => {
                (p, clients, client_sids, tokens, cookies)
            }
            _ => (s.sid.clone(), Vec::new(), BTreeMap::new(), Vec::new(), Vec::new()),
        };
        let claimed = st.claim_cookies(&s.cookie_hashes, &s.sub);
        union(&mut cookies, &claimed);
        for ck in claimed {
            st.by_cookie.insert(ck, sid.clone());
        }
        let client = s.clients.first().cloned().unwrap_or_default();
        let now = super::unix_now();
        for t in &s.tokens {
            let exp = Instant::now() + Duration::from_secs(t.expires_at.saturating_sub(now));
            st.by_token.insert(t.hash.clone(), (sid.clone(), client.clone(), exp));
        }
        // A set, as in Redis (where it keeps a retried PUT idempotent).
        union(&mut tokens, &s.tokens.iter().map(super::Token::encode).collect::<Vec<_>>());
        super::prune_expired(&mut tokens, now);
        union(&mut clients, &s.clients);
        union(&mut clients, &s.client_sids.keys().cloned().collect::<Vec<_>>());
        client_sids.extend(s.client_sids.clone());
        let exp = Instant::now() + self.ttls.session;
        let entry = Entry::Session {
            sub: s.sub.clone(),
            ended: false,
            clients,
            client_sids: client_sids.clone(),
            tokens,
            cookies,
        };
        let v = view(&sid, &entry);
        st.sessions.insert(sid.clone(), (entry, exp));
        for csid in client_sids.values().filter(|c| **c != sid) {
            let keep = match st.live(csid) {
                None => true,
                Some(Entry::Alias(p)) => p == sid,
                Some(_) => false,
            };
            if keep {
                st.sessions.insert(csid.clone(), (Entry::Alias(sid.clone()), exp));
            }
        }
        let list = st.by_sub.entry(s.sub.clone()).or_default();
        if !list.contains(&sid) {
            list.push(sid);
        }
        Ok(v.map_or(PutResult::Conflict(Conflict::AnotherSubject), PutResult::Stored))
    }

    async fn get_session(&self, sid: &str) -> Result<Option<SessionView>, StoreError> {
        let mut st = self.lock()?;
        Ok(st.resolve(sid).and_then(|(p, e)| view(&p, &e)))
    }

    async fn sessions_of(&self, sub: &str) -> Result<Vec<SessionView>, StoreError> {
        let mut st = self.lock()?;
        let sids = st.by_sub.get(sub).cloned().unwrap_or_default();
        let found: Vec<_> = sids.iter().filter_map(|sid| st.resolve(sid).and_then(|(p, e)| view(&p, &e))).collect();
        let keep: Vec<String> = found.iter().map(|v| v.sid.clone()).collect();
        if keep.is_empty() {
            st.by_sub.remove(sub);
        } else {
            st.by_sub.insert(sub.to_string(), keep);
        }
        Ok(found)
    }

    async fn end_session(
        &self,
        sid: &str,
        expect_sub: Option<&str>,
        record_unknown: bool,
    ) -> Result<EndResult, StoreError> {
        let mut st = self.lock()?;
        st.sweep();
        let tomb = Instant::now() + self.ttls.tombstone;
        match st.resolve(sid) {
            None if record_unknown => {
                let sub = expect_sub.unwrap_or_default().to_string();
                let entry = Entry::Session {
                    sub,
                    ended: true,
                    clients: Vec::new(),
                    client_sids: BTreeMap::new(),
                    tokens: Vec::new(),
                    cookies: Vec::new(),
                };
                st.sessions.insert(sid.to_string(), (entry, tomb));
                Ok(EndResult::Recorded)
            }
            None | Some((_, Entry::Alias(_))) => Ok(EndResult::Unknown),
            Some((_, Entry::Session { sub, .. })) if expect_sub.is_some_and(|e| e != sub) => {
                Ok(EndResult::SubjectMismatch)
            }
            Some((p, e @ Entry::Session { ended: true, .. })) => {
                // Idempotent: the tombstone keeps its original expiry.
                Ok(view(&p, &e).map_or(EndResult::Unknown, EndResult::AlreadyEnded))
            }
            Some((p, Entry::Session { sub, clients, client_sids, tokens, cookies, .. })) => {
                let (marks, sealed) = super::revocations(&tokens, &cookies, self.ttls.tombstone, super::unix_now());
                self.set.insert(set_marks(&marks));
                for (h, ttl) in marks {
                    st.revoked.insert(h, Instant::now() + ttl);
                }
                let entry = Entry::Session { sub, ended: true, clients, client_sids, tokens, cookies };
                let v = view(&p, &entry).map(|v| SessionView { sealed, ..v });
                st.sessions.insert(p, (entry, tomb));
                Ok(v.map_or(EndResult::Unknown, EndResult::Ended))
            }
        }
    }

    async fn session_by_cookie(&self, cookie_hash: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock()?.by_cookie.get(cookie_hash).cloned())
    }

    async fn session_by_token(&self, token_hash: &str) -> Result<Option<(String, String)>, StoreError> {
        let st = self.lock()?;
        Ok(st
            .by_token
            .get(token_hash)
            .filter(|(_, _, exp)| *exp > Instant::now())
            .map(|(s, c, _)| (s.clone(), c.clone())))
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
            let oldest = super::unix_now().saturating_sub(lifetime.as_secs());
            st.registered.retain(|_, json| super::learned_at(json) > oldest);
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
        if st.pending.len() as u64 >= super::MAX_PENDING {
            st.pending.retain(|_, (_, exp)| *exp > now);
            if st.pending.len() as u64 >= super::MAX_PENDING {
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

#[async_trait]
impl NoticeQueue for MemoryStore {
    async fn enqueue_notices(&self, notices: &[Notice]) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        for n in notices {
            st.next_id += 1;
            let id = st.next_id;
            st.queue.insert(id, (n.clone(), false));
        }
        Ok(())
    }

    async fn claim_notices(
        &self,
        _consumer: &str,
        count: usize,
        _claim_after: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        // One process: nothing is ever abandoned by another consumer.
        let mut st = self.lock()?;
        let mut out = Vec::new();
        for (id, (n, taken)) in st.queue.iter_mut().filter(|(_, (_, t))| !*t).take(count) {
            *taken = true;
            out.push(Claimed { id: id.to_string(), notice: n.clone() });
        }
        Ok(out)
    }

    async fn finish_notice(&self, id: &str) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        if let Ok(id) = id.parse::<u64>() {
            st.queue.remove(&id);
        }
        Ok(())
    }

    async fn retry_notice(&self, id: &str, notice: &Notice, due_ms: u64) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        if let Ok(id) = id.parse::<u64>() {
            st.queue.remove(&id);
        }
        st.retries.push((due_ms, notice.clone()));
        Ok(())
    }

    async fn promote_due_notices(&self, now_ms: u64) -> Result<u64, StoreError> {
        let mut st = self.lock()?;
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut st.retries).into_iter().partition(|(d, _)| *d <= now_ms);
        st.retries = later;
        let moved = due.len() as u64;
        for (_, n) in due {
            st.next_id += 1;
            let id = st.next_id;
            st.queue.insert(id, (n, false));
        }
        Ok(moved)
    }

    async fn notice_depth(&self) -> Result<u64, StoreError> {
        let st = self.lock()?;
        Ok((st.queue.len() + st.retries.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> MemoryStore {
        MemoryStore::new(Ttls { session: Duration::from_secs(60), tombstone: Duration::from_secs(60) })
    }

    #[tokio::test]
    async fn confirmation_contexts_are_capped() {
        let s = store();
        for i in 0..super::super::MAX_PENDING {
            assert!(s.put_pending(&i.to_string(), "{}", Duration::from_secs(60)).await.unwrap());
        }
        assert!(!s.put_pending("one-more", "{}", Duration::from_secs(60)).await.unwrap());
        assert_eq!(s.take_pending("one-more").await.unwrap(), None);
        // Taking one frees a place.
        assert!(s.take_pending("7").await.unwrap().is_some());
        assert!(s.put_pending("one-more", "{}", Duration::from_secs(60)).await.unwrap());
    }

    #[tokio::test]
    async fn a_code_binding_is_never_replaced() {
        let s = store();
        s.bind_code("c", &["victim".into()], Duration::from_secs(60)).await.unwrap();
        s.bind_code("c", &["attacker".into()], Duration::from_secs(60)).await.unwrap();
        assert_eq!(s.take_code("c").await.unwrap(), vec!["victim".to_string()]);
    }
}
