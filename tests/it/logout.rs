//! RP-initiated logout at end_session: the decision table of docs/requirements.md over GET and
//! POST, hint forgeries, redirect-URI attacks, confirmation and pages (Redis faults: `outage`).

use std::time::Duration;

use reqwest::blocking::Response;

use crate::harness::{client, eventually, Gateway, GatewayOpts, RawEndSession, Redis};
use crate::tokens::{self, hint};
use crate::upstream::Upstream;

pub struct Env {
    pub up: Upstream,
    /// Kept alive for the test's duration.
    pub _redis: Option<Redis>,
    pub gw: Gateway,
    pub iss: String,
    /// What the gateway was started with (to start another instance like it).
    pub opts: GatewayOpts,
}

/// A fake upstream, the gateway on `redis` (None: memory store) with options `f` adjusts.
pub fn env_opts(redis: Option<Redis>, f: impl FnOnce(&mut GatewayOpts)) -> Env {
    let up = Upstream::start();
    let mut opts = GatewayOpts::new(up.url());
    opts.redis(redis.as_ref().map(Redis::url));
    f(&mut opts);
    let gw = Gateway::start(&opts);
    let iss = format!("http://127.0.0.1:{}", gw.port);
    Env { up, _redis: redis, gw, iss, opts }
}

/// A gateway whose `end_session` block `f` adjusts, on Redis or memory.
pub fn env_with(f: impl FnOnce(&mut RawEndSession), redis: bool) -> Env {
    env_opts(redis.then(Redis::start), |o| f(&mut o.config.end_session))
}

pub fn env() -> Env {
    env_with(|_| {}, true)
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

impl Env {
    pub fn put(&self, sid: &str, sub: &str, clients: &[&str], client_sids: &[(&str, &str)]) {
        let cs: serde_json::Map<String, serde_json::Value> =
            client_sids.iter().map(|(c, s)| (c.to_string(), (*s).into())).collect();
        let body = serde_json::json!({ "sub": sub, "clients": clients, "client_sids": cs });
        let r = client().put(self.gw.admin(&format!("/sessions/{sid}"))).body(body.to_string()).send().unwrap();
        assert_eq!(r.status(), 204, "{}", r.text().unwrap());
    }

    pub fn redis_port(&self) -> Option<u16> {
        self._redis.as_ref().map(|r| r.port)
    }

    pub fn status(&self, sid: &str) -> Option<String> {
        let r = client().get(self.gw.admin(&format!("/sessions/{sid}"))).send().unwrap();
        if r.status() == 404 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
        v["status"].as_str().map(String::from)
    }

    pub fn get(&self, pairs: &[(&str, &str)]) -> Response {
        client().get(self.gw.url(&format!("/session/end?{}", form(pairs)))).send().unwrap()
    }

    pub fn post(&self, pairs: &[(&str, &str)]) -> Response {
        client()
            .post(self.gw.url("/session/end"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs))
            .send()
            .unwrap()
    }

    fn both(&self, pairs: &[(&str, &str)]) -> [Response; 2] {
        [self.get(pairs), self.post(pairs)]
    }
}

/// A generated page's contract headers.
pub fn assert_page_headers(r: &Response) {
    let h = r.headers();
    assert_eq!(h["cache-control"], "no-cache, no-store");
    assert_eq!(h["pragma"], "no-cache");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
}

/// An error page: 400 (unless `status` says otherwise), HTML, no way onward to any RP.
fn assert_rejected(r: Response, status: u16, what: &str) {
    assert_eq!(r.status().as_u16(), status, "{what}");
    assert!(r.headers().get("location").is_none(), "{what}: Location on a rejection");
    assert_page_headers(&r);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8", "{what}");
    let body = r.text().unwrap();
    assert!(!body.contains("http-equiv=\"refresh\"") && !body.contains("example."), "{what}: {body}");
}

fn location(r: &Response) -> String {
    r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// Value of the attribute `attr` of the first tag that contains `marker`.
pub fn attr(html: &str, marker: &str, attr: &str) -> Option<String> {
    let at = html.find(marker)?;
    let tag_start = html[..=at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.split(&format!("{attr}=\"")).nth(1)?.split('"').next()?;
    Some(
        v.replace("&amp;", "&")
            .replace("&#x3D;", "=")
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#x60;", "`"),
    )
}

pub fn iframes(html: &str) -> Vec<String> {
    html.split("<iframe").skip(1).filter_map(|t| attr(&format!("<iframe{t}"), "<iframe", "src")).collect()
}

/// Submit the confirmation page as a browser would: its hidden token, its button, its cookie.
pub fn confirm(env: &Env, page: Response) -> Response {
    assert_eq!(page.status(), 200);
    assert_page_headers(&page);
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("lgw_confirm="))
        .expect("binder cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = page.text().unwrap();
    assert_eq!(html.matches("<form").count(), 1, "{html}");
    let action = attr(&html, "<form", "action").unwrap();
    let token = attr(&html, "name=\"token\"", "value").unwrap();
    client()
        .post(env.gw.url(&action))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(form(&[("token", &token), ("action", "logout")]))
        .send()
        .unwrap()
}

fn is_confirm_page(r: Response) -> Response {
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("location").is_none());
    assert!(r.headers().get("set-login").is_none(), "asking ends nothing: no Set-Login");
    r
}

/// An answer that ended the browser's session says so to the browser's Login Status API.
fn says_logged_out(r: &Response) {
    let v: Vec<_> = r.headers().get_all("set-login").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(v, ["logged-out"], "Set-Login on an answer that ended the session");
}

#[test]
fn t1_valid_hint_for_a_known_session_redirects_with_state_over_get_and_post() {
    let e = env();
    e.put("S1", "U1", &["rp-c"], &[]);
    e.put("S2", "U1", &["rp-c"], &[]);
    let uri = "https://c.example.com/out";
    let r = e.get(&[
        ("id_token_hint", &hint(&e.iss, "rp-c", "U1", "S1")),
        ("post_logout_redirect_uri", uri),
        ("state", "s1"),
    ]);
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "https://c.example.com/out?state=s1");
    assert_page_headers(&r);
    says_logged_out(&r);
    let cleared: Vec<_> = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(cleared.iter().any(|c| c.starts_with("op_session=;") && c.contains("Max-Age=0")), "{cleared:?}");
    assert_eq!(e.status("S1").as_deref(), Some("ended"));
    assert_eq!(e.status("S2").as_deref(), Some("active"));

    let r = e.post(&[
        ("id_token_hint", &hint(&e.iss, "rp-c", "U1", "S2")),
        ("post_logout_redirect_uri", uri),
        ("state", "s2"),
    ]);
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "https://c.example.com/out?state=s2");
    assert_eq!(e.status("S2").as_deref(), Some("ended"));
    assert_eq!(e.gw.metric("logout_gateway_logouts_total{outcome=\"redirect\"}"), 2.0);
    assert_eq!(e.gw.metric("logout_gateway_logout_duration_seconds_count{outcome=\"redirect\"}"), 2.0);
    assert_eq!(e.up.count_app(), 0, "end_session never reaches the upstream");
}

#[test]
fn fcl_front_channel_page_loads_every_participant_then_goes_on() {
    let e = env();
    e.put("SA", "U1", &["rp-a", "rp-b"], &[("rp-b", "SB")]);
    let r = e.get(&[
        ("id_token_hint", &hint(&e.iss, "rp-a", "U1", "SA")),
        ("post_logout_redirect_uri", "https://a.example.org/bye?lang=en"),
        ("state", "x&y"),
    ]);
    assert_eq!(r.status(), 200);
    assert_page_headers(&r);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-src https://a.example.org https://b.example.net;"), "{csp}");
    assert!(csp.contains("script-src 'nonce-"), "{csp}");
    let html = r.text().unwrap();
    let frames = iframes(&html);
    let iss = url::form_urlencoded::byte_serialize(e.iss.as_bytes()).collect::<String>();
    assert_eq!(
        frames,
        [
            format!("https://a.example.org/fc?tenant=t1&iss={}&sid=SA", iss.replace('+', "%20")),
            "https://b.example.net/fc".to_string()
        ],
        "FCL-03/06/07: rp-a keeps its query and gets iss+sid, rp-b (not required) gets neither"
    );
    let next = "https://a.example.org/bye?lang=en&state=x%26y";
    assert_eq!(attr(&html, "id=\"lgw\"", "data-next").as_deref(), Some(next));
    assert_eq!(attr(&html, "id=\"continue\"", "href").as_deref(), Some(next));
    assert!(attr(&html, "http-equiv=\"refresh\"", "content").unwrap().ends_with(&format!("url={next}")));
    assert!(html.contains("sandbox=\"allow-scripts allow-same-origin\""));
    assert_eq!(e.status("SB").as_deref(), Some("ended"), "an alias sid finds the same ended session");
    assert_eq!(e.gw.metric("logout_gateway_frontchannel_iframes_total"), 2.0);
}

#[test]
fn t2_expired_hint_for_a_known_or_recently_ended_session_is_accepted() {
    let e = env();
    e.put("S1", "U1", &["rp-c"], &[]);
    let expired = tokens::rsa(&tokens::claims(&e.iss, "rp-c", "U1", Some("S1"), -7200));
    let uri = "https://c.example.com/out";
    for state in ["s2", "s2-again"] {
        // The first logout ends the session; the rest hit the tombstone: RPI-04/RPI-25, idempotent.
        for r in e.both(&[("id_token_hint", &expired), ("post_logout_redirect_uri", uri), ("state", state)]) {
            assert_eq!(r.status(), 303, "{state}");
            assert_eq!(location(&r), format!("{uri}?state={state}"));
        }
    }
    // An expired hint for a session never seen is not enough (RPI-05): confirmation.
    let unknown = tokens::rsa(&tokens::claims(&e.iss, "rp-c", "U1", Some("S9"), -7200));
    is_confirm_page(e.get(&[("id_token_hint", &unknown), ("post_logout_redirect_uri", uri)]));
}

#[test]
fn reject_expired_switch_refuses_expired_hints() {
    let e = env_with(|es| es.reject_expired_id_token_hint = true, true);
    e.put("S1", "U1", &["rp-c"], &[]);
    let expired = tokens::rsa(&tokens::claims(&e.iss, "rp-c", "U1", Some("S1"), -7200));
    assert_rejected(e.get(&[("id_token_hint", &expired)]), 400, "expired");
    assert_eq!(e.status("S1").as_deref(), Some("active"));
}

#[test]
fn t3_rpi15_hint_for_another_users_session_asks_and_ends_nothing() {
    let e = env();
    e.put("SA", "U1", &["rp-a"], &[]);
    let other = hint(&e.iss, "rp-a", "U2", "SA");
    let page = is_confirm_page(
        e.get(&[("id_token_hint", &other), ("post_logout_redirect_uri", "https://a.example.org/logged-out")]),
    );
    assert_eq!(e.status("SA").as_deref(), Some("active"));
    let done = confirm(&e, page);
    assert!(done.status() == 200 || done.status() == 303);
    assert_eq!(e.status("SA").as_deref(), Some("active"), "confirming does not end the other user's session");
}

#[test]
fn t4_forged_hints_never_log_out_or_redirect() {
    let e = env();
    e.put("SA", "U1", &["rp-a"], &[]);
    for (name, token) in tokens::forgeries(&e.iss, &e.up.url()) {
        for r in e.both(&[
            ("id_token_hint", &token),
            ("post_logout_redirect_uri", "https://a.example.org/logged-out"),
            ("state", "s"),
        ]) {
            assert_rejected(r, 400, name);
        }
        assert_eq!(e.status("SA").as_deref(), Some("active"), "{name}");
    }
    // The good token still works afterwards (control: the forgeries failed for their flaw).
    let r = e.get(&[
        ("id_token_hint", &hint(&e.iss, "rp-a", "U1", "SA")),
        ("post_logout_redirect_uri", "https://a.example.org/logged-out"),
    ]);
    assert_eq!(r.status(), 200);
    assert_eq!(e.status("SA").as_deref(), Some("ended"));
    // jku and x5u point at the fake upstream, which records every request: nobody asked.
    let asked: Vec<String> =
        e.up.seen().into_iter().map(|s| s.target).filter(|t| t.starts_with(tokens::ATTACKER_PATH)).collect();
    assert_eq!(asked, Vec::<String>::new(), "no key URL named in a header was fetched");
}

#[test]
fn a_valid_hint_without_sid_asks_then_redirects() {
    let e = env();
    let t = tokens::rsa(&tokens::claims(&e.iss, "rp-c", "U1", None, 3600));
    for page in
        e.both(&[("id_token_hint", &t), ("post_logout_redirect_uri", "https://c.example.com/out"), ("state", "q")])
    {
        let done = confirm(&e, is_confirm_page(page));
        assert_eq!(location(&done), "https://c.example.com/out?state=q");
    }
}

#[test]
fn es256_hints_verify_against_the_ec_key() {
    let e = env();
    e.put("SE", "U1", &["rp-c"], &[]);
    let t = tokens::ec(&tokens::claims(&e.iss, "rp-c", "U1", Some("SE"), 3600));
    let r = e.get(&[("id_token_hint", &t), ("post_logout_redirect_uri", "https://c.example.com/out")]);
    assert_eq!(r.status(), 303);
    assert_eq!(e.status("SE").as_deref(), Some("ended"));
}

#[test]
fn t5_t9_t10_without_a_hint_the_user_confirms_and_is_never_redirected() {
    let e = env();
    for params in [
        vec![("post_logout_redirect_uri", "https://a.example.org/logged-out"), ("state", "s3")],
        vec![],
        vec![("state", "only-state")],
    ] {
        for page in e.both(&params) {
            let page = is_confirm_page(page);
            let done = confirm(&e, page);
            assert_eq!(done.status(), 200);
            assert!(done.headers().get("location").is_none());
            says_logged_out(&done);
            let html = done.text().unwrap();
            assert!(html.contains("You are signed out"), "{html}");
            assert!(!html.contains("a.example.org"), "RPI-20: no redirect without proof: {html}");
        }
    }
    assert_eq!(e.gw.metric("logout_gateway_logouts_total{outcome=\"confirm\"}"), 6.0);
}

#[test]
fn t6_client_id_with_a_registered_uri_redirects_after_confirmation() {
    let e = env();
    let page = is_confirm_page(e.get(&[
        ("client_id", "rp-c"),
        ("post_logout_redirect_uri", "https://c.example.com/out"),
        ("state", "s6"),
    ]));
    let done = confirm(&e, page);
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "https://c.example.com/out?state=s6");
}

#[test]
fn confirmation_tokens_are_single_use_bound_to_the_browser_and_unforgeable() {
    let e = env();
    let page = is_confirm_page(e.get(&[]));
    let cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let html = page.text().unwrap();
    let action = attr(&html, "<form", "action").unwrap();
    let token = attr(&html, "name=\"token\"", "value").unwrap();
    let submit = |cookie: Option<&str>, token: &str| {
        let mut rq = client()
            .post(e.gw.url(&action))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("token", token), ("action", "logout")]));
        if let Some(c) = cookie {
            rq = rq.header("cookie", c);
        }
        rq.send().unwrap()
    };
    assert_rejected(submit(Some(&cookie), "forged-token-value"), 400, "forged token");
    assert_rejected(submit(Some("lgw_confirm=someone-elses"), &token), 400, "wrong binder cookie");
    // The token was consumed by the failed attempt: single use, whatever happened.
    assert_rejected(submit(Some(&cookie), &token), 400, "replay after a failed use");

    let page = is_confirm_page(e.get(&[]));
    let cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let token = attr(&page.text().unwrap(), "name=\"token\"", "value").unwrap();
    assert_rejected(submit(None, &token), 400, "no binder cookie");
    let page = is_confirm_page(e.get(&[]));
    let cookie2 = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let token2 = attr(&page.text().unwrap(), "name=\"token\"", "value").unwrap();
    assert_eq!(submit(Some(&cookie2), &token2).status(), 200);
    assert_rejected(submit(Some(&cookie2), &token2), 400, "replay after success");
    let _ = cookie;
    assert_eq!(client().get(e.gw.url(&action)).send().unwrap().status(), 405);
}

#[test]
fn t7_client_id_must_match_the_hint_and_be_known() {
    let e = env();
    e.put("SA", "U1", &["rp-a"], &[]);
    let h = hint(&e.iss, "rp-a", "U1", "SA");
    for r in e.both(&[
        ("id_token_hint", &h),
        ("client_id", "rp-b"),
        ("post_logout_redirect_uri", "https://b.example.net/out"),
    ]) {
        assert_rejected(r, 400, "RPI-06 mismatch");
    }
    for r in e.both(&[("client_id", "nope"), ("post_logout_redirect_uri", "https://a.example.org/logged-out")]) {
        assert_rejected(r, 400, "RPI-07 unknown client");
    }
    assert_eq!(e.status("SA").as_deref(), Some("active"));
}

#[test]
fn t8_redirect_uri_attacks_are_refused_and_the_session_kept() {
    let e = env();
    e.put("SA", "U1", &["rp-a"], &[]);
    let h = hint(&e.iss, "rp-a", "U1", "SA");
    for bad in [
        "https://a.example.org/not-registered",
        "https://a.example.org/logged-out?foo=bar",
        "https://a.example.org:443/logged-out",
        "https://A.EXAMPLE.ORG/logged-out",
        "https://a.example.org/logged-out/",
        "https://a.example.org/logged-out.",
        "https://a.example.org/logged-out#frag",
        "https://a.example.org@evil.example/logged-out",
        "https://evil.example\\@a.example.org/logged-out",
        "https://a.example.org%2F@evil.example/",
        "https://a.example.org/logged-out%0d%0aSet-Cookie:x=1",
        "javascript:alert(document.domain)//https://a.example.org/logged-out",
        "data:text/html,<script>alert(1)</script>",
        "https://a.еxample.org/logged-out",
        "https://b.example.net/out",
        "//evil.example/",
        "https://a.example.org/logged-out\u{0}",
    ] {
        for r in e.both(&[("id_token_hint", &h), ("post_logout_redirect_uri", bad), ("state", "s")]) {
            let status = r.status().as_u16();
            assert_rejected(r, status.max(400), bad);
        }
    }
    assert_eq!(e.status("SA").as_deref(), Some("active"));
}

#[test]
fn t11_without_a_uri_the_default_or_the_logged_out_page() {
    let e = env();
    e.put("SB", "U1", &["rp-b"], &[]);
    e.put("SC", "U1", &["rp-c"], &[]);
    // rp-b has a default URI and a front-channel URI: the page goes on to the default + state.
    let r = e.get(&[("id_token_hint", &hint(&e.iss, "rp-b", "U1", "SB")), ("state", "s11")]);
    assert_eq!(r.status(), 200);
    let html = r.text().unwrap();
    assert_eq!(attr(&html, "id=\"lgw\"", "data-next").as_deref(), Some("https://b.example.net/out?state=s11"));
    // rp-c has neither: the logged-out page (POST: the tombstone answers the same).
    for r in e.both(&[("id_token_hint", &hint(&e.iss, "rp-c", "U1", "SC")), ("state", "s11")]) {
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("location").is_none());
        assert!(r.text().unwrap().contains("You are signed out"));
        assert_eq!(e.status("SC").as_deref(), Some("ended"));
    }
}

#[test]
fn rpi05_unknown_sid_asks_by_default_and_the_switch_accepts() {
    let e = env();
    let h = hint(&e.iss, "rp-c", "U1", "never-seen");
    let page =
        is_confirm_page(e.get(&[("id_token_hint", &h), ("post_logout_redirect_uri", "https://c.example.com/out")]));
    let done = confirm(&e, page);
    assert_eq!(
        location(&done),
        "https://c.example.com/out",
        "a valid hint proves the client: redirect after confirming"
    );
    assert_eq!(e.status("never-seen").as_deref(), Some("ended"), "the sid is recorded as ended");

    let e = env_with(|es| es.accept_unknown_sid = true, true);
    let h = hint(&e.iss, "rp-c", "U1", "never-seen");
    let r = e.get(&[("id_token_hint", &h), ("post_logout_redirect_uri", "https://c.example.com/out")]);
    assert_eq!(r.status(), 303);
}

#[test]
fn require_hint_switch() {
    let e = env_with(|es| es.require_id_token_hint = true, true);
    assert_rejected(e.get(&[("client_id", "rp-c")]), 400, "no hint");
}

#[test]
fn unregistered_redirect_patterns_are_opt_in() {
    let e = env_with(|es| es.unregistered_redirect_uri_patterns = vec!["https://*.c.example.com/app".into()], true);
    e.put("S1", "U1", &["rp-c"], &[]);
    let h = hint(&e.iss, "rp-c", "U1", "S1");
    assert_rejected(
        e.get(&[("id_token_hint", &h), ("post_logout_redirect_uri", "https://x.c.example.com/other")]),
        400,
        "outside",
    );
    let r = e.get(&[("id_token_hint", &h), ("post_logout_redirect_uri", "https://x.c.example.com/app/bye")]);
    assert_eq!(location(&r), "https://x.c.example.com/app/bye");
}

#[test]
fn rpi11_state_with_every_punctuation_round_trips_byte_for_byte() {
    let e = env();
    e.put("S1", "U1", &["rp-a"], &[]);
    e.put("S2", "U1", &["rp-c"], &[]);
    let state = "aZ09!\"#$%&'()*,-./:<=>?@[\\]^_`{|}~ +;é";
    let r = e.get(&[
        ("id_token_hint", &hint(&e.iss, "rp-c", "U1", "S2")),
        ("post_logout_redirect_uri", "https://c.example.com/out"),
        ("state", state),
    ]);
    let loc = location(&r);
    let (base, q) = loc.split_once('?').unwrap();
    assert_eq!(base, "https://c.example.com/out");
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    assert_eq!(pairs, [("state".to_string(), state.to_string())], "RPI-11: exactly state, identical");
    assert!(!q.contains('+'), "spaces are %20, never +: {q}");

    let r = e.get(&[
        ("id_token_hint", &hint(&e.iss, "rp-a", "U1", "S1")),
        ("post_logout_redirect_uri", "https://a.example.org/bye?lang=en"),
        ("state", state),
    ]);
    let next = attr(&r.text().unwrap(), "id=\"lgw\"", "data-next").unwrap();
    let q = next.strip_prefix("https://a.example.org/bye?lang=en&state=").unwrap();
    assert_eq!(crate::tokens_decode(q), state.as_bytes());
}

#[test]
fn injection_payloads_are_never_reflected() {
    let e = env();
    e.put("S1", "U1", &["rp-a"], &[]);
    let payloads = [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "{{7*7}}",
        "javascript:alert(1)",
        "';alert(1)//",
    ];
    for p in payloads {
        for key in ["id_token_hint", "logout_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales"] {
            for r in e.both(&[(key, p)]) {
                let status = r.status().as_u16();
                assert!(status == 200 || status == 400, "{key}={p}: {status}");
                let body = r.text().unwrap();
                // (Template syntax in data is never evaluated: handlebars renders values, not templates.)
                assert!(!body.contains(p), "{key}={p} reflected");
            }
        }
    }
    // In the page that does carry request data (state in the next URL), it is encoded.
    let r = e.get(&[
        ("id_token_hint", &hint(&e.iss, "rp-a", "U1", "S1")),
        ("post_logout_redirect_uri", "https://a.example.org/logged-out"),
        ("state", payloads[1]),
    ]);
    let body = r.text().unwrap();
    assert!(!body.contains(payloads[1]) && !body.contains("<img"), "{body}");
}

#[test]
fn malformed_requests_get_clear_answers() {
    let e = env();
    for r in e.both(&[("state", "a"), ("state", "b")]) {
        assert_rejected(r, 400, "duplicate");
    }
    let r = client().put(e.gw.url("/session/end")).send().unwrap();
    assert_eq!(r.headers()["allow"], "GET, POST");
    assert_rejected(r, 405, "PUT");
    let r =
        client().post(e.gw.url("/session/end")).header("content-type", "application/json").body("{}").send().unwrap();
    assert_rejected(r, 415, "json");
    let r = client().post(e.gw.url("/session/end")).body("state=x").send().unwrap();
    assert_rejected(r, 415, "no content type");
    let big = "a".repeat(40 * 1024);
    let r = client()
        .post(e.gw.url("/session/end"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("state={big}"))
        .send()
        .unwrap();
    assert_rejected(r, 413, "big body");
    let r = client().get(e.gw.url(&format!("/session/end?state={big}"))).send().unwrap();
    assert_rejected(r, 414, "big query");
    let r = client().get(e.gw.url("/session/end?state=%ff%fe")).send().unwrap();
    assert_rejected(r, 400, "not utf-8");
    let r = e.get(&[("logout_hint", "alice@example.com")]);
    assert_eq!(r.status(), 200, "RPI-08: logout_hint alone is accepted (and asks)");
}

#[test]
fn rpi12_ui_locales_picks_french_and_never_fails() {
    let e = env();
    let r = e.get(&[("ui_locales", "fr-CA fr en")]);
    let html = r.text().unwrap();
    assert!(html.contains("lang=\"fr\"") && html.contains("Se déconnecter"), "{html}");
    let r = e.get(&[("ui_locales", "xx-YY tlh")]);
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("lang=\"en\""));
}

#[test]
fn page_language_falls_back_to_accept_language() {
    let e = env();
    let page = |ui: Option<&str>, accept: &str| {
        let pairs: Vec<(&str, &str)> = ui.map(|u| ("ui_locales", u)).into_iter().collect();
        let r = client()
            .get(e.gw.url(&format!("/session/end?{}", form(&pairs))))
            .header("accept-language", accept)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().unwrap();
        html.split("lang=\"").nth(1).unwrap().split('"').next().unwrap().to_string()
    };
    assert_eq!(page(None, "fr-CH, fr;q=0.9, en;q=0.8"), "fr");
    assert_eq!(page(None, "de, en;q=0.1, fr;q=0.5"), "fr", "by weight");
    assert_eq!(page(None, "fr;q=0, tlh"), "en");
    assert_eq!(page(Some("en"), "fr"), "en", "ui_locales first");
    assert_eq!(page(Some("tlh"), "fr"), "fr", "ui_locales with no translation falls back");
    // Error pages too: a refused request answers in the browser's language.
    let r = client().get(e.gw.url("/session/end?state=a&state=b")).header("accept-language", "fr").send().unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("lang=\"fr\""));
}

#[test]
fn the_confirmation_page_names_a_proved_application_and_offers_to_stay_signed_in() {
    let e = env_opts(Some(Redis::start()), |o| {
        o.config.clients.get_mut("rp-c").unwrap().client_name = Some("Café <Compta>".into());
    });
    // A valid hint for an unknown sid: the client is proved, the user is asked.
    let h = hint(&e.iss, "rp-c", "U1", "never-seen");
    let r = e.get(&[("id_token_hint", &h), ("post_logout_redirect_uri", "https://c.example.com/out"), ("state", "s1")]);
    let html = is_confirm_page(r).text().unwrap();
    assert!(html.contains("<strong>Café &lt;Compta&gt;</strong>"), "the name, escaped: {html}");
    assert_eq!(attr(&html, "id=\"stay\"", "href").as_deref(), Some("https://c.example.com/out?state=s1"));
    // Staying is a plain link: following it ends nothing.
    assert_eq!(e.status("never-seen"), None);
    // Unproved (client_id only, or nothing): no application named; staying leads to the OP's root.
    let html = is_confirm_page(e.get(&[("client_id", "rp-a")])).text().unwrap();
    assert!(!html.contains("id=\"application\""), "{html}");
    let html = is_confirm_page(e.get(&[])).text().unwrap();
    assert!(!html.contains("id=\"application\""), "{html}");
    assert_eq!(attr(&html, "id=\"stay\"", "href").as_deref(), Some("/"));
    // A proved client without a name is named by its client_id.
    let h = hint(&e.iss, "rp-a", "U1", "never-seen-2");
    let html = is_confirm_page(e.get(&[("id_token_hint", &h)])).text().unwrap();
    assert!(html.contains("<strong>rp-a</strong>"), "{html}");
}

#[test]
fn unknown_kid_refreshes_the_keys_at_a_limited_rate() {
    let mut e = env_opts(Some(Redis::start()), |o| o.config.jwks.min_refresh_interval = "1s".into());
    let iss = std::mem::take(&mut e.iss);
    e.put("S1", "U1", &["rp-c"], &[]);
    // The OP rotates: it now publishes the "foreign" key as its signing key.
    *e.up.jwks.lock().unwrap() = String::from_utf8(tokens::fixture("jwks-foreign.json")).unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&tokens::fixture("rsa-foreign.pem")).unwrap();
    let mint = |kid: &str| {
        tokens::sign(
            jsonwebtoken::Algorithm::RS256,
            Some(kid),
            &key,
            &tokens::claims(&iss, "rp-c", "U1", Some("S1"), 3600),
        )
    };
    let rotated = mint("foreign");
    // Refused while a refresh is not yet allowed, accepted once the gateway fetched the new set.
    eventually("the rotated key is fetched and trusted", Duration::from_secs(10), || {
        let r = e.get(&[("id_token_hint", &rotated), ("post_logout_redirect_uri", "https://c.example.com/out")]);
        (r.status() == 303).then_some(())
    });
    let fetches = || e.up.seen().iter().filter(|s| s.target == "/jwks").count();
    let before = fetches();
    for i in 0..5 {
        assert_rejected(e.get(&[("id_token_hint", &mint(&format!("k{i}")))]), 400, "unknown kid");
    }
    assert!(fetches() - before <= 1, "rate limited: at most one fetch for five unknown kids in a second");
}

#[test]
fn memory_backend_has_the_same_semantics() {
    let e = env_with(|_| {}, false);
    e.put("S1", "U1", &["rp-c"], &[("rp-b", "S1b")]);
    let uri = "https://c.example.com/out";
    let r = e.get(&[
        ("id_token_hint", &hint(&e.iss, "rp-c", "U1", "S1")),
        ("post_logout_redirect_uri", uri),
        ("state", "m"),
    ]);
    assert_eq!(r.status(), 200, "rp-b (front-channel) takes part through its own sid");
    assert_eq!(e.status("S1b").as_deref(), Some("ended"));
    let r = e.get(&[
        ("id_token_hint", &hint(&e.iss, "rp-c", "U1", "S1")),
        ("post_logout_redirect_uri", uri),
        ("state", "m"),
    ]);
    assert_eq!(r.status(), 200, "idempotent");
    let page = is_confirm_page(e.get(&[]));
    assert_eq!(confirm(&e, page).status(), 200);
}

#[test]
fn confirmation_is_bound_to_the_op_session_seen_on_the_get_and_host_prefixed_over_https() {
    let e = env();
    let ask = |env: &Env, cookie: &str| {
        let page = is_confirm_page(client().get(env.gw.url("/session/end")).header("cookie", cookie).send().unwrap());
        let set = page.headers()["set-cookie"].to_str().unwrap().to_string();
        let token = attr(&page.text().unwrap(), "name=\"token\"", "value").unwrap();
        (set, token)
    };
    let submit = |env: &Env, cookie: &str, token: &str| {
        client()
            .post(env.gw.url("/session/end/confirm"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .body(form(&[("token", token), ("action", "logout")]))
            .send()
            .unwrap()
    };
    let binder = |set: &str| set.split(';').next().unwrap().to_string();
    // A sibling that planted its own binder still cannot confirm for the victim: the context is
    // bound to the OP session cookie the page was shown with.
    for (other, why) in [
        ("op_session=S-other", "another OP session"),
        ("", "no OP session"),
        ("op_session=S-victim; op_session=S-extra", "an extra OP cookie"),
    ] {
        let (set, token) = ask(&e, "op_session=S-victim");
        let cookie = format!("{}; {other}", binder(&set));
        assert_rejected(submit(&e, &cookie, &token), 400, why);
    }
    let (set, token) = ask(&e, "op_session=S-victim");
    assert!(set.starts_with("lgw_confirm=") && set.contains("Path=/session/end/confirm"), "{set}");
    assert_eq!(submit(&e, &format!("op_session=S-victim; {}", binder(&set)), &token).status(), 200);

    // Over https the binder is a __Host- cookie (Secure, Path=/), which a sibling domain or an
    // http page cannot set; the unprefixed name is not accepted in its place.
    let e = env_opts(Some(Redis::start()), |o| o.issuer = Some("https://op.example.com".into()));
    let (set, token) = ask(&e, "op_session=S-victim");
    assert!(set.starts_with("__Host-lgw_confirm="), "{set}");
    for attr in ["; Path=/;", "; Secure", "; HttpOnly", "; SameSite=Strict"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    let value = binder(&set).split_once('=').unwrap().1.to_string();
    assert_rejected(submit(&e, &format!("op_session=S-victim; lgw_confirm={value}"), &token), 400, "unprefixed");
    let (set, token) = ask(&e, "op_session=S-victim");
    let done = submit(&e, &format!("op_session=S-victim; {}", binder(&set)), &token);
    assert_eq!(done.status(), 200);
    let cleared: Vec<_> =
        done.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(cleared.iter().any(|c| c.starts_with("__Host-lgw_confirm=;") && c.contains("Max-Age=0")), "{cleared:?}");
}
