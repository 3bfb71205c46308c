//! Redis session store (redis-rs 1.x, one multiplexed `ConnectionManager` per process).
//!
//! Keys (prefix `lgw:` by default) carry the sid or subject as a hash tag, so every key a
//! script touches lives in one Redis Cluster slot:
//! - `lgw:s:{sid}` hash: `sub`, `st` (`a` active, `e` ended), `cl` (JSON client list),
//!   `cs` (JSON client → sid), `ct`/`et` (created/ended, unix seconds); or `p` = primary sid
//!   for an alias. TTL `session_ttl`, or `tombstone_ttl` once ended.
//! - `lgw:u:{sub}` set of primary sids ("all sessions of a user"), pruned lazily.
//! - `lgw:c:{token}` string: a confirmation context, single use (GETDEL), short TTL.
//!
//! A logout is one `EVALSHA` of [`END`] (redis::Script reloads it after NOSCRIPT, e.g. after a
//! Redis restart); a hint naming an alias sid costs a second call on the primary.
//!
//! The manager is created lazily on first use, inside whichever pingora service runtime asks
//! first (all live as long as the process), so nothing async happens before the server runs and
//! the gateway starts while Redis is down. It reconnects by itself; connection and response
//! timeouts are always set and every call is also bounded by [`super::timed`], so a hung Redis
//! (SIGSTOP) is an error within `connect_timeout + response_timeout`, never a hang.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use tokio::sync::OnceCell;

use super::{timed, Claimed, EndResult, NewSession, Notice, PutResult, SessionStore, SessionView, StoreError, Ttls};
use crate::config::RedisConfig;

/// KEYS[1] session key. ARGV: expected sub ('' = any), record_unknown ('1'/'0'),
/// tombstone ttl seconds, now. Returns {status, sub, clients json, client_sids json}.
const END_LUA: &str = r#"
local k = KEYS[1]
local h = redis.call('HMGET', k, 'p', 'sub', 'st', 'cl', 'cs', 'tk', 'ck')
if h[1] then return {'alias', h[1]} end
if not h[2] then
  if ARGV[2] == '1' then
    redis.call('HSET', k, 'sub', ARGV[1], 'st', 'e', 'cl', '[]', 'cs', '{}', 'et', ARGV[4])
    redis.call('EXPIRE', k, ARGV[3])
    return {'recorded'}
  end
  return {'unknown'}
end
if ARGV[1] ~= '' and h[2] ~= ARGV[1] then return {'mismatch'} end
if h[3] == 'e' then return {'already', h[2], h[4], h[5], h[6] or '[]', h[7] or '[]'} end
redis.call('HSET', k, 'st', 'e', 'et', ARGV[4])
redis.call('EXPIRE', k, ARGV[3])
return {'ended', h[2], h[4], h[5], h[6] or '[]', h[7] or '[]'}
"#;

/// KEYS[1] session key. ARGV: sub, clients json array, client_sids json object, session ttl, now,
/// token hashes json array, max tokens, cookie hashes json array. Returns {status, clients json,
/// client_sids json}.
const PUT_LUA: &str = r#"
local k = KEYS[1]
local h = redis.call('HMGET', k, 'p', 'sub', 'st', 'cl', 'cs', 'tk', 'ck')
if h[1] then return {'alias', h[1]} end
if h[2] and h[2] ~= ARGV[1] then return {'conflict', 'another subject'} end
if h[3] == 'e' then return {'conflict', 'session ended'} end
local cl = h[4] and cjson.decode(h[4]) or {}
local seen = {}
for _, c in ipairs(cl) do seen[c] = true end
for _, c in ipairs(cjson.decode(ARGV[2])) do
  if not seen[c] then table.insert(cl, c); seen[c] = true end
end
local cs = h[5] and cjson.decode(h[5]) or {}
for c, s in pairs(cjson.decode(ARGV[3])) do
  cs[c] = s
  if not seen[c] then table.insert(cl, c); seen[c] = true end
end
local tk = h[6] and cjson.decode(h[6]) or {}
for _, t in ipairs(cjson.decode(ARGV[6])) do table.insert(tk, t) end
while #tk > tonumber(ARGV[7]) do table.remove(tk, 1) end
local tk_json = (#tk == 0) and '[]' or cjson.encode(tk)
local ck = h[7] and cjson.decode(h[7]) or {}
local seen_ck = {}
for _, c in ipairs(ck) do seen_ck[c] = true end
for _, c in ipairs(cjson.decode(ARGV[8])) do
  if not seen_ck[c] then table.insert(ck, c); seen_ck[c] = true end
end
while #ck > tonumber(ARGV[7]) do table.remove(ck, 1) end
local ck_json = (#ck == 0) and '[]' or cjson.encode(ck)
local cl_json = (#cl == 0) and '[]' or cjson.encode(cl)
local cs_json = (next(cs) == nil) and '{}' or cjson.encode(cs)
redis.call('HSET', k, 'sub', ARGV[1], 'st', 'a', 'cl', cl_json, 'cs', cs_json, 'tk', tk_json, 'ck', ck_json)
redis.call('HSETNX', k, 'ct', ARGV[5])
redis.call('EXPIRE', k, ARGV[4])
return {'ok', cl_json, cs_json}
"#;

/// KEYS[1] alias key. ARGV: primary sid, ttl. Creates the alias, or keeps an alias to the same
/// primary alive as long as its session; never turns an existing session into an alias.
const ALIAS_LUA: &str = "local p = redis.call('HGET', KEYS[1], 'p') \
if p == ARGV[1] then redis.call('EXPIRE', KEYS[1], ARGV[2]) \
elseif redis.call('EXISTS', KEYS[1]) == 0 then redis.call('HSET', KEYS[1], 'p', ARGV[1]); redis.call('EXPIRE', KEYS[1], ARGV[2]) end";

/// KEYS[1] keys hash. ARGV: kid, created, candidate json, rotate_after seconds, now.
/// Installs the candidate unless a key younger than rotate_after exists; keeps the newest two.
const KEYS_LUA: &str = r#"
local all = redis.call('HGETALL', KEYS[1])
local newest = 0
local list = {}
for i = 1, #all, 2 do
  local created = tonumber(cjson.decode(all[i + 1]).created) or 0
  table.insert(list, {all[i], created})
  if created > newest then newest = created end
end
if #list == 0 or newest + tonumber(ARGV[4]) <= tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  table.insert(list, {ARGV[1], tonumber(ARGV[2])})
  table.sort(list, function(a, b) return a[2] > b[2] end)
  for i = 3, #list do redis.call('HDEL', KEYS[1], list[i][1]) end
end
return redis.call('HVALS', KEYS[1])
"#;

/// KEYS[1] retry zset, KEYS[2] stream. ARGV: now ms. Moves due retries into the stream.
const PROMOTE_LUA: &str = r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 200)
for _, n in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'n', n)
  redis.call('ZREM', KEYS[1], n)
end
return #due
"#;

/// The back-channel consumer group.
const GROUP: &str = "lgw-backchannel";

static END: LazyLock<Script> = LazyLock::new(|| Script::new(END_LUA));
static KEYS: LazyLock<Script> = LazyLock::new(|| Script::new(KEYS_LUA));
static PROMOTE: LazyLock<Script> = LazyLock::new(|| Script::new(PROMOTE_LUA));
static PUT: LazyLock<Script> = LazyLock::new(|| Script::new(PUT_LUA));

pub struct RedisStore {
    config: RedisConfig,
    prefix: String,
    ttls: Ttls,
    /// Created on first use; see the module comment for why not at start.
    conn: OnceCell<ConnectionManager>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Redis errors without the URL (which may hold a password).
fn redis_err(e: redis::RedisError) -> StoreError {
    let detail = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connection_refusal() {
        "connection refused".to_string()
    } else if e.is_io_error() || e.is_connection_dropped() {
        "connection lost".to_string()
    } else {
        format!("{:?}", e.kind())
    };
    StoreError::Unavailable(format!("redis: {detail}"))
}

fn bad_reply(what: &str) -> StoreError {
    StoreError::Unavailable(format!("redis: unexpected reply to {what}"))
}

impl RedisStore {
    pub fn new(config: RedisConfig, prefix: String, ttls: Ttls) -> Self {
        Self { config, prefix, ttls, conn: OnceCell::new() }
    }

    /// Upper bound for one operation, reconnect included.
    fn deadline(&self) -> Duration {
        self.config.connect_timeout + self.config.response_timeout
    }

    fn session_key(&self, sid: &str) -> String {
        format!("{}s:{{{sid}}}", self.prefix)
    }

    fn sub_key(&self, sub: &str) -> String {
        format!("{}u:{{{sub}}}", self.prefix)
    }

    fn cookie_key(&self, cookie_hash: &str) -> String {
        format!("{}o:{{{cookie_hash}}}", self.prefix)
    }

    fn token_key(&self, token_hash: &str) -> String {
        format!("{}t:{{{token_hash}}}", self.prefix)
    }

    fn code_key(&self, code_hash: &str) -> String {
        format!("{}k:{{{code_hash}}}", self.prefix)
    }

    fn revoked_key(&self, token_hash: &str) -> String {
        format!("{}r:{{{token_hash}}}", self.prefix)
    }

    fn pending_key(&self, token: &str) -> String {
        format!("{}c:{{{token}}}", self.prefix)
    }

    /// Signing keys, queue and retries share the `{bc}` tag: one slot for the scripts.
    fn keys_key(&self) -> String {
        format!("{}{{bc}}:keys", self.prefix)
    }
    fn queue_key(&self) -> String {
        format!("{}{{bc}}:queue", self.prefix)
    }
    fn retry_key(&self) -> String {
        format!("{}{{bc}}:retry", self.prefix)
    }

    /// Acknowledge a queue entry and remove it from the stream.
    fn ack_and_delete<'a>(&self, pipe: &'a mut redis::Pipeline, id: &str) -> &'a mut redis::Pipeline {
        pipe.cmd("XACK").arg(self.queue_key()).arg(GROUP).arg(id).ignore();
        pipe.cmd("XDEL").arg(self.queue_key()).arg(id).ignore()
    }

    /// Revocation markers, each living as long as its token would (one pipeline; nothing when empty).
    async fn revoke_with(&self, c: &mut ConnectionManager, marks: &[(String, Duration)]) -> Result<(), StoreError> {
        if marks.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (h, ttl) in marks {
            pipe.cmd("SET").arg(self.revoked_key(h)).arg(1).arg("EX").arg(ttl.as_secs().max(1)).ignore();
        }
        pipe.query_async::<()>(c).await.map_err(redis_err)
    }

    /// Clients learned from dynamic registration: one hash, client_id → metadata JSON.
    fn clients_key(&self) -> String {
        format!("{}clients", self.prefix)
    }

    async fn ensure_group(&self, c: &mut ConnectionManager) -> Result<(), StoreError> {
        let r: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.queue_key())
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(c)
            .await;
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(redis_err(e)),
        }
    }

    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        self.conn
            .get_or_try_init(|| async {
                let client = redis::Client::open(self.config.url.expose())
                    .map_err(|e| StoreError::Unavailable(format!("bad redis url: {:?}", e.kind())))?;
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.config.connect_timeout))
                    .set_response_timeout(Some(self.config.response_timeout))
                    // Few, fast retries: a caller waits at most `deadline()`, and the manager
                    // keeps reconnecting on later calls, so recovery takes about a second.
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                ConnectionManager::new_lazy_with_config(client, cfg).map_err(redis_err)
            })
            .await
            .cloned()
    }

    async fn end_once(
        &self,
        c: &mut ConnectionManager,
        sid: &str,
        expect_sub: Option<&str>,
        record_unknown: bool,
    ) -> Result<Vec<String>, StoreError> {
        END.key(self.session_key(sid))
            .arg(expect_sub.unwrap_or(""))
            .arg(if record_unknown { "1" } else { "0" })
            .arg(self.ttls.tombstone.as_secs().max(1))
            .arg(now())
            .invoke_async(c)
            .await
            .map_err(redis_err)
    }

    async fn load(&self, c: &mut ConnectionManager, sid: &str) -> Result<Option<SessionView>, StoreError> {
        let h: BTreeMap<String, String> =
            redis::cmd("HGETALL").arg(self.session_key(sid)).query_async(c).await.map_err(redis_err)?;
        if let Some(p) = h.get("p") {
            let h: BTreeMap<String, String> =
                redis::cmd("HGETALL").arg(self.session_key(p)).query_async(c).await.map_err(redis_err)?;
            return Ok(view_of(p, &h));
        }
        Ok(view_of(sid, &h))
    }
}

fn view_of(sid: &str, h: &BTreeMap<String, String>) -> Option<SessionView> {
    let sub = h.get("sub")?;
    Some(SessionView {
        sid: sid.to_string(),
        sub: sub.clone(),
        clients: h.get("cl").and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default(),
        client_sids: h.get("cs").and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default(),
        status: if h.get("st").map(String::as_str) == Some("e") { "ended" } else { "active" },
        sealed: Vec::new(),
    })
}

fn view_from_reply(sid: &str, r: &[String]) -> SessionView {
    SessionView {
        sid: sid.to_string(),
        sub: r.get(1).cloned().unwrap_or_default(),
        clients: r.get(2).and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default(),
        client_sids: r.get(3).and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default(),
        status: "ended",
        sealed: Vec::new(),
    }
}

/// Entries of an XREADGROUP / XAUTOCLAIM reply: `[[id, [field, value, ...]], ...]`.
fn stream_entries(v: &redis::Value) -> Vec<Claimed> {
    let mut out = Vec::new();
    let redis::Value::Array(items) = v else { return out };
    for item in items {
        let redis::Value::Array(pair) = item else { continue };
        let (Some(id), Some(redis::Value::Array(fields))) = (pair.first(), pair.get(1)) else { continue };
        let Ok(id) = redis::from_redis_value::<String>(id.clone()) else { continue };
        let json = fields.chunks(2).find_map(|kv| {
            let k: String = redis::from_redis_value(kv.first()?.clone()).ok()?;
            (k == "n").then(|| redis::from_redis_value::<String>(kv.get(1)?.clone()).ok()).flatten()
        });
        match json.and_then(|j| serde_json::from_str::<Notice>(&j).ok()) {
            Some(notice) => out.push(Claimed { id, notice }),
            // Unreadable entry: hand it out with an empty notice so the worker drops it.
            None => out.push(Claimed {
                id,
                notice: Notice {
                    client_id: String::new(),
                    uri: String::new(),
                    token: String::new(),
                    attempt: 0,
                    accepted_ms: 0,
                },
            }),
        }
    }
    out
}

#[async_trait]
impl SessionStore for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        timed("ping", self.deadline(), async {
            let mut c = self.conn().await?;
            let pong: String = redis::cmd("PING").query_async(&mut c).await.map_err(redis_err)?;
            if pong == "PONG" {
                Ok(())
            } else {
                Err(bad_reply("PING"))
            }
        })
        .await
    }

    async fn put_session(&self, s: &NewSession) -> Result<PutResult, StoreError> {
        timed("put", self.deadline() * 2, async {
            let mut c = self.conn().await?;
            let clients = serde_json::to_string(&s.clients).map_err(|_| bad_reply("put"))?;
            let csids = serde_json::to_string(&s.client_sids).map_err(|_| bad_reply("put"))?;
            let encoded: Vec<String> = s.tokens.iter().map(super::Token::encode).collect();
            let tokens = serde_json::to_string(&encoded).map_err(|_| bad_reply("put"))?;
            let cookies = serde_json::to_string(&s.cookie_hashes).map_err(|_| bad_reply("put"))?;
            let mut sid = s.sid.clone();
            let mut reply: Vec<String> = Vec::new();
            // At most one alias hop: an alias always points at a primary.
            for _ in 0..2 {
                reply = PUT
                    .key(self.session_key(&sid))
                    .arg(&s.sub)
                    .arg(&clients)
                    .arg(&csids)
                    .arg(self.ttls.session.as_secs().max(1))
                    .arg(now())
                    .arg(&tokens)
                    .arg(super::MAX_TOKENS)
                    .arg(&cookies)
                    .invoke_async(&mut c)
                    .await
                    .map_err(redis_err)?;
                match reply.first().map(String::as_str) {
                    Some("alias") => sid = reply.get(1).cloned().ok_or_else(|| bad_reply("put"))?,
                    _ => break,
                }
            }
            match reply.first().map(String::as_str) {
                Some("ok") => {}
                Some("conflict") if reply.get(1).is_some_and(|r| r == super::SESSION_ENDED) => {
                    return Ok(PutResult::Conflict(super::SESSION_ENDED))
                }
                Some("conflict") => return Ok(PutResult::Conflict("another subject")),
                _ => return Err(bad_reply("put")),
            }
            // Aliases for the other client sids, and the subject index: one pipeline.
            let ttl = self.ttls.session.as_secs().max(1);
            let mut pipe = redis::pipe();
            for csid in s.client_sids.values().filter(|c| **c != sid) {
                let k = self.session_key(csid);
                pipe.cmd("EVAL").arg(ALIAS_LUA).arg(1).arg(&k).arg(&sid).arg(ttl).ignore();
            }
            for ck in &s.cookie_hashes {
                pipe.cmd("SET").arg(self.cookie_key(ck)).arg(&sid).arg("EX").arg(ttl).ignore();
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
            pipe.cmd("SADD").arg(&uk).arg(&sid).ignore();
            pipe.cmd("EXPIRE").arg(&uk).arg(ttl).ignore();
            pipe.query_async::<()>(&mut c).await.map_err(redis_err)?;
            Ok(PutResult::Stored(SessionView {
                sid,
                sub: s.sub.clone(),
                clients: reply.get(1).and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default(),
                client_sids: reply.get(2).and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default(),
                status: "active",
                sealed: Vec::new(),
            }))
        })
        .await
    }

    async fn get_session(&self, sid: &str) -> Result<Option<SessionView>, StoreError> {
        timed("get", self.deadline(), async {
            let mut c = self.conn().await?;
            self.load(&mut c, sid).await
        })
        .await
    }

    async fn sessions_of(&self, sub: &str) -> Result<Vec<SessionView>, StoreError> {
        timed("by_sub", self.deadline() * 2, async {
            let mut c = self.conn().await?;
            let sids: Vec<String> =
                redis::cmd("SMEMBERS").arg(self.sub_key(sub)).query_async(&mut c).await.map_err(redis_err)?;
            let mut out = Vec::new();
            let mut gone = Vec::new();
            for sid in sids.iter().take(1000) {
                match self.load(&mut c, sid).await? {
                    Some(v) => out.push(v),
                    None => gone.push(sid.clone()),
                }
            }
            if !gone.is_empty() {
                let _: i64 = redis::cmd("SREM")
                    .arg(self.sub_key(sub))
                    .arg(&gone)
                    .query_async(&mut c)
                    .await
                    .map_err(redis_err)?;
            }
            Ok(out)
        })
        .await
    }

    async fn end_session(
        &self,
        sid: &str,
        expect_sub: Option<&str>,
        record_unknown: bool,
    ) -> Result<EndResult, StoreError> {
        timed("end", self.deadline() * 2, async {
            let mut c = self.conn().await?;
            let mut primary = sid.to_string();
            let mut r = self.end_once(&mut c, sid, expect_sub, record_unknown).await?;
            if r.first().map(String::as_str) == Some("alias") {
                primary = r.get(1).cloned().ok_or_else(|| bad_reply("end"))?;
                r = self.end_once(&mut c, &primary, expect_sub, false).await?;
            }
            // The session's tokens become refusable at the edge (their own keys: one pipeline,
            // and only when the session had tokens).
            let mut sealed = Vec::new();
            if matches!(r.first().map(String::as_str), Some("ended" | "already")) {
                let tokens: Vec<String> = r.get(4).and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
                let cookies: Vec<String> = r.get(5).and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
                let (marks, s) = super::revocations(&tokens, &cookies, self.ttls.tombstone, now());
                self.revoke_with(&mut c, &marks).await?;
                sealed = s;
            }
            Ok(match r.first().map(String::as_str) {
                // Only the call that ended the session hands out the sealed tokens.
                Some("ended") => EndResult::Ended(SessionView { sealed, ..view_from_reply(&primary, &r) }),
                Some("already") => EndResult::AlreadyEnded(view_from_reply(&primary, &r)),
                Some("recorded") => EndResult::Recorded,
                Some("unknown") => EndResult::Unknown,
                Some("mismatch") => EndResult::SubjectMismatch,
                _ => return Err(bad_reply("end")),
            })
        })
        .await
    }

    async fn put_pending(&self, token: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        timed("pending_put", self.deadline(), async {
            let mut c = self.conn().await?;
            redis::cmd("SET")
                .arg(self.pending_key(token))
                .arg(value)
                .arg("PX")
                .arg(ttl.as_millis().max(1) as u64)
                .query_async::<()>(&mut c)
                .await
                .map_err(redis_err)
        })
        .await
    }

    async fn take_pending(&self, token: &str) -> Result<Option<String>, StoreError> {
        timed("pending_take", self.deadline(), async {
            let mut c = self.conn().await?;
            redis::cmd("GETDEL").arg(self.pending_key(token)).query_async(&mut c).await.map_err(redis_err)
        })
        .await
    }

    async fn signing_keys(&self) -> Result<Vec<String>, StoreError> {
        timed("keys", self.deadline(), async {
            let mut c = self.conn().await?;
            redis::cmd("HVALS").arg(self.keys_key()).query_async(&mut c).await.map_err(redis_err)
        })
        .await
    }

    async fn install_signing_key(
        &self,
        kid: &str,
        created: u64,
        candidate: &str,
        rotate_after: Duration,
    ) -> Result<Vec<String>, StoreError> {
        timed("keys", self.deadline(), async {
            let mut c = self.conn().await?;
            KEYS.key(self.keys_key())
                .arg(kid)
                .arg(created)
                .arg(candidate)
                .arg(rotate_after.as_secs())
                .arg(now())
                .invoke_async(&mut c)
                .await
                .map_err(redis_err)
        })
        .await
    }

    async fn enqueue_notices(&self, notices: &[Notice]) -> Result<(), StoreError> {
        if notices.is_empty() {
            return Ok(());
        }
        timed("enqueue", self.deadline(), async {
            let mut c = self.conn().await?;
            let mut pipe = redis::pipe();
            pipe.atomic();
            for n in notices {
                let json = serde_json::to_string(n).map_err(|_| bad_reply("enqueue"))?;
                pipe.cmd("XADD").arg(self.queue_key()).arg("*").arg("n").arg(json).ignore();
            }
            pipe.query_async::<()>(&mut c).await.map_err(redis_err)
        })
        .await
    }

    async fn claim_notices(
        &self,
        consumer: &str,
        count: usize,
        claim_after: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        timed("claim", self.deadline() * 2, async {
            let mut c = self.conn().await?;
            // Abandoned first: entries another consumer took and never finished.
            let stale: redis::Value = match redis::cmd("XAUTOCLAIM")
                .arg(self.queue_key())
                .arg(GROUP)
                .arg(consumer)
                .arg(claim_after.as_millis() as u64)
                .arg("0-0")
                .arg("COUNT")
                .arg(count)
                .query_async(&mut c)
                .await
            {
                Ok(v) => v,
                Err(e) if e.code() == Some("NOGROUP") => {
                    self.ensure_group(&mut c).await?;
                    redis::Value::Nil
                }
                Err(e) => return Err(redis_err(e)),
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
                    .query_async(&mut c)
                    .await
                    .map_err(redis_err)?;
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
        })
        .await
    }

    async fn finish_notice(&self, id: &str) -> Result<(), StoreError> {
        timed("finish", self.deadline(), async {
            let mut c = self.conn().await?;
            let mut pipe = redis::pipe();
            self.ack_and_delete(pipe.atomic(), id).query_async::<()>(&mut c).await.map_err(redis_err)
        })
        .await
    }

    async fn retry_notice(&self, id: &str, notice: &Notice, due_ms: u64) -> Result<(), StoreError> {
        timed("retry", self.deadline(), async {
            let mut c = self.conn().await?;
            let json = serde_json::to_string(notice).map_err(|_| bad_reply("retry"))?;
            let mut pipe = redis::pipe();
            pipe.atomic().cmd("ZADD").arg(self.retry_key()).arg(due_ms).arg(json).ignore();
            self.ack_and_delete(&mut pipe, id).query_async::<()>(&mut c).await.map_err(redis_err)
        })
        .await
    }

    async fn promote_due_notices(&self, now_ms: u64) -> Result<u64, StoreError> {
        timed("promote", self.deadline(), async {
            let mut c = self.conn().await?;
            PROMOTE
                .key(self.retry_key())
                .key(self.queue_key())
                .arg(now_ms)
                .invoke_async(&mut c)
                .await
                .map_err(redis_err)
        })
        .await
    }

    async fn notice_depth(&self) -> Result<u64, StoreError> {
        timed("depth", self.deadline(), async {
            let mut c = self.conn().await?;
            let (q, r): (u64, u64) = redis::pipe()
                .cmd("XLEN")
                .arg(self.queue_key())
                .cmd("ZCARD")
                .arg(self.retry_key())
                .query_async(&mut c)
                .await
                .map_err(redis_err)?;
            Ok(q + r)
        })
        .await
    }

    async fn is_revoked(&self, token_hash: &str) -> Result<bool, StoreError> {
        timed("revoked", self.deadline(), async {
            let mut c = self.conn().await?;
            let n: u64 =
                redis::cmd("EXISTS").arg(self.revoked_key(token_hash)).query_async(&mut c).await.map_err(redis_err)?;
            Ok(n > 0)
        })
        .await
    }

    async fn revoked_among(&self, hashes: &[String]) -> Result<Vec<bool>, StoreError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        timed("revoked", self.deadline(), async {
            let mut c = self.conn().await?;
            let mut pipe = redis::pipe();
            for h in hashes {
                pipe.cmd("EXISTS").arg(self.revoked_key(h));
            }
            let found: Vec<u64> = pipe.query_async(&mut c).await.map_err(redis_err)?;
            Ok(found.into_iter().map(|n| n > 0).collect())
        })
        .await
    }

    async fn bind_code(&self, code_hash: &str, cookie_hashes: &[String], ttl: Duration) -> Result<(), StoreError> {
        timed("bind_code", self.deadline(), async {
            let mut c = self.conn().await?;
            let json = serde_json::to_string(cookie_hashes).map_err(|_| bad_reply("bind_code"))?;
            redis::cmd("SET")
                .arg(self.code_key(code_hash))
                .arg(json)
                .arg("EX")
                .arg(ttl.as_secs().max(1))
                .query_async::<()>(&mut c)
                .await
                .map_err(redis_err)
        })
        .await
    }

    async fn take_code(&self, code_hash: &str) -> Result<Vec<String>, StoreError> {
        timed("take_code", self.deadline(), async {
            let mut c = self.conn().await?;
            let v: Option<String> =
                redis::cmd("GETDEL").arg(self.code_key(code_hash)).query_async(&mut c).await.map_err(redis_err)?;
            Ok(v.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default())
        })
        .await
    }

    async fn session_by_cookie(&self, cookie_hash: &str) -> Result<Option<String>, StoreError> {
        timed("by_cookie", self.deadline(), async {
            let mut c = self.conn().await?;
            redis::cmd("GET").arg(self.cookie_key(cookie_hash)).query_async(&mut c).await.map_err(redis_err)
        })
        .await
    }

    async fn revoke_hashes(&self, hashes: &[String]) -> Result<(), StoreError> {
        timed("revoke", self.deadline(), async {
            let mut c = self.conn().await?;
            let marks: Vec<(String, Duration)> = hashes.iter().map(|h| (h.clone(), self.ttls.tombstone)).collect();
            self.revoke_with(&mut c, &marks).await
        })
        .await
    }

    async fn revoke_marks(&self, marks: &[(String, Duration)]) -> Result<(), StoreError> {
        timed("revoke", self.deadline(), async {
            let mut c = self.conn().await?;
            self.revoke_with(&mut c, marks).await
        })
        .await
    }

    async fn session_by_token(&self, token_hash: &str) -> Result<Option<(String, String)>, StoreError> {
        timed("by_token", self.deadline(), async {
            let mut c = self.conn().await?;
            let v: Option<String> =
                redis::cmd("GET").arg(self.token_key(token_hash)).query_async(&mut c).await.map_err(redis_err)?;
            Ok(v.and_then(|v| v.split_once(' ').map(|(s, c)| (s.to_string(), c.to_string()))))
        })
        .await
    }

    async fn registered_client(&self, client_id: &str) -> Result<Option<String>, StoreError> {
        timed("client", self.deadline(), async {
            let mut c = self.conn().await?;
            redis::cmd("HGET").arg(self.clients_key()).arg(client_id).query_async(&mut c).await.map_err(redis_err)
        })
        .await
    }

    async fn set_registered_client(&self, client_id: &str, metadata: Option<&str>) -> Result<(), StoreError> {
        timed("client", self.deadline(), async {
            let mut c = self.conn().await?;
            let cmd = match metadata {
                Some(m) => {
                    let mut cmd = redis::cmd("HSET");
                    cmd.arg(self.clients_key()).arg(client_id).arg(m);
                    cmd
                }
                None => {
                    let mut cmd = redis::cmd("HDEL");
                    cmd.arg(self.clients_key()).arg(client_id);
                    cmd
                }
            };
            cmd.query_async::<i64>(&mut c).await.map(|_| ()).map_err(redis_err)
        })
        .await
    }
}
