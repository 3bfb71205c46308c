//! The front-channel page in a real headless Chromium (Debian's package): the browser loads
//! every RP's iframe, then follows the page on to the post-logout URI with the exact state.

use std::process::Command;
use std::time::Duration;

use crate::harness::{rp, RawClient};
use crate::logout::Env;
use crate::tokens::hint;
use crate::upstream::Upstream;

/// Load `url` in headless Chromium, let scripts and navigations run, return the final DOM.
fn chromium_dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=15000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium must be installed (scripts/test installs Debian's chromium)");
    let status =
        crate::harness::eventually("chromium to finish", Duration::from_secs(90), || child.try_wait().unwrap());
    assert!(status.success(), "chromium failed: {status:?}");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    out
}

/// A gateway on Redis with `clients` and the front-channel timeout, its upstream the fake OP.
fn browser_env(clients: &[(&str, RawClient)], frontchannel_timeout: &str) -> Env {
    crate::logout::env_opts(Some(crate::harness::Redis::start()), |o| {
        o.config.end_session.frontchannel_timeout = frontchannel_timeout.into();
        o.config.clients = clients.iter().map(|(id, c)| (id.to_string(), c.clone())).collect();
    })
}

/// A client with this post-logout URI (if any) and front-channel URI.
fn fc_client(post_logout: Option<&str>, frontchannel: &str, session_required: bool) -> RawClient {
    RawClient {
        frontchannel_logout_uri: Some(frontchannel.into()),
        frontchannel_logout_session_required: session_required,
        ..rp(&post_logout.into_iter().collect::<Vec<_>>())
    }
}

#[test]
fn fcl_browser_loads_every_iframe_then_lands_on_the_post_logout_uri_with_state() {
    let rp = Upstream::start();
    let p = rp.addr.port();
    let bye = format!("http://127.0.0.1:{p}/bye");
    let e = browser_env(
        &[
            ("rp-x", fc_client(Some(&bye), &format!("http://127.0.0.1:{p}/fc-x?tenant=t1"), true)),
            ("rp-y", fc_client(None, &format!("http://localhost:{p}/fc-y"), false)),
        ],
        "5s",
    );
    let iss = e.iss.clone();
    e.put("SX", "U1", &["rp-x", "rp-y"], &[("rp-y", "SY")]);
    let state = "st8 &#?=/é";
    let url = e.gw.url(&format!(
        "/session/end?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", &hint(&iss, "rp-x", "U1", "SX"))
            .append_pair("post_logout_redirect_uri", &format!("http://127.0.0.1:{p}/bye"))
            .append_pair("state", state)
            .finish()
    ));
    let dom = chromium_dump_dom(&url);
    let seen = rp.seen();
    let targets: Vec<&str> = seen.iter().map(|s| s.target.as_str()).collect();
    let iss_q = url::form_urlencoded::byte_serialize(iss.as_bytes()).collect::<String>();
    assert!(targets.contains(&format!("/fc-x?tenant=t1&iss={iss_q}&sid=SX").as_str()), "rp-x iframe: {targets:?}");
    assert!(targets.contains(&"/fc-y"), "rp-y iframe: {targets:?}");
    let bye =
        seen.iter().find(|s| s.target.starts_with("/bye")).unwrap_or_else(|| panic!("never reached /bye: {targets:?}"));
    let q = bye.target.strip_prefix("/bye?").unwrap();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    assert_eq!(pairs, [("state".to_string(), state.to_string())]);
    // The iframes came before the navigation (RPI-22), and the browser ended on the RP's page.
    let pos = |t: &str| targets.iter().position(|x| x.starts_with(t)).unwrap();
    assert!(pos("/fc-x") < pos("/bye") && pos("/fc-y") < pos("/bye"), "{targets:?}");
    assert!(dom.contains("/bye?state="), "final page is the RP's: {dom}");
    assert_eq!(e.status("SX").as_deref(), Some("ended"));
}

#[test]
fn fcl14_a_hanging_rp_does_not_keep_the_browser_from_the_post_logout_page() {
    let rp = Upstream::start();
    let p = rp.addr.port();
    let bye = format!("http://127.0.0.1:{p}/bye");
    let e = browser_env(
        &[
            ("rp-x", fc_client(Some(&bye), &format!("http://127.0.0.1:{p}/fc-x"), false)),
            ("rp-hang", fc_client(None, &format!("http://localhost:{p}/slow?ms=60000"), false)),
        ],
        "1s",
    );
    let iss = e.iss.clone();
    e.put("SH", "U1", &["rp-x", "rp-hang"], &[]);
    let url = e.gw.url(&format!(
        "/session/end?id_token_hint={}&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A{p}%2Fbye&state=h",
        hint(&iss, "rp-x", "U1", "SH")
    ));
    let started = std::time::Instant::now();
    let dom = chromium_dump_dom(&url);
    let targets: Vec<String> = rp.seen().into_iter().map(|s| s.target).collect();
    assert!(targets.iter().any(|t| t.starts_with("/slow")), "the hanging RP was asked: {targets:?}");
    assert!(targets.iter().any(|t| t == "/bye?state=h"), "reached the post-logout page: {targets:?}");
    assert!(dom.contains("/bye?state=h"), "{dom}");
    // The RP hangs for a minute; the browser moved on long before (timeout 1 s + 2 s notice).
    assert!(started.elapsed() < Duration::from_secs(45), "took {:?}", started.elapsed());
}

/// The opening tag of the element with this id.
fn tag_of<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {html}"));
    let start = html[..at].rfind('<').unwrap();
    &html[start..at + html[at..].find('>').unwrap()]
}

#[test]
fn fcl_the_signed_out_wording_appears_only_once_the_iframes_finished_or_timed_out() {
    let rp = Upstream::start();
    let p = rp.addr.port();
    let e = browser_env(
        &[
            ("rp-x", fc_client(None, &format!("http://127.0.0.1:{p}/fc-x"), false)),
            ("rp-hang", fc_client(None, &format!("http://localhost:{p}/slow?ms=5000"), false)),
        ],
        "1s",
    );
    e.put("SN", "U1", &["rp-x", "rp-hang"], &[]);
    // A valid hint and no post_logout_redirect_uri: the page has nowhere to go next.
    let url = e.gw.url(&format!("/session/end?id_token_hint={}", hint(&e.iss, "rp-x", "U1", "SN")));
    let served = crate::harness::client().get(&url).send().unwrap().text().unwrap();
    assert!(tag_of(&served, "done").contains(" hidden"), "signed out is not claimed yet: {served}");
    assert!(!tag_of(&served, "progress").contains(" hidden"), "{served}");
    assert!(served.contains("<title>Signing you out…</title>"), "{served}");
    // In the browser (the session already ended: the same page again), once rp-hang's iframe
    // timed out, the page says so, and only then that the user is signed out.
    let dom = chromium_dump_dom(&url);
    assert!(dom.contains("data-logout=\"timeout\""), "{dom}");
    assert!(!tag_of(&dom, "done").contains("hidden"), "{dom}");
    assert!(tag_of(&dom, "progress").contains("hidden"), "{dom}");
    assert!(!tag_of(&dom, "notice").contains("hidden"), "the timeout notice: {dom}");
    assert!(dom.contains("<title>You are signed out</title>"), "{dom}");
}

#[test]
fn the_logout_receipt_says_what_each_rp_got_front_and_back_channel() {
    let op_rp = Upstream::start();
    let p = op_rp.addr.port();
    let bye = format!("http://127.0.0.1:{p}/bye");
    let bc = |path: &str| Some(format!("http://127.0.0.1:{p}{path}"));
    // rp-x: its iframe loads, its back-channel accepts; rp-hang: its iframe never answers;
    // rp-no: no iframe, its back-channel refuses (400, not retried).
    let clients = [
        (
            "rp-x",
            RawClient {
                backchannel_logout_uri: bc("/status/204?rp=x"),
                ..fc_client(Some(&bye), &format!("http://127.0.0.1:{p}/fc-x"), false)
            },
        ),
        ("rp-hang", fc_client(None, &format!("http://localhost:{p}/slow?ms=60000"), false)),
        ("rp-no", RawClient { backchannel_logout_uri: bc("/status/400?rp=no"), ..rp(&[]) }),
    ];
    let e = crate::logout::env_opts(Some(crate::harness::Redis::start()), |o| {
        o.config.end_session.frontchannel_timeout = "1s".into();
        o.config.clients = clients.iter().map(|(id, c)| (id.to_string(), c.clone())).collect();
        crate::backchannel::fast(&mut o.config.backchannel);
    });
    crate::harness::eventually("ready", Duration::from_secs(20), || {
        (crate::harness::client().get(e.gw.admin("/readyz")).send().ok()?.status() == 200).then_some(())
    });
    let iss = e.iss.clone();
    e.put("SR", "U1", &["rp-x", "rp-hang", "rp-no"], &[]);
    let url = e.gw.url(&format!(
        "/session/end?id_token_hint={}&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A{p}%2Fbye&state=r",
        hint(&iss, "rp-x", "U1", "SR")
    ));
    let dom = chromium_dump_dom(&url);
    assert!(dom.contains("/bye?state=r"), "{dom}");
    let receipt = |client: &str| -> serde_json::Value {
        let r = crate::harness::client().get(e.gw.admin("/sessions/SR")).send().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
        v["receipt"][client].clone()
    };
    let want = |fc: &str, bc: &str, n: u64| serde_json::json!({"frontchannel": fc, "backchannel": bc, "backchannel_attempts": n, "ssf": "none"});
    crate::harness::eventually("the receipt complete", Duration::from_secs(20), || {
        (receipt("rp-x") == want("loaded", "delivered", 1) && receipt("rp-no") == want("none", "refused", 1))
            .then_some(())
    });
    assert_eq!(receipt("rp-hang"), want("timeout", "none", 0));
    let m = |r: &str| e.gw.metric(&format!("logout_gateway_frontchannel_results_total{{result=\"{r}\"}}"));
    assert_eq!((m("loaded"), m("timeout")), (1.0, 1.0));
    // Reports are unauthenticated input: a made-up ticket, a malformed body, another method
    // change nothing, and nothing of them comes back.
    let report = |body: &str| {
        crate::harness::client()
            .post(e.gw.url("/session/end/frontchannel-report"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .unwrap()
    };
    let r = report("t=AAAAAAAAAAAAAAAAAAAAAA&r=ttt");
    assert_eq!(r.status(), 204);
    assert!(r.bytes().unwrap().is_empty());
    assert_eq!(report("t=<script>&r=ttt").status(), 400);
    assert_eq!(report("t=AAAAAAAAAAAAAAAAAAAAAA&r=ttt&r=lll").status(), 400);
    assert_eq!(
        crate::harness::client().get(e.gw.url("/session/end/frontchannel-report")).send().unwrap().status(),
        405
    );
    assert_eq!((m("loaded"), m("timeout")), (1.0, 1.0));
    assert_eq!(receipt("rp-x")["frontchannel"], "loaded");
}
