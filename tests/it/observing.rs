//! What the gateway reads of the OP's responses, and how: only codings it can decode are asked
//! for, compressed form_post pages are read, undecodable responses are counted, an ID token
//! that does not verify leaves its code's cookie binding in place, configured endpoint paths
//! override discovery's, and the published discovery document is exact JSON.

use std::time::Duration;

use crate::harness::{client, eventually, Redis};
use crate::learning::{code_flow, confirm_with, token, wait_for_discovery};
use crate::logout::{env, env_opts, Env};

/// Whether Redis holds `key`.
fn redis_exists(e: &Env, key: &str) -> bool {
    let port = e.redis_port().unwrap().to_string();
    let out = std::process::Command::new("redis-cli").args(["-p", &port, "EXISTS", key]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "1"
}

fn code_key(code: &str) -> String {
    format!("lgw:k:{{{}}}", logout_gateway::probe::token_hash(code.as_bytes()))
}

/// The Accept-Encoding the fake OP got with the last request whose target starts with `prefix`.
fn accept_encoding_seen(e: &Env, prefix: &str) -> Option<String> {
    let seen = e.up.seen();
    seen.iter().rev().find(|s| s.target.starts_with(prefix))?.header("accept-encoding").map(String::from)
}

#[test]
fn the_upstream_is_asked_only_for_codings_the_gateway_decodes_where_it_reads_the_response() {
    let e = env();
    wait_for_discovery(&e);
    let offered = "gzip, deflate, br";
    let r = client()
        .post(e.gw.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept-encoding", offered)
        .body("grant_type=authorization_code&code=ae_1&client_id=rp-c")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(accept_encoding_seen(&e, "/token").as_deref(), Some("gzip, deflate"), "token endpoint");
    let authorize = |ae: &str| client().get(e.gw.url("/oauth/authorize?client_id=rp-c")).header("accept-encoding", ae);
    authorize("br").send().unwrap();
    assert_eq!(accept_encoding_seen(&e, "/oauth/authorize").as_deref(), Some("identity"), "authorization endpoint");
    authorize("br;q=1, gzip;q=0.5").send().unwrap();
    assert_eq!(accept_encoding_seen(&e, "/oauth/authorize").as_deref(), Some("gzip;q=0.5"));
    // Passthrough is untouched.
    client().get(e.gw.url("/elsewhere")).header("accept-encoding", offered).send().unwrap();
    assert_eq!(accept_encoding_seen(&e, "/elsewhere").as_deref(), Some(offered));
}

#[test]
fn a_token_response_in_a_coding_the_gateway_cannot_decode_is_counted_and_passed_on() {
    let e = env();
    wait_for_discovery(&e);
    let series = "logout_gateway_learn_skipped_total{reason=\"encoding\"}";
    let before = e.gw.metric(series);
    let r = token(&e, "br_1", "?coding=br");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "br", "passed on untouched");
    let warned = || e.gw.log().matches("content coding the gateway cannot decode").count();
    eventually("counted and warned", Duration::from_secs(10), || {
        (e.gw.metric(series) == before + 1.0 && warned() > 0).then_some(())
    });
    assert_eq!(warned(), 1, "warned once");
}

#[test]
fn a_gzipped_form_post_page_is_read_for_its_code() {
    let e = env();
    wait_for_discovery(&e);
    let cookie = code_flow(&e, "gz", "gz_1");
    let r = client()
        .get(e.gw.url("/oauth/authorize?client_id=rp-a&response_mode=form_post&code_to_issue=gz_2&gzip=1"))
        .header("cookie", &cookie)
        .header("accept-encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip", "the page passes through as the OP sent it");
    let mut html = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&r.bytes().unwrap()[..]), &mut html).unwrap();
    assert!(html.contains("name=\"code\" value=\"gz_2\""));
    eventually("the page's code bound to the OP cookie", Duration::from_secs(10), || {
        redis_exists(&e, &code_key("gz_2")).then_some(())
    });
}

#[test]
fn an_id_token_that_does_not_verify_leaves_the_codes_cookie_binding_in_place() {
    let e = env();
    wait_for_discovery(&e);
    let (cookie, _) = crate::learning::op_login(&e, "uv", "uv_1", None);
    assert!(redis_exists(&e, &code_key("uv_1")), "bound before the redirect left");
    let series = "logout_gateway_learn_skipped_total{reason=\"unverified\"}";
    let before = e.gw.metric(series);
    assert_eq!(token(&e, "uv_1", "?forged=1").status(), 200);
    eventually("the forged ID token refused", Duration::from_secs(10), || {
        (e.gw.metric(series) == before + 1.0).then_some(())
    });
    assert!(redis_exists(&e, &code_key("uv_1")), "the binding was not consumed");
    // The genuine response takes it: a logout without a hint finds the session by the cookie.
    assert_eq!(token(&e, "uv_1", "").status(), 200);
    eventually("learned", Duration::from_secs(10), || {
        (e.status("sid-uv_1").as_deref() == Some("active")).then_some(())
    });
    let page = client().get(e.gw.url("/session/end")).header("cookie", &cookie).send().unwrap();
    assert_eq!(confirm_with(&e, page, &cookie).status(), 200);
    assert_eq!(e.status("sid-uv_1").as_deref(), Some("ended"));
}

#[test]
fn a_configured_token_endpoint_on_a_path_discovery_does_not_name_is_learned_from() {
    let e = env_opts(Some(Redis::start()), |o| o.config.upstream.endpoints.token = Some("/alt/token".into()));
    wait_for_discovery(&e);
    let r = client()
        .post(e.gw.url("/alt/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=authorization_code&code=alt_1&client_id=rp-c")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually("learned at /alt/token", Duration::from_secs(10), || {
        (e.status("sid-alt_1").as_deref() == Some("active")).then_some(())
    });
}

#[test]
fn discovery_is_json_with_an_exact_content_length() {
    let e = env();
    wait_for_discovery(&e);
    let r = client().get(e.gw.url("/.well-known/openid-configuration")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let length: usize = r.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let body = r.bytes().unwrap();
    assert_eq!(length, body.len());
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["end_session_endpoint"], format!("{}/session/end", e.iss));
    assert_eq!(doc["token_endpoint"], format!("{}/token", e.iss));
    assert_eq!(doc["backchannel_logout_supported"], true);
}
