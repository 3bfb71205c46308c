//! [`SessionStore`] for [`RedisStore`]: each operation as one bounded (and, where idempotent,
//! retried) call on the shared connection; the building blocks live in the parent module.

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl SessionStore for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    fn note(&self) -> Option<String> {
        self.replica_note()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.retried("ping", self.deadline(), |mut c: Link| async move {
            let c = &mut c;
            let pong: String = redis::cmd("PING").query_async(c).await?;
            if pong == "PONG" {
                Ok(())
            } else {
                Err(bad_reply("PING").into())
            }
        })
        .await
    }
}

#[async_trait]
impl Sessions for RedisStore {
    /// Retried: PUT merges as sets and the index pipeline is plain SETs (see `lua::PUT_LUA`).
    async fn put_session(&self, s: &NewSession) -> Result<PutResult, StoreError> {
        self.retried("put", self.deadline() * 2, |mut c: Link| async move {
            let c = &mut c;
            let (sid, reply) = self.put_script(c, s).await?;
            match reply.first().map(String::as_str) {
                Some("ok") => {}
                Some("conflict") if reply.get(1).is_some_and(|r| r == "session ended") => {
                    return Ok(PutResult::Conflict(Conflict::Ended))
                }
                Some("conflict") => return Ok(PutResult::Conflict(Conflict::AnotherSubject)),
                _ => return Err(bad_reply("put").into()),
            }
            self.put_indexes(c, s, &sid).await?;
            self.put_cookies(c, s, &sid).await?;
            Ok(PutResult::Stored(SessionView {
                sid,
                sub: s.sub.clone(),
                clients: reply.get(1).and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default(),
                client_sids: reply.get(2).and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default(),
                status: Status::Active,
                sealed: Vec::new(),
            }))
        })
        .await
    }

    async fn get_session(&self, sid: &str) -> Result<Option<SessionView>, StoreError> {
        self.retried("get", self.deadline(), |mut c: Link| async move { self.load(&mut c, sid).await }).await
    }

    /// Retried: reads, and an SREM of sids whose sessions are gone.
    async fn sessions_of(&self, sub: &str) -> Result<Vec<SessionView>, StoreError> {
        self.retried("by_sub", self.deadline() * 2, |mut c: Link| async move {
            let c = &mut c;
            let sids: Vec<String> = redis::cmd("SMEMBERS").arg(self.sub_key(sub)).query_async(c).await?;
            let mut out = Vec::new();
            let mut gone = Vec::new();
            for sid in sids.iter().take(1000) {
                match self.load(c, sid).await? {
                    Some(v) => out.push(v),
                    None => gone.push(sid.clone()),
                }
            }
            if !gone.is_empty() {
                let _: i64 = redis::cmd("SREM").arg(self.sub_key(sub)).arg(&gone).query_async(c).await?;
            }
            Ok(out)
        })
        .await
    }

    /// Retried: the END script is idempotent, its answer included, for one call id (see
    /// `lua::END_LUA`), and the revocation markers are plain SETs.
    async fn end_session(
        &self,
        sid: &str,
        expect_sub: Option<&str>,
        record_unknown: bool,
    ) -> Result<EndResult, StoreError> {
        let call = &call_id();
        self.retried("end", self.deadline() * 2, |mut c: Link| async move {
            let c = &mut c;
            self.end_all(c, sid, expect_sub, record_unknown, call).await
        })
        .await
    }

    async fn session_by_cookie(&self, cookie_hash: &str) -> Result<Option<String>, StoreError> {
        self.retried("by_cookie", self.deadline(), |mut c: Link| async move {
            let c = &mut c;
            let v: Option<String> = redis::cmd("GET").arg(self.cookie_key(cookie_hash)).query_async(c).await?;
            Ok(v.map(|v| cookie_owner(&v).to_string()))
        })
        .await
    }

    async fn session_by_token(&self, token_hash: &str) -> Result<Option<(String, String)>, StoreError> {
        self.retried("by_token", self.deadline(), |mut c: Link| async move {
            let c = &mut c;
            let v: Option<String> = redis::cmd("GET").arg(self.token_key(token_hash)).query_async(c).await?;
            Ok(v.and_then(|v| v.split_once(' ').map(|(s, c)| (s.to_string(), c.to_string()))))
        })
        .await
    }
}

#[async_trait]
impl Revocations for RedisStore {
    fn revoked_set(&self) -> std::sync::Arc<crate::session::RevokedSet> {
        self.set.clone()
    }

    #[cfg(test)]
    async fn is_revoked(&self, token_hash: &str) -> Result<bool, StoreError> {
        Ok(self.revoked_among(&[token_hash.to_string()]).await?.first().copied().unwrap_or(false))
    }

    async fn revoked_among(&self, hashes: &[String]) -> Result<Vec<bool>, StoreError> {
        self.marks_among(hashes).await
    }

    async fn revoke_hashes(&self, hashes: &[String]) -> Result<(), StoreError> {
        let marks: &[(String, Duration)] = &hashes.iter().map(|h| (h.clone(), self.ttls.tombstone)).collect::<Vec<_>>();
        self.retried("revoke", self.deadline(), |mut c: Link| async move {
            self.revoke_with(&mut c, marks).await?;
            self.wait_replicas(&mut c).await
        })
        .await
    }

    /// Retried: SET with EX is idempotent.
    async fn revoke_marks(&self, marks: &[(String, Duration)]) -> Result<(), StoreError> {
        self.retried("revoke", self.deadline(), |mut c: Link| async move {
            self.revoke_with(&mut c, marks).await?;
            self.wait_replicas(&mut c).await
        })
        .await
    }
}

#[async_trait]
impl CodeBindings for RedisStore {
    async fn bind_code(&self, code_hash: &str, cookie_hashes: &[String], ttl: Duration) -> Result<(), StoreError> {
        let json = &serde_json::to_string(cookie_hashes).map_err(|_| bad_reply("bind_code"))?;
        let secs = ttl.as_secs().max(1);
        self.retried("bind_code", self.deadline(), |mut c: Link| async move {
            let c = &mut c;
            // NX: first writer wins (a retry finds its own binding and changes nothing).
            Ok(redis::cmd("SET")
                .arg(self.code_key(code_hash))
                .arg(json)
                .arg("NX")
                .arg("EX")
                .arg(secs)
                .query_async::<()>(c)
                .await?)
        })
        .await
    }

    /// Retried: `lua::TAKE`, as for confirmation tokens.
    async fn take_code(&self, code_hash: &str) -> Result<Vec<String>, StoreError> {
        let call = &call_id();
        let v = self
            .retried("take_code", self.deadline(), |mut c: Link| async move {
                self.take(&mut c, &self.code_key(code_hash), call).await
            })
            .await?;
        Ok(v.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default())
    }
}

#[async_trait]
impl LearnedClients for RedisStore {
    async fn registered_client(&self, client_id: &str) -> Result<Option<String>, StoreError> {
        self.retried("client", self.deadline(), |mut c: Link| async move {
            let c = &mut c;
            Ok(redis::cmd("HGET").arg(self.clients_key()).arg(client_id).query_async(c).await?)
        })
        .await
    }

    /// Retried: `lua::LEARN_CLIENT_LUA` and HDEL are idempotent.
    async fn set_registered_client(
        &self,
        client_id: &str,
        metadata: Option<&str>,
        max: u64,
        lifetime: Duration,
    ) -> Result<bool, StoreError> {
        let oldest = now().saturating_sub(lifetime.as_secs());
        self.retried("client", self.deadline(), |mut c: Link| async move {
            let c = &mut c;
            let Some(m) = metadata else {
                let _: i64 = redis::cmd("HDEL").arg(self.clients_key()).arg(client_id).query_async(c).await?;
                return Ok(true);
            };
            let kept: i64 = redis::cmd("EVAL")
                .arg(crate::session::lua::LEARN_CLIENT_LUA)
                .arg(1)
                .arg(self.clients_key())
                .arg(client_id)
                .arg(m)
                .arg(max)
                .arg(oldest)
                .query_async(c)
                .await?;
            Ok(kept == 1)
        })
        .await
    }
}

#[async_trait]
impl Confirmations for RedisStore {
    /// Retried: a retry counts once more in the window (harmless: the cap is approximate) and
    /// sets the same value again.
    async fn put_pending(&self, token: &str, value: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ms = ttl.as_millis().max(1) as u64;
        let window = now() / ttl.as_secs().max(1);
        let counter = &format!("{}pc:{{{window}}}", self.prefix);
        self.retried("pending_put", self.deadline() * 2, |mut c: Link| async move {
            let c = &mut c;
            let (n,): (u64,) = redis::pipe()
                .cmd("INCR")
                .arg(counter)
                .cmd("PEXPIRE")
                .arg(counter)
                .arg(ms * 2)
                .ignore()
                .query_async(c)
                .await?;
            if n > crate::session::MAX_PENDING {
                return Ok(false);
            }
            redis::cmd("SET").arg(self.pending_key(token)).arg(value).arg("PX").arg(ms).query_async::<()>(c).await?;
            Ok(true)
        })
        .await
    }

    /// Retried: `lua::TAKE` answers a retry of the same call as it answered the first run.
    async fn take_pending(&self, token: &str) -> Result<Option<String>, StoreError> {
        let call = &call_id();
        self.retried("pending_take", self.deadline(), |mut c: Link| async move {
            self.take(&mut c, &self.pending_key(token), call).await
        })
        .await
    }
}

#[async_trait]
impl SigningKeys for RedisStore {
    async fn signing_keys(&self) -> Result<Vec<String>, StoreError> {
        self.retried("keys", self.deadline(), |mut c: Link| async move {
            let c = &mut c;
            Ok(redis::cmd("HVALS").arg(self.keys_key()).query_async(c).await?)
        })
        .await
    }

    /// Retried: a second run finds the key it installed young and changes nothing.
    async fn install_signing_key(
        &self,
        kid: &str,
        created: u64,
        candidate: &str,
        rotate_after: Duration,
    ) -> Result<Vec<String>, StoreError> {
        self.retried("keys", self.deadline(), |mut c: Link| async move {
            let c = &mut c;
            Ok(KEYS
                .key(self.keys_key())
                .arg(kid)
                .arg(created)
                .arg(candidate)
                .arg(rotate_after.as_secs())
                .arg(now())
                .invoke_async(c)
                .await?)
        })
        .await
    }
}

#[async_trait]
impl NoticeQueue for RedisStore {
    /// Once: XADD is not idempotent (a retry after a lost reply would queue every notice
    /// twice). The caller fails closed (503) and the user's next attempt enqueues them.
    async fn enqueue_notices(&self, notices: &[Notice]) -> Result<(), StoreError> {
        if notices.is_empty() {
            return Ok(());
        }
        self.once("enqueue", self.deadline(), |mut c: Link| async move {
            let c = &mut c;
            let mut pipe = redis::pipe();
            pipe.atomic();
            for n in notices {
                let json = serde_json::to_string(n).map_err(|_| bad_reply("enqueue"))?;
                pipe.cmd("XADD").arg(self.queue_key()).arg("*").arg("n").arg(json).ignore();
            }
            Ok(pipe.query_async::<()>(c).await?)
        })
        .await
    }

    /// Once: XREADGROUP hands out new entries to whoever asks; the worker asks again on its
    /// next round (and entries a lost reply took are claimed back after `claim_after`).
    async fn claim_notices(
        &self,
        consumer: &str,
        count: usize,
        claim_after: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.once("claim", self.deadline() * 2, |mut c: Link| async move {
            self.claim(&mut c, consumer, count, claim_after).await
        })
        .await
    }

    /// Retried: XACK and XDEL of an id are idempotent.
    async fn finish_notice(&self, id: &str) -> Result<(), StoreError> {
        self.retried("finish", self.deadline(), |mut c: Link| async move {
            let c = &mut c;
            let mut pipe = redis::pipe();
            Ok(self.ack_and_delete(pipe.atomic(), id).query_async::<()>(c).await?)
        })
        .await
    }

    /// Retried: ZADD of the same member and score, XACK and XDEL are idempotent.
    async fn retry_notice(&self, id: &str, notice: &Notice, due_ms: u64) -> Result<(), StoreError> {
        let json = &serde_json::to_string(notice).map_err(|_| bad_reply("retry"))?;
        self.retried("retry", self.deadline(), |mut c: Link| async move {
            let c = &mut c;
            let mut pipe = redis::pipe();
            pipe.atomic().cmd("ZADD").arg(self.retry_key()).arg(due_ms).arg(json).ignore();
            Ok(self.ack_and_delete(&mut pipe, id).query_async::<()>(c).await?)
        })
        .await
    }

    /// Retried: see `lua::PROMOTE_LUA`.
    async fn promote_due_notices(&self, now_ms: u64) -> Result<u64, StoreError> {
        self.retried("promote", self.deadline(), |mut c: Link| async move {
            let c = &mut c;
            Ok(PROMOTE.key(self.retry_key()).key(self.queue_key()).arg(now_ms).invoke_async(c).await?)
        })
        .await
    }

    async fn notice_depth(&self) -> Result<u64, StoreError> {
        self.retried("depth", self.deadline(), |mut c: Link| async move {
            let c = &mut c;
            let (q, r): (u64, u64) = redis::pipe()
                .cmd("XLEN")
                .arg(self.queue_key())
                .cmd("ZCARD")
                .arg(self.retry_key())
                .query_async(c)
                .await?;
            Ok(q + r)
        })
        .await
    }
}
