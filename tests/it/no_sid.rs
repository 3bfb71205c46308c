//! OPs whose ID tokens carry no `sid` (Glewlwyd by default, many legacy OPs): the session is
//! keyed by the browser's OP cookie and the subject; a logout with such a hint ends the
//! browser's own session of that subject; RPs get logout tokens with `sub` only and iframes
//! without `sid`.

use std::time::Duration;

use crate::backchannel::posts;
use crate::harness::{client, eventually, Redis};
use crate::learning::{op_login, token, wait_for_discovery};
use crate::logout::{env_opts, Env};
use crate::upstream::Upstream;

/// rp-c takes back-channel tokens at `rp` and front-channel iframes, and says it requires sid
/// for both.
fn env(rp: &Upstream) -> Env {
    let e = env_opts(Some(Redis::start()), |o| {
        let c = o.config.clients.get_mut("rp-c").unwrap();
        c.backchannel_logout_uri = Some(format!("http://127.0.0.1:{}/status/204", rp.addr.port()));
        c.backchannel_logout_session_required = true;
        c.frontchannel_logout_uri = Some("https://c.example.com/fc".into());
        c.frontchannel_logout_session_required = true;
        o.config.backchannel.poll_interval = "50ms".into();
    });
    wait_for_discovery(&e);
    e
}

/// Sign in at the OP as `user` and redeem the code for rp-c with an ID token without sid:
/// (the OP cookie, the ID token, the access token).
fn sign_in(e: &Env, user: &str) -> (String, String, String) {
    let code = format!("{user}_1");
    let (cookie, r) = op_login(e, user, &code, None);
    assert_eq!(r.status(), 302);
    let t = token(e, &code, "?nosid=1");
    assert_eq!(t.status(), 200);
    let json: serde_json::Value = serde_json::from_slice(&t.bytes().unwrap()).unwrap();
    let id_token = json["id_token"].as_str().unwrap().to_string();
    let claims = id_token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&base64url(claims)).unwrap();
    assert!(claims.get("sid").is_none(), "the OP gave no sid");
    (cookie, id_token, json["access_token"].as_str().unwrap().to_string())
}

fn base64url(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
}

fn userinfo(e: &Env, at: &str) -> u16 {
    client().get(e.gw.url("/userinfo")).bearer_auth(at).send().unwrap().status().as_u16()
}

#[test]
fn a_hint_without_sid_ends_the_browsers_session_and_rps_get_sub_only_tokens() {
    let rp = Upstream::start();
    let e = env(&rp);
    let (cookie, id_token, at) = sign_in(&e, "ns");
    eventually("learned, keyed by the OP cookie", Duration::from_secs(10), || {
        (e.gw.metric("logout_gateway_learned_total{kind=\"session\"}") == 1.0).then_some(())
    });
    assert_eq!(e.gw.metric("logout_gateway_id_tokens_without_sid_total{seen=\"learned\"}"), 1.0);
    assert_eq!(userinfo(&e, &at), 200);
    // RP-initiated logout with that hint, from the browser that holds the OP cookie: at once.
    let r = client()
        .get(e.gw.url(&format!(
            "/session/end?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fc.example.com%2Fout&state=z"
        )))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().unwrap();
    // The front-channel iframe carries no sid the RP was never given (nor iss, which comes
    // only with a sid, FCL 1.0 §2).
    let frames = crate::logout::iframes(&page);
    assert_eq!(frames, ["https://c.example.com/fc"], "{page}");
    let next = crate::logout::attr(&page, "id=\"continue\"", "href");
    assert_eq!(next.as_deref(), Some("https://c.example.com/out?state=z"));
    assert_eq!(e.gw.metric("logout_gateway_id_tokens_without_sid_total{seen=\"hint\"}"), 1.0);
    // Its tokens and cookie are refused now.
    assert_eq!(userinfo(&e, &at), 401);
    let authorize = client()
        .get(e.gw.url("/oauth/authorize?client_id=rp-c&prompt=none&code_to_issue=ns_2"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert!(authorize.headers()["location"].to_str().unwrap().contains("error=login_required"));
    // The RP's logout token names the subject, and no sid it was never given.
    eventually("the back-channel notice", Duration::from_secs(10), || {
        (!posts(&rp, "/status/").is_empty()).then_some(())
    });
    let post = &posts(&rp, "/status/")[0];
    let token = post.body.strip_prefix("logout_token=").unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&base64url(token.split('.').nth(1).unwrap())).unwrap();
    assert_eq!(claims["sub"], "U-ns");
    assert!(claims.get("sid").is_none(), "{claims}");
}

#[test]
fn a_hint_without_sid_and_without_the_browsers_cookie_asks_first() {
    let rp = Upstream::start();
    let e = env(&rp);
    let (_cookie, id_token, at) = sign_in(&e, "nt");
    eventually("learned", Duration::from_secs(10), || {
        (e.gw.metric("logout_gateway_learned_total{kind=\"session\"}") == 1.0).then_some(())
    });
    // No cookie (another browser, or a blocked one): nothing names the session; ask.
    let r = client().get(e.gw.url(&format!("/session/end?id_token_hint={id_token}"))).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("name=\"token\""), "the confirmation page");
    // Another user's cookie does not end that user's session either.
    let (other, _, other_at) = sign_in(&e, "nu");
    eventually("both learned", Duration::from_secs(10), || {
        (e.gw.metric("logout_gateway_learned_total{kind=\"session\"}") == 2.0).then_some(())
    });
    let r = client()
        .get(e.gw.url(&format!("/session/end?id_token_hint={id_token}")))
        .header("cookie", &other)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "asks");
    assert_eq!(userinfo(&e, &at), 200);
    assert_eq!(userinfo(&e, &other_at), 200);
}
