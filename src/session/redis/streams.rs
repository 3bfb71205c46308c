//! [`Streams`] for [`RedisStore`]: every Shared Signals key carries the hash tag `{ssf}`, so a
//! Cluster keeps them in one slot: the records hash `{ssf}:st` (stream id to record), each
//! stream's subjects `{ssf}:sb:<id>` (a set), its held events `{ssf}:h:<id>` (jti to value) in
//! the order of `{ssf}:o:<id>` (a sorted set), and its verification gate `{ssf}:v:<id>`.

#[allow(clippy::wildcard_imports)]
use super::*;
use std::sync::LazyLock;

use redis::Script;

use crate::session::{Streams, Taken};

// The scripts, each atomic and safe to run twice for one call (see `session::lua`).

/// Shared Signals streams. KEYS[1] the streams hash. ARGV: id, record, '1' create (only when
/// absent) or '0' update (only when present). Returns 1 when written. An update run twice
/// writes the same record; a create is not retried (`once`).
const SSF_PUT_LUA: &str = r#"
local has = redis.call('HEXISTS', KEYS[1], ARGV[1])
if (ARGV[3] == '1') == (has == 1) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"#;

/// KEYS: held events hash, their order (sorted set). ARGV: cap, then jti/value pairs. A jti
/// already held keeps its place (`NX`), so a second run changes nothing; beyond `cap` the
/// oldest go.
const SSF_HOLD_LUA: &str = r#"
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local seq = tonumber(last[2] or '0')
for i = 2, #ARGV, 2 do
  seq = seq + 1
  if redis.call('ZADD', KEYS[2], 'NX', seq, ARGV[i]) == 1 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
local n = redis.call('ZCARD', KEYS[2])
local cap = tonumber(ARGV[1])
if n > cap then
  local old = redis.call('ZRANGE', KEYS[2], 0, n - cap - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, n - cap - 1)
  redis.call('HDEL', KEYS[1], unpack(old))
end
return n
"#;

/// KEYS: held events hash, their order. ARGV: max, then the acknowledged jtis. Returns
/// {acked values, jti/value pairs oldest first, more (0/1)}. Run twice, the acknowledgements
/// are gone already (nothing acked the second time) and the same events are returned.
const SSF_TAKE_LUA: &str = r#"
local acked = {}
for i = 2, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    acked[#acked + 1] = v
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i])
  end
end
local max = tonumber(ARGV[1])
local ids = {}
if max > 0 then ids = redis.call('ZRANGE', KEYS[2], 0, max - 1) end
local events = {}
for _, j in ipairs(ids) do
  local v = redis.call('HGET', KEYS[1], j)
  if v then
    events[#events + 1] = j
    events[#events + 1] = v
  end
end
local more = 0
if redis.call('ZCARD', KEYS[2]) > #ids then more = 1 end
return {acked, events, more}
"#;

static SSF_PUT: LazyLock<Script> = LazyLock::new(|| Script::new(SSF_PUT_LUA));
static SSF_HOLD: LazyLock<Script> = LazyLock::new(|| Script::new(SSF_HOLD_LUA));
static SSF_TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(SSF_TAKE_LUA));

impl RedisStore {
    fn ssf_key(&self, what: &str, id: &str) -> String {
        if id.is_empty() {
            format!("{}{{ssf}}:{what}", self.prefix)
        } else {
            format!("{}{{ssf}}:{what}:{id}", self.prefix)
        }
    }
}

#[async_trait]
impl Streams for RedisStore {
    async fn ssf_streams(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let key = &self.ssf_key("st", "");
        self.retried("ssf_streams", self.deadline(), |mut c: Link| async move {
            Ok(redis::cmd("HGETALL").arg(key).query_async(&mut c).await?)
        })
        .await
    }

    async fn ssf_put_stream(&self, id: &str, record: &str, create: bool) -> Result<bool, StoreError> {
        let key = &self.ssf_key("st", "");
        let run = |mut c: Link| async move {
            let mut inv = SSF_PUT.key(key);
            inv.arg(id).arg(record).arg(if create { "1" } else { "0" });
            let n: i64 = inv.invoke_async(&mut c).await?;
            Ok(n == 1)
        };
        if create {
            // A second run after a lost reply would find the stream and answer "not written".
            self.once("ssf_create", self.deadline(), run).await
        } else {
            self.retried("ssf_update", self.deadline(), run).await
        }
    }

    async fn ssf_delete_stream(&self, id: &str) -> Result<bool, StoreError> {
        let keys = &[
            self.ssf_key("st", ""),
            self.ssf_key("sb", id),
            self.ssf_key("h", id),
            self.ssf_key("o", id),
            self.ssf_key("v", id),
        ];
        self.retried("ssf_delete", self.deadline(), |mut c: Link| async move {
            let (n, _): (i64, i64) = redis::pipe()
                .atomic()
                .cmd("HDEL")
                .arg(&keys[0])
                .arg(id)
                .cmd("DEL")
                .arg(&keys[1..])
                .query_async(&mut c)
                .await?;
            Ok(n == 1)
        })
        .await
    }

    async fn ssf_subject(&self, id: &str, key: &str, add: bool) -> Result<(), StoreError> {
        let set = &self.ssf_key("sb", id);
        self.retried("ssf_subject", self.deadline(), |mut c: Link| async move {
            let cmd = if add { "SADD" } else { "SREM" };
            Ok(redis::cmd(cmd).arg(set).arg(key).query_async::<()>(&mut c).await?)
        })
        .await
    }

    async fn ssf_covering(&self, ids: &[String], keys: &[String]) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() || keys.is_empty() {
            return Ok(Vec::new());
        }
        let sets: Vec<String> = ids.iter().map(|id| self.ssf_key("sb", id)).collect();
        let sets = &sets;
        let hits: Vec<Vec<bool>> = self
            .retried("ssf_covering", self.deadline(), |mut c: Link| async move {
                let mut pipe = redis::pipe();
                for set in sets {
                    pipe.cmd("SMISMEMBER").arg(set).arg(keys);
                }
                Ok(pipe.query_async(&mut c).await?)
            })
            .await?;
        Ok(ids.iter().zip(hits).filter(|(_, h)| h.iter().any(|b| *b)).map(|(id, _)| id.clone()).collect())
    }

    async fn ssf_hold(&self, id: &str, events: &[(String, String)], cap: usize) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let (h, o) = (&self.ssf_key("h", id), &self.ssf_key("o", id));
        self.retried("ssf_hold", self.deadline(), |mut c: Link| async move {
            let mut inv = SSF_HOLD.key(h);
            inv.key(o).arg(cap.max(1));
            for (jti, value) in events {
                inv.arg(jti).arg(value);
            }
            Ok(inv.invoke_async::<i64>(&mut c).await.map(|_| ())?)
        })
        .await
    }

    async fn ssf_take(&self, id: &str, ack: &[String], max: usize) -> Result<Taken, StoreError> {
        let (h, o) = (&self.ssf_key("h", id), &self.ssf_key("o", id));
        let (acked, flat, more): (Vec<String>, Vec<String>, i64) = self
            .retried("ssf_take", self.deadline(), |mut c: Link| async move {
                let mut inv = SSF_TAKE.key(h);
                inv.key(o).arg(max).arg(ack);
                Ok(inv.invoke_async(&mut c).await?)
            })
            .await?;
        let events = flat.chunks_exact(2).map(|p| (p[0].clone(), p[1].clone())).collect();
        Ok(Taken { acked, events, more: more == 1 })
    }

    async fn ssf_verify_gate(&self, id: &str, every: Duration) -> Result<bool, StoreError> {
        let key = &self.ssf_key("v", id);
        let ms = every.as_millis().max(1) as u64;
        self.once("ssf_verify_gate", self.deadline(), |mut c: Link| async move {
            let set: Option<String> =
                redis::cmd("SET").arg(key).arg("1").arg("PX").arg(ms).arg("NX").query_async(&mut c).await?;
            Ok(set.is_some())
        })
        .await
    }
}
