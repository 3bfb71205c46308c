//! In-process session store: one gateway instance only (no sharing, lost on restart).
//! Same semantics as the Redis store, so tests of the logic can run on either.

use async_trait::async_trait;

use super::{SessionStore, StoreError};

#[derive(Debug, Default)]
pub struct MemoryStore {}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
