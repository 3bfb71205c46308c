//! [`Sessions`] for [`MemoryStore`]: recording, merging, reading and ending sessions.

#[allow(clippy::wildcard_imports)]
use super::*;

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
        let now = crate::session::unix_now();
        for t in &s.tokens {
            let exp = Instant::now() + Duration::from_secs(t.expires_at.saturating_sub(now));
            st.by_token.insert(t.hash.clone(), (sid.clone(), client.clone(), exp));
        }
        // A set, as in Redis (where it keeps a retried PUT idempotent).
        union(&mut tokens, &s.tokens.iter().map(crate::session::Token::encode).collect::<Vec<_>>());
        crate::session::prune_expired(&mut tokens, now);
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
        for csid in client_sids.values().filter(|c| **c != sid && !c.is_empty()) {
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
                let (marks, sealed) =
                    crate::session::revocations(&tokens, &cookies, self.ttls.tombstone, crate::session::unix_now());
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
