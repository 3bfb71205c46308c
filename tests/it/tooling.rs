//! The commands and metrics deployment tooling relies on: `schema` (editors, CI's schema
//! validation), `health` (the container HEALTHCHECK), `logout_gateway_ready` and the upstream
//! keys' refresh metrics (the alert rules in deploy/prometheus).

use std::process::Command;
use std::time::Duration;

use crate::harness::{binary, eventually, free_port, Gateway, GatewayOpts, Redis};
use crate::upstream::Upstream;

fn schema() -> serde_json::Value {
    let out = Command::new(binary()).arg("schema").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("schema prints JSON")
}

/// Every object the schema describes, with its path (`$defs/RawAdmin`, `properties/...`).
fn objects<'a>(v: &'a serde_json::Value, path: String, out: &mut Vec<(String, &'a serde_json::Value)>) {
    match v {
        serde_json::Value::Object(m) => {
            if m.get("type") == Some(&serde_json::json!("object")) && m.contains_key("properties") {
                out.push((path.clone(), v));
            }
            for (k, child) in m {
                objects(child, format!("{path}/{k}"), out);
            }
        }
        serde_json::Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| objects(c, format!("{path}/{i}"), out)),
        _ => {}
    }
}

#[test]
fn schema_is_the_shipped_file_and_refuses_unknown_keys_like_check() {
    let s = schema();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(s["required"], serde_json::json!(["upstream", "issuer"]));
    // Every section with keys refuses unknown ones, as the config loader does.
    let mut all = Vec::new();
    objects(&s, String::new(), &mut all);
    assert!(all.len() >= 20, "{} object schemas", all.len());
    for (path, o) in &all {
        assert_eq!(o["additionalProperties"], serde_json::json!(false), "{path} accepts unknown keys");
    }
    // Sections the contract names are there, with their defaults.
    assert_eq!(s["$defs"]["RawAdmin"]["properties"]["listen"]["default"], "127.0.0.1:9090");
    for key in ["url", "sentinel", "cluster", "replica_acks"] {
        assert!(s["$defs"]["RawRedis"]["properties"].get(key).is_some(), "session_store.redis.{key}");
    }
    // The copy for editors in docs/ is exactly what the binary prints.
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/proxy.schema.json")).unwrap();
    let printed = Command::new(binary()).arg("schema").output().unwrap().stdout;
    assert_eq!(shipped, String::from_utf8(printed).unwrap(), "run: logout-gateway schema > docs/proxy.schema.json");
}

/// A series' value; the series must be exposed (a missing one is not read as zero).
fn present(gw: &Gateway, series: &str) -> f64 {
    let found = gw.metrics().into_iter().find(|(s, _)| s == series);
    found.unwrap_or_else(|| panic!("{series} is not exposed")).1
}

fn health(admin: u16, path: &str) -> (i32, String) {
    let out = Command::new(binary())
        .args(["health", "--admin", &format!("127.0.0.1:{admin}"), "--path", path, "--timeout", "2"])
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn health_command_says_what_the_admin_listener_says() {
    let up = Upstream::start();
    let redis_port = free_port();
    let mut opts = GatewayOpts::new(up.url());
    opts.redis(Some(format!("redis://127.0.0.1:{redis_port}/0")));
    let gw = Gateway::start(&opts);
    // Serving, but not ready while Redis is down.
    assert_eq!(health(gw.admin_port, "/healthz"), (0, String::new()));
    let (code, err) = health(gw.admin_port, "/readyz");
    assert_eq!(code, 1);
    assert!(err.contains("answered HTTP/1.1 503"), "{err}");
    assert_eq!(present(&gw, "logout_gateway_ready"), 0.0);
    assert_eq!(present(&gw, "logout_gateway_session_store_up"), 0.0);
    let _redis = Redis::start_on(redis_port);
    eventually("ready", Duration::from_secs(10), || (health(gw.admin_port, "/readyz").0 == 0).then_some(()));
    assert_eq!(present(&gw, "logout_gateway_ready"), 1.0);
    assert_eq!(present(&gw, "logout_gateway_session_store_up"), 1.0);
    // Nothing listening, an unknown path, a path that is not one.
    let (code, err) = health(free_port(), "/healthz");
    assert_eq!(code, 1);
    assert!(err.contains("connect"), "{err}");
    let (code, err) = health(gw.admin_port, "/nope");
    assert_eq!((code, err.contains("404")), (1, true), "{err}");
    // A listener that accepts and never answers: the whole exchange stays within --timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (code, err) = health(silent.local_addr().unwrap().port(), "/healthz");
    assert_eq!((code, err.contains("no answer within 2s")), (1, true), "{err}");
    let (code, err) = health(gw.admin_port, "/healthz HTTP/1.0\r\nX: y");
    assert_eq!((code, err.contains("must start with /")), (1, true), "{err}");
}

#[test]
fn upstream_key_fetches_are_counted_by_result_with_the_time_of_the_last_success() {
    // An OP with discovery and keys: fetched, counted ok, timestamped.
    let e = crate::logout::env();
    crate::learning::wait_for_discovery(&e);
    let ok = e.gw.metric("logout_gateway_upstream_keys_refreshes_total{result=\"ok\"}");
    assert!(ok >= 1.0, "{ok}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let last = e.gw.metric("logout_gateway_upstream_keys_last_success_timestamp_seconds");
    assert!(now - last < 60.0 && last <= now + 1.0, "last success {last}, now {now}");
    // An upstream that is not there: every attempt fails, and nothing claims a success.
    let gw = Gateway::start(&GatewayOpts::new(format!("http://127.0.0.1:{}", free_port())));
    eventually("a failed key fetch", Duration::from_secs(10), || {
        (gw.metric("logout_gateway_upstream_keys_refreshes_total{result=\"failed\"}") >= 1.0).then_some(())
    });
    assert_eq!(present(&gw, "logout_gateway_upstream_keys_refreshes_total{result=\"ok\"}"), 0.0);
    assert_eq!(present(&gw, "logout_gateway_upstream_keys_last_success_timestamp_seconds"), 0.0);
}
