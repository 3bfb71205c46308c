//! [`Streams`] for [`MemoryStore`]: the same semantics as Redis's, in the process.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::MemoryStore;
use crate::session::{StoreError, Streams, Taken};

/// One stream: its record, subject keys and held events (`seq` orders them).
#[derive(Debug, Default)]
struct Stream {
    record: String,
    subjects: BTreeSet<String>,
    held: BTreeMap<u64, (String, String)>,
    verified_until: Option<Instant>,
}

#[derive(Debug, Default)]
pub(super) struct StreamsState {
    streams: HashMap<String, Stream>,
    seq: u64,
}

#[async_trait]
impl Streams for MemoryStore {
    async fn ssf_streams(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let st = self.lock()?;
        Ok(st.streams.streams.iter().map(|(id, s)| (id.clone(), s.record.clone())).collect())
    }

    async fn ssf_put_stream(&self, id: &str, record: &str, create: bool) -> Result<bool, StoreError> {
        let mut st = self.lock()?;
        let map = &mut st.streams.streams;
        match (map.get_mut(id), create) {
            (None, true) => {
                map.insert(id.to_string(), Stream { record: record.to_string(), ..Stream::default() });
                Ok(true)
            }
            (Some(s), false) => {
                s.record = record.to_string();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn ssf_delete_stream(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock()?.streams.streams.remove(id).is_some())
    }

    async fn ssf_subject(&self, id: &str, key: &str, add: bool) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        if let Some(s) = st.streams.streams.get_mut(id) {
            if add {
                s.subjects.insert(key.to_string());
            } else {
                s.subjects.remove(key);
            }
        }
        Ok(())
    }

    async fn ssf_covering(&self, ids: &[String], keys: &[String]) -> Result<Vec<String>, StoreError> {
        let st = self.lock()?;
        Ok(ids
            .iter()
            .filter(|id| st.streams.streams.get(*id).is_some_and(|s| keys.iter().any(|k| s.subjects.contains(k))))
            .cloned()
            .collect())
    }

    async fn ssf_hold(&self, id: &str, events: &[(String, String)], cap: usize) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        let StreamsState { streams, seq } = &mut st.streams;
        let Some(s) = streams.get_mut(id) else { return Ok(()) };
        for (jti, value) in events {
            // A jti held already keeps its place (a retried call).
            if s.held.values().any(|(j, _)| j == jti) {
                continue;
            }
            *seq += 1;
            s.held.insert(*seq, (jti.clone(), value.clone()));
        }
        while s.held.len() > cap {
            s.held.pop_first();
        }
        Ok(())
    }

    async fn ssf_take(&self, id: &str, ack: &[String], max: usize) -> Result<Taken, StoreError> {
        let mut st = self.lock()?;
        let Some(s) = st.streams.streams.get_mut(id) else { return Ok(Taken::default()) };
        let mut acked = Vec::new();
        s.held.retain(|_, (jti, value)| {
            let hit = ack.contains(jti);
            if hit {
                acked.push(value.clone());
            }
            !hit
        });
        let events: Vec<(String, String)> = s.held.values().take(max).cloned().collect();
        Ok(Taken { more: s.held.len() > events.len(), acked, events })
    }

    async fn ssf_verify_gate(&self, id: &str, every: Duration) -> Result<bool, StoreError> {
        let mut st = self.lock()?;
        let Some(s) = st.streams.streams.get_mut(id) else { return Ok(false) };
        let now = Instant::now();
        if s.verified_until.is_some_and(|t| t > now) {
            return Ok(false);
        }
        s.verified_until = Some(now + every);
        Ok(true)
    }
}
