//! [`Receipts`] for [`RedisStore`]: a session's receipt is the hash `s:{sid}:rc`, in the slot
//! of its session (same hash tag), written by one script; report tickets are `fr:{token}`,
//! taken once with the same script as confirmations (`TAKE`).

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::session::lua::RECEIPT;
use crate::session::Receipts;

impl RedisStore {
    fn receipt_key(&self, sid: &str) -> String {
        format!("{}s:{{{sid}}}:rc", self.prefix)
    }

    fn ticket_key(&self, token: &str) -> String {
        format!("{}fr:{{{token}}}", self.prefix)
    }
}

#[async_trait]
impl Receipts for RedisStore {
    async fn note_receipt(
        &self,
        sid: &str,
        notes: &[(String, String)],
        first_only: bool,
        count: Option<&str>,
    ) -> Result<Vec<bool>, StoreError> {
        let key = &self.receipt_key(sid);
        // One attempt: a second run after a lost reply would count an attempt twice.
        self.once("receipt_note", self.deadline(), |mut c: Link| async move {
            let mut inv = RECEIPT.key(key);
            inv.arg(self.ttls.tombstone.as_secs().max(1))
                .arg(if first_only { "1" } else { "0" })
                .arg(count.unwrap_or(""));
            for (field, value) in notes {
                inv.arg(field).arg(value);
            }
            let written: Vec<i64> = inv.invoke_async(&mut c).await?;
            Ok(written.into_iter().map(|w| w == 1).collect())
        })
        .await
    }

    async fn receipt(&self, sid: &str) -> Result<BTreeMap<String, String>, StoreError> {
        let key = &self.receipt_key(sid);
        self.retried("receipt_get", self.deadline(), |mut c: Link| async move {
            Ok(redis::cmd("HGETALL").arg(key).query_async(&mut c).await?)
        })
        .await
    }

    async fn put_ticket(&self, token: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let key = &self.ticket_key(token);
        let ms = ttl.as_millis().max(1) as u64;
        self.retried("ticket_put", self.deadline(), |mut c: Link| async move {
            Ok(redis::cmd("SET").arg(key).arg(value).arg("PX").arg(ms).query_async::<()>(&mut c).await?)
        })
        .await
    }

    async fn take_ticket(&self, token: &str) -> Result<Option<String>, StoreError> {
        let key = &self.ticket_key(token);
        let call = &call_id();
        self.retried("ticket_take", self.deadline(), |mut c: Link| async move { self.take(&mut c, key, call).await })
            .await
    }
}
