//! The Shared Signals transmitter with the real binary and a real redis-server: discovery,
//! streams per receiver (another receiver's are 404), bad input refused, verification pushed
//! and retried with the same SET, session-revoked SETs for sessions ended by end_session, the
//! admin API and global revocation, delivered by push and by poll (acknowledged), each SET
//! verified against the JWKS at discovery's jwks_uri, the receipt, and the streams seen by a
//! second instance on the same Redis.

use std::time::Duration;

use jsonwebtoken::{DecodingKey, Validation};
use reqwest::blocking::Response;
use serde_json::{json, Value};

use crate::backchannel::{fast, posts};
use crate::harness::{client, eventually, Gateway, RawGlobalRevocation, RawSsf, RawSsfReceiver, Redis};
use crate::logout::Env;
use crate::tokens::hint;
use crate::upstream::Upstream;

const CRM: &str = "crm-receiver-token-0123456789abcdef0123";
const AUDIT: &str = "audit-receiver-token-0123456789abcdef01";
const GTR: &str = "gtr-caller-token-0123456789abcdef012345";
const REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";

fn env(redis: Redis) -> Env {
    let receiver = |token: &str, client: Option<&str>| RawSsfReceiver {
        token: token.into(),
        client_id: client.map(String::from),
        max_streams: 2,
    };
    let e = crate::logout::env_opts(Some(redis), |o| {
        fast(&mut o.config.backchannel);
        o.config.ssf = Some(RawSsf {
            path: "/ssf".into(),
            receivers: [("crm".to_string(), receiver(CRM, Some("rp-a"))), ("audit".into(), receiver(AUDIT, None))]
                .into(),
        });
        o.config.global_token_revocation =
            Some(RawGlobalRevocation { path: "/global-token-revocation".into(), tokens: vec![GTR.into()] });
    });
    crate::learning::wait_for_discovery(&e);
    eventually("readyz (signing keys loaded)", Duration::from_secs(20), || {
        (client().get(e.gw.admin("/readyz")).send().ok()?.status() == 200).then_some(())
    });
    e
}

fn call(e: &Env, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rq = client().request(m, e.gw.url(path));
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    if let Some(b) = body {
        rq = rq.header("content-type", "application/json").body(b.to_string());
    }
    rq.send().unwrap()
}

fn json_of(r: Response) -> Value {
    serde_json::from_slice(&r.bytes().unwrap()).unwrap()
}

/// A SET, verified with the key discovery's jwks_uri serves: header and claims.
fn verify_set(e: &Env, token: &str) -> (jsonwebtoken::Header, Value) {
    let d = json_of(client().get(e.gw.url("/.well-known/ssf-configuration")).send().unwrap());
    let jwks_url = d["jwks_uri"].as_str().unwrap().replace(&e.iss, &e.gw.url(""));
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_slice(&client().get(jwks_url).send().unwrap().bytes().unwrap()).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("the SET's key is in the published JWKS");
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[&e.iss]);
    v.validate_aud = false;
    v.validate_exp = false;
    v.set_required_spec_claims(&["iss", "iat", "jti"]);
    let data = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v).unwrap();
    assert!(data.claims.get("sub").is_none() && data.claims.get("exp").is_none(), "SSF: no sub, no exp");
    (data.header, data.claims)
}

fn pushed(rp: &Upstream, key: &str) -> Vec<crate::upstream::Seen> {
    posts(rp, "/flaky").into_iter().filter(|p| p.target.contains(&format!("key={key}"))).collect()
}

#[test]
fn streams_per_receiver_deliver_session_revoked_by_push_with_retries_and_by_poll() {
    let rp = Upstream::start();
    let e = env(Redis::start());
    // Discovery: the transmitter's metadata on the issuer's origin.
    let d = json_of(client().get(e.gw.url("/.well-known/ssf-configuration")).send().unwrap());
    assert_eq!(d["spec_version"], "1_0");
    assert_eq!(d["issuer"], e.iss);
    assert_eq!(d["configuration_endpoint"], format!("{}/ssf/streams", e.iss));
    assert_eq!(d["delivery_methods_supported"], json!(["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"]));
    assert_eq!(d["default_subjects"], "NONE");
    assert_eq!(d["authorization_schemes"], json!([{"spec_urn": "urn:ietf:rfc:6750"}]));
    let oidc = json_of(client().get(e.gw.url("/.well-known/openid-configuration")).send().unwrap());
    assert_eq!(d["jwks_uri"], oidc["jwks_uri"]);
    // No receiver: 401 in every spelling of the path, nothing read.
    for (path, token) in [
        ("/ssf/streams", None),
        ("/SSF/streams", Some("wrong-0123456789abcdef0123456789abcdef")),
        ("/ssf/%73treams/", Some("")),
    ] {
        let r = call(&e, "GET", path, token, None);
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(r.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);
    }
    assert_eq!(call(&e, "GET", "/ssf/nothing", Some(CRM), None).status(), 404);

    // crm: a push stream to a receiver that fails its first request; audit: a poll stream.
    let push_url = format!("http://127.0.0.1:{}/flaky?fail=1&key=crm", rp.addr.port());
    let created = call(
        &e,
        "POST",
        "/ssf/streams",
        Some(CRM),
        Some(json!({
        "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": push_url, "authorization_header": "Bearer for-crm"},
        "events_requested": [REVOKED, "urn:example:unknown"], "aud": "https://crm.example", "description": "CRM"})),
    );
    assert_eq!(created.status(), 201);
    let crm = json_of(created);
    let crm_id = crm["stream_id"].as_str().unwrap().to_string();
    assert_eq!((crm["iss"].as_str(), crm["aud"].as_str()), (Some(e.iss.as_str()), Some("https://crm.example")));
    assert_eq!(crm["events_delivered"], json!([REVOKED]));
    let audit = json_of(call(&e, "POST", "/ssf/streams", Some(AUDIT), Some(json!({}))));
    let audit_id = audit["stream_id"].as_str().unwrap().to_string();
    assert_eq!(audit["delivery"]["method"], "urn:ietf:rfc:8936");
    let poll_url = format!("{}/ssf/poll/{audit_id}", e.iss);
    assert_eq!(audit["delivery"]["endpoint_url"], poll_url);
    let poll_path = format!("/ssf/poll/{audit_id}");

    // One receiver never sees another's streams.
    let q = format!("/ssf/streams?stream_id={crm_id}");
    assert_eq!(call(&e, "GET", &q, Some(AUDIT), None).status(), 404);
    assert_eq!(call(&e, "DELETE", &q, Some(AUDIT), None).status(), 404);
    assert_eq!(
        call(&e, "PATCH", "/ssf/streams", Some(AUDIT), Some(json!({"stream_id": crm_id, "description": "x"}))).status(),
        404
    );
    assert_eq!(call(&e, "POST", &format!("/ssf/poll/{crm_id}"), Some(AUDIT), Some(json!({}))).status(), 404);
    let mine = json_of(call(&e, "GET", "/ssf/streams", Some(AUDIT), None));
    assert_eq!(mine.as_array().map(|a| a.len()), Some(1));
    assert_eq!(json_of(call(&e, "GET", &q, Some(CRM), None))["description"], "CRM");
    // Bad input: 400 with a fixed text, 405, 409 beyond max_streams.
    for body in [
        json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "http://crm.example/events"}}),
        json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": push_url, "authorization_header": "x\r\nInjected: 1"}}),
        json!({"delivery": {"method": "urn:example:carrier-pigeon"}}),
        json!({"stream_id": "0123456789abcdef0123456789abcdef"}),
        json!({"iss": "https://evil.example"}),
        json!([]),
    ] {
        let r = call(&e, "POST", "/ssf/streams", Some(AUDIT), Some(body.clone()));
        assert_eq!(r.status(), 400, "{body}");
        assert!(!r.text().unwrap().contains("evil"), "nothing reflected");
    }
    assert_eq!(
        call(&e, "PATCH", "/ssf/streams", Some(CRM), Some(json!({"stream_id": crm_id, "aud": "x"}))).status(),
        400
    );
    assert_eq!(
        call(&e, "POST", "/ssf/status", Some(CRM), Some(json!({"stream_id": crm_id, "status": "on"}))).status(),
        400
    );
    let r = call(&e, "GET", "/ssf/verify", Some(CRM), None);
    assert_eq!((r.status().as_u16(), r.headers()["allow"].to_str().unwrap()), (405, "POST"));
    assert_eq!(call(&e, "POST", "/ssf/streams", Some(AUDIT), Some(json!({}))).status(), 201);
    assert_eq!(call(&e, "POST", "/ssf/streams", Some(AUDIT), Some(json!({}))).status(), 409, "max_streams 2");
    let email = json!({"stream_id": crm_id, "subject": {"format": "email", "email": "alice@example.com"}});
    assert_eq!(call(&e, "POST", "/ssf/subjects:add", Some(CRM), Some(email)).status(), 400);

    // Verification: pushed (the first attempt fails, the retry carries the same SET), at most
    // once per min_verification_interval.
    let verify = json!({"stream_id": crm_id, "state": "state-1"});
    assert_eq!(call(&e, "POST", "/ssf/verify", Some(CRM), Some(verify.clone())).status(), 204);
    assert_eq!(call(&e, "POST", "/ssf/verify", Some(CRM), Some(verify)).status(), 429);
    let attempts = eventually("verification delivered after a retry", Duration::from_secs(15), || {
        let p = pushed(&rp, "crm");
        (p.len() == 2).then_some(p)
    });
    assert_eq!(attempts[0].body, attempts[1].body, "a retry sends the same SET (same jti)");
    assert_eq!(attempts[0].header("content-type"), Some("application/secevent+jwt"));
    assert_eq!(attempts[0].header("authorization"), Some("Bearer for-crm"));
    let (_, v) = verify_set(&e, &attempts[0].body);
    assert_eq!(v["events"][VERIFICATION]["state"], "state-1");
    assert_eq!(v["sub_id"], json!({"format": "opaque", "id": crm_id}));
    assert_eq!(v["aud"], "https://crm.example");

    // Subjects: crm follows alice (every session of hers), audit one session of bob's.
    let alice = json!({"format": "iss_sub", "iss": e.iss, "sub": "alice"});
    assert_eq!(
        call(
            &e,
            "POST",
            "/ssf/subjects:add",
            Some(CRM),
            Some(json!({"stream_id": crm_id, "subject": alice, "verified": true}))
        )
        .status(),
        200
    );
    let bob_session = json!({"format": "complex", "session": {"format": "opaque", "id": "sid-bob-2"}});
    assert_eq!(
        call(
            &e,
            "POST",
            "/ssf/subjects:add",
            Some(AUDIT),
            Some(json!({"stream_id": audit_id, "subject": bob_session}))
        )
        .status(),
        200
    );
    e.put("sid-alice-1", "alice", &["rp-a"], &[("rp-a", "rpa-sid-a")]);
    e.put("sid-alice-2", "alice", &["rp-b"], &[]);
    e.put("sid-bob-1", "bob", &["rp-a"], &[]);
    e.put("sid-bob-2", "bob", &["rp-a"], &[]);

    // Ended by end_session (the user), by global revocation and by the admin API (admin).
    let r = e.get(&[("id_token_hint", &hint(&e.iss, "rp-a", "alice", "rpa-sid-a"))]);
    assert!(r.status().is_success() || r.status().is_redirection(), "{}", r.status());
    assert_eq!(e.status("sid-alice-1").as_deref(), Some("ended"));
    let gtr = json!({"sub_id": {"format": "iss_sub", "iss": e.iss, "sub": "alice"}});
    let r = client()
        .post(e.gw.url("/global-token-revocation"))
        .bearer_auth(GTR)
        .header("content-type", "application/json")
        .body(gtr.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    for sid in ["sid-bob-1", "sid-bob-2"] {
        assert_eq!(client().delete(e.gw.admin(&format!("/sessions/{sid}"))).send().unwrap().status(), 204);
    }
    // crm got alice's two sessions (the sid its client knows where it took part), nothing of bob's.
    let sets = eventually("alice's two SETs pushed", Duration::from_secs(15), || {
        let p = pushed(&rp, "crm");
        (p.len() == 4).then_some(p)
    });
    let mut seen: Vec<(String, String)> = sets[2..]
        .iter()
        .map(|p| {
            let (_, c) = verify_set(&e, &p.body);
            assert_eq!(c["sub_id"]["user"], json!({"format": "iss_sub", "iss": e.iss, "sub": "alice"}));
            assert!(c["txn"].is_string() && c["events"][REVOKED]["event_timestamp"].is_u64());
            let who = c["events"][REVOKED]["initiating_entity"].as_str().unwrap().to_string();
            (c["sub_id"]["session"]["id"].as_str().unwrap().to_string(), who)
        })
        .collect();
    seen.sort();
    assert_eq!(seen, [("rpa-sid-a".to_string(), "user".to_string()), ("sid-alice-2".into(), "admin".into())]);

    // audit polls: bob's second session only; unacknowledged events come again, acknowledged go.
    let poll = |body: Value| json_of(call(&e, "POST", &poll_path, Some(AUDIT), Some(body)));
    let first = poll(json!({"returnImmediately": true}));
    let sets = first["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 1, "{first}");
    let (jti, set) = sets.iter().next().unwrap();
    let (_, c) = verify_set(&e, set.as_str().unwrap());
    assert_eq!((c["jti"].as_str(), c["aud"].as_str()), (Some(jti.as_str()), Some("audit")));
    assert_eq!(c["sub_id"]["session"]["id"], "sid-bob-2");
    assert_eq!(c["events"][REVOKED]["initiating_entity"], "admin");
    assert_eq!(poll(json!({"returnImmediately": true}))["sets"], first["sets"], "redelivered until acknowledged");
    let after = poll(json!({"ack": [jti], "returnImmediately": true}));
    assert_eq!(after, json!({"sets": {}}));

    // The receipt: rp-a is crm's client; its SET for alice's first session was delivered.
    let s = json_of(client().get(e.gw.admin("/sessions/sid-alice-1")).send().unwrap());
    assert_eq!(s["receipt"]["rp-a"]["ssf"], "delivered", "{s}");
    let m = |r: &str| e.gw.metric(&format!("logout_gateway_ssf_deliveries_total{{result=\"{r}\"}}"));
    assert_eq!((m("delivered"), m("retried")), (4.0, 1.0), "3 pushed (one after a retry) and 1 acknowledged");

    // Streams live in Redis: a second instance sees them and their state.
    let other = Gateway::start(&e.opts);
    let r = client().get(other.url(&format!("/ssf/status?stream_id={crm_id}"))).bearer_auth(CRM).send().unwrap();
    assert_eq!(json_of(r), json!({"stream_id": crm_id, "status": "enabled"}));
    assert_eq!(call(&e, "DELETE", &q, Some(CRM), None).status(), 204);
    assert_eq!(client().get(other.url(&q)).bearer_auth(CRM).send().unwrap().status(), 404);
}
