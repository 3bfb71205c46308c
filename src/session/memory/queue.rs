//! [`NoticeQueue`] for [`MemoryStore`]: the back-channel notices, claimed and retried as on Redis.

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl NoticeQueue for MemoryStore {
    async fn enqueue_notices(&self, notices: &[Notice]) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        for n in notices {
            st.next_id += 1;
            let id = st.next_id;
            st.queue.insert(id, (n.clone(), false));
        }
        Ok(())
    }

    async fn claim_notices(
        &self,
        _consumer: &str,
        count: usize,
        _claim_after: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        // One process: nothing is ever abandoned by another consumer.
        let mut st = self.lock()?;
        let mut out = Vec::new();
        for (id, (n, taken)) in st.queue.iter_mut().filter(|(_, (_, t))| !*t).take(count) {
            *taken = true;
            out.push(Claimed { id: id.to_string(), notice: n.clone() });
        }
        Ok(out)
    }

    async fn finish_notice(&self, id: &str) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        if let Ok(id) = id.parse::<u64>() {
            st.queue.remove(&id);
        }
        Ok(())
    }

    async fn retry_notice(&self, id: &str, notice: &Notice, due_ms: u64) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        if let Ok(id) = id.parse::<u64>() {
            st.queue.remove(&id);
        }
        st.retries.push((due_ms, notice.clone()));
        Ok(())
    }

    async fn promote_due_notices(&self, now_ms: u64) -> Result<u64, StoreError> {
        let mut st = self.lock()?;
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut st.retries).into_iter().partition(|(d, _)| *d <= now_ms);
        st.retries = later;
        let moved = due.len() as u64;
        for (_, n) in due {
            st.next_id += 1;
            let id = st.next_id;
            st.queue.insert(id, (n, false));
        }
        Ok(moved)
    }

    async fn notice_depth(&self) -> Result<u64, StoreError> {
        let st = self.lock()?;
        Ok((st.queue.len() + st.retries.len()) as u64)
    }
}
