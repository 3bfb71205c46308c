//! The command line of docs/contract.md: check, run with a bad config, --version, --help.

use std::process::Command;

use crate::harness::{binary, rp, GatewayOpts, RawClient, RawConfig};

fn check(yaml: &str, envs: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out =
        Command::new(binary()).args(["check", "--config"]).arg(&path).envs(envs.iter().copied()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A good config on Redis, changed by `f`.
fn good_with(f: impl FnOnce(&mut RawConfig)) -> String {
    let mut o = GatewayOpts::new("http://127.0.0.1:3000");
    o.redis(Some("redis://127.0.0.1:6379/0".into()));
    f(&mut o.config);
    o.yaml(8080, 9090)
}

fn good() -> String {
    good_with(|_| {})
}

#[test]
fn check_accepts_a_good_config() {
    let (code, out, err) = check(&good(), &[]);
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{err}");
}

#[test]
fn check_lists_every_problem_with_key_path_and_line_and_exits_64() {
    let bad = good_with(|c| {
        let rp1 = RawClient {
            default_post_logout_redirect_uri: Some("https://rp1.example/other".into()),
            frontchannel_logout_uri: Some("/fc".into()),
            ..rp(&["javascript:alert(1)", "https://rp1.example/bye#x"])
        };
        c.clients = [("rp1".to_string(), rp1)].into();
        c.upstream.connect_timeout = "soon".into();
    });
    // What no typed config can say: a bad listen address (set at start) and an unknown key.
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&bad).unwrap();
    doc["listen"] = "nowhere".into();
    doc["clients"]["rp1"]["surprise"] = true.into();
    let yaml = serde_yaml_ng::to_string(&doc).unwrap();
    let (code, out, err) = check(&yaml, &[]);
    assert_eq!(code, 64, "{out}{err}");
    assert_eq!(out, "");
    for expected in [
        "listen: must be an IP address and port",
        "upstream.connect_timeout: not a duration",
        "clients.rp1.post_logout_redirect_uris[0]: scheme \"javascript\" is not allowed",
        "clients.rp1.post_logout_redirect_uris[1]: must not contain a fragment",
        "clients.rp1.default_post_logout_redirect_uri: must be one of post_logout_redirect_uris",
        "clients.rp1.frontchannel_logout_uri: must be an absolute URL",
        "clients.rp1.surprise: unknown field",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    // Every line names the file and a line number.
    for line in err.lines() {
        let rest = line.split_once("proxy.yaml:").map(|x| x.1).unwrap_or_else(|| panic!("no file in {line}"));
        assert!(rest.split(':').next().unwrap().parse::<usize>().is_ok(), "no line number in {line}");
    }
}

#[test]
fn env_interpolation_and_unset_variables() {
    let yaml = good_with(|c| c.admin.token = Some("${LGW_TEST_TOKEN}".into()));
    let (code, out, err) = check(&yaml, &[("LGW_TEST_TOKEN", "0123456789abcdef0123")]);
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{err}");
    let (code, _, err) = check(&yaml, &[]);
    assert_eq!(code, 64);
    assert!(err.contains("admin.token: environment variable LGW_TEST_TOKEN is not set"), "{err}");
}

#[test]
fn secrets_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("admin-token");
    std::fs::write(&secret, "0123456789abcdef0123\n").unwrap();
    let yaml = good_with(|c| c.admin.token = Some(format!("${{file:{}}}", secret.display())));
    let (code, out, err) = check(&yaml, &[]);
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{err}");
    // The final newline is not part of the secret: 15 characters and a newline are too short.
    std::fs::write(&secret, "0123456789abcde\n").unwrap();
    let (code, _, err) = check(&yaml, &[]);
    assert_eq!(code, 64);
    assert!(err.contains("admin.token: must be at least 16 characters"), "{err}");
    std::fs::remove_file(&secret).unwrap();
    let (code, _, err) = check(&yaml, &[]);
    assert_eq!(code, 64);
    assert!(err.contains("admin.token: ${file:") && err.contains("cannot read"), "{err}");
}

#[test]
fn missing_templates_dir_and_broken_templates_are_config_errors() {
    let yaml = good_with(|c| c.templates_dir = "/nonexistent/templates".into());
    let (code, _, err) = check(&yaml, &[]);
    assert_eq!(code, 64);
    assert!(err.contains("templates_dir: /nonexistent/templates is not a directory"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("error.hbs"), "{{#if}}").unwrap();
    let yaml = good_with(|c| c.templates_dir = dir.path().display().to_string());
    let (code, _, err) = check(&yaml, &[]);
    assert_eq!(code, 64);
    assert!(err.contains("error.hbs"), "{err}");
}

#[test]
fn run_with_a_bad_config_exits_64_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.yaml");
    std::fs::write(&path, "upstream: {url: 'gopher://x'}\nissuer: https://op.example\n").unwrap();
    let out = Command::new(binary()).args(["run", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("upstream.url: must be an absolute http or https URL"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = Command::new(binary()).args(["run", "--config", "/nonexistent.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn version_and_help() {
    let out = Command::new(binary()).arg("--version").output().unwrap();
    assert!(out.status.success());
    // The release and the commit the binary was built from.
    let head =
        Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok().filter(|o| o.status.success());
    let commit = head.map_or("unknown".to_string(), |o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("logout-gateway {} (commit {commit})\n", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(binary()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("run") && help.contains("check"), "{help}");
}

#[test]
fn shipped_configs_pass_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut configs = vec![root.join("proxy.yaml")];
    for dir in ["deploy", "examples"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            if entry.path().extension().is_some_and(|e| e == "yaml") {
                configs.push(entry.path());
            }
        }
    }
    // deploy/ holds one, examples/ one per OP section of docs/providers.md.
    assert!(configs.len() >= 7, "{configs:?}");
    for cfg in configs {
        let out = Command::new(binary())
            .args(["check", "--config"])
            .arg(&cfg)
            .env("LGW_ADMIN_TOKEN", "a-long-enough-admin-token")
            .env("BILLING_CLIENT_SECRET", "a-client-secret")
            .env("REDIS_PASSWORD", "a-redis-password")
            .env("SENTINEL_PASSWORD", "a-sentinel-password")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", cfg.display(), String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn check_names_every_redis_deployment_problem() {
    use crate::harness::{RawCluster, RawSentinel};
    let sentinel = |nodes: &[&str], name: &str| RawSentinel {
        master_name: name.into(),
        nodes: nodes.iter().map(|s| s.to_string()).collect(),
        password: None,
        sentinel_password: None,
    };
    let good = good_with(|c| {
        let r = c.session_store.redis.as_mut().unwrap();
        r.url = None;
        r.sentinel = Some(sentinel(&["127.0.0.1:26379", "sentinel-2.internal:26379"], "mymaster"));
        r.replica_acks = 1;
    });
    assert_eq!(check(&good, &[]).0, 0, "a sentinel config: {}", check(&good, &[]).2);
    let cluster = good_with(|c| {
        let r = c.session_store.redis.as_mut().unwrap();
        r.url = None;
        let nodes = vec!["10.0.0.1:7000".to_string(), "redis-2.internal:7000".to_string()];
        r.cluster = Some(RawCluster { nodes, password: Some("pw".into()) });
    });
    assert_eq!(check(&cluster, &[]).0, 0, "a cluster config: {}", check(&cluster, &[]).2);
    for (what, f, key, words) in [
        (
            "both",
            Box::new(|c: &mut RawConfig| {
                c.session_store.redis.as_mut().unwrap().sentinel = Some(sentinel(&["a:1"], "m"));
            }) as Box<dyn Fn(&mut RawConfig)>,
            "session_store.redis",
            "exactly one of url, sentinel and cluster",
        ),
        (
            "url and cluster",
            Box::new(|c: &mut RawConfig| {
                let nodes = vec!["127.0.0.1:7000".to_string()];
                c.session_store.redis.as_mut().unwrap().cluster = Some(RawCluster { nodes, password: None });
            }),
            "session_store.redis",
            "exactly one of url, sentinel and cluster",
        ),
        (
            "bad cluster node",
            Box::new(|c: &mut RawConfig| {
                let r = c.session_store.redis.as_mut().unwrap();
                r.url = None;
                r.cluster = Some(RawCluster { nodes: vec!["10.0.0.1:7000".into(), "10.0.0.2".into()], password: None });
            }),
            "session_store.redis.cluster.nodes[1]",
            "host:port",
        ),
        (
            "tls on some nodes only",
            Box::new(|c: &mut RawConfig| {
                let r = c.session_store.redis.as_mut().unwrap();
                r.url = None;
                let nodes = vec!["rediss://10.0.0.1:7000".into(), "10.0.0.2:7000".into()];
                r.cluster = Some(RawCluster { nodes, password: None });
            }),
            "session_store.redis.cluster.nodes",
            "every node is rediss://",
        ),
        (
            "no cluster nodes",
            Box::new(|c: &mut RawConfig| {
                let r = c.session_store.redis.as_mut().unwrap();
                r.url = None;
                r.cluster = Some(RawCluster { nodes: vec![], password: None });
            }),
            "session_store.redis.cluster.nodes",
            "at least one",
        ),
        (
            "neither",
            Box::new(|c: &mut RawConfig| c.session_store.redis.as_mut().unwrap().url = None),
            "session_store.redis",
            "exactly one",
        ),
        (
            "bad node",
            Box::new(|c: &mut RawConfig| {
                let r = c.session_store.redis.as_mut().unwrap();
                r.url = None;
                r.sentinel = Some(sentinel(&["127.0.0.1:26379", "no-port"], "m"));
            }),
            "session_store.redis.sentinel.nodes[1]",
            "host:port",
        ),
        (
            "no nodes",
            Box::new(|c: &mut RawConfig| {
                let r = c.session_store.redis.as_mut().unwrap();
                r.url = None;
                r.sentinel = Some(sentinel(&[], "m"));
            }),
            "session_store.redis.sentinel.nodes",
            "at least one",
        ),
        (
            "bad name",
            Box::new(|c: &mut RawConfig| {
                let r = c.session_store.redis.as_mut().unwrap();
                r.url = None;
                r.sentinel = Some(sentinel(&["a:1"], "my master"));
            }),
            "session_store.redis.sentinel.master_name",
            "without spaces",
        ),
        (
            "acks",
            Box::new(|c: &mut RawConfig| c.session_store.redis.as_mut().unwrap().replica_acks = 99),
            "session_store.redis.replica_acks",
            "between 0 and 16",
        ),
    ] {
        let yaml = good_with(|c| f(c));
        let (code, _, err) = check(&yaml, &[]);
        assert_eq!(code, 64, "{what}: {err}");
        assert!(err.contains(&format!("{key}:")) && err.contains(words), "{what}: {err}");
    }
}
