//! Redis session store (redis-rs 1.x, one multiplexed `ConnectionManager` per process).
//!
//! Keys (prefix `lgw:` by default) carry the sid or subject as a hash tag, so every key a
//! script touches lives in one Redis Cluster slot:
//! - `lgw:s:{sid}` hash: `sub`, `st` (`a` active, `e` ended), `cl` (JSON client list),
//!   `cs` (JSON client → sid), `ct`/`et` (created/ended, unix seconds), `ec` (the call that
//!   ended it); or `p` = primary sid for an alias. TTL `session_ttl`, or `tombstone_ttl` once ended.
//! - `lgw:u:{sub}` set of primary sids ("all sessions of a user"), pruned lazily.
//! - `lgw:c:{token}` string: a confirmation context, single use, short TTL (taken by the `TAKE`
//!   script, which leaves a receipt `lgw:c:{token}:r` for a few seconds).
//!
//! A logout is one `EVALSHA` of `lua::END` (redis::Script reloads it after NOSCRIPT, e.g. after
//! a Redis restart); a hint naming an alias sid costs a second call on the primary.
//!
//! The manager is created lazily on first use, inside whichever pingora service runtime asks
//! first (all live as long as the process), so nothing async happens before the server runs and
//! the gateway starts while Redis is down. Connection and response timeouts are always set and
//! every call is also bounded by [`super::timed`], so a hung Redis (SIGSTOP) is an error within
//! `connect_timeout + response_timeout`, never a hang (GW-08).
//!
//! Dropped connections: redis-rs hands a dropped-connection error to the caller and reconnects
//! in the background. So each call runs once more, inside the same deadline, when its first
//! attempt failed that way ([`Fault::retryable`]): a Redis restart or a `CLIENT KILL` costs no
//! failed logout. Only idempotent calls are retried; the scripts in `lua.rs` are written to be
//! (a lost reply cannot tell whether Redis ran the command), and the two calls that cannot be
//! made so cheaply (`enqueue_notices`, `claim_notices`) run once.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::lua::{ALIAS_LUA, END, KEYS, PROMOTE, PUT, TAKE};
use super::{timed, Claimed, EndResult, NewSession, Notice, PutResult, SessionStore, SessionView, StoreError, Ttls};
use crate::config::RedisConfig;

/// The back-channel consumer group.
const GROUP: &str = "lgw-backchannel";

/// Reconnect backoff of the manager: the first retry after about `RECONNECT_MIN`, doubling
/// (`RECONNECT_FACTOR`), never more than `RECONNECT_MAX` apart, `RECONNECT_TRIES` retries per
/// reconnect. A caller waits at most `deadline()` anyway, and every failed call starts a new
/// reconnect, so after Redis returns the next logout gets through at once (GW-08: recovery
/// within about a second). redis-rs's own default (100 ms doubling, 6 retries: over 6 s) would
/// leave callers waiting on one long reconnect.
const RECONNECT_MIN: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_millis(500);
const RECONNECT_FACTOR: f32 = 2.0;
const RECONNECT_TRIES: usize = 1;

pub struct RedisStore {
    config: RedisConfig,
    prefix: String,
    ttls: Ttls,
    /// Created on first use; see the module comment for why not at start.
    conn: tokio::sync::OnceCell<ConnectionManager>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A fresh id for one logical call, the same over its retry (see `lua::END`, `lua::TAKE`).
fn call_id() -> String {
    let mut b = [0u8; 12];
    if getrandom::fill(&mut b).is_err() {
        // No randomness: still unique enough per process and instant for a retry receipt.
        let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        return format!("t{t:x}");
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What a Redis error was, without the URL (which may hold a password).
fn detail(e: &redis::RedisError) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connection_refusal() {
        "connection refused".to_string()
    } else if e.is_io_error() || e.is_connection_dropped() {
        "connection lost".to_string()
    } else {
        format!("{:?}", e.kind())
    }
}

fn bad_reply(what: &str) -> StoreError {
    StoreError::Unavailable(format!("redis: unexpected reply to {what}"))
}

/// What one attempt of a store call ran into.
enum Fault {
    /// Redis (or the connection to it) failed; maybe worth one retry.
    Redis(redis::RedisError),
    /// An answer of the wrong shape, or no connection manager: never retried.
    Store(StoreError),
}

impl From<redis::RedisError> for Fault {
    fn from(e: redis::RedisError) -> Self {
        Fault::Redis(e)
    }
}

impl From<StoreError> for Fault {
    fn from(e: StoreError) -> Self {
        Fault::Store(e)
    }
}

impl From<Fault> for StoreError {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Redis(e) => StoreError::Unavailable(format!("redis: {}", detail(&e))),
            Fault::Store(e) => e,
        }
    }
}

impl Fault {
    /// The connection was gone (dropped, reset, refused: the manager has started a reconnect),
    /// so a second attempt on the new connection can succeed. Not a timeout: Redis may be hung,
    /// and waiting twice would only burn the caller's deadline.
    fn retryable(&self) -> bool {
        match self {
            Fault::Redis(e) => {
                !e.is_timeout() && (e.is_connection_dropped() || e.is_connection_refusal() || e.is_io_error())
            }
            Fault::Store(_) => false,
        }
    }
}

type Attempt<T> = Result<T, Fault>;

impl RedisStore {
    pub fn new(config: RedisConfig, prefix: String, ttls: Ttls) -> Self {
        Self { config, prefix, ttls, conn: tokio::sync::OnceCell::new() }
    }

    /// Upper bound for one operation, reconnect and retry included.
    fn deadline(&self) -> Duration {
        self.config.connect_timeout + self.config.response_timeout
    }

    /// An idempotent store call: bounded by `deadline` (both attempts together), run a second
    /// time when the first failed on a dropped connection (see the module comment, GW-08).
    /// (`f` gets a clone of the manager: cheap, and the same multiplexed connection.)
    async fn retried<T, F, Fut>(&self, op: &'static str, deadline: Duration, f: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        timed(op, deadline, async {
            let c = self.conn().await?;
            match f(c.clone()).await {
                Err(e) if e.retryable() => {
                    let why = StoreError::from(e);
                    tracing::debug!(op, error = %why, "redis connection dropped: one retry");
                    Ok(f(c).await?)
                }
                r => Ok(r?),
            }
        })
        .await
    }

    /// A store call that is not idempotent: one attempt, bounded by `deadline`.
    async fn once<T, Fut>(
        &self,
        op: &'static str,
        deadline: Duration,
        f: impl FnOnce(ConnectionManager) -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        timed(op, deadline, async {
            let c = self.conn().await?;
            Ok(f(c).await?)
        })
        .await
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

    /// Clients learned from dynamic registration: one hash, client_id → metadata JSON.
    fn clients_key(&self) -> String {
        format!("{}clients", self.prefix)
    }

    /// Acknowledge a queue entry and remove it from the stream.
    fn ack_and_delete<'a>(&self, pipe: &'a mut redis::Pipeline, id: &str) -> &'a mut redis::Pipeline {
        pipe.cmd("XACK").arg(self.queue_key()).arg(GROUP).arg(id).ignore();
        pipe.cmd("XDEL").arg(self.queue_key()).arg(id).ignore()
    }

    /// Revocation markers, each living as long as its token would (one pipeline; nothing when
    /// empty). Idempotent: plain SETs.
    async fn revoke_with(&self, c: &mut ConnectionManager, marks: &[(String, Duration)]) -> Attempt<()> {
        if marks.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (h, ttl) in marks {
            pipe.cmd("SET").arg(self.revoked_key(h)).arg(1).arg("EX").arg(ttl.as_secs().max(1)).ignore();
        }
        Ok(pipe.query_async::<()>(c).await?)
    }

    async fn ensure_group(&self, c: &mut ConnectionManager) -> Attempt<()> {
        let r: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.queue_key())
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(c)
            .await;
        match r {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(e.into()),
            _ => Ok(()),
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
                    .set_number_of_retries(RECONNECT_TRIES)
                    .set_exponent_base(RECONNECT_FACTOR)
                    .set_min_delay(RECONNECT_MIN)
                    .set_max_delay(RECONNECT_MAX);
                ConnectionManager::new_lazy_with_config(client, cfg).map_err(|e| Fault::Redis(e).into())
            })
            .await
            .cloned()
    }

    /// One run of the END script (`call` makes a retry answer as the first run did).
    async fn end_once(
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
    async fn end_all(
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
            let (marks, s) = super::revocations(&tokens, &cookies, self.ttls.tombstone, now());
            self.revoke_with(c, &marks).await?;
            sealed = s;
        }
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

    async fn load(&self, c: &mut ConnectionManager, sid: &str) -> Attempt<Option<SessionView>> {
        let h: BTreeMap<String, String> = redis::cmd("HGETALL").arg(self.session_key(sid)).query_async(c).await?;
        if let Some(p) = h.get("p") {
            let h: BTreeMap<String, String> = redis::cmd("HGETALL").arg(self.session_key(p)).query_async(c).await?;
            return Ok(view_of(p, &h));
        }
        Ok(view_of(sid, &h))
    }

    /// Take a single-use value (see `lua::TAKE`): idempotent per `call`, single use across calls.
    async fn take(&self, c: &mut ConnectionManager, key: &str, call: &str) -> Attempt<Option<String>> {
        let receipt_ms = (self.deadline() * 4).as_millis().max(1000) as u64;
        Ok(TAKE.key(key).key(format!("{key}:r")).arg(call).arg(receipt_ms).invoke_async(c).await?)
    }

    /// PUT on `sid`, following at most one alias hop (an alias always points at a primary).
    /// Returns the primary sid and the script's reply.
    async fn put_script(&self, c: &mut ConnectionManager, s: &NewSession) -> Attempt<(String, Vec<String>)> {
        let clients = serde_json::to_string(&s.clients).map_err(|_| bad_reply("put"))?;
        let csids = serde_json::to_string(&s.client_sids).map_err(|_| bad_reply("put"))?;
        let encoded: Vec<String> = s.tokens.iter().map(super::Token::encode).collect();
        let tokens = serde_json::to_string(&encoded).map_err(|_| bad_reply("put"))?;
        let cookies = serde_json::to_string(&s.cookie_hashes).map_err(|_| bad_reply("put"))?;
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
                .arg(super::MAX_TOKENS)
                .arg(&cookies)
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
    async fn put_indexes(&self, c: &mut ConnectionManager, s: &NewSession, sid: &str) -> Attempt<()> {
        let ttl = self.ttls.session.as_secs().max(1);
        let mut pipe = redis::pipe();
        for csid in s.client_sids.values().filter(|c| c.as_str() != sid) {
            let k = self.session_key(csid);
            pipe.cmd("EVAL").arg(ALIAS_LUA).arg(1).arg(&k).arg(sid).arg(ttl).ignore();
        }
        for ck in &s.cookie_hashes {
            pipe.cmd("SET").arg(self.cookie_key(ck)).arg(sid).arg("EX").arg(ttl).ignore();
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

    /// Stale entries (taken by a consumer that died) first, then new ones; never blocks.
    async fn claim(
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
        self.retried("ping", self.deadline(), |mut c: ConnectionManager| async move {
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

    /// Retried: PUT merges as sets and the index pipeline is plain SETs (see `lua::PUT_LUA`).
    async fn put_session(&self, s: &NewSession) -> Result<PutResult, StoreError> {
        self.retried("put", self.deadline() * 2, |mut c: ConnectionManager| async move {
            let c = &mut c;
            let (sid, reply) = self.put_script(c, s).await?;
            match reply.first().map(String::as_str) {
                Some("ok") => {}
                Some("conflict") if reply.get(1).is_some_and(|r| r == super::SESSION_ENDED) => {
                    return Ok(PutResult::Conflict(super::SESSION_ENDED))
                }
                Some("conflict") => return Ok(PutResult::Conflict("another subject")),
                _ => return Err(bad_reply("put").into()),
            }
            self.put_indexes(c, s, &sid).await?;
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
        self.retried("get", self.deadline(), |mut c: ConnectionManager| async move { self.load(&mut c, sid).await })
            .await
    }

    /// Retried: reads, and an SREM of sids whose sessions are gone.
    async fn sessions_of(&self, sub: &str) -> Result<Vec<SessionView>, StoreError> {
        self.retried("by_sub", self.deadline() * 2, |mut c: ConnectionManager| async move {
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
        self.retried("end", self.deadline() * 2, |mut c: ConnectionManager| async move {
            let c = &mut c;
            self.end_all(c, sid, expect_sub, record_unknown, call).await
        })
        .await
    }

    async fn put_pending(&self, token: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let ms = ttl.as_millis().max(1) as u64;
        self.retried("pending_put", self.deadline(), |mut c: ConnectionManager| async move {
            let c = &mut c;
            Ok(redis::cmd("SET").arg(self.pending_key(token)).arg(value).arg("PX").arg(ms).query_async::<()>(c).await?)
        })
        .await
    }

    /// Retried: `lua::TAKE` answers a retry of the same call as it answered the first run.
    async fn take_pending(&self, token: &str) -> Result<Option<String>, StoreError> {
        let call = &call_id();
        self.retried("pending_take", self.deadline(), |mut c: ConnectionManager| async move {
            self.take(&mut c, &self.pending_key(token), call).await
        })
        .await
    }

    async fn signing_keys(&self) -> Result<Vec<String>, StoreError> {
        self.retried("keys", self.deadline(), |mut c: ConnectionManager| async move {
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
        self.retried("keys", self.deadline(), |mut c: ConnectionManager| async move {
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

    /// Once: XADD is not idempotent (a retry after a lost reply would queue every notice
    /// twice). The caller fails closed (503) and the user's next attempt enqueues them.
    async fn enqueue_notices(&self, notices: &[Notice]) -> Result<(), StoreError> {
        if notices.is_empty() {
            return Ok(());
        }
        self.once("enqueue", self.deadline(), |mut c: ConnectionManager| async move {
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
        self.once("claim", self.deadline() * 2, |mut c: ConnectionManager| async move {
            self.claim(&mut c, consumer, count, claim_after).await
        })
        .await
    }

    /// Retried: XACK and XDEL of an id are idempotent.
    async fn finish_notice(&self, id: &str) -> Result<(), StoreError> {
        self.retried("finish", self.deadline(), |mut c: ConnectionManager| async move {
            let c = &mut c;
            let mut pipe = redis::pipe();
            Ok(self.ack_and_delete(pipe.atomic(), id).query_async::<()>(c).await?)
        })
        .await
    }

    /// Retried: ZADD of the same member and score, XACK and XDEL are idempotent.
    async fn retry_notice(&self, id: &str, notice: &Notice, due_ms: u64) -> Result<(), StoreError> {
        let json = &serde_json::to_string(notice).map_err(|_| bad_reply("retry"))?;
        self.retried("retry", self.deadline(), |mut c: ConnectionManager| async move {
            let c = &mut c;
            let mut pipe = redis::pipe();
            pipe.atomic().cmd("ZADD").arg(self.retry_key()).arg(due_ms).arg(json).ignore();
            Ok(self.ack_and_delete(&mut pipe, id).query_async::<()>(c).await?)
        })
        .await
    }

    /// Retried: see `lua::PROMOTE_LUA`.
    async fn promote_due_notices(&self, now_ms: u64) -> Result<u64, StoreError> {
        self.retried("promote", self.deadline(), |mut c: ConnectionManager| async move {
            let c = &mut c;
            Ok(PROMOTE.key(self.retry_key()).key(self.queue_key()).arg(now_ms).invoke_async(c).await?)
        })
        .await
    }

    async fn notice_depth(&self) -> Result<u64, StoreError> {
        self.retried("depth", self.deadline(), |mut c: ConnectionManager| async move {
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

    async fn is_revoked(&self, token_hash: &str) -> Result<bool, StoreError> {
        self.retried("revoked", self.deadline(), |mut c: ConnectionManager| async move {
            let c = &mut c;
            let n: u64 = redis::cmd("EXISTS").arg(self.revoked_key(token_hash)).query_async(c).await?;
            Ok(n > 0)
        })
        .await
    }

    async fn revoked_among(&self, hashes: &[String]) -> Result<Vec<bool>, StoreError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        self.retried("revoked", self.deadline(), |mut c: ConnectionManager| async move {
            let c = &mut c;
            let mut pipe = redis::pipe();
            for h in hashes {
                pipe.cmd("EXISTS").arg(self.revoked_key(h));
            }
            let found: Vec<u64> = pipe.query_async(c).await?;
            Ok(found.into_iter().map(|n| n > 0).collect())
        })
        .await
    }

    async fn bind_code(&self, code_hash: &str, cookie_hashes: &[String], ttl: Duration) -> Result<(), StoreError> {
        let json = &serde_json::to_string(cookie_hashes).map_err(|_| bad_reply("bind_code"))?;
        let secs = ttl.as_secs().max(1);
        self.retried("bind_code", self.deadline(), |mut c: ConnectionManager| async move {
            let c = &mut c;
            Ok(redis::cmd("SET")
                .arg(self.code_key(code_hash))
                .arg(json)
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
            .retried("take_code", self.deadline(), |mut c: ConnectionManager| async move {
                self.take(&mut c, &self.code_key(code_hash), call).await
            })
            .await?;
        Ok(v.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default())
    }

    async fn session_by_cookie(&self, cookie_hash: &str) -> Result<Option<String>, StoreError> {
        self.retried("by_cookie", self.deadline(), |mut c: ConnectionManager| async move {
            let c = &mut c;
            Ok(redis::cmd("GET").arg(self.cookie_key(cookie_hash)).query_async(c).await?)
        })
        .await
    }

    async fn revoke_hashes(&self, hashes: &[String]) -> Result<(), StoreError> {
        let marks: &[(String, Duration)] = &hashes.iter().map(|h| (h.clone(), self.ttls.tombstone)).collect::<Vec<_>>();
        self.retried("revoke", self.deadline(), |mut c: ConnectionManager| async move {
            self.revoke_with(&mut c, marks).await
        })
        .await
    }

    /// Retried: SET with EX is idempotent.
    async fn revoke_marks(&self, marks: &[(String, Duration)]) -> Result<(), StoreError> {
        self.retried("revoke", self.deadline(), |mut c: ConnectionManager| async move {
            self.revoke_with(&mut c, marks).await
        })
        .await
    }

    async fn session_by_token(&self, token_hash: &str) -> Result<Option<(String, String)>, StoreError> {
        self.retried("by_token", self.deadline(), |mut c: ConnectionManager| async move {
            let c = &mut c;
            let v: Option<String> = redis::cmd("GET").arg(self.token_key(token_hash)).query_async(c).await?;
            Ok(v.and_then(|v| v.split_once(' ').map(|(s, c)| (s.to_string(), c.to_string()))))
        })
        .await
    }

    async fn registered_client(&self, client_id: &str) -> Result<Option<String>, StoreError> {
        self.retried("client", self.deadline(), |mut c: ConnectionManager| async move {
            let c = &mut c;
            Ok(redis::cmd("HGET").arg(self.clients_key()).arg(client_id).query_async(c).await?)
        })
        .await
    }

    /// Retried: HSET of the same value and HDEL are idempotent.
    async fn set_registered_client(&self, client_id: &str, metadata: Option<&str>) -> Result<(), StoreError> {
        self.retried("client", self.deadline(), |mut c: ConnectionManager| async move {
            let c = &mut c;
            let mut cmd = redis::cmd(if metadata.is_some() { "HSET" } else { "HDEL" });
            cmd.arg(self.clients_key()).arg(client_id);
            if let Some(m) = metadata {
                cmd.arg(m);
            }
            Ok(cmd.query_async::<i64>(c).await.map(|_| ())?)
        })
        .await
    }
}
