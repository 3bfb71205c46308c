//! Passthrough fidelity: what the upstream receives and what the client gets back.

use std::time::{Duration, Instant};

use crate::harness::{client, eventually, Gateway, GatewayOpts};
use crate::upstream::{fnv, pattern, Upstream};

fn json(r: reqwest::blocking::Response) -> serde_json::Value {
    assert_eq!(r.status(), 200);
    serde_json::from_slice(&r.bytes().unwrap()).unwrap()
}

#[test]
fn query_headers_and_host_reach_the_upstream_unchanged_with_forwarded_headers() {
    let up = Upstream::start();
    let gw = Gateway::start(&GatewayOpts::new(up.url()));
    let target = "/authorize?scope=openid%20profile&state=a%2Fb+c&empty=&flag&x=%E2%9C%93&dup=1&dup=2";
    let r = client()
        .get(gw.url(target))
        .header("host", "login.example.com")
        .header("x-custom", "v1")
        .header("accept-language", "fr-CA, fr;q=0.8")
        .header("cookie", "op_session=K1; other=2")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-proto", "https")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "must-not-pass")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-upstream"], "fake", "upstream response headers come back");
    let body = json(r);
    assert_eq!(body["target"], target, "raw path and query byte for byte");
    let seen = up.seen().pop().unwrap();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.header("host"), Some("login.example.com"), "Host kept");
    assert_eq!(seen.header("x-custom"), Some("v1"));
    assert_eq!(seen.header("accept-language"), Some("fr-CA, fr;q=0.8"));
    assert_eq!(seen.header("cookie"), Some("op_session=K1; other=2"));
    // Untrusted by default: the client's own X-Forwarded-* are replaced, not believed.
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("login.example.com"));
    for hop in ["x-hop", "keep-alive", "te"] {
        assert_eq!(seen.header(hop), None, "hop-by-hop header {hop} must not be forwarded");
    }
}

#[test]
fn trusted_forwarded_headers_are_kept_and_appended() {
    let up = Upstream::start();
    let mut opts = GatewayOpts::new(up.url());
    opts.config.upstream.trust_forwarded_headers = true;
    let gw = Gateway::start(&opts);
    client()
        .get(gw.url("/x"))
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "login.example.com")
        .send()
        .unwrap();
    let seen = up.seen().pop().unwrap();
    assert_eq!(seen.header("x-forwarded-for"), Some("203.0.113.7, 127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("x-forwarded-host"), Some("login.example.com"));
}

#[test]
fn every_method_and_a_3_mib_request_body_pass_through() {
    let up = Upstream::start();
    let gw = Gateway::start(&GatewayOpts::new(up.url()));
    let c = client();
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        let body = json(c.request(method, gw.url("/m")).body(format!("body of {m}")).send().unwrap());
        assert_eq!(body["method"], m);
        assert_eq!(body["body_len"], format!("body of {m}").len());
    }
    let big = pattern(3 * 1024 * 1024);
    let body = json(
        c.post(gw.url("/upload")).header("content-type", "application/octet-stream").body(big.clone()).send().unwrap(),
    );
    assert_eq!(body["body_len"], big.len());
    assert_eq!(body["body_fnv"], fnv(&big).to_string());
}

#[test]
fn large_and_chunked_response_bodies_stream_back_intact() {
    let up = Upstream::start();
    let gw = Gateway::start(&GatewayOpts::new(up.url()));
    let c = client();
    let n = 5_000_000;
    let r = c.get(gw.url(&format!("/big?size={n}"))).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], n.to_string().as_str());
    let got = r.bytes().unwrap();
    assert_eq!(got.len(), n);
    assert!(got[..] == pattern(n)[..], "5 MB body differs");

    let r = c.get(gw.url("/chunked?size=1000000")).send().unwrap();
    assert!(r.headers().get("content-length").is_none());
    let got = r.bytes().unwrap();
    assert!(got[..] == pattern(1_000_000)[..], "chunked body differs");
}

#[test]
fn head_204_304_and_repeated_headers() {
    let up = Upstream::start();
    let gw = Gateway::start(&GatewayOpts::new(up.url()));
    let c = client();
    let r = c.head(gw.url("/big?size=1234")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "1234");
    assert_eq!(r.bytes().unwrap().len(), 0);
    // (The gateway's own discovery and key fetches may come after it.)
    let seen = up.seen().into_iter().rev().find(|s| s.target == "/big?size=1234").unwrap();
    assert_eq!(seen.method, "HEAD");

    let r = c.get(gw.url("/status/204")).send().unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.bytes().unwrap().len(), 0);
    let r = c.get(gw.url("/status/304")).header("if-none-match", "\"v1\"").send().unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], "\"v1\"");
    assert_eq!(up.seen().pop().unwrap().header("if-none-match"), Some("\"v1\""));

    let r = c.get(gw.url("/cookies")).send().unwrap();
    let cookies: Vec<_> = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert_eq!(cookies, ["a=1; Path=/; HttpOnly", "b=2; Path=/; Secure"]);
    let multi: Vec<_> = r.headers().get_all("x-multi").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert_eq!(multi, ["one", "two"]);
    // The connection stays usable after all of the above (keep-alive with pooled connections).
    assert_eq!(json(c.get(gw.url("/after")).send().unwrap())["target"], "/after");
}

#[test]
fn upstream_down_gives_a_fast_502_page() {
    let port = crate::harness::free_port();
    let gw = Gateway::start(&GatewayOpts::new(format!("http://127.0.0.1:{port}")));
    let start = Instant::now();
    let r = client().get(gw.url("/authorize?id_token_hint=secret-value")).send().unwrap();
    // A hang guard, not a performance target: a refused connection must not wait for timeouts.
    assert!(start.elapsed() < Duration::from_secs(3), "502 took {:?}", start.elapsed());
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.headers()["cache-control"], "no-cache, no-store");
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    let body = r.text().unwrap();
    assert!(body.contains("Bad gateway"), "{body}");
    // Counted in the logging phase, which runs after the answer went out.
    crate::harness::eventually("the 502 counted", Duration::from_secs(5), || {
        (gw.metric("logout_gateway_proxied_requests_total{status_class=\"5xx\"}") == 1.0).then_some(())
    });
    assert!(!gw.log().contains("secret-value"), "query strings must not reach the logs");
}

#[test]
fn upstream_read_timeout_gives_504() {
    let up = Upstream::start();
    let mut opts = GatewayOpts::new(up.url());
    opts.config.upstream.read_timeout = "300ms".into();
    let gw = Gateway::start(&opts);
    let r = client().get(gw.url("/slow?ms=3000")).send().unwrap();
    assert_eq!(r.status(), 504);
    assert!(r.text().unwrap().contains("Gateway timeout"));
    assert_eq!(gw.metric("logout_gateway_upstream_errors_total{reason=\"timeout\"}"), 1.0);
}

#[test]
fn https_upstream_is_verified_against_the_configured_ca() {
    let up = Upstream::start_tls(&["localhost"]);
    let url = format!("https://localhost:{}", up.addr.port());
    let mut opts = GatewayOpts::new(url.clone());
    opts.config.upstream.ca_file = up.ca_pem.as_ref().map(|p| p.display().to_string());
    let gw = Gateway::start(&opts);
    let body = json(client().get(gw.url("/over-tls?x=1")).send().unwrap());
    assert_eq!(body["target"], "/over-tls?x=1");

    // Without the CA the certificate is not trusted: 502, nothing reaches the upstream.
    let before = up.count_app();
    let gw2 = Gateway::start(&GatewayOpts::new(url));
    assert_eq!(client().get(gw2.url("/x")).send().unwrap().status(), 502);
    assert_eq!(up.count_app(), before);
}

#[test]
fn an_https_upstream_reached_by_ip_is_verified_against_tls_server_name() {
    let up = Upstream::start_tls(&["login.internal.example"]);
    let mut opts = GatewayOpts::new(format!("https://127.0.0.1:{}", up.addr.port()));
    opts.config.upstream.ca_file = up.ca_pem.as_ref().map(|p| p.display().to_string());
    // By its address alone the certificate does not match: 502, nothing reaches the upstream.
    let by_ip = Gateway::start(&opts);
    assert_eq!(client().get(by_ip.url("/x")).send().unwrap().status(), 502);
    assert_eq!(up.count_app(), 0);
    // Named: proxied requests and the gateway's own fetches (discovery, keys) verify.
    opts.config.upstream.tls_server_name = Some("login.internal.example".into());
    let gw = Gateway::start(&opts);
    let body = json(client().get(gw.url("/over-tls?x=1")).send().unwrap());
    assert_eq!(body["target"], "/over-tls?x=1");
    let published = eventually("discovery and keys fetched over TLS", Duration::from_secs(15), || {
        let r = client().get(gw.url("/.well-known/openid-configuration")).send().ok()?;
        let d: serde_json::Value = serde_json::from_slice(&r.bytes().ok()?).ok()?;
        d.get("frontchannel_logout_supported").is_some().then_some(d)
    });
    assert_eq!(published["end_session_endpoint"], gw.url("/session/end"));
}

#[test]
fn https_upstream_with_a_certificate_for_another_name_is_refused() {
    let up = Upstream::start_tls(&["other.example"]);
    let mut opts = GatewayOpts::new(format!("https://localhost:{}", up.addr.port()));
    opts.config.upstream.ca_file = up.ca_pem.as_ref().map(|p| p.display().to_string());
    let gw = Gateway::start(&opts);
    assert_eq!(client().get(gw.url("/x")).send().unwrap().status(), 502);
    assert_eq!(up.count_app(), 0);
}

/// Every header that claims another client, scheme, port, prefix, path or method is dropped
/// from an untrusted client (any letter case), and kept behind a trusted proxy.
#[test]
fn spoofable_forwarding_headers_never_reach_the_op_from_an_untrusted_client() {
    let spoofed = [
        ("Forwarded", "for=6.6.6.6;proto=https"),
        ("X-Real-IP", "6.6.6.6"),
        ("x-forwarded-port", "443"),
        ("X-Forwarded-Prefix", "/admin"),
        ("X-FORWARDED-SERVER", "evil"),
        ("True-Client-IP", "6.6.6.6"),
        ("X-Client-IP", "6.6.6.6"),
        ("X-Cluster-Client-IP", "6.6.6.6"),
        ("CF-Connecting-IP", "6.6.6.6"),
        ("X-Original-URL", "/userinfo"),
        ("X-Rewrite-URL", "/userinfo"),
        ("X-Forwarded-Uri", "/userinfo"),
        ("X-Original-Host", "evil.example"),
        ("X-HTTP-Method-Override", "DELETE"),
    ];
    let up = Upstream::start();
    for trust in [false, true] {
        let mut opts = GatewayOpts::new(up.url());
        opts.config.upstream.trust_forwarded_headers = trust;
        let gw = Gateway::start(&opts);
        let mut req = client().get(gw.url("/spoof"));
        for (k, v) in spoofed {
            req = req.header(k, v);
        }
        assert_eq!(req.send().unwrap().status(), 200);
        let seen = up.seen().pop().unwrap();
        for (k, v) in spoofed {
            let want = trust.then_some(v);
            assert_eq!(seen.header(k), want, "{k} (trusted: {trust})");
        }
    }
}
