//! Session Management 1.0 served by the gateway (the browser side is e2e/test/session-management.test.js,
//! in real Chromium): session_state added to authorization responses (query or fragment, with the
//! client from the request or remembered for the redirect URI's origin), the browser-state
//! cookie given when missing and changed at logout, the check_session_iframe and discovery;
//! nothing of it when `session_management` is not set.

use base64::Engine;
use sha2::Digest;

use crate::harness::{client, RawSessionManagement};
use crate::learning::wait_for_discovery;
use crate::logout::Env;
use crate::tokens::hint;

fn env(on: bool) -> Env {
    let e = crate::logout::env_opts(Some(crate::harness::Redis::start()), |o| {
        if on {
            o.config.session_management =
                Some(RawSessionManagement { path: "/Check-Session".into(), cookie: "op_bs".into() });
        }
    });
    wait_for_discovery(&e);
    e
}

/// What the iframe computes: base64url(SHA-256(client origin state salt)) "." salt.
fn expected(client: &str, origin: &str, state: &str, salt: &str) -> String {
    let d = sha2::Sha256::digest(format!("{client} {origin} {state} {salt}").as_bytes());
    format!("{}.{salt}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d))
}

fn param(location: &str, name: &str) -> Option<String> {
    let (before, frag) = location.split_once('#').unwrap_or((location, ""));
    let query = before.split_once('?').map(|x| x.1).unwrap_or("");
    [query, frag]
        .iter()
        .find_map(|p| url::form_urlencoded::parse(p.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned()))
}

fn set_cookies(r: &reqwest::blocking::Response) -> Vec<String> {
    r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect()
}

fn authorize(e: &Env, query: &str, cookie: &str) -> reqwest::blocking::Response {
    client().get(e.gw.url(&format!("/oauth/authorize?{query}"))).header("cookie", cookie).send().unwrap()
}

#[test]
fn sm_session_state_is_added_bound_to_client_origin_and_browser_state_which_logout_changes() {
    let e = env(true);
    let origin = "https://c.example.com";
    // A browser that has a state: session_state computed with it, no new cookie.
    let r = authorize(&e, "client_id=rp-c&code_to_issue=s1", "op_session=S-sam; op_bs=BS-1");
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with("https://c.example.com/cb?code=s1&state=s&session_state="), "{loc}");
    let ss = param(&loc, "session_state").unwrap();
    let salt = ss.rsplit_once('.').unwrap().1;
    assert_eq!(ss, expected("rp-c", origin, "BS-1", salt));
    assert_ne!(ss, expected("rp-a", origin, "BS-1", salt), "bound to the client");
    assert!(set_cookies(&r).iter().all(|c| !c.starts_with("op_bs=")), "{:?}", set_cookies(&r));
    // A new salt each time.
    let again = authorize(&e, "client_id=rp-c&code_to_issue=s2", "op_session=S-sam; op_bs=BS-1");
    assert_ne!(param(again.headers()["location"].to_str().unwrap(), "session_state").unwrap(), ss);

    // A browser without one gets one (readable by the iframe's script: not HttpOnly).
    let r = authorize(&e, "client_id=rp-c&code_to_issue=s3", "op_session=S-sam");
    let given: Vec<String> = set_cookies(&r).into_iter().filter(|c| c.starts_with("op_bs=")).collect();
    assert_eq!(given.len(), 1, "{given:?}");
    assert!(given[0].ends_with("; Path=/; SameSite=Lax") && !given[0].contains("HttpOnly"), "{}", given[0]);
    let state = given[0].split(';').next().unwrap().trim_start_matches("op_bs=").to_string();
    let ss = param(r.headers()["location"].to_str().unwrap(), "session_state").unwrap();
    assert_eq!(ss, expected("rp-c", origin, &state, ss.rsplit_once('.').unwrap().1));

    // Implicit: in the fragment, with the other parameters.
    let r = authorize(&e, "client_id=rp-c&response_type=id_token&code_to_issue=s4", "op_session=S-sam; op_bs=BS-1");
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(loc.contains("#id_token=") && loc.split('#').nth(1).unwrap().contains("session_state="), "{loc}");
    // An error response gets none.
    let r = authorize(&e, "client_id=rp-c&prompt=none", "op_bs=BS-1");
    assert!(!r.headers()["location"].to_str().unwrap().contains("session_state"));

    // The login form's POST names no client: the one remembered on the way to the form is used.
    let r =
        authorize(&e, "client_id=rp-a&redirect_uri=https%3A%2F%2Fc.example.com%2Fcb&code_to_issue=s5", "op_bs=BS-2");
    assert_eq!(r.status(), 200, "the login page");
    let remembered: Vec<String> = set_cookies(&r).into_iter().filter(|c| c.starts_with("op_bs_c")).collect();
    assert_eq!(remembered.len(), 1);
    assert!(remembered[0].contains("HttpOnly"), "{}", remembered[0]);
    let pair = remembered[0].split(';').next().unwrap();
    let login = |cookie: String| {
        client()
            .post(e.gw.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .body("user=zoe&code=s6")
            .send()
            .unwrap()
    };
    let r = login(format!("op_bs=BS-2; {pair}"));
    let ss = param(r.headers()["location"].to_str().unwrap(), "session_state").unwrap();
    assert_eq!(ss, expected("rp-a", origin, "BS-2", ss.rsplit_once('.').unwrap().1));
    let r = login("op_bs=BS-2".into());
    assert!(!r.headers()["location"].to_str().unwrap().contains("session_state"), "no client known: unchanged");

    // Logout changes the browser state (SM-02), on the answer that ends the session (rp-a has a
    // front-channel URI: the page).
    e.put("sid-sm", "U-sam", &["rp-a"], &[]);
    let r = client()
        .get(e.gw.url(&format!(
            "/session/end?id_token_hint={}&post_logout_redirect_uri=https%3A%2F%2Fa.example.org%2Flogged-out",
            hint(&e.iss, "rp-a", "U-sam", "sid-sm")
        )))
        .header("cookie", "op_bs=BS-1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "rp-a's front-channel page");
    let changed: Vec<String> = set_cookies(&r).into_iter().filter(|c| c.starts_with("op_bs=")).collect();
    assert_eq!(changed.len(), 1, "{:?}", set_cookies(&r));
    assert!(!changed[0].starts_with("op_bs=BS-1;"));

    // The iframe and discovery.
    let d: serde_json::Value = serde_json::from_slice(
        &client().get(e.gw.url("/.well-known/openid-configuration")).send().unwrap().bytes().unwrap(),
    )
    .unwrap();
    assert_eq!(d["check_session_iframe"], format!("{}/check-session", e.iss));
    let r = client().get(e.gw.url("/check-session")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(r.headers().get("x-frame-options").is_none(), "RPs frame it");
    let html = r.text().unwrap();
    let script = html.split("<script>").nth(1).unwrap().split("</script>").next().unwrap();
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()));
    assert_eq!(csp, format!("default-src 'none'; script-src 'sha256-{hash}'; frame-ancestors *"));
    assert!(script.contains("var NAME = \"op_bs\""));
}

#[test]
fn sm_off_by_default_nothing_is_added() {
    let e = env(false);
    let r = authorize(&e, "client_id=rp-c&code_to_issue=o1", "op_session=S-sam");
    assert_eq!(r.headers()["location"], "https://c.example.com/cb?code=o1&state=s");
    assert!(set_cookies(&r).is_empty());
    let d: serde_json::Value = serde_json::from_slice(
        &client().get(e.gw.url("/.well-known/openid-configuration")).send().unwrap().bytes().unwrap(),
    )
    .unwrap();
    assert!(d.get("check_session_iframe").is_none());
    // The path is the OP's like any other.
    let r = client().get(e.gw.url("/check-session")).send().unwrap();
    assert_eq!(r.headers()["x-upstream"], "fake");
}
