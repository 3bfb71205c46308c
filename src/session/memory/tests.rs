//! The memory store's own cases (the shared behaviour is in `session::contract`).

use super::*;

fn store() -> MemoryStore {
    MemoryStore::new(Ttls { session: Duration::from_secs(60), tombstone: Duration::from_secs(60) })
}

#[tokio::test]
async fn confirmation_contexts_are_capped() {
    let s = store();
    for i in 0..crate::session::MAX_PENDING {
        assert!(s.put_pending(&i.to_string(), "{}", Duration::from_secs(60)).await.unwrap());
    }
    assert!(!s.put_pending("one-more", "{}", Duration::from_secs(60)).await.unwrap());
    assert_eq!(s.take_pending("one-more").await.unwrap(), None);
    // Taking one frees a place.
    assert!(s.take_pending("7").await.unwrap().is_some());
    assert!(s.put_pending("one-more", "{}", Duration::from_secs(60)).await.unwrap());
}

#[tokio::test]
async fn a_code_binding_is_never_replaced() {
    let s = store();
    s.bind_code("c", &["victim".into()], Duration::from_secs(60)).await.unwrap();
    s.bind_code("c", &["attacker".into()], Duration::from_secs(60)).await.unwrap();
    assert_eq!(s.take_code("c").await.unwrap(), vec!["victim".to_string()]);
}
