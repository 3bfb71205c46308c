//! Unit tests of the validation rules (the whole file is covered by tests/it/cli.rs).

use super::clients::{check_url, UrlRule};
use super::upstream::end_session;
use super::*;
use crate::config::raw::{RawEndSession, RawUpstream};

fn problems_for(rule: UrlRule, s: &str) -> Vec<Problem> {
    let mut v = V { problems: Vec::new() };
    check_url(&mut v, "k", s, rule);
    v.problems
}

#[test]
fn redirect_uris_refuse_dangerous_shapes() {
    for bad in [
        "javascript:alert(1)",
        "data:text/html,<script>",
        "https://a.example/x#frag",
        "https://user@a.example/x",
        "http://a.example/x",
        "/relative",
        "https://a.example/ x",
        "https://a.example/\\evil",
        "https://a.example/\r\nx",
        "file:///etc/passwd",
    ] {
        assert!(!problems_for(UrlRule::Redirect, bad).is_empty(), "{bad} accepted");
    }
    for good in
        ["https://a.example/bye?lang=en", "http://127.0.0.1:9/x", "http://localhost/x", "com.example.app:/logout"]
    {
        assert!(problems_for(UrlRule::Redirect, good).is_empty(), "{good} refused");
    }
}

#[test]
fn frame_and_backchannel_uris_must_be_web_urls() {
    assert!(!problems_for(UrlRule::Fetch, "com.example.app:/fc").is_empty());
    assert!(!problems_for(UrlRule::Fetch, "https://a.example/fc#x").is_empty());
    assert!(problems_for(UrlRule::Fetch, "https://a.example/fc?tenant=t1").is_empty());
}

fn load(extra: &str) -> Result<Config, Vec<String>> {
    let text = format!(
        "upstream:\n  url: \"http://127.0.0.1:3000\"\nissuer: \"http://127.0.0.1:8080\"\n\
         session_store:\n  backend: memory\ntemplates_dir: \".\"\n{extra}"
    );
    super::super::load_str(&text, Path::new("."), &|_| None)
        .map_err(|p| p.0.into_iter().map(|p| format!("{}: {}", p.path, p.message)).collect())
}

#[test]
fn revocation_needs_a_key_and_consistent_client_credentials() {
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let ok = load(&format!(
        "revocation:\n  encryption_key: \"{key}\"\nclients:\n  a:\n    client_secret: \"s\"\n  \
         b:\n    client_secret: \"s\"\n    revocation_auth: client_secret_post\n  c:\n    revocation_auth: none\n"
    ))
    .unwrap();
    assert_eq!(ok.clients["a"].revocation, Some(RevocationAuth::Basic(Secret::new("s"))));
    assert_eq!(ok.clients["b"].revocation, Some(RevocationAuth::Post(Secret::new("s"))));
    assert_eq!(ok.clients["c"].revocation, Some(RevocationAuth::Public));
    assert!(!format!("{ok:?}").contains(key), "the key never prints");
    let errs = load("revocation:\n  encryption_key: \"c2hvcnQ=\"\n").unwrap_err();
    assert!(errs.iter().any(|e| e.starts_with("revocation.encryption_key: must be 32")), "{errs:?}");
    // Without `revocation` the credentials still authenticate the client's back-end logout.
    let ok = load("clients:\n  a:\n    client_secret: \"s\"\n").unwrap();
    assert_eq!(ok.clients["a"].revocation, Some(RevocationAuth::Basic(Secret::new("s"))));
    let errs = load(&format!(
        "revocation:\n  encryption_key: \"{key}\"\nclients:\n  a:\n    revocation_auth: client_secret_jwt\n  \
         b:\n    revocation_auth: client_secret_basic\n"
    ))
    .unwrap_err();
    assert!(errs.iter().any(|e| e.starts_with("clients.a.revocation_auth: must be")), "{errs:?}");
    assert!(errs.iter().any(|e| e.starts_with("clients.b.client_secret: needed")), "{errs:?}");
}

#[test]
fn token_lifetimes_default_and_parse() {
    let c = load("").unwrap();
    assert_eq!(c.session_store.access_token_ttl, Duration::from_secs(86400));
    assert_eq!(c.session_store.refresh_token_ttl, Duration::from_secs(30 * 86400));
}

#[test]
fn registered_clients_follow_the_client_rules() {
    let ok = registered_client(
        "d",
        &serde_json::json!({"post_logout_redirect_uris": ["https://d.example/bye"],
        "frontchannel_logout_uri": "https://d.example/fc", "frontchannel_logout_session_required": true}),
        &[],
    )
    .unwrap();
    assert!(ok.registered);
    assert_eq!(ok.frontchannel_logout_uri.as_deref(), Some("https://d.example/fc"));
    assert!(ok.revocation.is_none());
    let bad = registered_client("d", &serde_json::json!({"frontchannel_logout_uri": "javascript:x"}), &[]).unwrap_err();
    assert!(bad[0].starts_with("registration.frontchannel_logout_uri"), "{bad:?}");
    assert!(registered_client("d\n", &serde_json::json!({}), &[]).is_err(), "client_id must be VSCHAR");
    // Stricter than proxy.yaml: no http, not even on loopback; no private back-channel.
    for m in [
        serde_json::json!({"post_logout_redirect_uris": ["http://127.0.0.1/bye"]}),
        serde_json::json!({"backchannel_logout_uri": "http://127.0.0.1:9/bc"}),
        serde_json::json!({"backchannel_logout_uri": "https://10.0.0.1/bc"}),
        serde_json::json!({"frontchannel_logout_uri": "https://localhost/fc"}),
        serde_json::json!({"post_logout_redirect_uris": vec!["https://d.example/x"; 21]}),
    ] {
        assert!(registered_client("d", &m, &[]).is_err(), "{m}");
    }
    let nets = [crate::address::Network::parse("10.0.0.0/8").unwrap()];
    assert!(
        registered_client("d", &serde_json::json!({"backchannel_logout_uri": "https://10.0.0.1/bc"}), &nets).is_ok()
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86400)));
    assert!(parse_duration("0s").is_err());
    assert!(parse_duration("5 parsecs").is_err());
    assert!(parse_duration("").is_err());
}

#[test]
fn loopback_hosts() {
    assert!(is_loopback_host("127.0.0.2"));
    assert!(is_loopback_host("[::1]"));
    assert!(is_loopback_host("LOCALHOST"));
    assert!(!is_loopback_host("127.0.0.1.evil.example"));
    assert!(!is_loopback_host("10.0.0.1"));
}

#[test]
fn session_cookie_paths_and_expiry_paths() {
    let c = load("").unwrap();
    assert!(c.upstream.session_cookie_paths.is_empty());
    assert_eq!(c.upstream.session_cookie_expiry_paths, ["/"]);
    let text = |extra: &str| {
        format!(
            "upstream:\n  url: \"http://127.0.0.1:3000\"\n{extra}issuer: \"http://127.0.0.1:8080\"\n\
             session_store:\n  backend: memory\ntemplates_dir: \".\"\n"
        )
    };
    let load2 = |extra: &str| {
        super::super::load_str(&text(extra), Path::new("."), &|_| None)
            .map_err(|p| p.0.into_iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>())
    };
    let c = load2(
        "  session_cookie_paths: [\"/Realms/R/login-actions/\", \"/interaction\"]\n  \
         session_cookie_expiry_paths: [\"/\", \"/realms/R/\"]\n",
    )
    .unwrap();
    assert_eq!(c.upstream.session_cookie_paths, ["/realms/r/login-actions", "/interaction"]);
    assert_eq!(c.upstream.session_cookie_expiry_paths, ["/", "/realms/R/"]);
    let errs =
        load2("  session_cookie_paths: [\"login\"]\n  session_cookie_expiry_paths: [\"/a;b\", \"/\"]\n").unwrap_err();
    assert!(errs.iter().any(|e| e.starts_with("upstream.session_cookie_paths[0]: ")), "{errs:?}");
    assert!(errs.iter().any(|e| e.starts_with("upstream.session_cookie_expiry_paths[0]: ")), "{errs:?}");
    assert_eq!(errs.len(), 2, "{errs:?}");
    let errs = load2("  session_cookie_expiry_paths: []\n").unwrap_err();
    assert!(errs[0].starts_with("upstream.session_cookie_expiry_paths: must name"), "{errs:?}");
}

#[test]
fn end_session_paths_are_canonical_and_plain() {
    let mut v = V { problems: Vec::new() };
    let paths = |p: &[&str], mode: &str| RawEndSession {
        paths: p.iter().map(|s| s.to_string()).collect(),
        mode: mode.into(),
        ..RawEndSession::default()
    };
    let es = end_session(&mut v, &paths(&["/Session/End", "/oxauth/restv1/end_session"], "terminate"));
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(es.paths, ["/session/end", "/oxauth/restv1/end_session"]);
    for bad in ["session/end", "/a//b", "/a/./b", "/a/", "/a;x", "/a%2Fb", "/a?x=1"] {
        let mut v = V { problems: Vec::new() };
        end_session(&mut v, &paths(&[bad], "terminate"));
        assert_eq!(v.problems.len(), 1, "{bad}");
        assert_eq!(v.problems[0].path, "end_session.paths[0]");
    }
    let mut v = V { problems: Vec::new() };
    end_session(&mut v, &paths(&["/a", "/A"], "sideways"));
    assert_eq!(v.problems.len(), 2);
}

#[test]
fn tls_server_name_needs_https_and_a_dns_name() {
    let base = Path::new(".");
    let problems = |url: &str, name: &str| {
        let mut v = V { problems: Vec::new() };
        let raw = RawUpstream { tls_server_name: Some(name.into()), ..RawUpstream::new(url) };
        let up = super::upstream::upstream(&mut v, raw, base);
        (up, v.problems.into_iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>())
    };
    let (up, errs) = problems("https://10.0.0.5:8443", "Login.Internal.example");
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(
        (up.sni.as_str(), up.tls_server_name.as_deref()),
        ("login.internal.example", Some("login.internal.example"))
    );
    for (url, name) in [
        ("http://10.0.0.5", "login.example"),
        ("https://10.0.0.5", "10.0.0.5"),
        ("https://h", "a..b"),
        ("https://h", "-a.b"),
        ("https://h", "a b"),
    ] {
        let (_, errs) = problems(url, name);
        assert_eq!(errs.len(), 1, "{url} {name}: {errs:?}");
        assert!(errs[0].starts_with("upstream.tls_server_name: "), "{errs:?}");
    }
}

#[test]
fn log_filters_that_match_nothing_are_refused() {
    for ok in ["info", "INFO", "warn,logout_gateway=debug", "info,pingora_proxy=error", "logout_gateway", "off"] {
        assert!(load(&format!("log:\n  level: \"{ok}\"\n")).is_ok(), "{ok}");
    }
    for bad in ["inf0", "debug,nothing=trace", "foo"] {
        let errs = load(&format!("log:\n  level: \"{bad}\"\n")).unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with("log.level: ") && e.contains("matches nothing")), "{bad}: {errs:?}");
    }
}

#[test]
fn an_admin_listener_beyond_loopback_needs_a_token_or_an_explicit_allowance() {
    let errs = load("admin:\n  listen: \"0.0.0.0:9090\"\n").unwrap_err();
    assert!(errs.iter().any(|e| e.starts_with("admin.token: needed when admin.listen is not a loopback")), "{errs:?}");
    let with_token = load("admin:\n  listen: \"0.0.0.0:9090\"\n  token: \"0123456789abcdef\"\n").unwrap();
    assert!(!with_token.admin.exposed_without_token);
    let allowed = load("admin:\n  listen: \"10.1.2.3:9090\"\n  allow_without_token: true\n").unwrap();
    assert!(allowed.admin.exposed_without_token, "warned about at start");
    for lo in ["127.0.0.1:9090", "[::1]:9090"] {
        assert!(load(&format!("admin:\n  listen: \"{lo}\"\n")).is_ok(), "{lo}");
    }
}

#[test]
fn global_revocation_needs_a_plain_path_of_its_own_and_long_tokens() {
    let good =
        load("global_token_revocation:\n  path: \"/GTR\"\n  tokens: [\"0123456789abcdef0123456789abcdef\"]\n").unwrap();
    let g = good.global_revocation.unwrap();
    assert_eq!((g.path.as_str(), g.tokens.len()), ("/gtr", 1));
    let default = load("global_token_revocation:\n  tokens: [\"0123456789abcdef0123456789abcdef\"]\n").unwrap();
    assert_eq!(default.global_revocation.unwrap().path, "/global-token-revocation");
    assert!(load("").unwrap().global_revocation.is_none());
    for (yaml, key) in [
        ("  path: \"gtr\"\n  tokens: [\"0123456789abcdef0123456789abcdef\"]\n", "global_token_revocation.path"),
        ("  path: \"/a;b\"\n  tokens: [\"0123456789abcdef0123456789abcdef\"]\n", "global_token_revocation.path"),
        (
            "  path: \"/Session/End\"\n  tokens: [\"0123456789abcdef0123456789abcdef\"]\n",
            "global_token_revocation.path",
        ),
        (
            "  path: \"/session/end/gtr\"\n  tokens: [\"0123456789abcdef0123456789abcdef\"]\n",
            "global_token_revocation.path",
        ),
        ("  tokens: []\n", "global_token_revocation.tokens"),
        ("  tokens: [\"short\"]\n", "global_token_revocation.tokens[0]"),
        ("  tokens: [\"0123456789abcdef 0123456789abcdef\"]\n", "global_token_revocation.tokens[0]"),
    ] {
        let errs = load(&format!("global_token_revocation:\n{yaml}")).unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with(&format!("{key}: "))), "{yaml}: {errs:?}");
    }
}

#[test]
fn ssf_needs_receivers_with_long_own_tokens_known_clients_and_a_path_of_its_own() {
    let t1 = "0123456789abcdef0123456789abcdef";
    let t2 = "fedcba9876543210fedcba9876543210";
    let clients = "clients:\n  rp1:\n    post_logout_redirect_uris: [\"https://rp1.example/out\"]\n";
    let good = load(&format!("{clients}ssf:\n  receivers:\n    crm:\n      token: \"{t1}\"\n      client_id: rp1\n    siem:\n      token: \"{t2}\"\n      max_streams: 3\n")).unwrap();
    let s = good.ssf.unwrap();
    assert_eq!(s.path, "/ssf");
    let crm = s.receivers.iter().find(|r| r.name == "crm").unwrap();
    assert_eq!((crm.client_id.as_deref(), crm.max_streams), (Some("rp1"), 8));
    assert!(load("").unwrap().ssf.is_none());
    for (yaml, key) in [
        ("ssf:\n  receivers: {}\n".to_string(), "ssf.receivers"),
        (format!("ssf:\n  path: \"/session/end/ssf\"\n  receivers:\n    a:\n      token: \"{t1}\"\n"), "ssf.path"),
        (format!("ssf:\n  path: \"/.well-known/x\"\n  receivers:\n    a:\n      token: \"{t1}\"\n"), "ssf.path"),
        (format!("ssf:\n  path: \"ssf\"\n  receivers:\n    a:\n      token: \"{t1}\"\n"), "ssf.path"),
        ("ssf:\n  receivers:\n    a:\n      token: \"short\"\n".to_string(), "ssf.receivers.a.token"),
        (
            format!("ssf:\n  receivers:\n    a:\n      token: \"{t1}\"\n    b:\n      token: \"{t1}\"\n"),
            "ssf.receivers.b.token",
        ),
        (
            format!("ssf:\n  receivers:\n    a:\n      token: \"{t1}\"\n      client_id: nobody\n"),
            "ssf.receivers.a.client_id",
        ),
        (
            format!("ssf:\n  receivers:\n    a:\n      token: \"{t1}\"\n      max_streams: 0\n"),
            "ssf.receivers.a.max_streams",
        ),
        (format!("ssf:\n  receivers:\n    \"a b\":\n      token: \"{t1}\"\n"), "ssf.receivers.a b"),
    ] {
        let errs = load(&yaml).unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with(&format!("{key}: "))), "{yaml}: {errs:?}");
    }
}

#[test]
fn session_management_needs_its_own_path_and_a_plain_cookie_name() {
    let on = load("session_management: {}\n").unwrap().session_management.unwrap();
    assert_eq!((on.path.as_str(), on.cookie.as_str()), ("/check-session", "lgw_bs"));
    assert!(load("").unwrap().session_management.is_none());
    for (yaml, key) in [
        ("session_management:\n  path: \"/session/end\"\n", "session_management.path"),
        ("session_management:\n  path: \"/a b\"\n", "session_management.path"),
        ("session_management:\n  cookie: \"a;b\"\n", "session_management.cookie"),
        ("session_management:\n  cookie: \"\"\n", "session_management.cookie"),
    ] {
        let errs = load(yaml).unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with(&format!("{key}: "))), "{yaml}: {errs:?}");
    }
}
