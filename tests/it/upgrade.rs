//! A graceful binary upgrade under continuous traffic (CONTRACT "Signals"): a second process
//! started with `run --upgrade` takes the listening sockets over `server.upgrade_sock` when the
//! first gets SIGQUIT; the first drains and exits 0. Passthrough requests and logouts run on
//! fresh connections the whole time: none may fail or be refused. A back-channel notice
//! accepted (and failed once) before the upgrade is delivered by the new process after it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backchannel::posts;
use crate::harness::{client, eventually, rp, Gateway, GatewayOpts, RawClient, Redis};
use crate::tokens::{claims, ec, hint};
use crate::upstream::Upstream;

/// Sessions the logout threads end, one per request.
const SESSIONS: usize = 8_000;

/// Sessions to end, with their hints.
type Queue = Arc<Mutex<Vec<(String, String)>>>;

#[derive(Default)]
struct Tally {
    passthrough: AtomicUsize,
    logouts: AtomicUsize,
    /// Requests completed after the old process exited.
    after: AtomicUsize,
    failures: Mutex<Vec<String>>,
    /// When SIGQUIT was sent (failures say how long after it they came).
    quit_at: Mutex<Option<Instant>>,
}

impl Tally {
    fn fail(&self, what: String) {
        let since = self.quit_at.lock().unwrap().map(|q| format!("{:?} after SIGQUIT", q.elapsed()));
        self.failures.lock().unwrap().push(format!("{} ({})", what, since.unwrap_or_else(|| "before SIGQUIT".into())));
    }
}

fn fresh_connections() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn ready(gw: &Gateway) {
    eventually("readyz", Duration::from_secs(20), || {
        (client().get(gw.admin("/readyz")).send().ok()?.status() == 200).then_some(())
    });
}

/// Keep sending until `stop`: passthrough GETs, or logouts of the queued sessions.
fn traffic(
    port: u16,
    logouts: Option<Queue>,
    stop: Arc<AtomicBool>,
    old_gone: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let c = fresh_connections();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let (url, want, count) = match &logouts {
                None => (format!("http://127.0.0.1:{port}/app/{n}"), 200, &tally.passthrough),
                Some(queue) => {
                    let Some((sid, h)) = queue.lock().unwrap().pop() else { break };
                    let q = format!("id_token_hint={h}&post_logout_redirect_uri=https%3A%2F%2Fc.example.com%2Fout");
                    let _ = sid;
                    (format!("http://127.0.0.1:{port}/session/end?{q}"), 303, &tally.logouts)
                }
            };
            match c.get(&url).send() {
                Ok(r) if r.status() == want => {
                    count.fetch_add(1, Ordering::Relaxed);
                    if old_gone.load(Ordering::Relaxed) {
                        tally.after.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(r) => tally.fail(format!("{url}: status {}", r.status())),
                Err(e) => tally.fail(format!("{}: {e:?}", &url[..url.len().min(60)])),
            }
        }
    })
}

#[test]
fn an_upgrade_under_load_loses_no_request_and_keeps_accepted_notices() {
    let (up, receiver, redis) = (Upstream::start(), Upstream::start(), Redis::start());
    let sock_dir = tempfile::tempdir().unwrap();
    let mut opts = GatewayOpts::new(up.url());
    opts.redis(Some(redis.url()));
    opts.config.server.upgrade_sock = sock_dir.path().join("upgrade.sock").display().to_string();
    // The old process's drain: long enough for requests it accepted last on a loaded CI machine
    // (the suite's default is 1 s).
    opts.config.server.grace_period = "5s".into();
    opts.config.server.shutdown_timeout = "3s".into();
    let notified = RawClient {
        backchannel_logout_uri: Some(format!("http://127.0.0.1:{}/flaky?fail=1&key=up", receiver.addr.port())),
        ..rp(&["https://rp-k.example/out"])
    };
    opts.config.clients.insert("rp-k".into(), notified);
    // The failed first attempt is retried after the upgrade: the backoff's jitter puts the retry
    // between half and all of 20 s after it, while the old process's worker stops 5 s after
    // SIGQUIT, a second or two after the first attempt (10 s let a retry drawn at 5 s go to the
    // old process now and then).
    opts.config.backchannel.retry_initial = "20s".into();
    opts.config.backchannel.retry_max = "20s".into();
    opts.config.backchannel.poll_interval = "100ms".into();
    let mut old = Gateway::start(&opts);
    ready(&old);
    let iss = format!("http://127.0.0.1:{}", old.port);

    let t = Instant::now();
    let queue = sessions(&old, &iss);
    println!("{SESSIONS} sessions recorded in {:?}", t.elapsed());
    let ended: Vec<String> = queue.iter().map(|(s, _)| s.clone()).collect();
    let queue = Arc::new(Mutex::new(queue));

    let (stop, old_gone, tally) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let threads: Vec<_> = [None, None, Some(queue.clone()), Some(queue.clone())]
        .into_iter()
        .map(|q| traffic(old.port, q, stop.clone(), old_gone.clone(), tally.clone()))
        .collect();
    eventually("traffic flows", Duration::from_secs(10), || {
        (tally.passthrough.load(Ordering::Relaxed) > 50 && tally.logouts.load(Ordering::Relaxed) > 50).then_some(())
    });

    // A notice accepted just before the upgrade, its first delivery refused (503); the retry is
    // due after the old process stopped its worker (5 s after SIGQUIT; see retry_initial).
    client_put(&client(), &old, "BC", r#"{"sub":"U1","clients":["rp-k"]}"#);
    let q = format!(
        "/session/end?id_token_hint={}&post_logout_redirect_uri=https%3A%2F%2Frp-k.example%2Fout",
        hint(&iss, "rp-k", "U1", "BC")
    );
    assert_eq!(client().get(old.url(&q)).send().unwrap().status(), 303);
    eventually("the first attempt", Duration::from_secs(10), || (posts(&receiver, "/flaky").len() == 1).then_some(()));

    let old_pid = old.pid();
    let mut new = old.successor();
    let sock = sock_dir.path().join("upgrade.sock");
    eventually("the new process waits for the sockets", Duration::from_secs(20), || sock.exists().then_some(()));
    let quit_at = Instant::now();
    *tally.quit_at.lock().unwrap() = Some(quit_at);
    old.signal(libc::SIGQUIT);
    let status = old.wait_exit(Duration::from_secs(60));
    let drained = quit_at.elapsed();
    old_gone.store(true, Ordering::Relaxed);
    assert!(status.success(), "the old process exits 0 after draining: {status}");
    assert!(new.is_running(), "the new process serves:\n{}", new.log());
    ready(&new);
    let served_after = tally.after.load(Ordering::Relaxed);
    eventually("traffic continues on the new process", Duration::from_secs(20), || {
        (tally.after.load(Ordering::Relaxed) > served_after + 100).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());

    let failures = tally.failures.lock().unwrap().clone();
    let (p, l, a) = (
        tally.passthrough.load(Ordering::Relaxed),
        tally.logouts.load(Ordering::Relaxed),
        tally.after.load(Ordering::Relaxed),
    );
    println!(
        "upgrade under load: {p} passthrough and {l} logouts answered, {a} of them after the old process \
         (pid {old_pid}) exited {drained:?} after SIGQUIT; {} failed or refused",
        failures.len()
    );
    assert!(failures.is_empty(), "{} requests failed: {:?}", failures.len(), &failures[..failures.len().min(10)]);
    assert_ne!(new.pid(), old_pid);

    // Every logout that answered 303 ended its session (checked on the new process).
    let remaining = queue.lock().unwrap().len();
    // The threads pop from the end: the ended sessions are the last ones.
    for sid in ended.iter().skip(remaining).step_by(97) {
        let r = client().get(new.admin(&format!("/sessions/{sid}"))).send().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
        assert_eq!(v["status"], "ended", "{sid}");
    }
    // The notice accepted before the upgrade: delivered by the new process.
    eventually("the retry after the upgrade", Duration::from_secs(30), || {
        (new.metric("logout_gateway_backchannel_deliveries_total{result=\"success\"}") == 1.0).then_some(())
    });
    let p = posts(&receiver, "/flaky");
    assert_eq!(p.len(), 2, "one refused attempt, one delivery");
    assert_eq!(p[0].body, p[1].body, "the same logout token");
}

/// [`SESSIONS`] active sessions of rp-c, recorded in parallel, each with its hint.
fn sessions(gw: &Gateway, iss: &str) -> Vec<(String, String)> {
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..4)
            .map(|t| {
                scope.spawn(move || {
                    // One client per thread: building one loads the system's trust store.
                    let c = client();
                    (t..SESSIONS)
                        .step_by(4)
                        .map(|i| {
                            let sid = format!("L{i}");
                            client_put(&c, gw, &sid, r#"{"sub":"U1","clients":["rp-c"]}"#);
                            // ES256: cheap to sign, so thousands take a moment.
                            let h = ec(&claims(iss, "rp-c", "U1", Some(&sid), 3600));
                            (sid, h)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts.into_iter().flat_map(|p| p.join().unwrap()).collect()
    })
}

fn client_put(c: &reqwest::blocking::Client, gw: &Gateway, sid: &str, body: &str) {
    let r = c.put(gw.admin(&format!("/sessions/{sid}"))).body(body.to_string()).send().unwrap();
    assert_eq!(r.status(), 204);
}

/// A process this test did not start (the successor a gateway started itself): killed at the end.
struct Orphan(u32);

impl Drop for Orphan {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
    }
}

/// The next sd_notify datagram; its `MAINPID=`, when it has one.
fn notice(sock: &std::os::unix::net::UnixDatagram) -> (String, Option<u32>) {
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("a notification within the timeout");
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    let pid = text.lines().find_map(|l| l.strip_prefix("MAINPID=")).map(|p| p.parse().unwrap());
    (text, pid)
}

#[test]
fn sigusr2_starts_the_successor_itself_and_hands_over_as_a_supervisor_sees_it() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut opts = GatewayOpts::new(up.url());
    opts.config.server.upgrade_sock = dir.path().join("upgrade.sock").display().to_string();
    opts.env.push(("NOTIFY_SOCKET".into(), notify_path.display().to_string()));
    let mut old = Gateway::start(&opts);
    let (text, pid) = notice(&notify);
    assert_eq!((text.lines().next(), pid), (Some("READY=1"), Some(old.pid())), "{text}");

    // A config the new binary refuses: no upgrade, the old process keeps serving.
    let good = std::fs::read_to_string(&old.config).unwrap();
    std::fs::write(&old.config, good.replace("listen:", "lisen:")).unwrap();
    old.signal(libc::SIGUSR2);
    eventually("the refusal is logged", Duration::from_secs(20), || {
        old.log().contains("upgrade not started").then_some(())
    });
    assert!(old.is_running());
    assert_eq!(client().get(old.url("/app/still")).send().unwrap().status(), 200);

    std::fs::write(&old.config, good).unwrap();
    let old_pid = old.pid();
    old.signal(libc::SIGUSR2);
    // The successor announces itself as the service's main process (systemd NotifyAccess=all).
    let (text, new_pid) = notice(&notify);
    let new_pid = new_pid.unwrap_or_else(|| panic!("MAINPID in {text:?}"));
    let _orphan = Orphan(new_pid);
    assert_ne!(new_pid, old_pid, "{text}");
    assert!(text.contains("READY=1"), "{text}");
    assert!(old.wait_exit(Duration::from_secs(40)).success(), "the old process drains and exits 0");
    let r = client().get(old.url("/app/after")).send().unwrap();
    assert_eq!(r.status(), 200, "the successor serves the same port");
    assert_eq!(unsafe { libc::kill(new_pid as i32, 0) }, 0, "the successor runs");
}
