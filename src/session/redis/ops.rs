//! The multi-step operations behind [`super::store`]: ending sessions (with their aliases),
//! taking single-use keys, writing a session with its indexes and cookie claims, and claiming
//! back-channel notices. Each runs on a connection the caller's bounded attempt hands in.

#[allow(clippy::wildcard_imports)]
use super::*;

impl RedisStore {
    /// One run of the END script (`call` makes a retry answer as the first run did) after the
    /// marks of `published` were published.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn end_once(
        &self,
        c: &mut Link,
        sid: &str,
        expect_sub: Option<&str>,
        record_unknown: bool,
        (call, now): (&str, u64),
        published: &std::collections::BTreeSet<String>,
    ) -> Attempt<Vec<String>> {
        let published: serde_json::Map<String, serde_json::Value> =
            published.iter().map(|h| (h.clone(), serde_json::Value::from(1))).collect();
        Ok(END
            .key(self.session_key(sid))
            .arg(expect_sub.unwrap_or(""))
            .arg(if record_unknown { "1" } else { "0" })
            .arg(self.ttls.tombstone.as_secs().max(1))
            .arg(now)
            .arg(call)
            .arg(serde_json::Value::Object(published).to_string())
            .invoke_async(c)
            .await?)
    }

    /// The whole logout of `sid` on one connection: END (on the primary when `sid` is an alias);
    /// when END asks for it, the revocation marks of the session's tokens and cookies first, then
    /// END again (see `lua::END_LUA`: revoked before ended). Idempotent per `call`.
    pub(super) async fn end_all(
        &self,
        c: &mut Link,
        sid: &str,
        expect_sub: Option<&str>,
        record_unknown: bool,
        call: &str,
    ) -> Attempt<EndResult> {
        let now = now();
        let mut primary = sid.to_string();
        let mut published = std::collections::BTreeSet::new();
        let mut r = self.end_once(c, sid, expect_sub, record_unknown, (call, now), &published).await?;
        // An alias hop, then at most a few rounds of publishing (learning may add tokens meanwhile).
        for _ in 0..4 {
            match r.first().map(String::as_str) {
                Some("alias") if primary == sid => primary = r.get(1).cloned().ok_or_else(|| bad_reply("end"))?,
                Some("publish") => drop(self.publish_marks(c, &r, now, &mut published).await?),
                _ => break,
            }
            r = self.end_once(c, &primary, expect_sub, false, (call, now), &published).await?;
        }
        // The session's credentials become refusable at the edge; an already ended session's
        // are published again (idempotent), in case an earlier call stopped half-way.
        let mut sealed = Vec::new();
        if matches!(r.first().map(String::as_str), Some("ended" | "already")) {
            sealed = self.publish_marks(c, &r, now, &mut published).await?;
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

    /// Publish the marks of an END reply's tokens and cookies not yet in `published` (then
    /// added); the reply's sealed tokens.
    async fn publish_marks(
        &self,
        c: &mut Link,
        r: &[String],
        now: u64,
        published: &mut std::collections::BTreeSet<String>,
    ) -> Attempt<Vec<String>> {
        let tokens: Vec<String> = r.get(4).and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
        let cookies: Vec<String> = r.get(5).and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
        let (mut marks, sealed) = crate::session::revocations(&tokens, &cookies, self.ttls.tombstone, now);
        marks.retain(|(h, _)| !published.contains(h));
        self.revoke_with(c, &marks).await?;
        published.extend(marks.into_iter().map(|(h, _)| h));
        Ok(sealed)
    }

    /// One ZMSCORE on the snapshot set (`follow`): a mark counts while its expiry is ahead.
    pub(super) async fn marks_among(&self, hashes: &[String]) -> Result<Vec<bool>, StoreError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Option<String>> = hashes
            .iter()
            .map(|h| crate::session::revoked::key_of_hex(h).map(crate::session::revoked::hex_of_key))
            .collect();
        let asked: &Vec<&String> = &keys.iter().flatten().collect();
        if asked.is_empty() {
            return Ok(vec![false; hashes.len()]);
        }
        let found = self
            .retried("revoked", self.deadline(), |mut c: Link| async move {
                let c = &mut c;
                let scores: Vec<Option<f64>> =
                    redis::cmd("ZMSCORE").arg(follow::snapshot_key(&self.prefix)).arg(asked).query_async(c).await?;
                Ok(scores)
            })
            .await?;
        let now = now() as f64;
        let mut scores = found.into_iter();
        Ok(keys.iter().map(|k| k.is_some() && scores.next().flatten().is_some_and(|exp| exp > now)).collect())
    }

    /// `replica_acks`: WAIT until that many replicas have every write this connection made, at
    /// most `response_timeout` less a margin (so the answer comes before the call's own
    /// timeout); fewer is a failure (the caller answers 503: nothing claims a logout that a
    /// failover could lose).
    pub(super) async fn wait_replicas(&self, c: &mut Link) -> Attempt<()> {
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
            self.replica_acks_failed.store(crate::session::revoked::unix_ms(), std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(wanted, got, "write not acknowledged by enough replicas: answering 503");
            return Err(StoreError::ReplicaAcks { wanted, got }.into());
        }
        Ok(())
    }

    /// While writes that end sessions were refused for missing replica acknowledgements in the
    /// last 10 seconds: the gateway still proxies (ready), but logouts answer 503.
    pub(super) fn replica_note(&self) -> Option<String> {
        let at = self.replica_acks_failed.load(std::sync::atomic::Ordering::Relaxed);
        let recent = at > 0 && crate::session::revoked::unix_ms().saturating_sub(at) < 10_000;
        recent.then(|| {
            format!(
                "logouts answer 503: fewer than session_store.redis.replica_acks ({}) replicas acknowledged the last write",
                self.config.replica_acks
            )
        })
    }

    pub(super) async fn load(&self, c: &mut Link, sid: &str) -> Attempt<Option<SessionView>> {
        let h: BTreeMap<String, String> = redis::cmd("HGETALL").arg(self.session_key(sid)).query_async(c).await?;
        if let Some(p) = h.get("p") {
            let h: BTreeMap<String, String> = redis::cmd("HGETALL").arg(self.session_key(p)).query_async(c).await?;
            return Ok(view_of(p, &h));
        }
        Ok(view_of(sid, &h))
    }

    /// Take a single-use value (see `lua::TAKE`): idempotent per `call`, single use across calls.
    pub(super) async fn take(&self, c: &mut Link, key: &str, call: &str) -> Attempt<Option<String>> {
        let receipt_ms = (self.deadline() * 4).as_millis().max(1000) as u64;
        Ok(TAKE.key(key).key(format!("{key}:r")).arg(call).arg(receipt_ms).invoke_async(c).await?)
    }

    /// PUT on `sid`, following at most one alias hop (an alias always points at a primary).
    /// Returns the primary sid and the script's reply.
    pub(super) async fn put_script(&self, c: &mut Link, s: &NewSession) -> Attempt<(String, Vec<String>)> {
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

    /// After PUT: aliases for the other client sids, the token index and the subject index (in
    /// a cluster these live in other slots: one group per slot, see [`Link::each`]).
    /// Idempotent: ALIAS, SET, SADD and EXPIRE.
    pub(super) async fn put_indexes(&self, c: &mut Link, s: &NewSession, sid: &str) -> Attempt<()> {
        let ttl = self.ttls.session.as_secs().max(1);
        let mut groups: Vec<Vec<redis::Cmd>> = Vec::new();
        for csid in s.client_sids.values().filter(|c| c.as_str() != sid && !c.is_empty()) {
            let k = self.session_key(csid);
            groups.push(vec![redis::cmd("EVAL").arg(ALIAS_LUA).arg(1).arg(&k).arg(sid).arg(ttl).to_owned()]);
        }
        // Token hash -> "sid client" (for end_session with an access token as hint).
        let client = s.clients.first().cloned().unwrap_or_default();
        let now = now();
        for t in &s.tokens {
            let token_ttl = t.expires_at.saturating_sub(now).max(1);
            let set = redis::cmd("SET")
                .arg(self.token_key(&t.hash))
                .arg(format!("{sid} {client}"))
                .arg("EX")
                .arg(token_ttl)
                .to_owned();
            groups.push(vec![set]);
        }
        let uk = self.sub_key(&s.sub);
        groups.push(vec![
            redis::cmd("SADD").arg(&uk).arg(sid).to_owned(),
            redis::cmd("EXPIRE").arg(&uk).arg(ttl).to_owned(),
        ]);
        c.each(groups).await?;
        Ok(())
    }

    /// After PUT: bind the session's OP cookies (see `lua::CLAIM_LUA`; a cookie of another
    /// subject's session stays there) and add the bound ones to the session's list. When the
    /// session ended meanwhile (a logout raced this learning), the cookies are revoked instead.
    /// Idempotent: CLAIM and ADD_COOKIES are.
    pub(super) async fn put_cookies(&self, c: &mut Link, s: &NewSession, sid: &str) -> Attempt<()> {
        if s.cookie_hashes.is_empty() {
            return Ok(());
        }
        let ttl = self.ttls.session.as_secs().max(1);
        let claims = s
            .cookie_hashes
            .iter()
            .map(|ck| {
                vec![redis::cmd("EVAL")
                    .arg(CLAIM_LUA)
                    .arg(1)
                    .arg(self.cookie_key(ck))
                    .arg(sid)
                    .arg(&s.sub)
                    .arg(ttl)
                    .to_owned()]
            })
            .collect();
        let bound: Vec<i64> =
            c.each(claims).await?.iter().map(|v| redis::from_redis_value_ref(v).unwrap_or(0)).collect();
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
        c: &mut Link,
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
