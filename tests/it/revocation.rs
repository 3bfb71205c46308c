//! What a logout revokes, and for how long: token markers that live as long as the tokens,
//! refreshed tokens bound through the refresh token they redeemed, and RFC 7009 revocation at the
//! upstream with the client's own credentials (tokens kept only sealed, never in the clear).

use std::time::Duration;

use logout_gateway::probe::token_hash;

use crate::harness::{client, eventually, GatewayOpts, RawRevocation, Redis};
use crate::logout::Env;

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli").arg("-p").arg(port.to_string()).args(args).output().unwrap();
    assert!(out.status.success(), "redis-cli {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Seconds the revocation mark of `token` still lives (-2: none): its expiry in the marks set
/// every instance follows (`lgw:{rv}:z`, member: the hash's first 64 bits in hex).
fn marker_ttl(e: &Env, token: &str) -> i64 {
    let member = &token_hash(token.as_bytes())[..16];
    let score = redis_cli(e.redis_port().unwrap(), &["ZSCORE", "lgw:{rv}:z", member]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    score.parse::<f64>().map_or(-2, |exp| exp as i64 - now)
}

fn env_with(opts: impl FnOnce(&mut GatewayOpts)) -> Env {
    crate::logout::env_opts(Some(Redis::start()), opts)
}

/// Discovery and the upstream keys (as every learning test waits for), and the revocation
/// endpoint advertised.
fn wait_for_discovery(e: &Env) {
    crate::learning::wait_for_discovery(e);
    let r = client().get(e.gw.url("/.well-known/openid-configuration")).send().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    assert!(v.get("revocation_endpoint").is_some(), "the upstream advertises revocation: {v}");
}

/// Redeem `code` for rp-c; wait until the session is learned; the ID token.
fn learn(e: &Env, code: &str, query: &str) -> String {
    let r = client()
        .post(e.gw.url(&format!("/token{query}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=authorization_code&code={code}&client_id=rp-c"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let json: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    let sid = format!("sid-{code}");
    eventually("session learned", Duration::from_secs(10), || {
        (e.status(&sid).as_deref() == Some("active")).then_some(())
    });
    json["id_token"].as_str().unwrap().to_string()
}

fn logout(e: &Env, hint: &str) {
    let r = e.get(&[("id_token_hint", hint), ("post_logout_redirect_uri", "https://c.example.com/out")]);
    assert_eq!(r.status(), 303);
}

fn refresh(e: &Env, rt: &str) -> reqwest::blocking::Response {
    client()
        .post(e.gw.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=refresh_token&refresh_token={rt}&client_id=rp-c"))
        .send()
        .unwrap()
}

fn userinfo(e: &Env, at: &str) -> u16 {
    client().get(e.gw.url("/userinfo")).bearer_auth(at).send().unwrap().status().as_u16()
}

#[test]
fn a_revoked_token_is_refused_as_long_as_it_would_have_lived() {
    let e = env_with(|o| {
        o.config.session_store.access_token_ttl = "1h".into();
        o.config.session_store.refresh_token_ttl = "48h".into();
    });
    wait_for_discovery(&e);
    // expires_in 120 s: the marker lives ~120 s; the refresh token has no stated lifetime: 48 h.
    let h1 = learn(&e, "t1", "?expires_in=120");
    // expires_in beyond the configured maximum counts for the maximum; refresh_expires_in is used.
    let h2 = learn(&e, "t2", "?expires_in=999999&refresh_expires_in=600");
    logout(&e, &h1);
    logout(&e, &h2);
    let at1 = marker_ttl(&e, "at-t1");
    assert!((100..=120).contains(&at1), "access token t1: {at1}");
    let rt1 = marker_ttl(&e, "rt-t1");
    assert!((47 * 3600..=48 * 3600).contains(&rt1), "refresh token t1: {rt1}");
    let at2 = marker_ttl(&e, "at-t2");
    assert!((3500..=3600).contains(&at2), "access token t2 capped at 1h: {at2}");
    let rt2 = marker_ttl(&e, "rt-t2");
    assert!((580..=600).contains(&rt2), "refresh token t2: {rt2}");
    assert_eq!(userinfo(&e, "at-t1"), 401);
}

#[test]
fn tokens_from_a_refresh_without_an_id_token_belong_to_the_refreshed_session() {
    let e = env_with(|_| {});
    wait_for_discovery(&e);
    let hint = learn(&e, "r1", "");
    let before = e.gw.metric("logout_gateway_learned_total{kind=\"refresh\"}");
    let r = refresh(&e, "rt-r1");
    let json: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    assert_eq!(json["access_token"], "at2-rt-r1");
    assert!(json.get("id_token").is_none());
    eventually("refreshed tokens learned", Duration::from_secs(10), || {
        (e.gw.metric("logout_gateway_learned_total{kind=\"refresh\"}") > before).then_some(())
    });
    assert_eq!(userinfo(&e, "at2-rt-r1"), 200);
    logout(&e, &hint);
    assert_eq!(userinfo(&e, "at2-rt-r1"), 401, "the refreshed access token ended with its session");
    let r = refresh(&e, "rt2-rt-r1");
    assert_eq!(r.status(), 400, "so did the rotated refresh token");
}

const REVOCATION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

#[test]
fn rfc7009_the_upstream_revokes_an_ended_sessions_tokens_with_the_clients_credentials() {
    let e = env_with(|o| {
        let rp_c = o.config.clients.get_mut("rp-c").unwrap();
        rp_c.client_secret = Some("rp-c-secret".into());
        rp_c.revocation_auth = Some("client_secret_basic".into());
        o.config.revocation = Some(RawRevocation { encryption_key: REVOCATION_KEY.into(), timeout: "2s".into() });
    });
    wait_for_discovery(&e);
    let hint = learn(&e, "v1", "");
    // The store never holds the tokens themselves.
    let port = e.redis_port().unwrap();
    for key in redis_cli(port, &["--scan"]).lines() {
        let dump = match redis_cli(port, &["TYPE", key]).as_str() {
            "string" => redis_cli(port, &["GET", key]),
            "hash" => redis_cli(port, &["HGETALL", key]),
            _ => String::new(),
        };
        assert!(!dump.contains("at-v1") && !dump.contains("rt-v1"), "{key} holds a raw token: {dump}");
    }
    logout(&e, &hint);
    let calls = eventually("both tokens revoked at the upstream", Duration::from_secs(10), || {
        let calls: Vec<_> = e.up.seen().into_iter().filter(|s| s.target == "/revoke").collect();
        (calls.len() == 2).then_some(calls)
    });
    use base64::Engine;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("rp-c:rp-c-secret"));
    let mut bodies: Vec<String> = calls.iter().map(|c| c.body.clone()).collect();
    bodies.sort();
    assert_eq!(bodies, ["token=at-v1&token_type_hint=access_token", "token=rt-v1&token_type_hint=refresh_token"]);
    assert!(calls.iter().all(|c| c.header("authorization") == Some(basic.as_str())));
    assert!(calls.iter().all(|c| c.header("host") == Some(e.iss.trim_start_matches("http://"))), "issuer's Host");
    assert_eq!(e.gw.metric("logout_gateway_upstream_revocations_total{result=\"revoked\"}"), 2.0);
    // A second logout of the same session revokes nothing again.
    logout(&e, &hint);
    assert_eq!(e.up.seen().iter().filter(|s| s.target == "/revoke").count(), 2);
}

#[test]
fn without_revocation_credentials_nothing_is_sealed_or_sent() {
    let e = env_with(|o| {
        o.config.revocation = Some(RawRevocation { encryption_key: REVOCATION_KEY.into(), timeout: "5s".into() })
    });
    wait_for_discovery(&e);
    let hint = learn(&e, "w1", "");
    logout(&e, &hint);
    assert_eq!(userinfo(&e, "at-w1"), 401, "the edge still refuses the token");
    assert!(e.up.seen().iter().all(|s| s.target != "/revoke"));
}
