//! Operating the real binary: listeners that cannot be bound, health that tells the truth,
//! SIGHUP reloads (applied, refused, needing a restart), the access log and process metrics.
//! The upgrade under load is in `upgrade.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{binary, client, eventually, free_port, rp, templates_dir, Gateway, GatewayOpts};
use crate::upstream::Upstream;

/// One keep-alive HTTP/1.1 connection, to show that a reload leaves connections alone.
struct KeepAlive(BufReader<TcpStream>);

impl KeepAlive {
    fn open(port: u16) -> KeepAlive {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        KeepAlive(BufReader::new(s))
    }

    /// GET `target` on this connection; the status (the body is read and dropped).
    fn get(&mut self, target: &str) -> u16 {
        let req = format!("GET {target} HTTP/1.1\r\nHost: gw.test\r\n\r\n");
        self.0.get_mut().write_all(req.as_bytes()).unwrap();
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).unwrap_or_else(|| panic!("no status line: {line:?}")).parse().unwrap();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            self.0.read_line(&mut h).unwrap();
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
                assert!(!k.eq_ignore_ascii_case("transfer-encoding"), "the test reads sized bodies only");
            }
        }
        let mut body = vec![0; length];
        self.0.read_exact(&mut body).unwrap();
        status
    }
}

/// `templates/` copied to a directory of its own, so a test may change it.
fn own_templates() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&templates_dir(), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn reloads(gw: &Gateway, result: &str) -> f64 {
    gw.metric(&format!("logout_gateway_config_reloads_total{{result=\"{result}\"}}"))
}

/// Send SIGHUP and wait until the reload with `result` is counted.
fn reload(gw: &Gateway, result: &str) {
    let before = reloads(gw, result);
    gw.signal(libc::SIGHUP);
    eventually("the reload is counted", Duration::from_secs(10), || (reloads(gw, result) > before).then_some(()));
}

fn confirm_page(gw: &Gateway, client_id: &str, uri: &str) -> (u16, String) {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("post_logout_redirect_uri", uri)
        .finish();
    let r = client().get(gw.url(&format!("/session/end?{q}"))).send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn a_listener_that_cannot_be_bound_exits_1_within_5s_naming_it_and_health_is_never_200() {
    for which in ["public", "admin"] {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let (listen, admin) = if which == "public" { (port, free_port()) } else { (free_port(), port) };
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("proxy.yaml");
        std::fs::write(&cfg, GatewayOpts::new("http://127.0.0.1:9").yaml(listen, admin)).unwrap();
        let started = Instant::now();
        let mut child = Command::new(binary())
            .args(["run", "--config"])
            .arg(&cfg)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // While the process lives, its admin listener (when it has one) must not say healthy or ready.
        let (mut answers, mut healthy) = (0, 0);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "{which}: still running after 15 s");
            // (When the admin port is the taken one, the test's own socket holds it: nothing to ask.)
            for path in ["/healthz", "/readyz"].into_iter().filter(|_| which == "public") {
                if let Ok(r) = client().get(format!("http://127.0.0.1:{admin}{path}")).send() {
                    answers += 1;
                    healthy += usize::from(r.status() == 200);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = started.elapsed();
        let mut stderr = String::new();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        assert_eq!(status.code(), Some(1), "{which}: exit status; stderr:\n{stderr}");
        assert!(took < Duration::from_secs(5), "{which}: exited after {took:?}");
        assert!(stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("address in use"), "{stderr}");
        assert!(stderr.contains(&format!("({which} listener)")), "names which listener: {stderr}");
        if which == "public" {
            assert!(answers > 0, "the admin listener answered while the public port was taken");
        }
        assert_eq!(healthy, 0, "{which}: {healthy} of {answers} health answers said 200 while a listener was down");
        drop(taken);
    }
}

/// Connections reach `accept` only with their first bytes (TCP_DEFER_ACCEPT, see
/// src/lifecycle/listen.rs): a request on a connection accepted just before a shutdown or an
/// upgrade is read before pingora drops connections still waiting for one.
#[test]
fn listeners_defer_accept_until_the_first_bytes() {
    let up = Upstream::start();
    let gw = Gateway::start(&GatewayOpts::new(up.url()));
    for port in [gw.port, gw.admin_port] {
        let secs = crate::harness::listener_tcp_option(gw.pid(), port, libc::TCP_DEFER_ACCEPT);
        assert!(secs > 0, "TCP_DEFER_ACCEPT on port {port}: {secs}");
    }
}

#[test]
fn sighup_applies_clients_templates_and_log_level_keeping_connections_and_pid() {
    let up = Upstream::start();
    let tpl = own_templates();
    let opts = GatewayOpts::new(up.url()).with(|o| o.config.templates_dir = tpl.path().display().to_string());
    let gw = Gateway::start(&opts);
    let pid = gw.pid();
    let mut conn = KeepAlive::open(gw.port);
    assert_eq!(conn.get("/app/before"), 200);
    assert_eq!(confirm_page(&gw, "rp-new", "https://new.example/out").0, 400, "unknown client before the reload");

    // The file changes: a new client, a changed template, debug logging.
    let confirm = tpl.path().join("confirm.hbs");
    let page = std::fs::read_to_string(&confirm).unwrap().replacen("<main>", "<main><p>reloaded-marker</p>", 1);
    std::fs::write(&confirm, page).unwrap();
    let changed = opts.with(|o| {
        o.config.clients.insert("rp-new".into(), rp(&["https://new.example/out"]));
        o.config.log.level = Some("debug,pingora_proxy=error".into());
    });
    std::fs::write(&gw.config, changed.yaml(gw.port, gw.admin_port)).unwrap();
    reload(&gw, "ok");

    let (status, body) = confirm_page(&gw, "rp-new", "https://new.example/out");
    assert_eq!(status, 200, "the new client is known: {body}");
    assert!(body.contains("reloaded-marker"), "templates were re-read");
    assert_eq!(conn.get("/app/after"), 200, "the connection opened before the reload still serves");
    assert_eq!(gw.pid(), pid);
    eventually("debug lines appear", Duration::from_secs(5), || {
        client().get(gw.url("/app/debug")).send().ok()?;
        gw.log().contains("DEBUG").then_some(())
    });
    assert_eq!(reloads(&gw, "invalid"), 0.0);
}

#[test]
fn an_invalid_reload_keeps_the_running_config_and_logs_what_check_says() {
    let up = Upstream::start();
    let opts = GatewayOpts::new(up.url());
    let gw = Gateway::start(&opts);
    let mut conn = KeepAlive::open(gw.port);
    assert_eq!(conn.get("/app/1"), 200);
    // Two problems: an unknown key and a bad duration, on top of a new client.
    let good = opts.with(|o| {
        o.config.clients.insert("rp-new".into(), rp(&["https://new.example/out"]));
    });
    let bad = good.yaml(gw.port, gw.admin_port).replace("read_timeout: 5s", "read_timeout: 5 parsecs").replacen(
        "listen:",
        "lisen: \"127.0.0.1:1\"\nlisten:",
        1,
    );
    std::fs::write(&gw.config, &bad).unwrap();
    let check = Command::new(binary()).args(["check", "--config"]).arg(&gw.config).output().unwrap();
    assert_eq!(check.status.code(), Some(64));
    let problems = String::from_utf8(check.stderr).unwrap();
    assert!(problems.lines().count() >= 2, "{problems}");

    reload(&gw, "invalid");
    let log = gw.log();
    for line in problems.lines() {
        assert!(log.contains(line), "the log carries check's line {line:?}:\n{log}");
    }
    assert_eq!(confirm_page(&gw, "rp-new", "https://new.example/out").0, 400, "nothing of the file applied");
    assert_eq!(confirm_page(&gw, "rp-c", "https://c.example.com/out").0, 200, "the running clients stay");
    assert_eq!(conn.get("/app/2"), 200, "connections stay");
    assert_eq!(reloads(&gw, "ok"), 0.0);

    // Fixed back to valid, with a listener change that needs a restart: applied but that.
    let moved = good.with(|o| o.config.upstream.read_timeout = "6s".into());
    std::fs::write(&gw.config, moved.yaml(free_port(), gw.admin_port)).unwrap();
    reload(&gw, "ok");
    assert_eq!(confirm_page(&gw, "rp-new", "https://new.example/out").0, 200, "the valid file applied");
    let log = gw.log();
    for key in ["key=\"listen\"", "key=\"upstream\"", "key=\"issuer\""] {
        assert!(log.contains(key) && log.contains("applies only after a restart"), "{key} named:\n{log}");
    }
    assert_eq!(conn.get("/app/3"), 200, "still served on the old listener");
}

#[test]
fn the_access_log_has_one_line_per_request_without_credentials_and_can_be_off() {
    let up = Upstream::start();
    let gw = Gateway::start(&GatewayOpts::new(up.url()));
    let secret = "s3cr3t-credential";
    let r = client()
        .get(gw.url(&format!("/App/./x/../Userinfo?access_token={secret}&state={secret}")))
        .header("Authorization", format!("Bearer {secret}"))
        .header("Cookie", format!("op_session={secret}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = client().get(gw.url(&format!("/session/end?state={secret}"))).send().unwrap();
    let line = eventually("the access line", Duration::from_secs(5), || {
        gw.log().lines().find(|l| l.contains("logout_gateway::access") && l.contains("/App/Userinfo")).map(String::from)
    });
    for field in ["method=GET", "path=/App/Userinfo", "status=200", "upstream_status=200", "duration_ms=", "bytes="] {
        assert!(line.contains(field), "{field} in {line}");
    }
    let local = eventually("the end_session line", Duration::from_secs(5), || {
        gw.log().lines().find(|l| l.contains("logout_gateway::access") && l.contains("/session/end")).map(String::from)
    });
    assert!(local.contains("upstream_status=0") && local.contains("local=true"), "{local}");
    assert!(!gw.log().contains(secret), "no token, cookie, state or query in the log");

    let quiet = Gateway::start(&GatewayOpts::new(up.url()).with(|o| o.config.log.access = Some(false)));
    assert_eq!(client().get(quiet.url("/app/quiet")).send().unwrap().status(), 200);
    assert_eq!(client().get(quiet.url("/app/quiet2")).send().unwrap().status(), 200);
    assert!(!quiet.log().contains("logout_gateway::access"), "log.access: false");
}

#[test]
fn process_metrics_and_build_info_are_exported() {
    let up = Upstream::start();
    let gw = Gateway::start(&GatewayOpts::new(up.url()));
    let m = gw.metrics();
    let value = |name: &str| m.iter().find(|(s, _)| s == name).map(|(_, v)| *v);
    assert!(value("process_resident_memory_bytes").is_some_and(|v| v > 1e6), "{m:?}");
    assert!(value("process_open_fds").is_some_and(|v| v >= 3.0));
    assert!(value("process_cpu_seconds_total").is_some_and(|v| v >= 0.0));
    let start = value("process_start_time_seconds").expect("start time");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!((now - start).abs() < 600.0, "started within minutes: {start} vs {now}");
    assert!(m.iter().any(|(s, v)| s.starts_with("logout_gateway_build_info{") && *v == 1.0));
    for r in ["ok", "invalid"] {
        assert_eq!(value(&format!("logout_gateway_config_reloads_total{{result=\"{r}\"}}")), Some(0.0));
    }
}
