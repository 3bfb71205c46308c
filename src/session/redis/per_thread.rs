//! A value per calling thread: the store keeps one Redis connection per thread that uses it.
//!
//! redis-rs drives a multiplexed connection from a task spawned on the runtime that opened it.
//! A call from another runtime (pingora runs each service on runtimes of its own) hands its
//! command to that task and waits for the reply through it: two thread wake-ups per call, two
//! context switches when the threads share a core. A connection per thread keeps every call on
//! the caller's own runtime. pingora's threads live as long as the process, so the set is
//! bounded by the server's threads; past [`MAX_THREADS`] (threads that come and go, as in tests)
//! every further thread shares one last slot, which is correct, only not hop-free.

use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use arc_swap::ArcSwap;

/// Threads with a slot of their own; more share the overflow slot.
pub(crate) const MAX_THREADS: usize = 256;

pub(crate) struct PerThread<T> {
    slots: ArcSwap<Vec<(ThreadId, Arc<T>)>>,
    /// Taken by any thread after the first `MAX_THREADS`.
    overflow: Arc<T>,
    /// One insertion at a time (reads never wait).
    grow: Mutex<()>,
}

impl<T: Default> Default for PerThread<T> {
    fn default() -> Self {
        Self { slots: ArcSwap::default(), overflow: Arc::default(), grow: Mutex::new(()) }
    }
}

impl<T: Default> PerThread<T> {
    /// This thread's value, created on its first call.
    pub(crate) fn get(&self) -> Arc<T> {
        let me = std::thread::current().id();
        if let Some(v) = find(&self.slots.load(), me) {
            return v;
        }
        let _one = self.grow.lock().unwrap_or_else(|e| e.into_inner());
        let slots = self.slots.load_full();
        if let Some(v) = find(&slots, me) {
            return v;
        }
        if slots.len() >= MAX_THREADS {
            return self.overflow.clone();
        }
        let v = Arc::new(T::default());
        let mut grown = Vec::with_capacity(slots.len() + 1);
        grown.extend(slots.iter().cloned());
        grown.push((me, v.clone()));
        self.slots.store(Arc::new(grown));
        v
    }

    /// How many threads hold a slot of their own.
    #[cfg(test)]
    pub(crate) fn threads(&self) -> usize {
        self.slots.load().len()
    }
}

fn find<T>(slots: &[(ThreadId, Arc<T>)], me: ThreadId) -> Option<Arc<T>> {
    slots.iter().find(|(t, _)| *t == me).map(|(_, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn each_thread_keeps_its_own_value() {
        let p: Arc<PerThread<AtomicUsize>> = Arc::default();
        p.get().fetch_add(1, Ordering::SeqCst);
        p.get().fetch_add(1, Ordering::SeqCst);
        let q = p.clone();
        let other = std::thread::spawn(move || {
            q.get().fetch_add(10, Ordering::SeqCst);
            q.get().load(Ordering::SeqCst)
        });
        assert_eq!(other.join().unwrap(), 10);
        assert_eq!(p.get().load(Ordering::SeqCst), 2);
        assert_eq!(p.threads(), 2);
    }

    #[test]
    fn threads_past_the_limit_share_the_overflow_slot() {
        let p: Arc<PerThread<AtomicUsize>> = Arc::default();
        p.get().fetch_add(100, Ordering::SeqCst);
        for _ in 1..MAX_THREADS + 3 {
            let q = p.clone();
            std::thread::spawn(move || q.get().fetch_add(1, Ordering::SeqCst)).join().unwrap();
        }
        assert_eq!(p.threads(), MAX_THREADS);
        // The three late threads all counted into one shared value.
        assert_eq!(p.overflow.load(Ordering::SeqCst), 3);
        // And a thread with a slot of its own is not disturbed by them.
        assert_eq!(p.get().load(Ordering::SeqCst), 100);
    }

    /// The point of a connection per thread: a runtime whose only thread is busy (here blocked)
    /// holds up no other runtime's calls. With one connection per process, made on the busy
    /// runtime, the second runtime's call waits for that runtime's connection task and times out.
    #[test]
    fn a_busy_runtime_does_not_hold_up_another_runtimes_store_calls() {
        use crate::session::SessionStore;
        let server = crate::session::testing::redis_server();
        let config = crate::config::RedisConfig {
            target: crate::config::RedisTarget::Url(crate::config::Secret::new(format!(
                "redis://127.0.0.1:{}/0",
                server.1
            ))),
            connect_timeout: std::time::Duration::from_secs(1),
            response_timeout: std::time::Duration::from_secs(1),
            replica_acks: 0,
        };
        let ttls = crate::session::Ttls {
            session: std::time::Duration::from_secs(60),
            tombstone: std::time::Duration::from_secs(60),
        };
        let store = Arc::new(super::super::RedisStore::new(config, "lgw:".into(), ttls));
        let runtime = || tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (ready, is_ready) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let first = store.clone();
        let busy = std::thread::spawn(move || {
            runtime().block_on(async move {
                first.ping().await.unwrap(); // this runtime's connection, and its task, made here
                ready.send(()).unwrap();
                released.recv().unwrap(); // its only thread blocked: nothing on it runs
            })
        });
        is_ready.recv().unwrap();
        let answer = runtime().block_on(store.ping());
        release.send(()).unwrap();
        busy.join().unwrap();
        assert!(answer.is_ok(), "{answer:?}");
    }
}
