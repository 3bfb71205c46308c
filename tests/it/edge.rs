//! Enforcement at the edge beyond the OP's endpoints: revoked OP cookies on the OP's own login
//! and resume paths (`upstream.session_cookie_paths`), expiry on every cookie path
//! (`upstream.session_cookie_expiry_paths`), and tokens an OP issues in a session the gateway
//! already ended.

use std::time::Duration;

use crate::harness::{client, eventually, Redis};
use crate::learning::{confirm_with, token, wait_for_discovery};
use crate::logout::{env, env_opts, Env};

/// A gateway on Redis whose cookies are expired on these paths.
fn env_expiring_on(paths: &[&str]) -> Env {
    env_opts(Some(Redis::start()), |o| {
        o.config.upstream.session_cookie_expiry_paths = paths.iter().map(|p| p.to_string()).collect()
    })
}

/// Log in at the OP without any RP redeeming the code, then log out without a hint: the
/// browser's OP cookie is revoked. Returns the cookie (`op_session=S-<user>`).
pub fn revoked_cookie(e: &Env, user: &str) -> String {
    let (cookie, _) = crate::learning::op_login(e, user, &format!("{user}_unredeemed"), None);
    let page = client().get(e.gw.url("/session/end")).header("cookie", &cookie).send().unwrap();
    assert_eq!(confirm_with(e, page, &cookie).status(), 200);
    cookie
}

/// How many times Redis ran `command` (INFO commandstats; no MONITOR needed).
fn redis_calls(e: &Env, command: &str) -> u64 {
    let port = e.redis_port().unwrap().to_string();
    let out = std::process::Command::new("redis-cli").args(["-p", &port, "INFO", "commandstats"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

/// The Cookie header the fake OP got with the first request for `target` after `from`.
fn cookie_seen(e: &Env, from: usize, target: &str) -> Option<String> {
    let seen = e.up.seen();
    let s = seen[from..].iter().find(|s| s.target == target).expect("the request reached the OP");
    s.header("cookie").map(String::from)
}

fn set_cookies(r: &reqwest::blocking::Response) -> Vec<String> {
    r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect()
}

#[test]
fn a_revoked_op_cookie_is_stripped_on_every_path_without_a_store_lookup() {
    let e = env();
    wait_for_discovery(&e);
    let cookie = revoked_cookie(&e, "ivy");
    let both = format!("{cookie}; other=1");
    let get = |path: &str, cookie: &str| client().get(e.gw.url(path)).header("cookie", cookie).send().unwrap();

    // Without an OP cookie: proxied untouched.
    let seen = e.up.seen().len();
    let r = get("/account/page", "other=1");
    assert!(set_cookies(&r).is_empty());
    assert_eq!(cookie_seen(&e, seen, "/account/page").as_deref(), Some("other=1"));

    // Any path, any spelling: the cookie is removed before the OP and expired in the response,
    // and the revocation set answers (no store lookup).
    let lookups = redis_calls(&e, "exists");
    for path in ["/account/page", "/interaction/abc/login", "/Realms/r/login-actions/authenticate", "//x", "/"] {
        let seen = e.up.seen().len();
        let r = get(path, &both);
        assert_eq!(r.status(), 200, "{path}");
        let expired = set_cookies(&r);
        assert!(
            expired.iter().any(|c| c.starts_with("op_session=; Path=/;") && c.contains("Max-Age=0")),
            "{path}: {expired:?}"
        );
        assert_eq!(cookie_seen(&e, seen, path).as_deref(), Some("other=1"), "{path}: stripped before the OP");
    }
    assert_eq!(redis_calls(&e, "exists"), lookups, "no store lookup: the revocation set answers");
}

#[test]
fn op_cookies_are_expired_on_every_configured_cookie_path() {
    let e = env_expiring_on(&["/", "/realms/r/"]);
    wait_for_discovery(&e);
    let both_paths = |cookies: &[String]| {
        ["/", "/realms/r/"].iter().all(|p| {
            cookies
                .iter()
                .any(|c| c.starts_with(&format!("op_session=; Path={p}; Max-Age=0;")) && c.contains("HttpOnly"))
        })
    };
    // At logout.
    let (cookie, _) = crate::learning::op_login(&e, "kim", "kim_1", None);
    let page = client().get(e.gw.url("/session/end")).header("cookie", &cookie).send().unwrap();
    let done = confirm_with(&e, page, &cookie);
    assert_eq!(done.status(), 200);
    assert!(both_paths(&set_cookies(&done)), "{:?}", set_cookies(&done));
    // At the edge, when the old cookie comes back.
    let r = client()
        .get(e.gw.url("/oauth/authorize?client_id=rp-c&prompt=none&code_to_issue=kim_2"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("error=login_required"));
    assert!(both_paths(&set_cookies(&r)), "{:?}", set_cookies(&r));
}

#[test]
fn op_cookies_are_expired_with_the_domain_and_attributes_the_op_set_them_with() {
    let e = env_expiring_on(&["/"]);
    wait_for_discovery(&e);
    // The OP sets its cookie for its parent domain, on its own path (a host-only expiry line
    // would leave that cookie in the browser).
    let attrs = "Domain=.Login.Example.test; Path=/auth; Secure; SameSite=None; HttpOnly";
    let login = client()
        .post(e.gw.url(&format!(
            "/login?attrs={}",
            url::form_urlencoded::byte_serialize(attrs.as_bytes()).collect::<String>()
        )))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=dom&code=dom_1")
        .send()
        .unwrap();
    assert_eq!(login.status(), 302);
    let cookie = "op_session=S-dom".to_string();
    let expected = "op_session=; Domain=login.example.test; Path=/auth; Max-Age=0; \
                    Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=None";
    let both = |cookies: &[String]| {
        cookies.iter().any(|c| c == expected)
            && cookies.iter().any(|c| c.starts_with("op_session=; Path=/; Max-Age=0;"))
    };
    // At logout: where the OP put it, and (configured) host-only on /.
    let page = client().get(e.gw.url("/session/end")).header("cookie", &cookie).send().unwrap();
    let done = confirm_with(&e, page, &cookie);
    assert_eq!(done.status(), 200);
    assert!(both(&set_cookies(&done)), "{:?}", set_cookies(&done));
    // At the edge, when the old cookie comes back.
    let r = client()
        .get(e.gw.url("/oauth/authorize?client_id=rp-c&prompt=none&code_to_issue=dom_2"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert!(both(&set_cookies(&r)), "{:?}", set_cookies(&r));
}

#[test]
fn no_login_loop_when_the_ops_login_api_would_reuse_an_ended_session_id() {
    // No session_cookie_paths at all: enforcement on every path makes them unnecessary.
    let e = env_opts(Some(Redis::start()), |o| o.config.upstream.session_cookie_paths.clear());
    wait_for_discovery(&e);
    let api_login = |cookie: Option<&str>, code: &str| {
        let mut rq = client()
            .post(e.gw.url("/api/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("user=loop&code={code}"));
        if let Some(c) = cookie {
            rq = rq.header("cookie", c);
        }
        let r = rq.send().unwrap();
        assert_eq!(r.status(), 302);
        r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string()
    };
    let first = api_login(None, "loop_1");
    // Signed out at the gateway; the browser keeps the cookie (say its expiry did not apply).
    let page = client().get(e.gw.url("/session/end")).header("cookie", &first).send().unwrap();
    assert_eq!(confirm_with(&e, page, &first).status(), 200);
    // Signing in again with it: the OP never sees the ended id, so it cannot reuse it.
    let from = e.up.seen().len();
    let second = api_login(Some(&first), "loop_2");
    assert_eq!(cookie_seen(&e, from, "/api/login"), None, "the revoked cookie was stripped");
    assert_ne!(second, first, "a fresh session id");
    // The new session works; the old cookie still does not.
    let authorize = |cookie: &str| {
        let r = client()
            .get(e.gw.url("/oauth/authorize?client_id=rp-c&prompt=none&code_to_issue=loop_3"))
            .header("cookie", cookie)
            .send()
            .unwrap();
        r.headers()["location"].to_str().unwrap().to_string()
    };
    assert!(authorize(&second).contains("code=loop_3"), "signed in again, no loop");
    assert!(authorize(&first).contains("error=login_required"));
}

#[test]
fn tokens_an_op_issues_in_a_session_the_gateway_ended_are_refused() {
    let e = env();
    wait_for_discovery(&e);
    let json: serde_json::Value = serde_json::from_slice(&token(&e, "rx_1", "").bytes().unwrap()).unwrap();
    eventually("learned", Duration::from_secs(10), || {
        (e.status("sid-rx_1").as_deref() == Some("active")).then_some(())
    });
    let hint = json["id_token"].as_str().unwrap();
    let r = e.get(&[("id_token_hint", hint), ("post_logout_redirect_uri", "https://c.example.com/out")]);
    assert_eq!(r.status(), 303);
    let series = "logout_gateway_learned_total{kind=\"ended_session\"}";
    let (ended_before, learned_before) =
        (e.gw.metric(series), e.gw.metric("logout_gateway_learned_total{kind=\"session\"}"));

    // The OP never ended its own session and issues new tokens in it.
    let r = token(&e, "rx_2", "?sid=sid-rx_1");
    assert_eq!(r.status(), 200, "the RP still gets its response");
    let c = client();
    let r = eventually("the new access token is refused at userinfo", Duration::from_secs(10), || {
        let r = c.get(e.gw.url("/userinfo")).bearer_auth("at-rx_2").send().ok()?;
        (r.status() == 401).then_some(r)
    });
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer error=\"invalid_token\""));
    let r = c
        .post(e.gw.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=refresh_token&refresh_token=rt-rx_2&client_id=rp-c")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("invalid_grant"));
    assert_eq!(e.gw.metric(series), ended_before + 1.0);
    assert_eq!(e.gw.metric("logout_gateway_learned_total{kind=\"session\"}"), learned_before, "not learned");
    assert_eq!(e.status("sid-rx_1").as_deref(), Some("ended"), "the session stays ended");
    assert!(!e.gw.log().contains("at-rx_2"), "no token in the log");
}
