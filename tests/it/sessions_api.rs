//! The admin sessions API in docs/admin-api.md, on Redis: bearer token, record and merge, lookup by
//! any sid and by subject, DELETE as a logout, concurrency and script reloads.

use std::time::Duration;

use crate::harness::{client, eventually, Gateway, GatewayOpts, Redis};
use crate::logout::env;
use crate::tokens::hint;
use crate::upstream::Upstream;

const TOKEN: &str = "an-admin-token-long-enough";

fn gw_with_token() -> (Upstream, Redis, Gateway) {
    let up = Upstream::start();
    let redis = Redis::start();
    let mut opts = GatewayOpts::new(up.url());
    opts.redis(Some(redis.url()));
    opts.config.admin.token = Some(TOKEN.into());
    let gw = Gateway::start(&opts);
    (up, redis, gw)
}

#[test]
fn sessions_api_needs_the_bearer_token_when_one_is_configured() {
    let (_up, _redis, gw) = gw_with_token();
    let c = client();
    let r = c.get(gw.admin("/sessions/S1")).send().unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(c.get(gw.admin("/sessions/S1")).bearer_auth("wrong-token-of-some-length").send().unwrap().status(), 401);
    assert_eq!(c.get(gw.admin("/sessions/S1")).bearer_auth(TOKEN).send().unwrap().status(), 404);
    // Health and metrics stay open.
    assert_eq!(c.get(gw.admin("/healthz")).send().unwrap().status(), 200);
    assert!(!gw.log().contains(TOKEN), "the token never reaches the logs");
}

#[test]
fn sessions_are_recorded_merged_found_by_any_sid_and_by_subject() {
    let e = env();
    let c = client();
    e.put("S1", "alice", &["rp1"], &[]);
    e.put("S1", "alice", &["rp2"], &[("rp3", "S1-rp3")]);
    let get = |sid: &str| -> serde_json::Value {
        serde_json::from_slice(&c.get(e.gw.admin(&format!("/sessions/{sid}"))).send().unwrap().bytes().unwrap())
            .unwrap()
    };
    let s = get("S1");
    assert_eq!(s["sid"], "S1");
    assert_eq!(s["sub"], "alice");
    assert_eq!(s["clients"], serde_json::json!(["rp1", "rp2", "rp3"]));
    assert_eq!(s["client_sids"], serde_json::json!({"rp3": "S1-rp3"}));
    assert_eq!(s["status"], "active");
    assert_eq!(get("S1-rp3"), s, "any sid of the session finds it");
    e.put("S2", "alice", &["rp1"], &[]);
    let r: serde_json::Value =
        serde_json::from_slice(&c.get(e.gw.admin("/sessions?sub=alice")).send().unwrap().bytes().unwrap()).unwrap();
    let mut sids: Vec<_> =
        r["sessions"].as_array().unwrap().iter().map(|s| s["sid"].as_str().unwrap().to_string()).collect();
    sids.sort();
    assert_eq!(sids, ["S1", "S2"]);
    // Another subject on a known sid is a conflict; bad bodies are 400.
    let r = c.put(e.gw.admin("/sessions/S1")).body(r#"{"sub":"mallory","clients":[]}"#).send().unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(c.put(e.gw.admin("/sessions/S1")).body("not json").send().unwrap().status(), 400);
    assert_eq!(c.put(e.gw.admin("/sessions/S1")).body(r#"{"sub":""}"#).send().unwrap().status(), 400);
    assert_eq!(c.get(e.gw.admin("/sessions")).send().unwrap().status(), 400);
}

#[test]
fn delete_ends_the_session_like_a_logout_and_is_idempotent() {
    let e = env();
    let c = client();
    e.put("S1", "alice", &["rp-c"], &[]);
    for _ in 0..2 {
        assert_eq!(c.delete(e.gw.admin("/sessions/S1")).send().unwrap().status(), 204);
        assert_eq!(e.status("S1").as_deref(), Some("ended"));
    }
    assert_eq!(c.delete(e.gw.admin("/sessions/never")).send().unwrap().status(), 204);
    // A hint for the ended session is still recognised (tombstone): logout, no confirmation.
    let r = e.get(&[
        ("id_token_hint", &hint(&e.iss, "rp-c", "alice", "S1")),
        ("post_logout_redirect_uri", "https://c.example.com/out"),
    ]);
    assert_eq!(r.status(), 303);
    // Re-recording an ended session is refused.
    let r = c.put(e.gw.admin("/sessions/S1")).body(r#"{"sub":"alice","clients":["rp1"]}"#).send().unwrap();
    assert_eq!(r.status(), 409);
}

#[test]
fn gw09_concurrent_logouts_of_one_session_all_end_well() {
    let e = env();
    e.put("S1", "U1", &["rp-c"], &[]);
    let h = hint(&e.iss, "rp-c", "U1", "S1");
    let url = e.gw.url(&format!(
        "/session/end?id_token_hint={h}&post_logout_redirect_uri=https%3A%2F%2Fc.example.com%2Fout&state=c"
    ));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || client().get(url).send().unwrap())
        })
        .collect();
    for h in handles {
        let r = h.join().unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "https://c.example.com/out?state=c");
    }
    assert_eq!(e.status("S1").as_deref(), Some("ended"));
}

#[test]
fn logout_survives_a_script_cache_flush() {
    let e = env();
    e.put("S1", "U1", &["rp-c"], &[]);
    e.put("S2", "U1", &["rp-c"], &[]);
    let logout = |sid: &str| {
        e.get(&[
            ("id_token_hint", &hint(&e.iss, "rp-c", "U1", sid)),
            ("post_logout_redirect_uri", "https://c.example.com/out"),
        ])
        .status()
    };
    assert_eq!(logout("S1"), 303);
    let port = e.redis_port().unwrap();
    let out =
        std::process::Command::new("redis-cli").args(["-p", &port.to_string(), "SCRIPT", "FLUSH"]).output().unwrap();
    assert!(out.status.success());
    // NOSCRIPT is answered by loading the script again.
    assert_eq!(logout("S2"), 303);
    eventually("S2 ended", Duration::from_secs(2), || (e.status("S2").as_deref() == Some("ended")).then_some(()));
}
