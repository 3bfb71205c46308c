//! Learning that cannot be steered: one table of attacks on how the gateway binds OP cookies to
//! sessions, each against the real binary, a real redis-server (and the memory store) and the
//! careless fake OP. In every row Mallory tries to get a cookie she holds into Victor's session
//! (so her hint-less logout would end his session), or his into hers. The safe outcome, checked
//! every time: Mallory's logout leaves Victor's session active, and Victor's own logout by his
//! cookie still ends it (so the binding that should exist does).

use std::time::Duration;

use crate::harness::{client, eventually};
use crate::learning::{code_flow, confirm_with, op_login, token, wait_for_discovery};
use crate::logout::{env_with, Env};

/// A fresh OP login whose code nobody redeems: an OP cookie bound to no session.
fn unbound_login(e: &Env, user: &str) -> String {
    op_login(e, user, &format!("unused-{user}"), None).0
}

fn authorize(e: &Env, cookie: &str, query: &str) -> reqwest::blocking::Response {
    client().get(e.gw.url(&format!("/oauth/authorize?client_id=rp-c&{query}"))).header("cookie", cookie).send().unwrap()
}

fn active(e: &Env, sid: &str) {
    eventually(&format!("{sid} learned"), Duration::from_secs(10), || {
        (e.status(sid).as_deref() == Some("active")).then_some(())
    });
}

fn logout_by_cookie(e: &Env, cookie: &str) {
    let page = client().get(e.gw.url("/session/end")).header("cookie", cookie).send().unwrap();
    assert_eq!(confirm_with(e, page, cookie).status(), 200);
}

/// Each row sets the scene and returns (Victor's cookie, Mallory's cookie, Victor's sid,
/// Mallory's sid if she has a learned session).
type Row = (&'static str, fn(&Env) -> (String, String, String, Option<String>));

const ROWS: &[Row] = &[
    ("a cookie Mallory planted, replaced by the OP at login", |e| {
        let (victor, r) = op_login(e, "victor1", "v1", Some("op_session=S-mallory1"));
        assert_eq!(r.status(), 302);
        assert_eq!(token(e, "v1", "").status(), 200);
        (victor, "op_session=S-mallory1".into(), "sid-v1".into(), None)
    }),
    ("a planted cookie the OP expires while it issues the code", |e| {
        let victor = unbound_login(e, "victor2");
        let r = authorize(e, "op_session=S-victor2", "code_to_issue=v2&expire_cookie=1");
        assert!(r.headers()["location"].to_str().unwrap().contains("code=v2"));
        assert_eq!(token(e, "v2", "").status(), 200);
        // The expired value is not the OP's any more: it must not join (only the test's careless
        // OP issued a code anyway).
        (victor.clone(), victor, "sid-v2".into(), None)
    }),
    ("Victor's code reflected to Mallory's browser before he redeems it", |e| {
        let victor = unbound_login(e, "victor3");
        let mallory = unbound_login(e, "mallory3");
        assert!(authorize(e, &victor, "code_to_issue=v3").headers()["location"].to_str().unwrap().contains("code=v3"));
        // The careless OP emits the same code again, now with Mallory's cookie: a second binding.
        assert!(authorize(e, &mallory, "code_to_issue=v3").headers()["location"].to_str().unwrap().contains("code=v3"));
        assert_eq!(token(e, "v3", "").status(), 200);
        (victor, mallory, "sid-v3".into(), None)
    }),
    ("Mallory's live session cookie sent along with Victor's at SSO", |e| {
        let mallory = code_flow(e, "mallory4", "m4");
        active(e, "sid-m4");
        let victor = unbound_login(e, "victor4");
        let both = format!("{victor}; {mallory}");
        assert!(authorize(e, &both, "code_to_issue=v4").headers()["location"].to_str().unwrap().contains("code=v4"));
        assert_eq!(token(e, "v4", "").status(), 200);
        (victor, mallory, "sid-v4".into(), Some("sid-m4".into()))
    }),
    ("Victor's cookie sent along with Mallory's live one at her SSO", |e| {
        let victor = code_flow(e, "victor5", "v5");
        active(e, "sid-v5");
        let mallory = unbound_login(e, "mallory5");
        // Mallory's browser presents her cookie first (the OP serves her) and Victor's value too.
        let both = format!("{mallory}; {victor}");
        assert!(authorize(e, &both, "code_to_issue=m5").headers()["location"].to_str().unwrap().contains("code=m5"));
        assert_eq!(token(e, "m5", "").status(), 200);
        active(e, "sid-m5");
        (victor, mallory, "sid-v5".into(), Some("sid-m5".into()))
    }),
];

fn run(redis: bool) {
    for (name, scene) in ROWS {
        let e = env_with(|_| {}, redis);
        wait_for_discovery(&e);
        let (victor, mallory, victor_sid, mallory_sid) = scene(&e);
        active(&e, &victor_sid);
        logout_by_cookie(&e, &mallory);
        assert_eq!(e.status(&victor_sid).as_deref(), Some("active"), "{name}: Mallory's logout ended Victor's session");
        if let Some(m) = &mallory_sid {
            assert_eq!(e.status(m).as_deref(), Some("ended"), "{name}: Mallory's logout found her own session");
        }
        if victor != mallory {
            logout_by_cookie(&e, &victor);
            assert_eq!(
                e.status(&victor_sid).as_deref(),
                Some("ended"),
                "{name}: Victor's cookie should end his session"
            );
        }
    }
}

#[test]
fn learning_cannot_be_steered_redis() {
    run(true);
}

#[test]
fn learning_cannot_be_steered_memory_store() {
    run(false);
}
