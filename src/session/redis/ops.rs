//! The multi-step operations behind [`super::store`]: ending sessions (with their aliases),
//! taking single-use keys, writing a session with its indexes and cookie claims, and claiming
//! back-channel notices. Each runs on a connection the caller's bounded attempt hands in.

#[allow(clippy::wildcard_imports)]
use super::*;

impl RedisStore {
    /// One run of the END script (`call` makes a retry answer as the first run did).
    pub(super) async fn end_once(
        &self,
        c: &mut ConnectionManager,
        sid: &str,
        expect_sub: Option<&str>,
        record_unknown: bool,
        call: &str,
    ) -> Attempt<Vec<String>> {
        Ok(END
            .key(self.session_key(sid))
            .arg(expect_sub.unwrap_or(""))
            .arg(if record_unknown { "1" } else { "0" })
            .arg(self.ttls.tombstone.as_secs().max(1))
            .arg(now())
            .arg(call)
            .invoke_async(c)
            .await?)
    }

    /// The whole logout of `sid` on one connection: END (on the primary when `sid` is an alias),
    /// then the revocation markers of the session's tokens and cookies. Idempotent per `call`.
    pub(super) async fn end_all(
        &self,
        c: &mut ConnectionManager,
        sid: &str,
        expect_sub: Option<&str>,
        record_unknown: bool,
        call: &str,
    ) -> Attempt<EndResult> {
        let mut primary = sid.to_string();
        let mut r = self.end_once(c, sid, expect_sub, record_unknown, call).await?;
        if r.first().map(String::as_str) == Some("alias") {
            primary = r.get(1).cloned().ok_or_else(|| bad_reply("end"))?;
            r = self.end_once(c, &primary, expect_sub, false, call).await?;
        }
        // The session's tokens become refusable at the edge (their own keys: one pipeline,
        // and only when the session had tokens).
        let mut sealed = Vec::new();
        if matches!(r.first().map(String::as_str), Some("ended" | "already")) {
            let tokens: Vec<String> = r.get(4).and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
            let cookies: Vec<String> = r.get(5).and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
            let (marks, s) = crate::session::revocations(&tokens, &cookies, self.ttls.tombstone, now());
            self.revoke_with(c, &marks).await?;
            sealed = s;
        }
        self.wait_replicas(c).await?;
        Ok(match r.first().map(String::as_str) {
            // Only the call that ended the session hands out the sealed tokens.
            Some("ended") => EndResult::Ended(SessionView { sealed, ..view_from_reply(&primary, &r) }),
            Some("already") => EndResult::AlreadyEnded(view_from_reply(&primary, &r)),
            Some("recorded") => EndResult::Recorded,
            Some("unknown") => EndResult::Unknown,
            Some("mismatch") => EndResult::SubjectMismatch,
            _ => return Err(bad_reply("end").into()),
        })
    }

    /// `replica_acks`: WAIT until that many replicas have every write this connection made, at
    /// most `response_timeout` less a margin (so the answer comes before the call's own
    /// timeout); fewer is a failure (the caller answers 503: nothing claims a logout that a
    /// failover could lose).
    pub(super) async fn wait_replicas(&self, c: &mut ConnectionManager) -> Attempt<()> {
        let wanted = self.config.replica_acks;
        if wanted == 0 {
            return Ok(());
        }
        // Redis checks blocked clients' timeouts about every 100 ms (hz 10): leave that margin.
        let rt = self.config.response_timeout.as_millis() as u64;
        let ms = rt.saturating_sub((rt / 4).max(150)).max(10);
        let got: u32 = redis::cmd("WAIT").arg(wanted).arg(ms).query_async(c).await?;
        if got < wanted {
            crate::metrics::Metrics::get().store_errors.with_label_values(&["replica_acks"]).inc();
            self.replica_acks_failed.store(super::now_ms(), std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(wanted, got, "write not acknowledged by enough replicas: answering 503");
            return Err(StoreError::ReplicaAcks { wanted, got }.into());
        }
        Ok(())
    }

    /// While writes that end sessions were refused for missing replica acknowledgements in the
    /// last 10 seconds: the gateway still proxies (ready), but logouts answer 503.
    pub(super) fn replica_note(&self) -> Option<String> {
        let at = self.replica_acks_failed.load(std::sync::atomic::Ordering::Relaxed);
        let recent = at > 0 && super::now_ms().saturating_sub(at) < 10_000;
        recent.then(|| {
            format!(
                "logouts answer 503: fewer than session_store.redis.replica_acks ({}) replicas acknowledged the last write",
                self.config.replica_acks
            )
        })
    }

    pub(super) async fn load(&self, c: &mut ConnectionManager, sid: &str) -> Attempt<Option<SessionView>> {
        let h: BTreeMap<String, String> = redis::cmd("HGETALL").arg(self.session_key(sid)).query_async(c).await?;
        if let Some(p) = h.get("p") {
            let h: BTreeMap<String, String> = redis::cmd("HGETALL").arg(self.session_key(p)).query_async(c).await?;
            return Ok(view_of(p, &h));
        }
        Ok(view_of(sid, &h))
    }

    /// Take a single-use value (see `lua::TAKE`): idempotent per `call`, single use across calls.
    pub(super) async fn take(&self, c: &mut ConnectionManager, key: &str, call: &str) -> Attempt<Option<String>> {
        let receipt_ms = (self.deadline() * 4).as_millis().max(1000) as u64;
        Ok(TAKE.key(key).key(format!("{key}:r")).arg(call).arg(receipt_ms).invoke_async(c).await?)
    }

    /// PUT on `sid`, following at most one alias hop (an alias always points at a primary).
    /// Returns the primary sid and the script's reply.
    pub(super) async fn put_script(&self, c: &mut ConnectionManager, s: &NewSession) -> Attempt<(String, Vec<String>)> {
        let clients = serde_json::to_string(&s.clients).map_err(|_| bad_reply("put"))?;
        let csids = serde_json::to_string(&s.client_sids).map_err(|_| bad_reply("put"))?;
        let encoded: Vec<String> = s.tokens.iter().map(crate::session::Token::encode).collect();
        let tokens = serde_json::to_string(&encoded).map_err(|_| bad_reply("put"))?;
        let mut sid = s.sid.clone();
        let mut reply: Vec<String> = Vec::new();
        for _ in 0..2 {
            reply = PUT
                .key(self.session_key(&sid))
                .arg(&s.sub)
                .arg(&clients)
                .arg(&csids)
                .arg(self.ttls.session.as_secs().max(1))
                .arg(now())
                .arg(&tokens)
                .arg(crate::session::MAX_COOKIES)
                .arg("[]")
                .invoke_async(c)
                .await?;
            match reply.first().map(String::as_str) {
                Some("alias") => sid = reply.get(1).cloned().ok_or_else(|| bad_reply("put"))?,
                _ => break,
            }
        }
        Ok((sid, reply))
    }

    /// After PUT: aliases for the other client sids, the cookie and token indexes and the
    /// subject index, in one pipeline. Idempotent: ALIAS, SET, SADD and EXPIRE.
    pub(super) async fn put_indexes(&self, c: &mut ConnectionManager, s: &NewSession, sid: &str) -> Attempt<()> {
        let ttl = self.ttls.session.as_secs().max(1);
        let mut pipe = redis::pipe();
        for csid in s.client_sids.values().filter(|c| c.as_str() != sid && !c.is_empty()) {
            let k = self.session_key(csid);
            pipe.cmd("EVAL").arg(ALIAS_LUA).arg(1).arg(&k).arg(sid).arg(ttl).ignore();
        }
        // Token hash -> "sid client" (for end_session with an access token as hint).
        let client = s.clients.first().cloned().unwrap_or_default();
        let now = now();
        for t in &s.tokens {
            let token_ttl = t.expires_at.saturating_sub(now).max(1);
            pipe.cmd("SET")
                .arg(self.token_key(&t.hash))
                .arg(format!("{sid} {client}"))
                .arg("EX")
                .arg(token_ttl)
                .ignore();
        }
        let uk = self.sub_key(&s.sub);
        pipe.cmd("SADD").arg(&uk).arg(sid).ignore();
        pipe.cmd("EXPIRE").arg(&uk).arg(ttl).ignore();
        Ok(pipe.query_async::<()>(c).await?)
    }

    /// After PUT: bind the session's OP cookies (see `lua::CLAIM_LUA`; a cookie of another
    /// subject's session stays there) and add the bound ones to the session's list. When the
    /// session ended meanwhile (a logout raced this learning), the cookies are revoked instead.
    /// Idempotent: CLAIM and ADD_COOKIES are.
    pub(super) async fn put_cookies(&self, c: &mut ConnectionManager, s: &NewSession, sid: &str) -> Attempt<()> {
        if s.cookie_hashes.is_empty() {
            return Ok(());
        }
        let ttl = self.ttls.session.as_secs().max(1);
        let mut pipe = redis::pipe();
        for ck in &s.cookie_hashes {
            pipe.cmd("EVAL").arg(CLAIM_LUA).arg(1).arg(self.cookie_key(ck)).arg(sid).arg(&s.sub).arg(ttl);
        }
        let bound: Vec<i64> = pipe.query_async(c).await?;
        let claimed: Vec<String> =
            s.cookie_hashes.iter().zip(bound).filter(|(_, b)| *b == 1).map(|(ck, _)| ck.clone()).collect();
        if claimed.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_string(&claimed).map_err(|_| bad_reply("put"))?;
        let added: String =
            ADD_COOKIES.key(self.session_key(sid)).arg(crate::session::MAX_COOKIES).arg(json).invoke_async(c).await?;
        if added == "ended" {
            let marks: Vec<(String, Duration)> = claimed.into_iter().map(|ck| (ck, self.ttls.tombstone)).collect();
            self.revoke_with(c, &marks).await?;
        }
        Ok(())
    }

    /// Stale entries (taken by a consumer that died) first, then new ones; never blocks.
    pub(super) async fn claim(
        &self,
        c: &mut ConnectionManager,
        consumer: &str,
        count: usize,
        after: Duration,
    ) -> Attempt<Vec<Claimed>> {
        let stale: redis::Value = match redis::cmd("XAUTOCLAIM")
            .arg(self.queue_key())
            .arg(GROUP)
            .arg(consumer)
            .arg(after.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(c)
            .await
        {
            Ok(v) => v,
            Err(e) if e.code() == Some("NOGROUP") => {
                self.ensure_group(c).await?;
                redis::Value::Nil
            }
            Err(e) => return Err(e.into()),
        };
        let mut out = match &stale {
            redis::Value::Array(parts) => parts.get(1).map(stream_entries).unwrap_or_default(),
            _ => Vec::new(),
        };
        if out.len() < count {
            // No BLOCK: the connection is shared with logouts and must never stall.
            let fresh: redis::Value = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(consumer)
                .arg("COUNT")
                .arg(count - out.len())
                .arg("STREAMS")
                .arg(self.queue_key())
                .arg(">")
                .query_async(c)
                .await?;
            if let redis::Value::Array(streams) = &fresh {
                for st in streams {
                    if let redis::Value::Array(kv) = st {
                        if let Some(entries) = kv.get(1) {
                            out.extend(stream_entries(entries));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}
