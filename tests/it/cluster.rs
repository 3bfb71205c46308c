//! Redis Cluster with real processes: three masters (no replicas), built with `redis-cli
//! --cluster create`. The whole flow (learning, logout with and without a hint, refusal at the
//! edge, back-channel delivery) runs with the gateway's keys spread over the three masters, and a
//! slot holding live sessions moves to another master (first key by key, `ASK`, then for good,
//! `MOVED`) while logouts go on.

use std::process::Command;
use std::time::Duration;

use crate::backchannel::posts;
use crate::harness::{client, eventually, free_port, tls_cli, RawCluster, RawRedis, Redis};
use crate::learning::{code_flow, confirm_with, prompt_none_fails, token, wait_for_discovery};
use crate::logout::{env_opts, Env};
use crate::tokens::hint;
use crate::upstream::Upstream;

/// Three masters that own every slot between them.
struct Cluster {
    nodes: Vec<Redis>,
}

impl Cluster {
    fn start() -> Cluster {
        Self::with_replicas(0)
    }

    /// Three masters with `replicas` replicas each.
    fn with_replicas(replicas: usize) -> Cluster {
        let nodes: Vec<Redis> = (0..3 * (1 + replicas))
            .map(|_| {
                let bus = free_port().to_string();
                let args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"];
                Redis::start_with(
                    free_port(),
                    &[&args[..], &["--cluster-node-timeout", "2000", "--cluster-port", &bus]].concat(),
                )
            })
            .collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = Command::new("timeout")
            .args(["60", "redis-cli", "--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .unwrap();
        assert!(out.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&out.stdout));
        let c = Cluster { nodes };
        c.settled();
        c
    }

    /// Every node says the cluster is ok and agrees on who owns each slot.
    fn settled(&self) {
        eventually("the cluster is ok on every node", Duration::from_secs(30), || {
            let slots: Vec<String> = self.nodes.iter().map(|n| n.command(&["CLUSTER", "SLOTS"])).collect();
            let ok = self.nodes.iter().all(|n| n.command(&["CLUSTER", "INFO"]).contains("cluster_state:ok"));
            (ok && slots.windows(2).all(|w| sorted_lines(&w[0]) == sorted_lines(&w[1]))).then_some(())
        });
    }

    fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect()
    }

    fn id(&self, node: usize) -> String {
        bulk(&self.nodes[node].command(&["CLUSTER", "MYID"]))
    }

    /// The node that owns `slot` (by asking one of them about a key there).
    fn owner(&self, slot: u16) -> usize {
        let reply = self.nodes[0].command(&["CLUSTER", "SLOTS"]);
        // Each range: *N, :start, :end, then the master's *3 $ip $port $id.
        let ints: Vec<i64> = reply.lines().filter_map(|l| l.strip_prefix(':')?.parse().ok()).collect();
        let range =
            ints.chunks(3).find(|r| r.len() == 3 && (r[0]..=r[1]).contains(&(slot as i64))).expect("slot owned");
        let port = range[2] as u16;
        self.nodes.iter().position(|n| n.port == port).expect("a node of ours")
    }

    /// Keys each master holds.
    fn sizes(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.command(&["DBSIZE"]).trim().trim_start_matches(':').parse().unwrap()).collect()
    }
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut l: Vec<String> = s.lines().map(String::from).collect();
    l.sort();
    l
}

/// The text of a `$n\r\ntext\r\n` reply.
fn bulk(reply: &str) -> String {
    reply.lines().nth(1).unwrap_or_default().to_string()
}

/// Redis Cluster's slot of a key whose hash tag is `tag` (CRC16/XMODEM mod 16384).
fn slot_of(tag: &str) -> u16 {
    let mut crc: u16 = 0;
    for &b in tag.as_bytes() {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16384
}

/// A gateway on `cluster`; rp-c's back-channel URI points at `rp`.
fn env_on(cluster: &Cluster, rp: &Upstream) -> Env {
    let e = env_opts(None, |o| {
        o.config.session_store.backend = "redis".into();
        o.config.session_store.redis = Some(RawRedis {
            url: None,
            cluster: Some(RawCluster { nodes: cluster.addrs()[..2].to_vec(), password: None }),
            // Roomy: a loaded CI machine must not turn a slow reply into a store error here.
            connect_timeout: "1s".into(),
            response_timeout: "2s".into(),
            ..RawRedis::new("")
        });
        let c = o.config.clients.get_mut("rp-c").unwrap();
        c.backchannel_logout_uri = Some(format!("http://127.0.0.1:{}/bc", rp.addr.port()));
        let b = &mut o.config.backchannel;
        (b.retry_initial, b.poll_interval, b.timeout) = ("200ms".into(), "50ms".into(), "1s".into());
    });
    eventually("readyz", Duration::from_secs(20), || {
        (client().get(e.gw.admin("/readyz")).send().ok()?.status() == 200).then_some(())
    });
    wait_for_discovery(&e);
    e
}

fn logout_with_hint(e: &Env, hint: &str) -> u16 {
    e.get(&[("id_token_hint", hint), ("post_logout_redirect_uri", "https://c.example.com/out")]).status().as_u16()
}

fn put(e: &Env, sid: &str) {
    let r = client().put(e.gw.admin(&format!("/sessions/{sid}"))).body(r#"{"sub":"U1","clients":["rp-c"]}"#);
    assert_eq!(r.send().unwrap().status(), 204);
}

#[test]
fn the_whole_flow_works_with_keys_spread_over_three_masters() {
    let cluster = Cluster::start();
    assert_eq!(slot_of("sid-k1"), {
        let r = cluster.nodes[0].command(&["CLUSTER", "KEYSLOT", "lgw:s:{sid-k1}"]);
        r.trim().trim_start_matches(':').parse::<u16>().unwrap()
    });
    let rp = Upstream::start();
    let e = env_on(&cluster, &rp);
    let c = client();

    // Learning: token responses (two sessions, so keys land in several slots) and a browser's
    // code flow with the OP cookie.
    let r = token(&e, "k1", "");
    let id_token: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    let id_token = id_token["id_token"].as_str().unwrap().to_string();
    assert_eq!(token(&e, "k2", "").status(), 200);
    for sid in ["sid-k1", "sid-k2"] {
        eventually("learned", Duration::from_secs(10), || (e.status(sid).as_deref() == Some("active")).then_some(()));
    }
    let cookie = code_flow(&e, "alice", "k3");
    eventually("learned", Duration::from_secs(10), || (e.status("sid-k3").as_deref() == Some("active")).then_some(()));
    assert_eq!(c.get(e.gw.url("/userinfo")).bearer_auth("at-k1").send().unwrap().status(), 200);

    // Logout with a hint: redirect, tokens refused at the edge, a back-channel notice delivered.
    assert_eq!(logout_with_hint(&e, &id_token), 303);
    assert_eq!(e.status("sid-k1").as_deref(), Some("ended"));
    assert_eq!(c.get(e.gw.url("/userinfo")).bearer_auth("at-k1").send().unwrap().status(), 401);
    let refresh = c
        .post(e.gw.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=refresh_token&refresh_token=rt-k1&client_id=rp-c")
        .send()
        .unwrap();
    assert_eq!(refresh.status(), 400);
    assert_eq!(c.get(e.gw.url("/userinfo")).bearer_auth("at-k2").send().unwrap().status(), 200, "another session");
    eventually("the back-channel notice", Duration::from_secs(15), || (!posts(&rp, "/bc").is_empty()).then_some(()));

    // Logout without a hint: the browser confirms; its OP cookie is refused afterwards.
    assert!(!prompt_none_fails(&e, &cookie));
    let page = c.get(e.gw.url("/session/end")).header("cookie", &cookie).send().unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(confirm_with(&e, page, &cookie).status(), 200);
    assert_eq!(e.status("sid-k3").as_deref(), Some("ended"));
    assert!(prompt_none_fails(&e, &cookie), "the ended session's OP cookie is refused");

    // The keys really are spread: each session lives on the master of its own slot, and those
    // are not all one master.
    let owners: Vec<usize> = ["sid-k1", "sid-k2", "sid-k3"].map(|sid| cluster.owner(slot_of(sid))).to_vec();
    for (sid, owner) in ["sid-k1", "sid-k2", "sid-k3"].iter().zip(&owners) {
        let there = cluster.nodes[*owner].command(&["EXISTS", &format!("lgw:s:{{{sid}}}")]);
        assert_eq!(there.trim(), ":1", "{sid} on the master of its slot");
    }
    assert!(owners.iter().any(|o| *o != owners[0]), "sessions on more than one master: {owners:?}");
    assert!(cluster.sizes().iter().filter(|n| **n > 0).count() >= 2, "{:?}", cluster.sizes());
    assert!(e.gw.metric("logout_gateway_store_errors_total{reason=\"redis\"}") == 0.0, "{}", e.gw.log());
}

#[test]
fn a_slot_moves_to_another_master_while_its_sessions_live_and_logouts_follow_it() {
    let cluster = Cluster::start();
    let rp = Upstream::start();
    let e = env_on(&cluster, &rp);
    // Three sessions in one slot (found by the slot function, checked against Redis above).
    let slot = slot_of("M0");
    let sids: Vec<String> = (0..200_000).map(|i| format!("M{i}")).filter(|s| slot_of(s) == slot).take(3).collect();
    assert_eq!(sids.len(), 3);
    for sid in &sids {
        put(&e, sid);
    }
    let from = cluster.owner(slot);
    let to = (from + 1) % 3;
    let (from_id, to_id) = (cluster.id(from), cluster.id(to));
    let (src, dst) = (&cluster.nodes[from], &cluster.nodes[to]);
    assert!(dst.command(&["CLUSTER", "SETSLOT", &slot.to_string(), "IMPORTING", &from_id]).starts_with("+OK"));
    assert!(src.command(&["CLUSTER", "SETSLOT", &slot.to_string(), "MIGRATING", &to_id]).starts_with("+OK"));

    // Half-way: the first session's key has moved, the others have not (the source answers
    // ASK for the moved one).
    let key = |sid: &str| format!("lgw:s:{{{sid}}}");
    let port = dst.port.to_string();
    let moved = src.command(&["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS", &key(&sids[0])]);
    assert!(moved.starts_with("+OK"), "MIGRATE: {moved}");
    let iss = &e.iss;
    assert_eq!(logout_with_hint(&e, &hint(iss, "rp-c", "U1", &sids[0])), 303, "{}", e.gw.log());
    assert_eq!(logout_with_hint(&e, &hint(iss, "rp-c", "U1", &sids[1])), 303, "{}", e.gw.log());
    assert_eq!(e.status(&sids[0]).as_deref(), Some("ended"));
    assert_eq!(e.status(&sids[1]).as_deref(), Some("ended"));
    // The unmoved one ended on the source (the moved one is checked once the slot settles).
    let st = |n: &Redis, sid: &str| bulk(&n.command(&["HGET", &key(sid), "st"]));
    assert_eq!(st(src, &sids[1]), "e");

    // The rest of the slot moves and every node learns the new owner (MOVED from now on).
    let rest = src.command(&["CLUSTER", "GETKEYSINSLOT", &slot.to_string(), "100"]);
    let keys: Vec<&str> = rest.lines().filter(|l| !l.starts_with(['*', '$'])).collect();
    if !keys.is_empty() {
        let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
        args.extend(keys.iter().copied());
        assert!(src.command(&args).starts_with("+OK"));
    }
    for n in &cluster.nodes {
        assert!(n.command(&["CLUSTER", "SETSLOT", &slot.to_string(), "NODE", &to_id]).starts_with("+OK"));
    }
    cluster.settled();
    assert_eq!(cluster.owner(slot), to);
    assert_eq!(logout_with_hint(&e, &hint(iss, "rp-c", "U1", &sids[2])), 303, "{}", e.gw.log());
    for sid in &sids {
        assert_eq!(e.status(sid).as_deref(), Some("ended"), "{sid} ended, read where its slot is now");
        assert_eq!(st(dst, sid), "e", "{sid} on the slot's new master");
    }
    // A new session in the moved slot: learned and logged out there.
    let late = (200_000..400_000).map(|i| format!("M{i}")).find(|s| slot_of(s) == slot).unwrap();
    put(&e, &late);
    assert_eq!(logout_with_hint(&e, &hint(iss, "rp-c", "U1", &late)), 303);
    let on_dst: u64 = dst.command(&["EXISTS", &key(&late)]).trim().trim_start_matches(':').parse().unwrap();
    assert_eq!(on_dst, 1, "the new session lives on the slot's new master");
}

#[test]
fn a_cluster_spoken_to_over_tls_with_rediss_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::tls::Ca::new("cluster test CA");
    let (ca_file, tls) = ca.redis_node_tls(dir.path());
    let nodes: Vec<Redis> = (0..3)
        .map(|_| {
            let (port, bus) = (free_port(), free_port().to_string());
            let tls_port = port.to_string();
            let mut args = vec!["--port", "0", "--tls-port", &tls_port, "--tls-cluster", "yes"];
            let flags: Vec<String> = tls.iter().map(|(k, _)| format!("--{k}")).collect();
            for ((_, v), flag) in tls.iter().zip(&flags) {
                args.extend([flag.as_str(), v.as_str()]);
            }
            args.extend(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]);
            args.extend(["--cluster-node-timeout", "2000", "--cluster-port", &bus]);
            Redis::start_tls(port, &args)
        })
        .collect();
    let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
    // (Bounded: a bus that cannot connect leaves `create` waiting for the join forever.)
    let out = Command::new("timeout")
        .args(["60", "redis-cli", "--tls", "--cacert", &ca_file, "--cluster", "create"])
        .args(&addrs)
        .arg("--cluster-yes")
        .output()
        .unwrap();
    assert!(out.status.success(), "create: {}", String::from_utf8_lossy(&out.stdout));
    eventually("the TLS cluster is ok", Duration::from_secs(30), || {
        nodes.iter().all(|n| tls_cli(&ca_file, n.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")).then_some(())
    });
    let up = Upstream::start();
    let start = |ca: &str| {
        let mut o = crate::harness::GatewayOpts::new(up.url());
        o.config.session_store.backend = "redis".into();
        let nodes = addrs.iter().map(|a| format!("rediss://{a}")).collect();
        o.config.session_store.redis =
            Some(RawRedis { url: None, cluster: Some(RawCluster { nodes, password: None }), ..RawRedis::new("") });
        o.env.push(("SSL_CERT_FILE".into(), ca.to_string()));
        crate::harness::Gateway::start(&o)
    };
    let gw = start(&ca_file);
    eventually("readyz over TLS", Duration::from_secs(20), || {
        (client().get(gw.admin("/readyz")).send().ok()?.status() == 200).then_some(())
    });
    let iss = format!("http://127.0.0.1:{}", gw.port);
    for sid in ["T1", "T2", "T3", "T4"] {
        let r = client().put(gw.admin(&format!("/sessions/{sid}"))).body(r#"{"sub":"U1","clients":["rp-c"]}"#);
        assert_eq!(r.send().unwrap().status(), 204);
        let q = format!(
            "id_token_hint={}&post_logout_redirect_uri=https%3A%2F%2Fc.example.com%2Fout",
            hint(&iss, "rp-c", "U1", sid)
        );
        assert_eq!(client().get(gw.url(&format!("/session/end?{q}"))).send().unwrap().status(), 303);
    }
    // Without the CA the nodes' certificates are not trusted: never ready.
    let untrusting = start("/nonexistent-ca.pem");
    let r = client().get(untrusting.admin("/readyz")).send().unwrap();
    assert_eq!(r.status(), 503);
}

/// A gateway on `cluster` with `replica_acks`; what a logout of a fresh session answers.
fn logout_with_acks(cluster: &Cluster, acks: u32) -> (u16, crate::harness::Gateway) {
    let up = Upstream::start();
    let mut o = crate::harness::GatewayOpts::new(up.url());
    o.config.session_store.backend = "redis".into();
    let cfg = RawCluster { nodes: cluster.addrs(), password: None };
    let redis = RawRedis { url: None, cluster: Some(cfg), replica_acks: acks, ..RawRedis::new("") };
    // Generous: on a loaded machine a replica's acknowledgement can take longer than 400 ms.
    o.config.session_store.redis = Some(RawRedis { response_timeout: "2s".into(), ..redis });
    let gw = crate::harness::Gateway::start(&o);
    eventually("readyz", Duration::from_secs(20), || {
        (client().get(gw.admin("/readyz")).send().ok()?.status() == 200).then_some(())
    });
    let r = client().put(gw.admin("/sessions/N1")).body(r#"{"sub":"U1","clients":["rp-c"]}"#).send().unwrap();
    assert_eq!(r.status(), 204);
    let iss = format!("http://127.0.0.1:{}", gw.port);
    let h = hint(&iss, "rp-c", "U1", "N1");
    let q = format!("id_token_hint={h}&post_logout_redirect_uri=https%3A%2F%2Fc.example.com%2Fout");
    (client().get(gw.url(&format!("/session/end?{q}"))).send().unwrap().status().as_u16(), gw)
}

#[test]
fn replica_acks_waits_on_every_master_of_a_cluster() {
    // Masters without replicas: WAIT 1 cannot be met, so the logout is never claimed done.
    let (status, gw) = logout_with_acks(&Cluster::start(), 1);
    assert_eq!(status, 503);
    assert!(gw.metric("logout_gateway_store_errors_total{reason=\"replica_acks\"}") >= 1.0);
    // A replica behind every master: acknowledged.
    let replicated = Cluster::with_replicas(1);
    eventually("every replica in sync", Duration::from_secs(30), || {
        let info = |n: &Redis| n.command(&["INFO", "replication"]);
        let links = replicated.nodes.iter().filter(|n| info(n).contains("master_link_status:up"));
        (links.count() == 3).then_some(())
    });
    let (status, gw) = logout_with_acks(&replicated, 1);
    assert_eq!(status, 303, "{}", gw.log());
}
