//! [`Receipts`] for [`MemoryStore`]: the same semantics as Redis's, in the process.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::MemoryStore;
use crate::session::{Receipts, StoreError};

#[async_trait]
impl Receipts for MemoryStore {
    async fn note_receipt(
        &self,
        sid: &str,
        notes: &[(String, String)],
        first_only: bool,
        count: Option<&str>,
    ) -> Result<Vec<bool>, StoreError> {
        let mut st = self.lock()?;
        let now = Instant::now();
        if st.receipts.len() >= 4096 {
            st.receipts.retain(|_, (_, exp)| *exp > now);
        }
        let entry = st.receipts.entry(sid.to_string()).or_insert_with(|| (BTreeMap::new(), now));
        if entry.1 <= now {
            entry.0.clear();
        }
        entry.1 = now + self.ttls.tombstone;
        let map = &mut entry.0;
        let written = notes
            .iter()
            .map(|(field, value)| {
                if first_only && map.contains_key(field) {
                    return false;
                }
                map.insert(field.clone(), value.clone());
                true
            })
            .collect();
        if let Some(field) = count {
            let n = map.get(field).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + 1;
            map.insert(field.to_string(), n.to_string());
        }
        Ok(written)
    }

    async fn receipt(&self, sid: &str) -> Result<BTreeMap<String, String>, StoreError> {
        let st = self.lock()?;
        Ok(st.receipts.get(sid).filter(|(_, exp)| *exp > Instant::now()).map(|(m, _)| m.clone()).unwrap_or_default())
    }

    async fn put_ticket(&self, token: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        let now = Instant::now();
        st.tickets.retain(|_, (_, exp)| *exp > now);
        st.tickets.insert(token.to_string(), (value.to_string(), now + ttl));
        Ok(())
    }

    async fn take_ticket(&self, token: &str) -> Result<Option<String>, StoreError> {
        let mut st = self.lock()?;
        Ok(st.tickets.remove(token).filter(|(_, exp)| *exp > Instant::now()).map(|(v, _)| v))
    }
}
