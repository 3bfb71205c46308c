//! Highly available Redis with real processes: a master, replicas and three sentinels. Logouts
//! go on while the master is killed: each answer is a redirect whose session is still ended
//! after the failover, or 503, never a hang; passthrough never notices. `replica_acks` makes a
//! logout fail closed (503) when no replica confirms it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{client, eventually, free_port, Gateway, GatewayOpts, RawRedis, RawSentinel, Redis};
use crate::tokens::{claims, ec};
use crate::upstream::Upstream;

/// A master, `replicas` replicas and three sentinels that agree on them.
struct Topology {
    master: Redis,
    replicas: Vec<Redis>,
    sentinels: Vec<Redis>,
}

fn replica_of(master: u16) -> Redis {
    Redis::start_with(free_port(), &["--replicaof", "127.0.0.1", &master.to_string()])
}

/// The data nodes' and the sentinels' passwords in the failover test.
const DATA_PASSWORD: &str = "data-secret-for-tests";
const SENTINEL_PASSWORD: &str = "sentinel-secret-for-tests";

/// A data node with the data password (also what a replica presents to its master).
fn data_node(port: u16, replica_of: Option<u16>) -> Redis {
    let mut args = vec!["--requirepass", DATA_PASSWORD, "--masterauth", DATA_PASSWORD];
    let master = replica_of.map(|m| m.to_string());
    if let Some(m) = &master {
        args.extend(["--replicaof", "127.0.0.1", m]);
    }
    Redis::start_with(port, &args)
}

/// Master, `replicas` replicas and three sentinels, everything behind passwords.
fn topology(replicas: usize) -> Topology {
    let master = data_node(free_port(), None);
    let replicas: Vec<Redis> = (0..replicas).map(|_| data_node(free_port(), Some(master.port))).collect();
    let sentinels: Vec<Redis> = (0..3)
        .map(|_| Redis::sentinel_auth(free_port(), master.port, Some(DATA_PASSWORD), Some(SENTINEL_PASSWORD)))
        .collect();
    let want = format!("*{}\r\n", replicas.len());
    eventually("the sentinels know the replicas and each other", Duration::from_secs(30), || {
        sentinels
            .iter()
            .all(|s| {
                s.command(&["SENTINEL", "REPLICAS", "mymaster"]).starts_with(&want)
                    && s.command(&["SENTINEL", "SENTINELS", "mymaster"]).starts_with("*2\r\n")
            })
            .then_some(())
    });
    eventually("the replicas are online", Duration::from_secs(30), || {
        let info = master.command(&["INFO", "replication"]);
        (info.matches("state=online").count() == replicas.len()).then_some(())
    });
    Topology { master, replicas, sentinels }
}

/// The master's port as the first sentinel says.
fn master_port(t: &Topology) -> u16 {
    let reply = t.sentinels[0].command(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]);
    reply.lines().filter(|l| !l.starts_with(['*', '$'])).nth(1).and_then(|p| p.parse().ok()).unwrap_or(0)
}

/// `session_store.redis` for master `mymaster` of the sentinels at `nodes`.
fn sentinel_store(nodes: Vec<String>, data: Option<&str>, own: Option<&str>) -> RawRedis {
    RawRedis {
        url: None,
        cluster: None,
        sentinel: Some(RawSentinel {
            master_name: "mymaster".into(),
            nodes,
            password: data.map(String::from),
            sentinel_password: own.map(String::from),
        }),
        connect_timeout: "300ms".into(),
        response_timeout: "500ms".into(),
        replica_acks: 0,
    }
}

fn sentinel_opts(up: &Upstream, t: &Topology, replica_acks: u32) -> GatewayOpts {
    let mut o = GatewayOpts::new(up.url());
    o.config.session_store.backend = "redis".into();
    let nodes = t.sentinels.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect();
    let store = sentinel_store(nodes, Some(DATA_PASSWORD), Some(SENTINEL_PASSWORD));
    o.config.session_store.redis = Some(RawRedis { connect_timeout: "200ms".into(), replica_acks, ..store });
    o
}

/// A session of U1 at rp-c, through the admin API.
fn put_session(gw: &Gateway, sid: &str) {
    let r = client().put(gw.admin(&format!("/sessions/{sid}"))).body(r#"{"sub":"U1","clients":["rp-c"]}"#).send();
    assert_eq!(r.unwrap().status(), 204);
}

fn ready(gw: &Gateway) {
    eventually("readyz", Duration::from_secs(30), || {
        (client().get(gw.admin("/readyz")).send().ok()?.status() == 200).then_some(())
    });
}

/// One answered logout: its sid, status, when it was sent and how long it took.
type Outcome = (String, u16, Instant, Duration);

fn logout(c: &reqwest::blocking::Client, gw: &Gateway, iss: &str, sid: &str) -> u16 {
    let h = ec(&claims(iss, "rp-c", "U1", Some(sid), 3600));
    let q = format!("id_token_hint={h}&post_logout_redirect_uri=https%3A%2F%2Fc.example.com%2Fout");
    c.get(gw.url(&format!("/session/end?{q}"))).send().map(|r| r.status().as_u16()).unwrap_or(0)
}

#[test]
fn logouts_during_a_sentinel_failover_are_redirects_that_stay_ended_or_503_and_passthrough_is_unaffected() {
    let up = Upstream::start();
    let mut t = topology(2);
    let gw = Gateway::start(&sentinel_opts(&up, &t, 1));
    ready(&gw);
    let iss = format!("http://127.0.0.1:{}", gw.port);
    let sids: Vec<String> = (0..4000).map(|i| format!("F{i}")).collect();
    for sid in &sids {
        let r = client().put(gw.admin(&format!("/sessions/{sid}"))).body(r#"{"sub":"U1","clients":["rp-c"]}"#).send();
        assert_eq!(r.unwrap().status(), 204);
    }
    let queue = Arc::new(Mutex::new(sids.clone()));
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let proxied: Arc<Mutex<Vec<u16>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let gw_port = gw.port;
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let (queue, outcomes, stop, gw, iss) = (queue.clone(), outcomes.clone(), stop.clone(), &gw, &iss);
            scope.spawn(move || {
                let c = client();
                while !stop.load(Ordering::Relaxed) {
                    let Some(sid) = queue.lock().unwrap().pop() else { break };
                    let at = Instant::now();
                    let status = logout(&c, gw, iss, &sid);
                    outcomes.lock().unwrap().push((sid, status, at, at.elapsed()));
                }
            });
        }
        let (proxied2, stop2) = (proxied.clone(), stop.clone());
        scope.spawn(move || {
            let c = client();
            while !stop2.load(Ordering::Relaxed) {
                let s =
                    c.get(format!("http://127.0.0.1:{gw_port}/app/x")).send().map(|r| r.status().as_u16()).unwrap_or(0);
                proxied2.lock().unwrap().push(s);
            }
        });
        eventually("logouts flow", Duration::from_secs(20), || (outcomes.lock().unwrap().len() > 100).then_some(()));
        let old = t.master.port;
        let killed = Instant::now();
        t.master.kill();
        let promoted = eventually("a replica is promoted", Duration::from_secs(30), || {
            (master_port(&t) != old && master_port(&t) != 0).then(Instant::now)
        });
        let first = eventually("a logout succeeds on the new master", Duration::from_secs(30), || {
            outcomes.lock().unwrap().iter().find(|o| o.2 > promoted && o.1 == 303).map(|o| o.2 + o.3)
        });
        eventually("more logouts after the promotion", Duration::from_secs(30), || {
            (outcomes.lock().unwrap().iter().filter(|o| o.2 > first).count() > 100).then_some(())
        });
        stop.store(true, Ordering::Relaxed);
        let out = outcomes.lock().unwrap().clone();
        let (ok, unavailable) = (out.iter().filter(|o| o.1 == 303).count(), out.iter().filter(|o| o.1 == 503).count());
        let slowest = out.iter().map(|o| o.3).max().unwrap();
        println!(
            "sentinel failover: promotion {:?} after the kill; first logout success {:?} after the promotion; \
             {ok} redirects, {unavailable} answered 503, slowest answer {slowest:?}",
            promoted - killed,
            first.saturating_duration_since(promoted)
        );
        let other: Vec<_> = out.iter().filter(|o| o.1 != 303 && o.1 != 503).collect();
        assert!(other.is_empty(), "only redirects or 503: {:?}", &other[..other.len().min(5)]);
        assert!(slowest < Duration::from_secs(5), "never a hang: slowest {slowest:?}");
        // Every redirect's session is still ended after the failover (read through the new master).
        for (sid, _, _, _) in out.iter().filter(|o| o.1 == 303) {
            let r = client().get(gw.admin(&format!("/sessions/{sid}"))).send().unwrap();
            let v: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
            assert_eq!(v["status"], "ended", "{sid} was answered 303 before or during the failover");
        }
        let p = proxied.lock().unwrap();
        assert!(p.len() > 50 && p.iter().all(|s| *s == 200), "passthrough unaffected: {} requests", p.len());
    });
    // The old master comes back empty and the sentinels make it a replica of the new one.
    let old_port = t.master.port;
    t.master = data_node(old_port, None);
    eventually("the old master rejoins as a replica", Duration::from_secs(30), || {
        // Demotion closes the old master's client connections: a reset here is "not yet".
        t.master.try_command(&["ROLE"]).ok().filter(|r| r.contains("slave")).map(|_| ())
    });
    let sid = "after-rejoin";
    let r =
        client().put(gw.admin(&format!("/sessions/{sid}"))).body(r#"{"sub":"U1","clients":["rp-c"]}"#).send().unwrap();
    assert_eq!(r.status(), 204);
    // With replica_acks 1 a logout waits for a replica; right after the rejoin the replicas may
    // still be resynchronising (a 503, fail closed, session ended but unconfirmed). Asked
    // again, the ended session is confirmed once a replica has it.
    eventually("a logout confirmed after the rejoin", Duration::from_secs(30), || {
        (logout(&client(), &gw, &iss, sid) == 303).then_some(())
    });
    drop(t.replicas);
}

#[test]
fn replica_acks_fail_closed_while_no_replica_confirms_and_recover() {
    let up = Upstream::start();
    let master = Redis::start();
    let mut replica = replica_of(master.port);
    // Online and acknowledging: a write of our own, then WAIT on the same connection says one
    // replica has it (a replica can be "online" before it acknowledges anything).
    let online = |m: &Redis| acknowledged_write(m.port);
    eventually("the replica is online", Duration::from_secs(20), || online(&master).then_some(()));
    let mut o = GatewayOpts::new(up.url());
    o.redis(Some(master.url()));
    if let Some(r) = o.config.session_store.redis.as_mut() {
        r.replica_acks = 1;
        // WAIT gets this less a margin (src/session/redis/ops.rs): room for a busy test machine.
        r.response_timeout = "1s".into();
    }
    let gw = Gateway::start(&o);
    ready(&gw);
    let iss = format!("http://127.0.0.1:{}", gw.port);
    let put = |sid: &str| put_session(&gw, sid);
    put("A1");
    let status = logout(&client(), &gw, &iss, "A1");
    assert_eq!(status, 303, "a replica confirmed: {}", master.command(&["INFO", "replication"]));
    replica.kill();
    put("A2");
    assert_eq!(logout(&client(), &gw, &iss, "A2"), 503, "no replica: fail closed");
    assert!(gw.metric("logout_gateway_store_errors_total{reason=\"replica_acks\"}") >= 1.0);
    let r = client().get(gw.admin("/readyz")).send().unwrap();
    assert_eq!(r.status(), 200, "still ready: passthrough works");
    assert!(r.text().unwrap().contains("replica_acks"), "the reason in the body");
    let _replica = replica_of(master.port);
    eventually("the replica is back online", Duration::from_secs(20), || online(&master).then_some(()));
    eventually("a logout succeeds once a replica is back", Duration::from_secs(20), || {
        (logout(&client(), &gw, &iss, "A2") == 303).then_some(())
    });
}

/// `SET` then `WAIT 1 200` on one connection: whether a replica acknowledged that write.
fn acknowledged_write(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let req = "*3\r\n$3\r\nSET\r\n$5\r\nprobe\r\n$1\r\n1\r\n*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$3\r\n200\r\n";
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.iter().filter(|&&b| b == b'\n').count() < 2 {
        match s.read(&mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return false,
        }
    }
    got == b"+OK\r\n:1\r\n"
}

#[test]
fn rediss_urls_speak_tls_and_verify_the_servers_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::tls::Ca::new("redis test CA");
    let [cert, key, ca_file] = ca.server_files(dir.path());
    let port = free_port();
    let tls_port = port.to_string();
    let extra = [
        "--port",
        "0",
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca_file,
        "--tls-auth-clients",
        "no",
    ];
    let _redis = Redis::start_tls(port, &extra);
    let up = Upstream::start();
    let mut o = GatewayOpts::new(up.url());
    o.redis(Some(format!("rediss://localhost:{port}/0")));
    // The server's CA, through the variable rustls' native roots read.
    let trusting = o.with(|o| o.env.push(("SSL_CERT_FILE".into(), ca_file.clone())));
    let gw = Gateway::start(&trusting);
    ready(&gw);
    let iss = format!("http://127.0.0.1:{}", gw.port);
    let r = client().put(gw.admin("/sessions/T1")).body(r#"{"sub":"U1","clients":["rp-c"]}"#).send().unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(logout(&client(), &gw, &iss, "T1"), 303, "a logout over TLS");
    // Without the CA the certificate is not trusted: never ready, and the reason says Redis.
    let untrusting = o.with(|o| o.env.push(("SSL_CERT_FILE".into(), "/nonexistent-ca.pem".into())));
    let gw2 = Gateway::start(&untrusting);
    let r = client().get(gw2.admin("/readyz")).send().unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().unwrap().contains("session store unavailable"));
}

#[test]
fn a_manual_failover_is_followed_on_sentinels_announcement_before_any_call_fails() {
    let up = Upstream::start();
    let t = topology(1);
    let mut o = sentinel_opts(&up, &t, 0);
    o.config.log.level = Some("info,pingora_proxy=error,logout_gateway::session=debug".into());
    let gw = Gateway::start(&o);
    ready(&gw);
    let iss = format!("http://127.0.0.1:{}", gw.port);
    let put = |sid: &str| put_session(&gw, sid);
    put("W1");
    assert_eq!(logout(&client(), &gw, &iss, "W1"), 303);
    // Subscribed (beside the follower). Sentinel has no PUBSUB command; its client list shows
    // subscribers.
    eventually("the gateway subscribed to +switch-master", Duration::from_secs(10), || {
        t.sentinels.iter().any(|s| s.command(&["CLIENT", "LIST"]).contains("cmd=subscribe")).then_some(())
    });
    // A planned failover: the old master stays up and becomes a replica (no connection drops),
    // so only the announcement can tell the gateway before a write fails with READONLY.
    let old = t.master.port;
    assert!(t.sentinels[0].command(&["SENTINEL", "FAILOVER", "mymaster"]).starts_with("+OK"));
    eventually("the announcement reached the gateway", Duration::from_secs(30), || {
        gw.log().contains("Sentinel announced a new master").then_some(())
    });
    assert_ne!(master_port(&t), old);
    eventually("the old master is a replica", Duration::from_secs(30), || {
        // Demotion closes the old master's client connections: a reset here is "not yet".
        t.master.try_command(&["ROLE"]).ok().filter(|r| r.contains("slave")).map(|_| ())
    });
    let before = gw.log().len();
    put("W2");
    assert_eq!(logout(&client(), &gw, &iss, "W2"), 303);
    let after = &gw.log()[before..];
    assert!(!after.contains("one retry"), "no call went to the old master first:\n{after}");
    assert!(gw.log().contains("redis master changed (Sentinel): moving there"), "{}", gw.log());
}

#[test]
fn sentinels_and_data_nodes_spoken_to_over_tls_with_rediss_nodes_through_a_failover() {
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::tls::Ca::new("sentinel test CA");
    let (ca_file, tls) = ca.redis_node_tls(dir.path());
    let tls: Vec<(&str, &str)> = tls.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let data_node = |port: u16, master: Option<u16>| {
        let tls_port = port.to_string();
        let mut args: Vec<String> = vec!["--port".into(), "0".into(), "--tls-port".into(), tls_port];
        args.extend(tls.iter().flat_map(|(k, v)| [format!("--{k}"), v.to_string()]));
        if let Some(m) = master {
            args.extend(["--replicaof".into(), "127.0.0.1".into(), m.to_string()]);
        }
        Redis::start_tls(port, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let master = data_node(free_port(), None);
    let _replica = data_node(free_port(), Some(master.port));
    let sentinels: Vec<Redis> = (0..3).map(|_| Redis::sentinel_tls(free_port(), master.port, &tls)).collect();
    let cli = |port: u16, args: &[&str]| crate::harness::tls_cli(&ca_file, port, args);
    eventually("the TLS sentinels know the replica and each other", Duration::from_secs(30), || {
        sentinels
            .iter()
            .all(|s| {
                let replicas = cli(s.port, &["SENTINEL", "REPLICAS", "mymaster"]);
                let others = cli(s.port, &["SENTINEL", "SENTINELS", "mymaster"]);
                replicas.contains("master-link-status\nok") && others.matches("\nrunid\n").count() == 2
            })
            .then_some(())
    });

    let up = Upstream::start();
    let mut o = GatewayOpts::new(up.url());
    o.config.session_store.backend = "redis".into();
    let nodes = sentinels.iter().map(|s| format!("rediss://127.0.0.1:{}", s.port)).collect();
    o.config.session_store.redis = Some(sentinel_store(nodes, None, None));
    o.env.push(("SSL_CERT_FILE".into(), ca_file.clone()));
    let gw = Gateway::start(&o);
    ready(&gw);
    let iss = format!("http://127.0.0.1:{}", gw.port);
    put_session(&gw, "S1");
    assert_eq!(logout(&client(), &gw, &iss, "S1"), 303, "{}", gw.log());
    eventually("subscribed over TLS", Duration::from_secs(10), || {
        sentinels.iter().any(|s| cli(s.port, &["CLIENT", "LIST"]).contains("cmd=subscribe")).then_some(())
    });
    assert!(cli(sentinels[0].port, &["SENTINEL", "FAILOVER", "mymaster"]).contains("OK"));
    eventually("the announcement reached the gateway", Duration::from_secs(30), || {
        gw.log().contains("Sentinel announced a new master").then_some(())
    });
    put_session(&gw, "S2");
    eventually("a logout on the new master", Duration::from_secs(20), || {
        (logout(&client(), &gw, &iss, "S2") == 303).then_some(())
    });
    assert!(gw.log().contains("redis master changed (Sentinel): moving there"), "{}", gw.log());
}
