//! Dynamic client registration through the gateway: the upstream's answer teaches the gateway a
//! client's logout metadata (shared through Redis with every instance); proxy.yaml wins; a
//! deletion forgets; metadata that breaks the client rules is not learned.

use std::time::Duration;

use crate::harness::{client, eventually, Gateway, GatewayOpts, Redis};
use crate::logout::{iframes, Env};

fn register(e: &Env, metadata: serde_json::Value) -> reqwest::blocking::Response {
    client()
        .post(e.gw.url("/reg"))
        .header("content-type", "application/json")
        .body(metadata.to_string())
        .send()
        .unwrap()
}

/// Discovery (with its registration endpoint) was fetched by the gateway.
fn wait_for_registration_endpoint(e: &Env) {
    eventually("discovery fetched", Duration::from_secs(10), || {
        let r = client().get(e.gw.url("/.well-known/openid-configuration")).send().ok()?;
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().ok()?).ok()?;
        v.get("registration_endpoint").is_some().then_some(())
    });
}

/// A logout of session `sid` (subject U-dyn) with a valid hint for `aud`, to `uri`.
fn logout_as(e: &Env, gw: &Gateway, aud: &str, sid: &str, uri: &str) -> reqwest::blocking::Response {
    let hint = crate::tokens::hint(&e.iss, aud, "U-dyn", sid);
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &hint)
        .append_pair("post_logout_redirect_uri", uri)
        .append_pair("state", "st")
        .finish();
    client().get(gw.url(&format!("/session/end?{q}"))).send().unwrap()
}

#[test]
fn a_client_registered_through_the_gateway_gets_its_iframe_and_redirect_on_every_instance() {
    // The operator vetted dyn.example.org: its redirects are followed without asking.
    let e = crate::logout::env_opts(Some(Redis::start()), |o| {
        o.config.registration.post_logout_redirect_uri_patterns = vec!["https://dyn.example.org".into()]
    });
    wait_for_registration_endpoint(&e);
    e.put("S-dyn1", "U-dyn", &["dyn1"], &[]);
    assert_eq!(logout_as(&e, &e.gw, "dyn1", "S-dyn1", "https://dyn.example.org/bye").status(), 400, "unknown client");

    let metadata = serde_json::json!({
        "client_name": "dyn1",
        "redirect_uris": ["https://dyn.example.org/cb"],
        "post_logout_redirect_uris": ["https://dyn.example.org/bye"],
        "frontchannel_logout_uri": "https://dyn.example.org/fc",
        "frontchannel_logout_session_required": true,
    });
    let r = register(&e, metadata);
    assert_eq!(r.status(), 201);
    let answer: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    assert_eq!(answer["client_secret"], "registered-secret", "the registration answer passes untouched");
    let page = eventually("dyn1 learned", Duration::from_secs(10), || {
        let r = logout_as(&e, &e.gw, "dyn1", "S-dyn1", "https://dyn.example.org/bye");
        (r.status() == 200).then(|| r.text().unwrap())
    });
    let frames = iframes(&page);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(frames[0].starts_with("https://dyn.example.org/fc?iss=") && frames[0].ends_with("&sid=S-dyn1"));
    let next = crate::logout::attr(&page, "id=\"continue\"", "href");
    assert_eq!(next.as_deref(), Some("https://dyn.example.org/bye?state=st"));

    // Another instance on the same Redis knows the client too.
    let second = Gateway::start(&GatewayOpts { issuer: Some(e.iss.clone()), ..e.opts.clone() });
    e.put("S-dyn2", "U-dyn", &["dyn1"], &[]);
    let r = logout_as(&e, &second, "dyn1", "S-dyn2", "https://dyn.example.org/bye");
    assert_eq!(r.status(), 200);
    assert_eq!(iframes(&r.text().unwrap()).len(), 1);
    // An instance whose operator vetted no host asks the user first, naming the destination;
    // once confirmed, the session ends and the browser goes there.
    let unvetted = Gateway::start(&e.opts.with(|o| {
        o.issuer = Some(e.iss.clone());
        o.config.registration.post_logout_redirect_uri_patterns.clear();
    }));
    e.put("S-dyn4", "U-dyn", &["dyn1"], &[]);
    let page = logout_as(&e, &unvetted, "dyn1", "S-dyn4", "https://dyn.example.org/bye");
    let binder = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let html = page.text().unwrap();
    assert!(html.contains("<form"), "a confirmation page: {html}");
    assert!(html.contains("<strong>dyn.example.org</strong>"), "names the destination host: {html}");
    assert_eq!(e.status("S-dyn4").as_deref(), Some("active"), "nothing ended before the user agreed");
    let token = crate::logout::attr(&html, "name=\"token\"", "value").unwrap();
    let action = crate::logout::attr(&html, "<form", "action").unwrap();
    let done = client()
        .post(unvetted.url(&action))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", binder)
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("token", &token)
                .append_pair("action", "logout")
                .finish(),
        )
        .send()
        .unwrap();
    assert_eq!(done.status(), 200);
    let next = crate::logout::attr(&done.text().unwrap(), "id=\"continue\"", "href");
    assert_eq!(next.as_deref(), Some("https://dyn.example.org/bye?state=st"));
    assert_eq!(e.status("S-dyn4").as_deref(), Some("ended"));
    // Only a registered URI, byte for byte.
    e.put("S-dyn3", "U-dyn", &["dyn1"], &[]);
    assert_eq!(logout_as(&e, &e.gw, "dyn1", "S-dyn3", "https://dyn.example.org/bye/").status(), 400);

    // RFC 7592 deletion: the client is forgotten.
    let r = client().delete(e.gw.url("/reg/dyn1")).send().unwrap();
    assert_eq!(r.status(), 204);
    eventually("dyn1 forgotten", Duration::from_secs(10), || {
        (logout_as(&e, &e.gw, "dyn1", "S-dyn3", "https://dyn.example.org/bye").status() == 400).then_some(())
    });
}

#[test]
fn proxy_yaml_wins_and_bad_metadata_is_not_learned() {
    let e = crate::logout::env();
    wait_for_registration_endpoint(&e);
    let learned = || e.gw.metric("logout_gateway_learned_total{kind=\"client\"}");
    // A registration answer naming a proxy.yaml client changes nothing.
    assert_eq!(
        register(
            &e,
            serde_json::json!({"client_name": "rp-c", "post_logout_redirect_uris": ["https://evil.example/x"]})
        )
        .status(),
        201
    );
    // Metadata that proxy.yaml would refuse (a javascript: front-channel URI, http off loopback).
    for (name, bad) in [
        ("bad1", serde_json::json!({"frontchannel_logout_uri": "javascript:alert(1)"})),
        ("bad2", serde_json::json!({"post_logout_redirect_uris": ["http://rp.example.org/bye"]})),
        ("bad3", serde_json::json!({"backchannel_logout_uri": "https://rp.example.org/bc#frag"})),
    ] {
        let mut m = bad.clone();
        m["client_name"] = name.into();
        assert_eq!(register(&e, m).status(), 201);
    }
    // A good one afterwards, to know the bad ones were processed (in order, same connection pool).
    let ok = serde_json::json!({"client_name": "good", "post_logout_redirect_uris": ["https://good.example.org/bye"]});
    assert_eq!(register(&e, ok).status(), 201);
    eventually("good learned", Duration::from_secs(10), || (learned() >= 1.0).then_some(()));
    assert_eq!(learned(), 1.0, "only the good client was learned");
    e.put("S-c", "U-dyn", &["rp-c"], &[]);
    assert_eq!(logout_as(&e, &e.gw, "rp-c", "S-c", "https://evil.example/x").status(), 400, "proxy.yaml wins");
    for name in ["bad1", "bad2", "bad3"] {
        e.put(&format!("S-{name}"), "U-dyn", &[name], &[]);
        assert_eq!(logout_as(&e, &e.gw, name, &format!("S-{name}"), "https://rp.example.org/bye").status(), 400);
    }
    eventually("the three refusals logged", Duration::from_secs(10), || {
        (e.gw.log().matches("registered client not learned").count() == 3).then_some(())
    });
    assert_eq!(learned(), 1.0, "still only the good client");
}

/// A name other than `localhost` that this machine resolves to a loopback address (its host
/// name, or another /etc/hosts entry): what a DNS name pointing at loopback looks like.
fn loopback_name() -> String {
    use std::net::ToSocketAddrs;
    let mut candidates =
        vec![std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string()];
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    for line in hosts.lines().filter(|l| l.trim_start().starts_with("127.")) {
        candidates.extend(line.split_whitespace().skip(1).map(String::from));
    }
    candidates
        .into_iter()
        .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case("localhost") && !n.ends_with(".localhost"))
        .find(|n| (n.as_str(), 443).to_socket_addrs().is_ok_and(|mut a| a.all(|a| a.ip().is_loopback())))
        .expect("no name other than localhost resolves to loopback here (add one to /etc/hosts)")
}

/// Accept whatever arrived on `l` without blocking: the number of connections.
fn connections(l: &std::net::TcpListener) -> usize {
    let mut n = 0;
    while l.accept().is_ok() {
        n += 1;
    }
    n
}

#[test]
fn a_registered_clients_back_channel_never_reaches_a_private_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let name = loopback_name();
    let e = crate::logout::env();
    wait_for_registration_endpoint(&e);
    // Refused when learned: plain http, loopback and private literals in every spelling.
    let at_learning = [
        format!("http://127.0.0.1:{port}/bc"),
        format!("https://127.0.0.1:{port}/bc"),
        format!("https://2130706433:{port}/bc"),
        format!("https://0x7f.1:{port}/bc"),
        format!("https://0177.0.0.1:{port}/bc"),
        format!("https://127.1:{port}/bc"),
        format!("https://[::ffff:127.0.0.1]:{port}/bc"),
        format!("https://[::1]:{port}/bc"),
        format!("https://0.0.0.0:{port}/bc"),
        format!("https://localhost:{port}/bc"),
        format!("https://LocalHost.:{port}/bc"),
        format!("https://169.254.169.254:{port}/latest/meta-data"),
        format!("https://10.0.0.1:{port}/bc"),
        format!("https://100.64.0.1:{port}/bc"),
        format!("https://[fd00::1]:{port}/bc"),
        format!("https://[fe80::1]:{port}/bc"),
    ];
    for (i, uri) in at_learning.iter().enumerate() {
        let m = serde_json::json!({"client_name": format!("ssrf{i}"), "backchannel_logout_uri": uri});
        assert_eq!(register(&e, m).status(), 201);
    }
    eventually("every literal refused", Duration::from_secs(10), || {
        (e.gw.log().matches("registered client not learned").count() == at_learning.len()).then_some(())
    });
    // A name that resolves to loopback passes learning (names are checked at delivery).
    let by_name = format!("https://{name}:{port}/bc");
    let m = serde_json::json!({"client_name": "ssrf-name", "backchannel_logout_uri": by_name});
    assert_eq!(register(&e, m).status(), 201);
    let learned = || e.gw.metric("logout_gateway_learned_total{kind=\"client\"}");
    eventually("ssrf-name learned", Duration::from_secs(10), || (learned() == 1.0).then_some(()));
    // Logouts of sessions of every one of them: only ssrf-name has a notice to deliver, and its
    // delivery is refused when the name resolves to loopback.
    let refused = || e.gw.metric("logout_gateway_backchannel_deliveries_total{result=\"refused\"}");
    for i in 0..at_learning.len() {
        e.put(&format!("S-ssrf{i}"), "U-dyn", &[&format!("ssrf{i}")], &[]);
        let hint = crate::tokens::hint(&e.iss, &format!("ssrf{i}"), "U-dyn", &format!("S-ssrf{i}"));
        let r = client().get(e.gw.url(&format!("/session/end?id_token_hint={hint}"))).send().unwrap();
        assert_eq!(r.status(), 400, "ssrf{i} is not a known client");
    }
    e.put("S-name", "U-dyn", &["ssrf-name"], &[]);
    let hint = crate::tokens::hint(&e.iss, "ssrf-name", "U-dyn", "S-name");
    let r = client().get(e.gw.url(&format!("/session/end?id_token_hint={hint}"))).send().unwrap();
    assert_eq!(r.status(), 200);
    eventually("delivery refused", Duration::from_secs(10), || (refused() == 1.0).then_some(()));
    assert_eq!(e.gw.metric("logout_gateway_backchannel_deliveries_total{result=\"retry\"}"), 0.0, "not retried");
    assert_eq!(connections(&listener), 0, "the loopback listener saw a connection");

    // The control: an operator who allows the loopback network lets the same delivery connect,
    // so the listener above would have seen one. (The first instance stops first, so it cannot
    // be the one that takes the notice from the shared queue.)
    let crate::logout::Env { gw, up, _redis, iss, opts } = e;
    drop(gw);
    let allowed = Gateway::start(&opts.with(|o| {
        o.issuer = Some(iss.clone());
        o.config.registration.allowed_networks = vec!["127.0.0.0/8".into()];
    }));
    let e = crate::logout::Env { gw: allowed, up, _redis, iss, opts };
    e.put("S-name2", "U-dyn", &["ssrf-name"], &[]);
    let hint = crate::tokens::hint(&e.iss, "ssrf-name", "U-dyn", "S-name2");
    let r = client().get(e.gw.url(&format!("/session/end?id_token_hint={hint}"))).send().unwrap();
    assert_eq!(r.status(), 200);
    eventually("the allowed delivery connects", Duration::from_secs(10), || (connections(&listener) > 0).then_some(()));
}

#[test]
fn management_names_its_client_by_path_and_learned_clients_are_bounded_in_number_and_time() {
    let e = crate::logout::env_opts(Some(Redis::start()), |o| {
        let r = &mut o.config.registration;
        r.max_clients = 2;
        r.client_lifetime = "3s".into();
        r.post_logout_redirect_uri_patterns = vec!["https://dyn.example.org".into()];
    });
    wait_for_registration_endpoint(&e);
    let bye = |name: &str| serde_json::json!({"client_name": name, "post_logout_redirect_uris": ["https://dyn.example.org/bye"]});
    let n = std::cell::Cell::new(0);
    let known = |id: &str| {
        n.set(n.get() + 1);
        let sid = format!("S-{id}-{}", n.get());
        e.put(&sid, "U-dyn", &[id], &[]);
        logout_as(&e, &e.gw, id, &sid, "https://dyn.example.org/bye").status() == 303
    };
    assert_eq!(register(&e, bye("m1")).status(), 201);
    eventually("m1 learned", Duration::from_secs(10), || known("m1").then_some(()));

    // RFC 7592: the path names the client. A query client_id that differs, or a repeated one,
    // is refused before the OP sees it.
    let before = e.up.seen().len();
    for target in ["/reg/m1?client_id=victim", "/REG/m1?CLIENT_ID=victim", "/reg/m1?client_id=m1&client_id=victim"] {
        for method in [reqwest::Method::PUT, reqwest::Method::DELETE, reqwest::Method::GET] {
            let r = client()
                .request(method.clone(), e.gw.url(target))
                .header("content-type", "application/json")
                .body(bye("m1").to_string())
                .send()
                .unwrap();
            assert_eq!(r.status(), 400, "{method} {target}");
        }
    }
    assert_eq!(e.up.seen().len(), before, "the OP saw none of them");
    // A careless OP's update answer that names another client teaches nothing.
    let mut hijack = bye("m1");
    hijack["client_id"] = "victim".into();
    let r =
        client().put(e.gw.url("/reg/m1")).header("content-type", "application/json").body(hijack.to_string()).send();
    assert_eq!(r.unwrap().status(), 200);
    eventually("the mismatch was seen", Duration::from_secs(10), || {
        e.gw.log().contains("an update's answer names another client than its path").then_some(())
    });
    assert!(!known("victim"), "victim was never learned");

    // At most max_clients: the third new client is refused (counted); an update of a kept one
    // still works.
    assert_eq!(register(&e, bye("m2")).status(), 201);
    eventually("m2 learned", Duration::from_secs(10), || known("m2").then_some(()));
    assert_eq!(register(&e, bye("m3")).status(), 201);
    let refused = || e.gw.metric("logout_gateway_learned_total{kind=\"client_refused\"}");
    eventually("m3 refused", Duration::from_secs(10), || (refused() == 1.0).then_some(()));
    assert!(!known("m3"));

    // Past client_lifetime a learned client is no longer known; once expired, the place it
    // held is free again.
    eventually("m1 expired", Duration::from_secs(15), || (!known("m1")).then_some(()));
    assert_eq!(register(&e, bye("m4")).status(), 201);
    eventually("m4 learned in the freed place", Duration::from_secs(10), || known("m4").then_some(()));
}
