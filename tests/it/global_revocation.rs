//! Global token revocation (draft-parecki-oauth-global-token-revocation) with the real binary and
//! a real redis-server: one subject among several ends everywhere (sessions, tokens at the edge,
//! back-channel notices), every refusal is refused before anything ends, and the endpoint exists
//! only when configured.

use std::time::Duration;

use reqwest::blocking::Response;

use crate::backchannel::{bc_client, fast, posts, verify};
use crate::harness::{client, eventually, RawGlobalRevocation, Redis};
use crate::learning::{token_for, wait_for_discovery};
use crate::logout::Env;
use crate::upstream::Upstream;

/// The second of the two configured tokens (any of them is accepted).
const TOKEN: &str = "gtr-0123456789abcdef0123456789abcdef";

fn env(rp: &Upstream, redis: Redis) -> Env {
    let e = crate::logout::env_opts(Some(redis), |o| {
        o.config.clients = [
            bc_client(rp, "rp-bc", "/status/204?rp=bc", true),
            ("rp-c".to_string(), crate::harness::rp(&["https://c.example.com/out"])),
        ]
        .into();
        fast(&mut o.config.backchannel);
        o.config.global_token_revocation = Some(RawGlobalRevocation {
            path: "/Global-Token-Revocation".into(),
            tokens: vec!["another-caller-token-0123456789abcdef".into(), TOKEN.into()],
        });
    });
    wait_for_discovery(&e);
    e
}

fn discovery(e: &Env) -> serde_json::Value {
    let r = client().get(e.gw.url("/.well-known/openid-configuration")).send().unwrap();
    serde_json::from_slice(&r.bytes().unwrap()).unwrap()
}

fn call(e: &Env, path: &str, auth: Option<&str>, content_type: &str, body: &str) -> Response {
    let mut rq = client().post(e.gw.url(path)).header("content-type", content_type).body(body.to_string());
    if let Some(a) = auth {
        rq = rq.header("authorization", a);
    }
    rq.send().unwrap()
}

fn iss_sub(e: &Env, sub: &str) -> String {
    serde_json::json!({"sub_id": {"format": "iss_sub", "iss": e.iss, "sub": sub}}).to_string()
}

fn learn(e: &Env, code: &str, client_id: &str) {
    assert_eq!(token_for(e, code, "", client_id).status(), 200);
    let sid = format!("sid-{code}");
    eventually("session learned", Duration::from_secs(10), || {
        (e.status(&sid).as_deref() == Some("active")).then_some(())
    });
}

fn userinfo(e: &Env, at: &str) -> u16 {
    client().get(e.gw.url("/userinfo")).bearer_auth(at).send().unwrap().status().as_u16()
}

#[test]
fn one_subject_among_several_ends_everywhere_and_its_rps_are_told() {
    let rp = Upstream::start();
    let e = env(&rp, Redis::start());
    let d = discovery(&e);
    assert_eq!(d["global_token_revocation_endpoint"], format!("{}/global-token-revocation", e.iss));
    learn(&e, "alice_1", "rp-c");
    learn(&e, "alice_2", "rp-bc");
    learn(&e, "bob_1", "rp-c");
    for at in ["at-alice_1", "at-alice_2", "at-bob_1"] {
        assert_eq!(userinfo(&e, at), 200, "{at} before");
    }
    let alice = iss_sub(&e, "U-alice");
    let json = "application/json";
    // Not the caller: refused before the body is looked at, in every spelling of not having a token.
    let bearer = format!("Bearer {TOKEN}");
    for auth in [
        None,
        Some("Bearer wrong-token-0123456789abcdef0123456789"),
        Some("Basic Z3RyOnNlY3JldA=="),
        Some(TOKEN),
        Some(&bearer[..bearer.len() - 1]),
    ] {
        let r = call(&e, "/global-token-revocation", auth, json, &alice);
        assert_eq!(r.status(), 401, "{auth:?}");
        assert_eq!(r.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);
    }
    // The caller with a body that does not name one subject it can resolve: 400, nothing ends.
    let bad = [
        ("text/plain", alice.clone()),
        (json, "not json".into()),
        (json, "[]".into()),
        (json, "{}".into()),
        (
            json,
            format!(
                r#"{{"sub_id": {{"format": "iss_sub", "iss": "{}", "sub": "U-alice"}}, "sub_id": {{"format": "opaque", "id": "U-bob"}}}}"#,
                e.iss
            ),
        ),
        (json, r#"{"sub_id": {"format": "phone_number", "phone_number": "+1"}}"#.into()),
        (json, r#"{"sub_id": {"format": "iss_sub", "iss": "https://other.example", "sub": "U-alice"}}"#.into()),
        (json, r#"{"sub_id": {"format": "email", "email": "alice@example.com"}}"#.into()),
        (json, r#"{"sub_id": {"format": "opaque", "id": ""}}"#.into()),
        (json, format!(r#"{{"sub_id": {{"format": "opaque", "id": "{}"}}}}"#, "x".repeat(300))),
    ];
    for (ct, body) in &bad {
        let r = call(&e, "/global-token-revocation", Some(&bearer), ct, body);
        assert_eq!(r.status(), 400, "{ct} {body}");
        let text = r.text().unwrap();
        assert!(
            text.contains("invalid_request") && !text.contains("U-alice") && !text.contains("other.example"),
            "{text}"
        );
    }
    assert_eq!(client().get(e.gw.url("/global-token-revocation")).bearer_auth(TOKEN).send().unwrap().status(), 405);
    // A subject the gateway never saw.
    assert_eq!(call(&e, "/global-token-revocation", Some(&bearer), json, &iss_sub(&e, "U-nobody")).status(), 404);
    for sid in ["sid-alice_1", "sid-alice_2", "sid-bob_1"] {
        assert_eq!(e.status(sid).as_deref(), Some("active"), "{sid} untouched by refused calls");
    }
    assert!(posts(&rp, "/status/").is_empty(), "no notice for a refused call");

    // Alice, through another spelling of the path: every session of hers ends, Bob's stays.
    let r = call(
        &e,
        "/GLOBAL-token-revocation/",
        Some(&format!("bearer {TOKEN}")),
        "application/json; charset=utf-8",
        &alice,
    );
    assert_eq!(r.status(), 204);
    assert_eq!(e.status("sid-alice_1").as_deref(), Some("ended"));
    assert_eq!(e.status("sid-alice_2").as_deref(), Some("ended"));
    assert_eq!(e.status("sid-bob_1").as_deref(), Some("active"));
    // Her tokens are refused at the edge, at every instance's in-memory set; Bob's pass.
    eventually("alice's tokens refused", Duration::from_secs(5), || (userinfo(&e, "at-alice_1") == 401).then_some(()));
    assert_eq!(userinfo(&e, "at-alice_2"), 401);
    assert_eq!(userinfo(&e, "at-bob_1"), 200);
    // Her RP with a back-channel URI got a logout token for its session, signed by the gateway.
    eventually("the back-channel notice", Duration::from_secs(10), || {
        (posts(&rp, "/status/").len() == 1).then_some(())
    });
    let (_, claims) = verify(&e, &posts(&rp, "/status/")[0]);
    assert_eq!((claims["sub"].as_str(), claims["sid"].as_str()), (Some("U-alice"), Some("sid-alice_2")));
    // Again: idempotent (204), and no second notice.
    assert_eq!(call(&e, "/global-token-revocation", Some(&bearer), json, &alice).status(), 204);
    // The opaque format names the OP's subject: Bob ends too.
    let bob = r#"{"sub_id": {"format": "opaque", "id": "U-bob"}}"#;
    assert_eq!(call(&e, "/global-token-revocation", Some(&bearer), json, bob).status(), 204);
    assert_eq!(e.status("sid-bob_1").as_deref(), Some("ended"));
    assert_eq!(userinfo(&e, "at-bob_1"), 401);
    assert_eq!(posts(&rp, "/status/").len(), 1, "Bob's RP has no back-channel URI; Alice got one notice only");
    let m = |r: &str| e.gw.metric(&format!("logout_gateway_global_revocations_total{{result=\"{r}\"}}"));
    assert_eq!((m("unauthorized"), m("invalid"), m("unknown"), m("ended")), (5.0, 11.0, 1.0, 3.0));
}

#[test]
fn unconfigured_it_is_proxied_and_a_store_that_cannot_confirm_is_a_503() {
    // Off: the path is the OP's like any other, and discovery does not name it.
    let e = crate::logout::env();
    wait_for_discovery(&e);
    let before = e.up.count_app();
    let r = call(&e, "/global-token-revocation", Some(&format!("Bearer {TOKEN}")), "application/json", "{}");
    assert_eq!(r.headers()["x-upstream"], "fake");
    assert_eq!(e.up.count_app(), before + 1);
    let d = discovery(&e);
    assert!(d.get("global_token_revocation_endpoint").is_none());

    // On, and Redis gone: 503 with Retry-After, never a 204.
    let rp = Upstream::start();
    let mut e = env(&rp, Redis::start());
    learn(&e, "carol_1", "rp-c");
    e._redis.as_mut().unwrap().kill();
    let r = call(
        &e,
        "/global-token-revocation",
        Some(&format!("Bearer {TOKEN}")),
        "application/json",
        &iss_sub(&e, "U-carol"),
    );
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    assert!(r.text().unwrap().contains("temporarily_unavailable"));
    assert_eq!(e.gw.metric("logout_gateway_global_revocations_total{result=\"unavailable\"}"), 1.0);
}
