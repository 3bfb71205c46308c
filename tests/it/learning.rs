//! Sessions learned from proxied traffic: token responses (the client's response untouched) and
//! codes bound to the OP's session cookie; logout by hint or by cookie; enforcement at the edge.

use std::time::Duration;

use crate::harness::{client, eventually};
use crate::logout::{env, Env};

pub fn token(e: &Env, code: &str, query: &str) -> reqwest::blocking::Response {
    token_for(e, code, query, "rp-c")
}

pub fn token_for(e: &Env, code: &str, query: &str, client_id: &str) -> reqwest::blocking::Response {
    client()
        .post(e.gw.url(&format!("/token{query}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept-encoding", "gzip")
        .body(format!(
            "grant_type=authorization_code&code={code}&client_id={client_id}&redirect_uri=https%3A%2F%2Fc.example.com%2Fcb"
        ))
        .send()
        .unwrap()
}

pub fn wait_for_discovery(e: &Env) {
    eventually("discovery fetched", Duration::from_secs(10), || {
        let r = client().get(e.gw.url("/.well-known/openid-configuration")).send().ok()?;
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().ok()?).ok()?;
        (v.get("frontchannel_logout_supported") == Some(&serde_json::Value::Bool(true))).then_some(())
    });
    // The keys come right after discovery: an ID token seen before them is not learned.
    eventually("upstream keys loaded", Duration::from_secs(10), || {
        e.gw.log().contains("upstream signing keys loaded").then_some(())
    });
}

#[test]
fn a_token_response_teaches_the_session_and_logout_then_needs_no_admin_call() {
    let e = env();
    wait_for_discovery(&e);
    for (code, query) in [("c1", ""), ("c2", "?gzip=1")] {
        let r = token(&e, code, query);
        assert_eq!(r.status(), 200);
        let gz = query.contains("gzip");
        assert_eq!(r.headers().get("content-encoding").map(|v| v.to_str().unwrap()), gz.then_some("gzip"), "untouched");
        let raw = r.bytes().unwrap();
        let json: serde_json::Value = if gz {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out).unwrap();
            serde_json::from_slice(&out).unwrap()
        } else {
            serde_json::from_slice(&raw).unwrap()
        };
        assert_eq!(json["access_token"], format!("at-{code}"));
        let sid = format!("sid-{code}");
        eventually("session learned", Duration::from_secs(10), || {
            (e.status(&sid).as_deref() == Some("active")).then_some(())
        });
        // The ID token the RP got is a valid hint for a known session: logout at once.
        let hint = json["id_token"].as_str().unwrap().to_string();
        let r = e.get(&[("id_token_hint", &hint), ("post_logout_redirect_uri", "https://c.example.com/out")]);
        assert_eq!(r.status(), 303, "{code}");
        assert_eq!(e.status(&sid).as_deref(), Some("ended"));
    }
}

#[test]
fn a_redis_outage_never_breaks_token_responses() {
    let e = env();
    wait_for_discovery(&e);
    let redis = e.redis_port().unwrap();
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &redis.to_string(), "SHUTDOWN", "NOSAVE"])
        .output()
        .unwrap();
    assert!(out.status.success());
    eventually("Redis gone", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", redis)).is_err().then_some(())
    });
    for q in ["", "?gzip=1"] {
        let r = token(&e, "c9", q);
        assert_eq!(r.status(), 200);
        assert!(!r.bytes().unwrap().is_empty());
    }
    // Authorization responses too: the code binding and the cookie check are skipped, not fatal.
    let r = client()
        .post(e.gw.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=zoe&code=z1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(r.headers()["location"].to_str().unwrap().contains("code=z1"));
    assert!(r.headers()["set-cookie"].to_str().unwrap().starts_with("op_session=S-zoe"));
    let r = client()
        .get(e.gw.url("/oauth/authorize?client_id=rp-c&code_to_issue=z2"))
        .header("cookie", "op_session=S-zoe")
        .send()
        .unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("code=z2"));
    // Passthrough of other OP paths is untouched too.
    assert_eq!(client().get(e.gw.url("/authorize")).send().unwrap().status(), 200);
}

#[test]
fn after_logout_the_sessions_tokens_are_refused_at_the_edge() {
    let e = env();
    wait_for_discovery(&e);
    let c = client();
    let learn = |code: &str| -> String {
        let r = token(&e, code, "");
        let json: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
        let sid = format!("sid-{code}");
        eventually("session learned", Duration::from_secs(10), || {
            (e.status(&sid).as_deref() == Some("active")).then_some(())
        });
        json["id_token"].as_str().unwrap().to_string()
    };
    let userinfo = |at: &str| c.get(e.gw.url("/userinfo")).bearer_auth(at).send().unwrap();
    let introspect = |t: &str| {
        c.post(e.gw.url("/introspect"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={t}&token_type_hint=access_token"))
            .send()
            .unwrap()
    };
    let refresh = |rt: &str| {
        c.post(e.gw.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("grant_type=refresh_token&refresh_token={rt}&client_id=rp-c"))
            .send()
            .unwrap()
    };
    let hint5 = learn("c5");
    learn("c6");
    // Before the logout everything reaches the upstream, bodies intact (replayed after the check).
    assert_eq!(userinfo("at-c5").headers()["x-upstream"], "fake");
    let r = introspect("at-c5");
    let body: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    assert_eq!(body["body_len"], "token=at-c5&token_type_hint=access_token".len(), "upstream got the whole form");
    assert_eq!(refresh("rt-c5").status(), 200);

    let r = e.get(&[("id_token_hint", &hint5), ("post_logout_redirect_uri", "https://c.example.com/out")]);
    assert_eq!(r.status(), 303);

    let before = e.up.count_app();
    let r = userinfo("at-c5");
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer error=\"invalid_token\""));
    let r = introspect("at-c5");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), r#"{"active":false}"#);
    let r = refresh("rt-c5");
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("invalid_grant"));
    assert_eq!(e.up.count_app(), before, "none of the refused requests reached the upstream");
    // Another session's tokens are untouched.
    assert_eq!(userinfo("at-c6").status(), 200);
    assert_eq!(refresh("rt-c6").status(), 200);
}

/// The browser's side of a code flow through the gateway: log in at the OP (which sets its session
/// cookie and redirects with a code), then the RP redeems the code. Returns the OP cookie.
/// Sign in at the OP's login form as `user` (the OP issues `code`, sends `cookie` along if
/// given): the OP cookie it sets (`op_session=...`), and the login response.
pub fn op_login(e: &Env, user: &str, code: &str, cookie: Option<&str>) -> (String, reqwest::blocking::Response) {
    let mut rq = client()
        .post(e.gw.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user={user}&code={code}"));
    if let Some(c) = cookie {
        rq = rq.header("cookie", c);
    }
    let r = rq.send().unwrap();
    let set = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    (set, r)
}

pub fn code_flow(e: &Env, user: &str, code: &str) -> String {
    let (cookie, r) = op_login(e, user, code, None);
    assert_eq!(r.status(), 302);
    assert!(r.headers()["location"].to_str().unwrap().contains(&format!("code={code}")));
    let t = token(e, code, "");
    assert_eq!(t.status(), 200);
    cookie
}

#[test]
fn logout_without_a_hint_finds_the_session_by_the_op_cookie_and_the_op_then_sees_no_session() {
    let e = env();
    wait_for_discovery(&e);
    let cookie = code_flow(&e, "alice", "k1");
    eventually("session learned with its cookie", Duration::from_secs(10), || {
        (e.status("sid-k1").as_deref() == Some("active")).then_some(())
    });
    let other = code_flow(&e, "bob", "k9");
    eventually("second session", Duration::from_secs(10), || {
        (e.status("sid-k9").as_deref() == Some("active")).then_some(())
    });
    // SSO works through the gateway while the session lives.
    let sso = |cookie: &str, q: &str| {
        client().get(e.gw.url(&format!("/oauth/authorize?client_id=rp-c&{q}"))).header("cookie", cookie).send().unwrap()
    };
    assert!(sso(&cookie, "code_to_issue=k2").headers()["location"].to_str().unwrap().contains("code=k2"));

    // A logout without any hint: the confirmation page, then the browser's own session ends.
    let page = client().get(e.gw.url("/session/end")).header("cookie", &cookie).send().unwrap();
    let done = confirm_with(&e, page, &cookie);
    assert_eq!(done.status(), 200);
    assert_eq!(e.status("sid-k1").as_deref(), Some("ended"), "found by the OP cookie");
    assert_eq!(e.status("sid-k9").as_deref(), Some("active"), "another browser's session stays");

    // The old OP cookie no longer reaches the OP: prompt=none answers login_required, and the
    // response expires the cookie.
    let before = e.up.seen().len();
    let r = sso(&cookie, "prompt=none&code_to_issue=k3");
    assert!(r.headers()["location"].to_str().unwrap().contains("error=login_required"));
    let expired: Vec<_> = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(expired.iter().any(|c| c.starts_with("op_session=;") && c.contains("Max-Age=0")), "{expired:?}");
    let seen = &e.up.seen()[before..];
    assert!(seen.iter().all(|s| s.header("cookie").is_none_or(|c| !c.contains("op_session"))), "cookie stripped");
    // The other user's cookie still works.
    assert!(sso(&other, "code_to_issue=k4").headers()["location"].to_str().unwrap().contains("code=k4"));
}

#[test]
fn two_clients_of_one_browser_session_with_their_own_sids_become_one_session() {
    let e = env();
    wait_for_discovery(&e);
    let cookie = code_flow(&e, "alice", "alice_1");
    eventually("first client learned", Duration::from_secs(10), || {
        (e.status("sid-alice_1").as_deref() == Some("active")).then_some(())
    });
    // rp-a joins by SSO: the OP cookie rides along, the OP gives rp-a its own sid.
    let r = client()
        .get(e.gw.url("/oauth/authorize?client_id=rp-a&code_to_issue=alice_2"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("code=alice_2"));
    assert_eq!(token_for(&e, "alice_2", "", "rp-a").status(), 200);
    let joined = eventually("rp-a joined the session", Duration::from_secs(10), || {
        let v: serde_json::Value =
            serde_json::from_slice(&client().get(e.gw.admin("/sessions/sid-alice_2")).send().ok()?.bytes().ok()?)
                .ok()?;
        (v["sid"] == "sid-alice_1").then_some(v)
    });
    assert_eq!(joined["clients"], serde_json::json!(["rp-c", "rp-a"]));
    assert_eq!(joined["client_sids"]["rp-a"], "sid-alice_2");
    // A logout without a hint from this browser: every RP gets its iframe, with its own sid.
    let page = client().get(e.gw.url("/session/end")).header("cookie", &cookie).send().unwrap();
    let done = confirm_with(&e, page, &cookie);
    let html = done.text().unwrap();
    let frames = crate::logout::iframes(&html);
    assert_eq!(frames.len(), 1, "rp-a has a front-channel URI, rp-c none: {frames:?}");
    assert!(
        frames[0].starts_with("https://a.example.org/fc?tenant=t1&iss=") && frames[0].ends_with("&sid=sid-alice_2"),
        "{frames:?}"
    );
    assert_eq!(e.status("sid-alice_1").as_deref(), Some("ended"));
}

/// Submit a confirmation page with its binder cookie plus `cookie`.
pub fn confirm_with(e: &Env, page: reqwest::blocking::Response, cookie: &str) -> reqwest::blocking::Response {
    assert_eq!(page.status(), 200);
    let binder = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let html = page.text().unwrap();
    let token_v = crate::logout::attr(&html, "name=\"token\"", "value").unwrap();
    client()
        .post(e.gw.url("/session/end/confirm"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("{binder}; {cookie}"))
        .body(format!("token={token_v}&action=logout"))
        .send()
        .unwrap()
}

pub fn prompt_none_fails(e: &Env, cookie: &str) -> bool {
    let r = client()
        .get(e.gw.url("/oauth/authorize?client_id=rp-c&prompt=none&code_to_issue=zz"))
        .header("cookie", cookie)
        .send()
        .unwrap();
    r.headers()["location"].to_str().unwrap().contains("error=login_required")
}

#[test]
fn gw02_a_confirmed_logout_revokes_an_op_cookie_the_gateway_never_linked() {
    let e = env();
    wait_for_discovery(&e);
    // Logged in at the OP, but no RP redeemed a code: no session is known for this cookie.
    let (cookie, _) = crate::learning::op_login(&e, "carol", "unredeemed", None);
    assert!(!prompt_none_fails(&e, &cookie), "SSO works before the logout");
    let page = client().get(e.gw.url("/session/end")).header("cookie", &cookie).send().unwrap();
    assert_eq!(confirm_with(&e, page, &cookie).status(), 200);
    assert!(prompt_none_fails(&e, &cookie), "the old OP cookie no longer reaches the OP");
}

#[test]
fn rpi15_a_hint_for_another_session_than_the_browsers_asks_first() {
    let e = env();
    wait_for_discovery(&e);
    let cookie = code_flow(&e, "dave", "dave_1");
    eventually("learned", Duration::from_secs(10), || {
        (e.status("sid-dave_1").as_deref() == Some("active")).then_some(())
    });
    e.put("SX", "U-dave", &["rp-c"], &[]);
    let hint = crate::tokens::hint(&e.iss, "rp-c", "U-dave", "SX");
    let page = client()
        .get(e.gw.url(&format!(
            "/session/end?id_token_hint={hint}&post_logout_redirect_uri=https%3A%2F%2Fc.example.com%2Fout"
        )))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(page.status(), 200, "asks instead of logging out SX at once");
    assert_eq!(e.status("SX").as_deref(), Some("active"));
    let done = confirm_with(&e, page, &cookie);
    assert_eq!(done.status(), 303, "the hint proves rp-c: redirect after confirming");
    assert_eq!(e.status("sid-dave_1").as_deref(), Some("ended"), "the browser's own session ends");
}

#[test]
fn rpi16_confirming_an_unknown_sid_ends_the_browsers_own_session() {
    let e = env();
    wait_for_discovery(&e);
    let cookie = code_flow(&e, "erin", "erin_1");
    eventually("learned", Duration::from_secs(10), || {
        (e.status("sid-erin_1").as_deref() == Some("active")).then_some(())
    });
    let hint = crate::tokens::hint(&e.iss, "rp-c", "U-erin", "never-seen");
    let page =
        client().get(e.gw.url(&format!("/session/end?id_token_hint={hint}"))).header("cookie", &cookie).send().unwrap();
    let done = confirm_with(&e, page, &cookie);
    assert_eq!(done.status(), 200);
    assert_eq!(e.status("sid-erin_1").as_deref(), Some("ended"));
    assert!(prompt_none_fails(&e, &cookie));
}

#[test]
fn form_post_and_implicit_authorization_responses_are_learned_too() {
    let e = env();
    wait_for_discovery(&e);
    // form_post: rp-a joins alice's browser session through a code that travels in an HTML form.
    let cookie = code_flow(&e, "fp", "fp_1");
    eventually("first client", Duration::from_secs(10), || {
        (e.status("sid-fp_1").as_deref() == Some("active")).then_some(())
    });
    let page = client()
        .get(e.gw.url("/oauth/authorize?client_id=rp-a&response_mode=form_post&code_to_issue=fp_2"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().unwrap().contains("name=\"code\" value=\"fp_2\""), "the page passes through untouched");
    eventually("rp-a joined through the form_post code", Duration::from_secs(10), || {
        token_for(&e, "fp_2", "", "rp-a");
        let v: serde_json::Value =
            serde_json::from_slice(&client().get(e.gw.admin("/sessions/sid-fp_2")).send().ok()?.bytes().ok()?).ok()?;
        (v["sid"] == "sid-fp_1").then_some(())
    });

    // Implicit: the ID token comes in the redirect's fragment; the session is learned with the
    // OP cookie, so a logout without a hint finds it.
    let (imp, _) = crate::learning::op_login(&e, "imp", "unused", None);
    let r = client()
        .get(e.gw.url("/oauth/authorize?client_id=rp-c&response_type=id_token&code_to_issue=imp_2"))
        .header("cookie", &imp)
        .send()
        .unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("#id_token="));
    eventually("implicit session learned", Duration::from_secs(10), || {
        (e.status("sid-imp_2").as_deref() == Some("active")).then_some(())
    });
    let page = client().get(e.gw.url("/session/end")).header("cookie", &imp).send().unwrap();
    assert_eq!(confirm_with(&e, page, &imp).status(), 200);
    assert_eq!(e.status("sid-imp_2").as_deref(), Some("ended"));
}

#[test]
fn end_session_with_an_access_token_when_switched_on() {
    for (switch, expected) in [(true, 303), (false, 400)] {
        let e = crate::logout::env_with(|es| es.accept_access_token_hint = switch, true);
        wait_for_discovery(&e);
        assert_eq!(token(&e, "c7", "").status(), 200);
        eventually("learned", Duration::from_secs(10), || {
            (e.status("sid-c7").as_deref() == Some("active")).then_some(())
        });
        let r = e.get(&[
            ("id_token_hint", "at-c7"),
            ("post_logout_redirect_uri", "https://c.example.com/out"),
            ("state", "a"),
        ]);
        assert_eq!(r.status(), expected, "switch {switch:?}");
        let want = if expected == 303 { "ended" } else { "active" };
        assert_eq!(e.status("sid-c7").as_deref(), Some(want));
        // An access token the gateway never saw is never enough.
        let r = e.get(&[("id_token_hint", "at-unknown"), ("post_logout_redirect_uri", "https://c.example.com/out")]);
        assert_eq!(r.status(), 400);
    }
}

#[test]
fn a_form_post_page_from_the_login_form_itself_binds_its_code() {
    let e = env();
    wait_for_discovery(&e);
    // Some OPs answer the login POST with the form_post page (not from the authorization
    // endpoint); it sets the OP cookie, so the gateway reads it.
    let r = client()
        .post(e.gw.url("/login?form_post=1"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=fpl&code=fpl_1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    assert!(r.text().unwrap().contains("value=\"fpl_1\""));
    // The binding is made as the page's last byte passes (a body filter cannot wait for the
    // store), so the RP may redeem first: redeem until the cookie is bound to the session.
    let key = format!("lgw:o:{{{}}}", logout_gateway::probe::token_hash(b"S-fpl"));
    let port = e.redis_port().unwrap().to_string();
    eventually("code bound and redeemed", Duration::from_secs(10), || {
        assert_eq!(token(&e, "fpl_1", "").status(), 200);
        let out = std::process::Command::new("redis-cli").args(["-p", &port, "GET", &key]).output().ok()?;
        // The binding names the session and its subject (`<len>:<sid><sub>`).
        (String::from_utf8_lossy(&out.stdout).trim() == "9:sid-fpl_1U-fpl").then_some(())
    });
    let page = client().get(e.gw.url("/session/end")).header("cookie", &cookie).send().unwrap();
    assert_eq!(confirm_with(&e, page, &cookie).status(), 200);
    assert_eq!(
        e.status("sid-fpl_1").as_deref(),
        Some("ended"),
        "found by the OP cookie the form_post code was bound to"
    );
}
