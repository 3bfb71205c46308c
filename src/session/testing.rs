//! Test support for the store's tests: a throwaway redis-server.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A throwaway redis-server on a free loopback port.
pub(super) struct Server(Child, pub u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        for file in [format!("lgw-unit-{}.rdb", self.1), format!("lgw-unit-nodes-{}.conf", self.1)] {
            let _ = std::fs::remove_file(std::env::temp_dir().join(file));
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub(super) fn redis_server() -> Server {
    redis_server_with(free_port(), &[])
}

fn redis_server_with(port: u16, extra: &[&str]) -> Server {
    let child = Command::new("redis-server")
        // Its own directory: never load an RDB another test's replica left behind.
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--dir", &std::env::temp_dir().display().to_string(), "--dbfilename", &format!("lgw-unit-{port}.rdb")])
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server must be installed");
    let server = Server(child, port);
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{port}/0")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.get_connection().is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// Three redis-servers made one Redis Cluster (every slot owned, every node agreeing).
pub(super) fn redis_cluster() -> Vec<Server> {
    let nodes: Vec<Server> = (0..3)
        .map(|_| {
            let port = free_port();
            let (conf, bus) = (format!("lgw-unit-nodes-{port}.conf"), free_port().to_string());
            let args = ["--cluster-enabled", "yes", "--cluster-config-file", &conf, "--cluster-port", &bus];
            redis_server_with(port, &args)
        })
        .collect();
    let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.1)).collect();
    let out = Command::new("timeout")
        .args(["60", "redis-cli", "--cluster", "create"])
        .args(&addrs)
        .arg("--cluster-yes")
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli must be installed");
    assert!(out.success(), "redis-cli --cluster create failed");
    let deadline = Instant::now() + Duration::from_secs(30);
    let ok = |n: &Server| {
        let c = ::redis::Client::open(format!("redis://127.0.0.1:{}/0", n.1)).ok()?;
        let info: String = ::redis::cmd("CLUSTER").arg("INFO").query(&mut c.get_connection().ok()?).ok()?;
        Some(info.contains("cluster_state:ok"))
    };
    while !nodes.iter().all(|n| ok(n) == Some(true)) {
        assert!(Instant::now() < deadline, "the cluster did not settle");
        std::thread::sleep(Duration::from_millis(50));
    }
    nodes
}
