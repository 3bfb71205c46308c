//! Limits with clear answers (414, 431, 429), slow clients (a total header deadline, idle
//! keep-alive), and a connection cap, against the real binary over raw TCP where HTTP clients
//! would be too polite.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{client, eventually, Gateway, GatewayOpts, RawConfig, RawLimits};
use crate::upstream::Upstream;

/// A gateway on memory whose config `f` adjusts.
fn gateway(f: impl FnOnce(&mut RawConfig)) -> (Upstream, Gateway) {
    let up = Upstream::start();
    let mut o = GatewayOpts::new(up.url());
    f(&mut o.config);
    let gw = Gateway::start(&o);
    (up, gw)
}

fn connect(gw: &Gateway) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

/// Read until the peer closes (Ok(bytes)) or the read timeout hits (Err).
fn read_to_close(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

fn limits(l: &mut RawLimits) {
    l.max_uri_length = 2048;
    l.max_headers = 40;
    l.max_header_bytes = 8192;
    l.end_session_max_uri_length = 1024;
    l.end_session_max_headers = 20;
    l.end_session_max_header_bytes = 4096;
}

#[test]
fn oversized_targets_and_headers_get_414_and_431_stricter_on_end_session() {
    let (up, gw) = gateway(|c| limits(&mut c.limits));
    let c = client();
    let q = "a".repeat(1500);
    assert_eq!(c.get(gw.url(&format!("/x?q={q}"))).send().unwrap().status(), 200, "passthrough allows 1.5 KiB");
    let r = c.get(gw.url(&format!("/session/end?state={q}"))).send().unwrap();
    assert_eq!(r.status(), 414);
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    assert!(r.text().unwrap().contains("Address too long"));
    assert_eq!(c.get(gw.url(&format!("/x?q={}", "a".repeat(3000)))).send().unwrap().status(), 414);
    let with_headers = |path: &str, n: usize| {
        let mut rb = c.get(gw.url(path));
        for i in 0..n {
            rb = rb.header(format!("x-h{i}"), "v");
        }
        rb.send().unwrap().status().as_u16()
    };
    assert_eq!(with_headers("/x", 25), 200);
    assert_eq!(with_headers("/session/end", 25), 431);
    assert_eq!(with_headers("/x", 45), 431);
    let big = "b".repeat(5000);
    assert_eq!(c.get(gw.url("/x")).header("x-big", &big).send().unwrap().status(), 200);
    assert_eq!(c.get(gw.url("/session/end")).header("x-big", &big).send().unwrap().status(), 431);
    let before = up.count_app();
    assert_eq!(c.get(gw.url("/x")).header("x-big", "b".repeat(9000)).send().unwrap().status(), 431);
    assert_eq!(up.count_app(), before, "refused requests never reach the upstream");
    assert!(gw.metric("logout_gateway_limited_requests_total{limit=\"headers\"}") >= 4.0);
    assert!(gw.metric("logout_gateway_limited_requests_total{limit=\"uri\"}") >= 2.0);
}

#[test]
fn a_client_trickling_its_header_is_cut_off_at_the_header_deadline() {
    let (_up, gw) = gateway(|c| c.limits.header_timeout = "1s".into());
    let mut s = connect(&gw);
    s.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n").unwrap();
    let start = Instant::now();
    // One header byte every 200 ms: each read is quick, so a per-read timeout never fires.
    let mut closed = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        if s.write_all(b"X").is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 1];
        s.set_nonblocking(true).unwrap();
        let r = s.read(&mut probe);
        s.set_nonblocking(false).unwrap();
        if matches!(r, Ok(0)) || matches!(&r, Err(e) if e.kind() != std::io::ErrorKind::WouldBlock) {
            closed = true;
            break;
        }
    }
    assert!(closed, "the connection was never closed");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(4), "closed after {took:?}");
    assert!(gw.metric("logout_gateway_header_timeouts_total") >= 1.0);
    // An ordinary request is unaffected.
    assert_eq!(client().get(gw.url("/x")).send().unwrap().status(), 200);
}

#[test]
fn keep_alive_connections_are_reused_then_closed_when_idle() {
    let (_up, gw) = gateway(|c| {
        c.limits.header_timeout = "1s".into();
        c.limits.keepalive_timeout = "3s".into();
    });
    let mut s = connect(&gw);
    let req = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    let read_response = |s: &mut TcpStream| {
        let mut buf = vec![0u8; 8192];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    s.write_all(req).unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
    // Idle longer than the header deadline but within keep-alive: the next request is served
    // (the header clock starts with its first byte, not with the idle time).
    std::thread::sleep(Duration::from_millis(1500));
    s.write_all(req).unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"), "second request on the kept connection");
    let start = Instant::now();
    let rest = read_to_close(&mut s).expect("the idle connection is closed by the gateway");
    assert!(rest.is_empty());
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(8), "idle close after {took:?}");
}

#[test]
fn connections_over_the_cap_get_503_and_the_cap_frees_up() {
    let (_up, gw) = gateway(|c| {
        c.limits.max_connections = 3;
        c.limits.header_timeout = "30s".into();
    });
    // Slow connections (a request line, then nothing) take the permits; once three are held,
    // the next one is refused. (A connection that sends nothing at all never reaches the
    // gateway: its listeners defer accept until the first bytes. Which of several just-opened
    // connections the gateway serves first is up to its scheduler, so keep opening until one
    // is refused, keeping those that were not.)
    let mut held: Vec<TcpStream> = Vec::new();
    let refused = eventually("a connection over the cap is refused", Duration::from_secs(20), || {
        let mut s = connect(&gw);
        s.write_all(b"GET /x HTTP/1.1\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        match read_to_close(&mut s) {
            Ok(out) if out.starts_with(b"HTTP/1.1 503") => Some(String::from_utf8_lossy(&out).to_string()),
            Ok(_) => None,
            Err(_) => {
                held.push(s);
                None
            }
        }
    });
    assert!(held.len() >= 3, "three connections were held before the refusal: {}", held.len());
    assert!(refused.contains("retry-after: 1"));
    assert!(gw.metric("logout_gateway_connections_refused_total") >= 1.0);
    // The held connections are served.
    let mut served = 0;
    for s in held.iter_mut() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if s.write_all(b"Host: a\r\nConnection: close\r\n\r\n").is_ok()
            && read_to_close(s).is_ok_and(|out| out.starts_with(b"HTTP/1.1 200"))
        {
            served += 1;
        }
    }
    assert_eq!(served, 3);
    held.clear();
    eventually("permits come back when connections close", Duration::from_secs(10), || {
        client().get(gw.url("/x")).send().ok().filter(|r| r.status() == 200)
    });
}

#[test]
fn end_session_is_rate_limited_per_client_with_a_429_page() {
    let (_up, gw) = gateway(|c| {
        c.rate_limit.per_second = 1;
        c.rate_limit.burst = 3;
    });
    let c = client();
    for _ in 0..3 {
        assert_eq!(c.get(gw.url("/session/end?client_id=rp-c")).send().unwrap().status(), 200, "confirmation page");
    }
    let r = c.get(gw.url("/session/end?client_id=rp-c")).send().unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry));
    assert!(r.text().unwrap().contains("Too many requests"));
    // The confirmation step shares the budget; passthrough is never limited.
    let r = c
        .post(gw.url("/session/end/confirm"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=x&action=logout")
        .send()
        .unwrap();
    assert_eq!(r.status(), 429);
    for _ in 0..10 {
        assert_eq!(c.get(gw.url("/x")).send().unwrap().status(), 200);
    }
    assert!(gw.metric("logout_gateway_limited_requests_total{limit=\"rate\"}") >= 2.0);
}

/// Send `hints` to end_session all at once (one thread each, released together); their statuses.
fn burst(gw: &Gateway, hints: &[String]) -> Vec<u16> {
    let gate = std::sync::Barrier::new(hints.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = hints
            .iter()
            .map(|h| {
                let gate = &gate;
                s.spawn(move || {
                    let url = gw.url(&format!("/session/end?id_token_hint={h}"));
                    let c = client();
                    gate.wait();
                    c.get(url).send().unwrap().status().as_u16()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn unknown_kid_refreshes_are_single_flight_even_when_the_fetch_fails() {
    let window = Duration::from_secs(1);
    let e = crate::logout::env_opts(None, |o| o.config.jwks.min_refresh_interval = "1s".into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&crate::tokens::fixture("rsa-foreign.pem")).unwrap();
    let hints: Vec<String> = (0..20)
        .map(|i| {
            let claims = crate::tokens::claims(&e.iss, "rp-c", "U1", Some("S1"), 3600);
            crate::tokens::sign(jsonwebtoken::Algorithm::RS256, Some(&format!("unknown-{i}")), &key, &claims)
        })
        .collect();
    let fetches = |path: &str| e.up.seen().iter().filter(|s| s.target == path).count();
    // The rate limit counts from the last attempt; the upstream saw it, so wait on that record.
    let window_open = || {
        eventually("the refresh window to open", Duration::from_secs(10), || {
            let last = e.up.seen().iter().filter(|s| s.target == "/jwks").map(|s| s.at).max()?;
            (last.elapsed() > window).then_some(())
        })
    };
    for (round, jwks) in [("keys answered", None), ("keys unreadable", Some("not json"))] {
        if let Some(body) = jwks {
            *e.up.jwks.lock().unwrap() = body.to_string();
        }
        window_open();
        let (jwks_before, disc_before) = (fetches("/jwks"), fetches("/.well-known/openid-configuration"));
        let statuses = burst(&e.gw, &hints);
        assert!(statuses.iter().all(|s| *s == 400), "{round}: unknown kids are refused: {statuses:?}");
        assert_eq!(fetches("/jwks") - jwks_before, 1, "{round}: one key fetch for 20 concurrent unknown kids");
        assert!(fetches("/.well-known/openid-configuration") - disc_before <= 1, "{round}: discovery at most once");
    }
}

const PANICS: &str = "logout_gateway_panics_total";

#[test]
fn a_panic_stays_in_its_request_and_is_counted() {
    use logout_gateway::fault::PANIC_PATH;
    let mut e = crate::logout::env_opts(Some(crate::harness::Redis::start()), |o| o.fault_injection = true);
    e.put("S1", "U1", &["rp-c"], &[]);
    assert_eq!(e.gw.metric(PANICS), 0.0);
    let r = client().get(e.gw.url(PANIC_PATH)).send();
    assert!(r.is_err(), "the panicking request gets no answer (its connection is dropped): {r:?}");
    eventually("the panic to be counted", Duration::from_secs(5), || (e.gw.metric(PANICS) == 1.0).then_some(()));
    assert!(e.gw.is_running(), "the process survived");
    assert!(!e.up.seen().iter().any(|s| s.target == PANIC_PATH), "the request went nowhere");
    // The same gateway goes on: passthrough and a logout.
    assert_eq!(client().get(e.gw.url("/x")).send().unwrap().status(), 200);
    let h = crate::tokens::hint(&e.iss, "rp-c", "U1", "S1");
    let r = e.get(&[("id_token_hint", &h), ("post_logout_redirect_uri", "https://c.example.com/out")]);
    assert_eq!(r.status(), 303);
    assert_eq!(e.status("S1").as_deref(), Some("ended"));
    assert_eq!(e.gw.metric(PANICS), 1.0, "one panic, counted once");
}

#[test]
fn the_panic_path_is_an_ordinary_path_unless_armed() {
    let (up, gw) = gateway(|_| {});
    let r = client().get(gw.url(logout_gateway::fault::PANIC_PATH)).send().unwrap();
    assert_eq!(r.status(), 200, "proxied");
    assert!(up.seen().iter().any(|s| s.target == logout_gateway::fault::PANIC_PATH));
    assert_eq!(gw.metric(PANICS), 0.0);
}

/// POST a form of `len` bytes to `path` in 4 KiB chunks (Transfer-Encoding: chunked, no
/// Content-Length); the response's status code.
fn post_chunked(gw: &Gateway, path: &str, len: usize) -> u16 {
    let mut s = connect(gw);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut req = head.into_bytes();
    let body = format!("state={}", "a".repeat(len - "state=".len()));
    for chunk in body.as_bytes().chunks(4096) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    // The gateway may answer before it read everything; a failed write is not the verdict.
    let _ = s.write_all(&req);
    let out = read_to_close(&mut s).unwrap_or_default();
    let head = String::from_utf8_lossy(&out[..out.len().min(12)]).to_string();
    head.strip_prefix("HTTP/1.1 ").and_then(|h| h.get(..3)).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn end_session_form_bodies_are_capped_at_32_kib_even_chunked_and_confirm_wants_a_form() {
    use logout_gateway::probe::params::MAX_INPUT;
    let (up, gw) = gateway(|_| {});
    assert_eq!(MAX_INPUT, 32 * 1024, "docs/security.md: 413 over 32 KiB");
    for path in ["/session/end", "/session/end/confirm"] {
        assert_eq!(post_chunked(&gw, path, MAX_INPUT + 1), 413, "{path}: one byte over the cap, chunked");
        assert_ne!(post_chunked(&gw, path, MAX_INPUT), 413, "{path}: at the cap the body is read");
    }
    let r = client()
        .post(gw.url("/session/end/confirm"))
        .header("content-type", "application/json")
        .body("{\"token\":\"x\",\"action\":\"logout\"}")
        .send()
        .unwrap();
    assert_eq!(r.status(), 415);
    crate::logout::assert_page_headers(&r);
    assert!(r.headers().get("location").is_none());
    assert_eq!(up.count_app(), 0, "nothing of it reached the upstream");
}
