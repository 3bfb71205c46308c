//! Redis session store (redis-rs 1.x, a multiplexed `ConnectionManager` per calling thread).
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
//! A logout of a session without tokens or cookies is one `EVALSHA` of `lua::END` (redis::Script
//! reloads it after NOSCRIPT, e.g. after a Redis restart); one with credentials publishes their
//! revocation marks first and then ends it (`END` insists on that order; `ops::end_all`); a hint
//! naming an alias sid costs a second call on the primary. Keys, slots and the steps of
//! operations that span slots (Redis Cluster): docs/redis.md, "Which keys live where".
//!
//! Each thread that calls the store gets a connection of its own, created lazily on its first
//! call, so its driver task runs on the caller's runtime and a logout's round trip wakes no
//! other thread ([`per_thread`]); nothing async happens before the server runs, and the gateway
//! starts while Redis is down. Connection and response timeouts are always set and
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

use link::Link;

use super::lua::{ADD_COOKIES, ALIAS_LUA, CLAIM_LUA, END, KEYS, PROMOTE, PUT, TAKE};
use super::{
    timed, Claimed, CodeBindings, Confirmations, Conflict, EndResult, LearnedClients, NewSession, Notice, NoticeQueue,
    PutResult, Revocations, SessionStore, SessionView, Sessions, SigningKeys, Status, StoreError, Ttls,
};
use crate::config::RedisConfig;

mod follow;
pub(crate) mod link;
mod ops;
mod per_thread;
mod receipts;
mod reply;
mod store;
mod streams;
mod switch;
pub(crate) mod target;

pub(crate) use follow::Follower;

use reply::{stream_entries, view_from_reply, view_of};

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

/// The connection and the master address it talks to ("" for a URL or a cluster).
struct Conn {
    addr: String,
    manager: Link,
    /// [`switch::Switches`] when it was made: an announced switch since makes it stale.
    generation: u64,
}

pub(crate) struct RedisStore {
    config: RedisConfig,
    prefix: String,
    ttls: Ttls,
    /// This thread's connection: created on its first use (see the module comment for why not
    /// at start); replaced when Sentinel names another master (`target`).
    conn: per_thread::PerThread<arc_swap::ArcSwapOption<Conn>>,
    /// One (re)connection at a time.
    connecting: tokio::sync::Mutex<()>,
    /// Sentinel's announced master switches (`switch`), shared with the follower.
    switches: std::sync::Arc<switch::Switches>,
    /// When (unix ms) a write last failed for want of replica acknowledgements; 0: never.
    replica_acks_failed: std::sync::atomic::AtomicU64,
    /// The edge's revocation set: this instance's own revocations go in at once, everyone's
    /// through the [`Follower`].
    set: std::sync::Arc<super::RevokedSet>,
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
    crate::crypto::hex(&b)
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

/// The sid of a cookie binding (`lua::CLAIM_LUA`): `<length>:<sid><sub>`, or a bare sid
/// (bindings written before subjects were kept).
fn cookie_owner(value: &str) -> &str {
    value.split_once(':').and_then(|(n, rest)| rest.get(..n.parse::<usize>().ok()?)).unwrap_or(value)
}

fn bad_reply(what: &'static str) -> StoreError {
    StoreError::BadReply(what)
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
            Fault::Redis(e) => StoreError::Redis(detail(&e)),
            Fault::Store(e) => e,
        }
    }
}

impl Fault {
    /// The node is a replica now (a failover happened): ask Sentinel for the master.
    fn readonly(&self) -> bool {
        matches!(self, Fault::Redis(e) if e.code() == Some("READONLY"))
    }

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
    pub(crate) fn new(config: RedisConfig, prefix: String, ttls: Ttls) -> Self {
        let set = std::sync::Arc::new(super::RevokedSet::followed(follow::max_lag(&config)));
        let (conn, connecting) = (per_thread::PerThread::default(), tokio::sync::Mutex::new(()));
        let replica_acks_failed = std::sync::atomic::AtomicU64::new(0);
        let switches = std::sync::Arc::default();
        Self { config, prefix, ttls, conn, connecting, set, switches, replica_acks_failed }
    }

    /// The background service that keeps this instance's revocation set current.
    pub(crate) fn follower(&self) -> Follower {
        Follower::new(self.config.clone(), self.prefix.clone(), self.set.clone(), self.switches.clone())
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
        F: Fn(Link) -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        timed(op, deadline, async {
            let c = self.conn().await?;
            match f(c.clone()).await {
                Err(e) if e.retryable() || e.readonly() => {
                    let why = StoreError::from(e);
                    tracing::debug!(op, error = %why, "redis connection dropped or read-only: one retry");
                    // With Sentinel, maybe on a new master.
                    let c = self.reconnect(&c).await?;
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
        f: impl FnOnce(Link) -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        timed(op, deadline, async {
            let c = self.conn().await?;
            match f(c.clone()).await {
                Err(e) if e.retryable() || e.readonly() => {
                    // Not retried, but the next call should find the master.
                    let _ = self.reconnect(&c).await;
                    Err(e.into())
                }
                r => Ok(r?),
            }
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

    /// Revocation markers, each living as long as its token would, in one MULTI: the exact
    /// per-hash keys (asked when an instance's set is stale), and for every instance's set the
    /// snapshot (sorted set, score = expiry) and the feed (one stream entry). Nothing when
    /// empty. Idempotent: SET, ZADD GT, and a repeated feed entry only repeats an insert.
    /// This instance's own set takes the marks once Redis confirmed them.
    /// Publish revocation marks to every instance (`follow::publish`): the snapshot set and
    /// the feed, both under the `{rv}` tag, so one MULTI in every Redis form. Idempotent (ZADD GT
    /// of the same expiry; a repeated feed entry only repeats an insert).
    async fn revoke_with(&self, c: &mut Link, marks: &[(String, Duration)]) -> Attempt<()> {
        let set_marks = super::set_marks(marks);
        if set_marks.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        follow::publish(&mut pipe, &self.prefix, &set_marks, now());
        pipe.query_async::<()>(c).await?;
        self.set.insert(set_marks);
        Ok(())
    }

    async fn ensure_group(&self, c: &mut Link) -> Attempt<()> {
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

    /// This thread's connection. (Connecting is boxed: a cold path whose future, with the
    /// Sentinel and Cluster set-up in it, would otherwise make every call's future kilobytes
    /// larger, each copied when the call's future is boxed.)
    async fn conn(&self) -> Result<Link, StoreError> {
        match self.conn.get().load_full() {
            Some(c) if c.generation == self.switches.generation() => Ok(c.manager.clone()),
            // Sentinel announced a new master since this connection was made: ask where.
            Some(c) => Box::pin(self.connect(Some((c.addr.clone(), c.generation)))).await,
            None => Box::pin(self.connect(None)).await,
        }
    }

    /// After a failed call on `failed`: with Sentinel, ask which node is master now and move
    /// there when it is another; with a URL, the same manager (it reconnects by itself).
    async fn reconnect(&self, failed: &Link) -> Result<Link, StoreError> {
        if !target::follows(&self.config) {
            return Ok(failed.clone());
        }
        let stale = self.conn.get().load_full().map(|c| (c.addr.clone(), c.generation));
        Box::pin(self.connect(stale)).await
    }

    /// Connect (first use), or replace a connection to `stale` with one to the current master.
    async fn connect(&self, stale: Option<(String, u64)>) -> Result<Link, StoreError> {
        let _one = self.connecting.lock().await;
        let (slot, generation) = (self.conn.get(), self.switches.generation());
        if let Some(c) = slot.load_full() {
            if stale.as_ref() != Some(&(c.addr.clone(), c.generation)) {
                return Ok(c.manager.clone()); // someone else connected meanwhile
            }
        }
        if let crate::config::RedisTarget::Cluster(cluster) = &self.config.target {
            let (ct, rt) = (self.config.connect_timeout, self.config.response_timeout);
            let link =
                Link::Cluster(target::cluster(cluster, ct, rt).await.map_err(|e| StoreError::from(Fault::Redis(e)))?);
            slot.store(Some(std::sync::Arc::new(Conn { addr: String::new(), manager: link.clone(), generation })));
            return Ok(link);
        }
        let (addr, client) = target::client(&self.config).await.map_err(|e| StoreError::from(Fault::Redis(e)))?;
        if let (Some(c), Some((old, _))) = (slot.load_full(), stale.as_ref()) {
            if c.addr == addr {
                // Still the master: its manager reconnects by itself.
                let same = Conn { addr, manager: c.manager.clone(), generation };
                slot.store(Some(std::sync::Arc::new(same)));
                return Ok(c.manager.clone());
            }
            tracing::warn!(from = %old, to = %addr, "redis master changed (Sentinel): moving there");
        }
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(self.config.response_timeout))
            .set_number_of_retries(RECONNECT_TRIES)
            .set_exponent_base(RECONNECT_FACTOR)
            .set_min_delay(RECONNECT_MIN)
            .set_max_delay(RECONNECT_MAX);
        let manager = Link::Manager(
            ConnectionManager::new_lazy_with_config(client, cfg).map_err(|e| StoreError::from(Fault::Redis(e)))?,
        );
        slot.store(Some(std::sync::Arc::new(Conn { addr, manager: manager.clone(), generation })));
        Ok(manager)
    }
}
