//! The admin listener: health, readiness against a real Redis, metrics that parse and count.

use std::time::Duration;

use crate::harness::{client, eventually, free_port, Gateway, GatewayOpts, Redis};
use crate::upstream::Upstream;

fn readyz(gw: &Gateway) -> (u16, String) {
    let r = client().get(gw.admin("/readyz")).send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn readyz_follows_redis_and_passthrough_never_depends_on_it() {
    let up = Upstream::start();
    let redis_port = free_port();
    let mut opts = GatewayOpts::new(up.url());
    opts.redis(Some(format!("redis://127.0.0.1:{redis_port}/0")));

    // The gateway starts while Redis is down.
    let gw = Gateway::start(&opts);
    let (status, body) = readyz(&gw);
    assert_eq!(status, 503);
    assert!(body.contains("session store unavailable"), "{body}");
    // Passthrough is untouched by the outage.
    for _ in 0..5 {
        assert_eq!(client().get(gw.url("/authorize")).send().unwrap().status(), 200);
    }
    assert_eq!(client().get(gw.admin("/healthz")).send().unwrap().status(), 200);

    // Redis comes up: the gateway notices by itself.
    let redis = Redis::start_on(redis_port);
    eventually("readyz 200 after Redis starts", Duration::from_secs(10), || (readyz(&gw).0 == 200).then_some(()));

    // Redis dies again: not ready, passthrough still fine; it comes back: ready again.
    drop(redis);
    eventually("readyz 503 after Redis stops", Duration::from_secs(10), || (readyz(&gw).0 == 503).then_some(()));
    assert_eq!(client().get(gw.url("/userinfo")).send().unwrap().status(), 200);
    let _redis = Redis::start_on(redis_port);
    eventually("readyz 200 after Redis returns", Duration::from_secs(10), || (readyz(&gw).0 == 200).then_some(()));
    let ping_ops = gw.metric("logout_gateway_session_store_duration_seconds_count{operation=\"ping\"}");
    assert!(ping_ops >= 4.0, "store operations are timed: {ping_ops}");
}

#[test]
fn redis_store_is_ready_when_redis_is_up() {
    let up = Upstream::start();
    let redis = Redis::start();
    let mut opts = GatewayOpts::new(up.url());
    opts.redis(Some(redis.url()));
    let gw = Gateway::start(&opts);
    // The revocation set loads from Redis right after start ("not loaded yet" until then).
    let r = crate::harness::eventually("ready", std::time::Duration::from_secs(10), || {
        let r = readyz(&gw);
        (r.0 == 200).then_some(r)
    });
    assert_eq!(r, (200, "ready\n".to_string()));
}

#[test]
fn memory_store_is_ready_at_once() {
    let up = Upstream::start();
    let gw = Gateway::start(&GatewayOpts::new(up.url()));
    assert_eq!(readyz(&gw), (200, "ready\n".to_string()));
}

#[test]
fn metrics_parse_and_count_proxied_requests_by_status_class() {
    let up = Upstream::start();
    let gw = Gateway::start(&GatewayOpts::new(up.url()));
    let r = client().get(gw.admin("/metrics")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let before = gw.metrics();
    for name in [
        "logout_gateway_logouts_total{outcome=\"redirect\"}",
        "logout_gateway_logouts_total{outcome=\"unavailable\"}",
        "logout_gateway_proxied_requests_total{status_class=\"2xx\"}",
        "logout_gateway_request_duration_seconds_count",
        "logout_gateway_frontchannel_iframes_total",
    ] {
        assert!(before.iter().any(|(s, _)| s == name), "{name} missing from /metrics");
    }
    let c = client();
    for _ in 0..3 {
        c.get(gw.url("/ok")).send().unwrap();
    }
    c.get(gw.url("/status/404")).send().unwrap();
    c.get(gw.url("/status/503")).send().unwrap();
    c.get(gw.url("/status/302")).send().unwrap();
    // Counted in the logging phase, which runs after each answer went out.
    eventually("six answers counted", Duration::from_secs(5), || {
        (gw.metric("logout_gateway_request_duration_seconds_count") == 6.0).then_some(())
    });
    assert_eq!(gw.metric("logout_gateway_proxied_requests_total{status_class=\"2xx\"}"), 3.0);
    assert_eq!(gw.metric("logout_gateway_proxied_requests_total{status_class=\"3xx\"}"), 1.0);
    assert_eq!(gw.metric("logout_gateway_proxied_requests_total{status_class=\"4xx\"}"), 1.0);
    assert_eq!(gw.metric("logout_gateway_proxied_requests_total{status_class=\"5xx\"}"), 1.0);
    assert_eq!(gw.metric("logout_gateway_request_duration_seconds_count"), 6.0);
    assert_eq!(gw.metric("logout_gateway_request_duration_seconds_bucket{le=\"+Inf\"}"), 6.0);
}

#[test]
fn build_info_names_the_release_and_the_commit_of_version() {
    let up = Upstream::start();
    let gw = Gateway::start(&GatewayOpts::new(up.url()));
    let out = std::process::Command::new(crate::harness::binary()).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&out.stdout);
    let commit = version.split("(commit ").nth(1).unwrap().trim_end().trim_end_matches(')').to_string();
    let series = format!("logout_gateway_build_info{{commit=\"{commit}\",version=\"{}\"}}", env!("CARGO_PKG_VERSION"));
    assert_eq!(gw.metric(&series), 1.0, "{series}");
}

#[test]
fn admin_answers_404_and_405_for_what_it_does_not_serve() {
    let up = Upstream::start();
    let gw = Gateway::start(&GatewayOpts::new(up.url()));
    assert_eq!(client().get(gw.admin("/nope")).send().unwrap().status(), 404);
    let r = client().post(gw.admin("/metrics")).send().unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
}

#[test]
fn sigterm_shuts_down_cleanly_with_exit_0() {
    let up = Upstream::start();
    let mut gw = Gateway::start(&GatewayOpts::new(up.url()));
    assert_eq!(client().get(gw.url("/x")).send().unwrap().status(), 200);
    // grace_period 1s + shutdown_timeout 1s in the generated config: well within 15 s.
    let status = gw.stop_with(libc::SIGTERM, Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
}
