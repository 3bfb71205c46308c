//! One behaviour, every backend: every capability of [`SessionStore`] is exercised by the same
//! functions against the memory store, a real `redis-server` and a real three-master Redis
//! Cluster (where a script, MULTI or pipeline crossing slots fails), so they cannot drift apart.
//! A new capability method gets its case here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::memory::MemoryStore;
use super::redis::RedisStore;
use super::testing::{redis_cluster, redis_server, Server};
use super::*;
use crate::config::{RedisConfig, Secret};

const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const H3: &str = "3333333333333333333333333333333333333333333333333333333333333333";

fn ttls() -> Ttls {
    Ttls { session: Duration::from_secs(600), tombstone: Duration::from_secs(600) }
}

/// A backend under test, named for failure messages.
type Named = (&'static str, Arc<dyn SessionStore>);

/// Every backend (the servers must outlive the stores), named.
fn backends() -> (Vec<Server>, Vec<Named>) {
    let server = redis_server();
    let cluster = redis_cluster();
    let config = |target| RedisConfig {
        target,
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(2),
        replica_acks: 0,
    };
    let url = crate::config::RedisTarget::Url(Secret::new(format!("redis://127.0.0.1:{}/0", server.1)));
    let nodes = cluster.iter().map(|n| format!("127.0.0.1:{}", n.1)).collect();
    let on_cluster = crate::config::RedisTarget::Cluster(crate::config::ClusterConfig { nodes, password: None });
    let redis: Arc<dyn SessionStore> = Arc::new(RedisStore::new(config(url), "lgw:".into(), ttls()));
    let cluster_store: Arc<dyn SessionStore> = Arc::new(RedisStore::new(config(on_cluster), "lgw:".into(), ttls()));
    let memory: Arc<dyn SessionStore> = Arc::new(MemoryStore::new(ttls()));
    let mut servers = cluster;
    servers.push(server);
    (servers, vec![("memory", memory), ("redis", redis), ("redis cluster", cluster_store)])
}

/// Run `case` against each backend, naming the backend in any failure.
async fn each<F, Fut>(case: F)
where
    F: Fn(Arc<dyn SessionStore>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (_servers, stores) = backends();
    for (backend, s) in stores {
        let result = tokio::spawn(case(s)).await;
        assert!(result.is_ok(), "the {backend} backend broke the contract (see the panic above)");
    }
}

fn session(sid: &str, sub: &str, client: &str, cookie: Option<&str>, token: Option<&str>) -> NewSession {
    let exp = unix_now() + 600;
    NewSession {
        sid: sid.into(),
        sub: sub.into(),
        clients: vec![client.into()],
        client_sids: BTreeMap::new(),
        tokens: token.map(|t| vec![Token { hash: t.into(), expires_at: exp, sealed: None }]).unwrap_or_default(),
        cookie_hashes: cookie.map(|c| vec![c.to_string()]).unwrap_or_default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_recorded_found_and_ended_once() {
    each(|s| async move {
        assert!(s.ping().await.is_ok());
        let stored = s.put_session(&session("S1", "U1", "rp-a", Some(H1), Some(H2))).await.unwrap();
        assert!(matches!(stored, PutResult::Stored(ref v) if v.is_active() && v.sub == "U1"), "{stored:?}");
        let other = s.put_session(&session("S1", "U2", "rp-a", None, None)).await.unwrap();
        assert_eq!(other, PutResult::Conflict(Conflict::AnotherSubject));
        assert_eq!(s.get_session("S1").await.unwrap().map(|v| v.status), Some(Status::Active));
        assert_eq!(s.sessions_of("U1").await.unwrap().len(), 1);
        assert_eq!(s.session_by_cookie(H1).await.unwrap().as_deref(), Some("S1"));
        assert_eq!(s.session_by_token(H2).await.unwrap(), Some(("S1".into(), "rp-a".into())));
        assert_eq!(s.end_session("S1", Some("U2"), false).await.unwrap(), EndResult::SubjectMismatch);
        assert!(matches!(s.end_session("S1", Some("U1"), false).await.unwrap(), EndResult::Ended(_)));
        assert!(matches!(s.end_session("S1", None, false).await.unwrap(), EndResult::AlreadyEnded(_)));
        assert_eq!(s.get_session("S1").await.unwrap().map(|v| v.status), Some(Status::Ended));
        // An ended session's tokens and cookies are revoked, and it takes no more.
        assert_eq!(s.revoked_among(&[H1.into(), H2.into(), H3.into()]).await.unwrap(), [true, true, false]);
        let again = s.put_session(&session("S1", "U1", "rp-a", None, None)).await.unwrap();
        assert!(again.is_ended(), "{again:?}");
        assert_eq!(s.end_session("S9", Some("U1"), false).await.unwrap(), EndResult::Unknown);
        assert_eq!(s.end_session("S9", Some("U1"), true).await.unwrap(), EndResult::Recorded);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_never_moves_to_another_subjects_session() {
    each(|s| async move {
        s.put_session(&session("SA", "UA", "rp-a", Some(H1), None)).await.unwrap();
        s.put_session(&session("SB", "UB", "rp-a", Some(H1), None)).await.unwrap();
        assert_eq!(s.session_by_cookie(H1).await.unwrap().as_deref(), Some("SA"));
        // The same subject's next session may take it.
        s.put_session(&session("SA2", "UA", "rp-a", Some(H1), None)).await.unwrap();
        assert_eq!(s.session_by_cookie(H1).await.unwrap().as_deref(), Some("SA2"));
        // Ending SB does not revoke a cookie it never got.
        s.end_session("SB", None, false).await.unwrap();
        assert_eq!(s.revoked_among(&[H1.into()]).await.unwrap(), [false]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sids_alias_a_session_and_an_empty_one_means_the_client_has_none() {
    each(|s| async move {
        let mut new = session("SP", "U1", "rp-a", Some(H1), None);
        new.clients.push("rp-b".into());
        new.client_sids = BTreeMap::from([("rp-a".into(), "SA".into()), ("rp-b".into(), String::new())]);
        s.put_session(&new).await.unwrap();
        let v = s.get_session("SA").await.unwrap().expect("the client sid finds its session");
        assert_eq!(v.sid, "SP");
        assert_eq!((v.client_sid("rp-a"), v.client_sid("rp-b"), v.client_sid("rp-c")), (Some("SA"), None, Some("SP")));
        assert!(s.get_session("").await.unwrap().is_none(), "no alias for an empty sid");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_are_kept_and_answered() {
    each(|s| async move {
        s.revoke_hashes(&[H1.into()]).await.unwrap();
        s.revoke_marks(&[(H2.into(), Duration::from_secs(60))]).await.unwrap();
        assert!(s.is_revoked(H1).await.unwrap());
        assert!(s.is_revoked(H2).await.unwrap());
        assert!(!s.is_revoked(H3).await.unwrap());
        assert_eq!(s.revoked_among(&[H3.into(), H2.into()]).await.unwrap(), [false, true]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_binding_is_taken_once_and_never_replaced() {
    each(|s| async move {
        s.bind_code("C1", &[H1.into()], Duration::from_secs(60)).await.unwrap();
        s.bind_code("C1", &[H2.into()], Duration::from_secs(60)).await.unwrap();
        assert_eq!(s.take_code("C1").await.unwrap(), [H1.to_string()]);
        assert!(s.take_code("C1").await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learned_clients_are_bounded_in_number_and_lifetime() {
    each(|s| async move {
        let now = unix_now();
        let at = |t: u64| format!("{{\"learned_at\":{t}}}");
        let life = Duration::from_secs(100);
        assert!(s.set_registered_client("c1", Some(&at(now - 200)), 2, life).await.unwrap());
        assert!(s.set_registered_client("c2", Some(&at(now)), 2, life).await.unwrap());
        assert_eq!(s.registered_client("c2").await.unwrap(), Some(at(now)));
        // Full: the expired c1 makes room for c3; then c4 finds no room.
        assert!(s.set_registered_client("c3", Some(&at(now)), 2, life).await.unwrap());
        assert_eq!(s.registered_client("c1").await.unwrap(), None);
        assert!(!s.set_registered_client("c4", Some(&at(now)), 2, life).await.unwrap());
        // An update of a kept client always works; a deletion frees a place.
        assert!(s.set_registered_client("c2", Some(&at(now + 1)), 2, life).await.unwrap());
        s.set_registered_client("c2", None, 0, Duration::ZERO).await.unwrap();
        assert_eq!(s.registered_client("c2").await.unwrap(), None);
        assert!(s.set_registered_client("c4", Some(&at(now)), 2, life).await.unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_context_is_taken_once() {
    each(|s| async move {
        assert!(s.put_pending("T1", "{\"x\":1}", Duration::from_secs(60)).await.unwrap());
        assert_eq!(s.take_pending("T1").await.unwrap().as_deref(), Some("{\"x\":1}"));
        assert_eq!(s.take_pending("T1").await.unwrap(), None);
        assert_eq!(s.take_pending("never").await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_key_is_installed_once_until_it_is_old() {
    each(|s| async move {
        assert!(s.signing_keys().await.unwrap().is_empty());
        let now = unix_now();
        let day = Duration::from_secs(86_400);
        // A stored key is JSON with its `created` (the Redis script reads it from there).
        let key = |kid: &str| format!("{{\"kid\":\"{kid}\",\"created\":{now}}}");
        let one = s.install_signing_key("k1", now, &key("k1"), day).await.unwrap();
        assert_eq!(one.len(), 1);
        // A young key exists: the candidate is not installed.
        let still = s.install_signing_key("k2", now, &key("k2"), day).await.unwrap();
        assert_eq!(still, one);
        assert_eq!(s.signing_keys().await.unwrap(), one);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_are_queued_claimed_and_finished() {
    each(|s| async move {
        let notice = |c: &str| Notice {
            client_id: c.into(),
            uri: format!("https://{c}.example/bc"),
            token: "t".into(),
            attempt: 0,
            accepted_ms: 1,
            ..Notice::default()
        };
        s.enqueue_notices(&[notice("a"), notice("b")]).await.unwrap();
        assert_eq!(s.notice_depth().await.unwrap(), 2);
        let claimed = s.claim_notices("w1", 10, Duration::from_secs(30)).await.unwrap();
        assert_eq!(claimed.len(), 2);
        s.finish_notice(&claimed[0].id).await.unwrap();
        // A retry due now comes back once promoted.
        s.retry_notice(&claimed[1].id, &claimed[1].notice, 0).await.unwrap();
        assert_eq!(s.promote_due_notices(unix_now() * 1000).await.unwrap(), 1);
        let again = s.claim_notices("w1", 10, Duration::from_secs(30)).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].notice.client_id, claimed[1].notice.client_id);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_keep_first_reports_count_attempts_and_tickets_work_once() {
    each(|s| async move {
        let n = |f: &str, v: &str| (f.to_string(), v.to_string());
        assert!(s.receipt("RS").await.unwrap().is_empty());
        // First reports stay: a second report for the same RP changes nothing.
        let w = s.note_receipt("RS", &[n("fc:a", "loaded"), n("fc:b", "timeout")], true, None).await.unwrap();
        assert_eq!(w, [true, true]);
        let w = s.note_receipt("RS", &[n("fc:a", "timeout"), n("fc:c", "loaded")], true, None).await.unwrap();
        assert_eq!(w, [false, true]);
        // Results overwrite, attempts count.
        s.note_receipt("RS", &[n("bc:a", "pending")], false, Some("bca:a")).await.unwrap();
        s.note_receipt("RS", &[n("bc:a", "delivered")], false, Some("bca:a")).await.unwrap();
        let r = s.receipt("RS").await.unwrap();
        let want: BTreeMap<String, String> =
            [n("fc:a", "loaded"), n("fc:b", "timeout"), n("fc:c", "loaded"), n("bc:a", "delivered"), n("bca:a", "2")]
                .into();
        assert_eq!(r, want);
        assert!(s.receipt("other").await.unwrap().is_empty(), "receipts are per session");
        // A ticket is taken once, and an unknown one is nothing.
        s.put_ticket("tk1", "{\"x\":1}", Duration::from_secs(60)).await.unwrap();
        assert_eq!(s.take_ticket("tk1").await.unwrap().as_deref(), Some("{\"x\":1}"));
        assert_eq!(s.take_ticket("tk1").await.unwrap(), None);
        assert_eq!(s.take_ticket("nope").await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_keep_records_subjects_and_held_events_in_order() {
    each(|s| async move {
        let st = |id: &str| format!("{id}-{}", crate::crypto::random_token());
        let (a, b) = (st("a"), st("b"));
        assert!(s.ssf_put_stream(&a, "{\"v\":1}", true).await.unwrap());
        assert!(!s.ssf_put_stream(&a, "{\"v\":9}", true).await.unwrap(), "create never overwrites");
        assert!(!s.ssf_put_stream(&b, "{\"v\":1}", false).await.unwrap(), "update never creates");
        assert!(s.ssf_put_stream(&b, "{\"b\":1}", true).await.unwrap());
        assert!(s.ssf_put_stream(&a, "{\"v\":2}", false).await.unwrap());
        let all = s.ssf_streams().await.unwrap();
        assert_eq!(all.get(&a).map(String::as_str), Some("{\"v\":2}"));
        assert_eq!(all.get(&b).map(String::as_str), Some("{\"b\":1}"));
        // Subjects: a stream covers an event when it holds any of the event's keys.
        s.ssf_subject(&a, "u:alice", true).await.unwrap();
        s.ssf_subject(&b, "s:sid-1", true).await.unwrap();
        s.ssf_subject(&b, "u:bob", true).await.unwrap();
        s.ssf_subject(&b, "u:bob", false).await.unwrap();
        let ids = [a.clone(), b.clone()];
        let keys = |k: &[&str]| k.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(s.ssf_covering(&ids, &keys(&["u:alice", "s:x"])).await.unwrap(), vec![a.clone()]);
        assert_eq!(s.ssf_covering(&ids, &keys(&["u:alice", "s:sid-1"])).await.unwrap(), ids);
        assert!(s.ssf_covering(&ids, &keys(&["u:bob"])).await.unwrap().is_empty(), "removed");
        // Held events: oldest first, a held jti keeps its place, acks return the values.
        let ev = |j: &str| (j.to_string(), format!("set-{j}"));
        s.ssf_hold(&a, &[ev("j1"), ev("j2")], 3).await.unwrap();
        s.ssf_hold(&a, &[ev("j1"), ev("j3"), ev("j4")], 3).await.unwrap();
        let t = s.ssf_take(&a, &[], 2).await.unwrap();
        assert_eq!(t.events, [ev("j2"), ev("j3")], "capped at 3: j1, the oldest, dropped");
        assert!(t.more);
        let t = s.ssf_take(&a, &keys(&["j2", "j3", "nope"]), 10).await.unwrap();
        assert_eq!(t.acked, ["set-j2", "set-j3"]);
        assert_eq!(t.events, [ev("j4")]);
        assert!(!t.more);
        assert_eq!(s.ssf_take(&b, &[], 10).await.unwrap(), Taken::default(), "per stream");
        // The verification gate opens once per period.
        assert!(s.ssf_verify_gate(&a, Duration::from_secs(60)).await.unwrap());
        assert!(!s.ssf_verify_gate(&a, Duration::from_secs(60)).await.unwrap());
        // Deleting takes subjects and held events along.
        assert!(s.ssf_delete_stream(&a).await.unwrap());
        assert!(!s.ssf_delete_stream(&a).await.unwrap());
        assert!(s.ssf_put_stream(&a, "{}", true).await.unwrap());
        assert!(s.ssf_covering(&ids, &keys(&["u:alice"])).await.unwrap().is_empty());
        assert!(s.ssf_take(&a, &[], 10).await.unwrap().events.is_empty());
    })
    .await;
}
