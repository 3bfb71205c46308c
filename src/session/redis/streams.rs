//! [`Streams`] for [`RedisStore`]: every Shared Signals key carries the hash tag `{ssf}`, so a
//! Cluster keeps them in one slot: the records hash `{ssf}:st` (stream id to record), each
//! stream's subjects `{ssf}:sb:<id>` (a set), its held events `{ssf}:h:<id>` (jti to value) in
//! the order of `{ssf}:o:<id>` (a sorted set), and its verification gate `{ssf}:v:<id>`.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::session::lua::{SSF_HOLD, SSF_PUT, SSF_TAKE};
use crate::session::{Streams, Taken};

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
