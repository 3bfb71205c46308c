//! Back-Channel Logout 1.0 from the gateway: tokens verified against the JWKS fetched through
//! the gateway, delivery rules (BCL-16..19), durability across a SIGKILL, parallel delivery.

use std::time::Duration;

use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::harness::{client, eventually, Gateway, GatewayOpts, RawBackchannel, RawClient, Redis};
use crate::logout::Env;
use crate::tokens::hint;
use crate::upstream::{Seen, Upstream};

/// Quick retries and claims, so delivery tests take seconds.
pub fn fast(b: &mut RawBackchannel) {
    b.retry_initial = "200ms".into();
    b.retry_max = "1s".into();
    b.timeout = "1s".into();
    b.claim_after = "2s".into();
    b.poll_interval = "50ms".into();
}

/// A client `id` whose back-channel URI is `path` on `rp`.
pub fn bc_client(rp: &Upstream, id: &str, path: &str, sid_required: bool) -> (String, RawClient) {
    let c = RawClient {
        backchannel_logout_uri: Some(format!("http://127.0.0.1:{}{path}", rp.addr.port())),
        backchannel_logout_session_required: sid_required,
        ..crate::harness::rp(&[&format!("https://{id}.example/out")])
    };
    (id.to_string(), c)
}

/// A gateway on Redis whose clients' back-channel URIs point at `rp` paths; its `backchannel`
/// block is [`fast`], then changed by `bc`.
fn bc_env(
    rp: &Upstream,
    clients: &[(&str, &str, bool)],
    bc: impl FnOnce(&mut RawBackchannel),
    redis: Option<Redis>,
) -> Env {
    let e = crate::logout::env_opts(Some(redis.unwrap_or_else(Redis::start)), |opts| {
        opts.config.clients = clients.iter().map(|(id, path, sid)| bc_client(rp, id, path, *sid)).collect();
        fast(&mut opts.config.backchannel);
        bc(&mut opts.config.backchannel);
    });
    eventually("readyz (signing keys loaded)", Duration::from_secs(20), || {
        (client().get(e.gw.admin("/readyz")).send().ok()?.status() == 200).then_some(())
    });
    e
}

pub fn posts(rp: &Upstream, path_prefix: &str) -> Vec<Seen> {
    rp.seen().into_iter().filter(|s| s.method == "POST" && s.target.starts_with(path_prefix)).collect()
}

fn logout(e: &Env, client_id: &str, sid: &str) -> reqwest::blocking::Response {
    e.get(&[
        ("id_token_hint", &hint(&e.iss, client_id, "U1", sid)),
        ("post_logout_redirect_uri", &format!("https://{client_id}.example/out")),
    ])
}

/// The logout_token of a back-channel POST, verified with the JWKS served by the gateway.
pub fn verify(e: &Env, post: &Seen) -> (jsonwebtoken::Header, Value) {
    assert_eq!(post.header("content-type"), Some("application/x-www-form-urlencoded"));
    let form: Vec<(String, String)> = url::form_urlencoded::parse(post.body.as_bytes()).into_owned().collect();
    assert_eq!(form.len(), 1, "BCL-16: only logout_token: {form:?}");
    assert_eq!(form[0].0, "logout_token");
    let token = &form[0].1;
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_slice(&client().get(e.gw.url("/jwks")).send().unwrap().bytes().unwrap()).unwrap();
    let kid = header.kid.clone().expect("kid");
    let jwk = jwks.find(&kid).expect("GW-04: the signing key is in the JWKS served at jwks_uri");
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[&e.iss]);
    v.validate_aud = false;
    v.set_required_spec_claims(&["iss", "iat", "exp"]);
    let data = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v).unwrap();
    (data.header, data.claims)
}

#[test]
fn gw04_the_signing_key_is_published_at_discoverys_jwks_uri_when_jwks_uri_names_the_upstream() {
    // CONTRACT's own shape: keys fetched from the upstream's internal address. RPs still find
    // the keys (the OP's and the gateway's) where discovery says, on the gateway's origin.
    let rp = Upstream::start();
    let e = crate::logout::env_opts(Some(Redis::start()), |o| {
        o.config.jwks.uri = Some(format!("{}/jwks", o.config.upstream.url));
        o.config.clients = [bc_client(&rp, "rp-bc", "/status/204?rp=bc", true)].into();
        fast(&mut o.config.backchannel);
    });
    eventually("readyz and discovery", Duration::from_secs(20), || {
        (client().get(e.gw.admin("/readyz")).send().ok()?.status() == 200).then_some(())?;
        let r = client().get(e.gw.url("/.well-known/openid-configuration")).send().ok()?;
        let d: Value = serde_json::from_slice(&r.bytes().ok()?).ok()?;
        d.get("frontchannel_logout_supported").is_some().then_some(())
    });
    let d: Value = serde_json::from_slice(
        &client().get(e.gw.url("/.well-known/openid-configuration")).send().unwrap().bytes().unwrap(),
    )
    .unwrap();
    assert_eq!(d["jwks_uri"], format!("{}/jwks", e.iss));
    e.put("SJ", "U1", &["rp-bc"], &[]);
    assert_eq!(logout(&e, "rp-bc", "SJ").status(), 303);
    eventually("the delivery", Duration::from_secs(10), || (posts(&rp, "/status/").len() == 1).then_some(()));
    // verify() takes the key from the gateway's /jwks: the logout token's kid is there.
    let (_, claims) = verify(&e, &posts(&rp, "/status/")[0]);
    assert_eq!(claims["sid"], "SJ");
    let jwks: Value =
        serde_json::from_slice(&client().get(e.gw.url("/jwks")).send().unwrap().bytes().unwrap()).unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().filter_map(|k| k["kid"].as_str()).collect();
    assert!(
        kids.contains(&"rsa1") && kids.contains(&"ec1") && kids.len() == 3,
        "the OP's keys and the gateway's: {kids:?}"
    );
}

#[test]
fn bcl_logout_tokens_verify_against_the_published_jwks_and_carry_the_right_claims() {
    let rp = Upstream::start();
    let e = bc_env(&rp, &[("rp-bc", "/status/204?rp=bc", true), ("rp-sub", "/status/200?rp=sub", false)], |_| {}, None);
    e.put("SX", "U1", &["rp-bc", "rp-sub"], &[("rp-sub", "SX-sub")]);
    let r = logout(&e, "rp-bc", "SX");
    assert_eq!(r.status(), 303);
    eventually("two deliveries", Duration::from_secs(10), || (posts(&rp, "/status/").len() == 2).then_some(()));
    let mut jtis = Vec::new();
    for p in posts(&rp, "/status/") {
        let (h, c) = verify(&e, &p);
        assert_eq!(h.typ.as_deref(), Some("logout+jwt"), "BCL-13");
        assert_eq!(h.alg, jsonwebtoken::Algorithm::RS256, "BCL-14: the ID tokens' algorithm");
        let aud = if p.target.contains("rp=bc") { "rp-bc" } else { "rp-sub" };
        assert_eq!(c["aud"], aud);
        assert_eq!(c["sub"], "U1");
        assert_eq!(c["sid"], if aud == "rp-bc" { "SX" } else { "SX-sub" }, "GW-03: each RP gets its own sid");
        let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
        assert!(exp > iat && exp - iat <= 120, "BCL-22");
        assert!((iat - crate::tokens::now()).abs() < 60);
        assert_eq!(
            c["events"],
            serde_json::json!({"http://schemas.openid.net/event/backchannel-logout": {}}),
            "BCL-07"
        );
        assert!(c.get("nonce").is_none(), "BCL-09");
        jtis.push(c["jti"].as_str().unwrap().to_string());
    }
    assert_ne!(jtis[0], jtis[1], "BCL-24: a fresh jti per token");
    // Discovery through the gateway advertises what the gateway does (GW-05).
    let d: Value = serde_json::from_slice(
        &client().get(e.gw.url("/.well-known/openid-configuration")).send().unwrap().bytes().unwrap(),
    )
    .unwrap();
    for flag in [
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
        "frontchannel_logout_supported",
        "frontchannel_logout_session_supported",
    ] {
        assert_eq!(d[flag], Value::Bool(true), "{flag}");
    }
    assert_eq!(d["end_session_endpoint"], format!("{}/session/end", e.iss));
    assert_eq!(d["issuer"], e.iss, "issuer untouched");
    // The JWKS holds the upstream's keys too.
    let jwks: Value =
        serde_json::from_slice(&client().get(e.gw.url("/jwks")).send().unwrap().bytes().unwrap()).unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().filter_map(|k| k["kid"].as_str()).collect();
    assert!(kids.contains(&"rsa1") && kids.contains(&"ec1") && kids.len() == 3, "{kids:?}");
    assert_eq!(e.gw.metric("logout_gateway_backchannel_deliveries_total{result=\"success\"}"), 2.0);
}

#[test]
fn bcl17_a_400_gets_exactly_one_attempt() {
    let rp = Upstream::start();
    let e = bc_env(&rp, &[("rp-bad", "/status/400", true)], |_| {}, None);
    e.put("S4", "U1", &["rp-bad"], &[]);
    assert_eq!(logout(&e, "rp-bad", "S4").status(), 303);
    // Final: counted as failed and nothing left queued or scheduled, so no retry can follow.
    eventually("the refusal is final", Duration::from_secs(10), || {
        let failed = e.gw.metric("logout_gateway_backchannel_deliveries_total{result=\"failed\"}");
        let depth = e.gw.metric("logout_gateway_backchannel_queue_depth");
        (failed == 1.0 && depth == 0.0).then_some(())
    });
    assert_eq!(posts(&rp, "/status/400").len(), 1);
}

#[test]
fn bcl17_a_503_is_retried_with_the_same_token_until_204() {
    let rp = Upstream::start();
    let e = bc_env(&rp, &[("rp-flaky", "/flaky?fail=2&key=f1", true)], |_| {}, None);
    e.put("S5", "U1", &["rp-flaky"], &[]);
    assert_eq!(logout(&e, "rp-flaky", "S5").status(), 303);
    eventually("delivered after retries", Duration::from_secs(15), || {
        (e.gw.metric("logout_gateway_backchannel_deliveries_total{result=\"success\"}") == 1.0).then_some(())
    });
    let p = posts(&rp, "/flaky");
    assert_eq!(p.len(), 3, "two 503s, then 204");
    assert!(p.iter().all(|x| x.body == p[0].body), "the same token on every retry");
    assert!(p[1].at.duration_since(p[0].at) >= Duration::from_millis(100), "retries wait (backoff)");
}

/// Options for a gateway whose only client, rp-k, posts to `path` on `rp`.
fn one_client(
    up: &Upstream,
    redis: &Redis,
    rp: &Upstream,
    path: &str,
    backchannel: impl FnOnce(&mut RawBackchannel),
) -> GatewayOpts {
    let mut opts = GatewayOpts::new(up.url());
    opts.redis(Some(redis.url()));
    opts.config.clients = [bc_client(rp, "rp-k", path, false)].into();
    backchannel(&mut opts.config.backchannel);
    opts
}

fn ready_logout(gw: &Gateway, sid: &str) {
    eventually("readyz", Duration::from_secs(20), || {
        (client().get(gw.admin("/readyz")).send().ok()?.status() == 200).then_some(())
    });
    let body = r#"{"sub":"U1","clients":["rp-k"]}"#;
    assert_eq!(client().put(gw.admin(&format!("/sessions/{sid}"))).body(body).send().unwrap().status(), 204);
    let iss = format!("http://127.0.0.1:{}", gw.port);
    let r = client()
        .get(gw.url(&format!(
            "/session/end?id_token_hint={}&post_logout_redirect_uri=https%3A%2F%2Frp-k.example%2Fout",
            hint(&iss, "rp-k", "U1", sid)
        )))
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[test]
fn a_notice_survives_sigkill_of_the_gateway_that_accepted_it() {
    let (rp, up, redis) = (Upstream::start(), Upstream::start(), Redis::start());
    // The RP fails the first attempt; the retry is due after a second, when the process is dead.
    let opts = one_client(&up, &redis, &rp, "/flaky?fail=1&key=kill", |b| {
        fast(b);
        b.retry_initial = "1s".into();
        b.retry_max = "2s".into();
    });
    let mut first = Gateway::start(&opts);
    ready_logout(&first, "SK");
    eventually("the first attempt (503)", Duration::from_secs(10), || (posts(&rp, "/flaky").len() == 1).then_some(()));
    let status = first.stop_with(libc::SIGKILL, Duration::from_secs(10));
    assert!(!status.success());
    // A fresh instance on the same Redis delivers what the dead one had accepted.
    let fresh = Gateway::start(&opts);
    eventually("the fresh instance delivers", Duration::from_secs(15), || {
        (posts(&rp, "/flaky").len() == 2).then_some(())
    });
    let p = posts(&rp, "/flaky");
    assert_eq!(p[0].body, p[1].body, "the same token");
    eventually("success counted", Duration::from_secs(5), || {
        (fresh.metric("logout_gateway_backchannel_deliveries_total{result=\"success\"}") == 1.0).then_some(())
    });
}

#[test]
fn an_in_flight_notice_of_a_killed_gateway_is_claimed_by_another() {
    let (rp, up, redis) = (Upstream::start(), Upstream::start(), Redis::start());
    // The RP takes 3 s: the accepting gateway dies while the POST is in flight.
    let opts = one_client(&up, &redis, &rp, "/slow?ms=3000", |b| {
        b.timeout = "5s".into();
        b.claim_after = "6s".into();
        b.poll_interval = "50ms".into();
    });
    let mut first = Gateway::start(&opts);
    ready_logout(&first, "SS");
    eventually("the POST is in flight", Duration::from_secs(10), || (!posts(&rp, "/slow").is_empty()).then_some(()));
    first.stop_with(libc::SIGKILL, Duration::from_secs(10));
    let second = Gateway::start(&opts);
    eventually("claimed and delivered by the second instance", Duration::from_secs(30), || {
        (second.metric("logout_gateway_backchannel_deliveries_total{result=\"success\"}") == 1.0).then_some(())
    });
    assert_eq!(posts(&rp, "/slow").len(), 2);
}

#[test]
fn bcl06_deliveries_run_in_parallel() {
    let rp = Upstream::start();
    let e = bc_env(&rp, &[("rp-p1", "/slow?ms=1500&p=1", true), ("rp-p2", "/slow?ms=1500&p=2", true)], |_| {}, None);
    // timeout must exceed the RPs' 1.5 s
    e.put("SP", "U1", &["rp-p1", "rp-p2"], &[]);
    assert_eq!(logout(&e, "rp-p1", "SP").status(), 303);
    eventually("both delivered", Duration::from_secs(15), || (posts(&rp, "/slow").len() >= 2).then_some(()));
    let p = posts(&rp, "/slow");
    let gap = if p[1].at > p[0].at { p[1].at - p[0].at } else { p[0].at - p[1].at };
    // One after the other would put them at least 1.5 s apart.
    assert!(gap < Duration::from_millis(1200), "the second POST waited for the first: {gap:?}");
}

#[test]
fn rpi22_the_logout_can_wait_for_deliveries_before_redirecting() {
    let rp = Upstream::start();
    let e = bc_env(&rp, &[("rp-w", "/slow?ms=300", true)], |b| b.wait_before_redirect = "3s".into(), None);
    e.put("SW", "U1", &["rp-w"], &[]);
    let r = logout(&e, "rp-w", "SW");
    assert_eq!(r.status(), 303);
    assert_eq!(posts(&rp, "/slow").len(), 1, "delivered before the redirect was sent");
}

#[test]
fn admin_delete_notifies_every_rp_of_the_session() {
    let rp = Upstream::start();
    let e = bc_env(&rp, &[("rp-d", "/status/204?d", true)], |_| {}, None);
    e.put("SD", "U1", &["rp-d"], &[]);
    assert_eq!(client().delete(e.gw.admin("/sessions/SD")).send().unwrap().status(), 204);
    eventually("delivered", Duration::from_secs(10), || (posts(&rp, "/status/204?d").len() == 1).then_some(()));
    let (_, c) = verify(&e, &posts(&rp, "/status/204?d")[0]);
    assert_eq!(c["sid"], "SD");
    // All sessions of a subject at once.
    e.put("SD2", "U2", &["rp-d"], &[]);
    e.put("SD3", "U2", &["rp-d"], &[]);
    assert_eq!(client().delete(e.gw.admin("/sessions?sub=U2")).send().unwrap().status(), 204);
    eventually("two more", Duration::from_secs(10), || (posts(&rp, "/status/204?d").len() == 3).then_some(()));
    assert_eq!(e.status("SD3").as_deref(), Some("ended"));
}

fn jwks_kids(gw: &Gateway) -> Vec<String> {
    let v: Value = serde_json::from_slice(&client().get(gw.url("/jwks")).send().unwrap().bytes().unwrap()).unwrap();
    v["keys"].as_array().unwrap().iter().filter_map(|k| k["kid"].as_str().map(String::from)).collect()
}

#[test]
fn generated_keys_rotate_and_the_old_one_stays_published() {
    let rp = Upstream::start();
    let e = bc_env(
        &rp,
        &[("rp-r", "/status/204?r", true)],
        |b| {
            b.key_rotation = "2s".into();
            b.algorithm = "ES256".into();
        },
        None,
    );
    let first: Vec<String> = jwks_kids(&e.gw).into_iter().filter(|k| k != "rsa1" && k != "ec1").collect();
    assert_eq!(first.len(), 1, "one gateway key at start");
    let both = eventually("a rotation", Duration::from_secs(15), || {
        let now: Vec<String> = jwks_kids(&e.gw).into_iter().filter(|k| k != "rsa1" && k != "ec1").collect();
        (now.len() == 2).then_some(now)
    });
    assert!(both.contains(&first[0]), "the previous key is still published: {both:?}");
    e.put("SR", "U1", &["rp-r"], &[]);
    assert_eq!(logout(&e, "rp-r", "SR").status(), 303);
    eventually("delivered", Duration::from_secs(10), || (posts(&rp, "/status/204?r").len() == 1).then_some(()));
    let (h, _) = verify(&e, &posts(&rp, "/status/204?r")[0]);
    assert_eq!(h.alg, jsonwebtoken::Algorithm::ES256);
}

#[test]
fn a_configured_signing_key_is_used_and_published() {
    let rp = Upstream::start();
    let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ec-op.pem");
    let e =
        bc_env(&rp, &[("rp-f", "/status/204?f", true)], |b| b.signing_key_file = Some(key.display().to_string()), None);
    e.put("SF", "U1", &["rp-f"], &[]);
    assert_eq!(logout(&e, "rp-f", "SF").status(), 303);
    eventually("delivered", Duration::from_secs(10), || (posts(&rp, "/status/204?f").len() == 1).then_some(()));
    let (h, c) = verify(&e, &posts(&rp, "/status/204?f")[0]);
    assert_eq!(h.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(c["sid"], "SF");
}
