//! Where a logout may send the browser: exact matching of `post_logout_redirect_uri` (through
//! `decide::plan`, the only caller of the private `is_allowed`), the opt-in `RedirectPattern`,
//! `redirect_with_state`, `append_query` and `encode_component` (RPI-09/11/21).
//!
//! Input lines: the requested URI, `state`, an opt-in pattern, then the client's registered
//! URIs (empty lines mean "none"). Checks: no panic; without patterns only a byte-exact
//! registered URI is accepted, with them only that or a URI the pattern's host, port and path
//! cover; the redirect is the registered URI followed by one `state` that decodes back byte for
//! byte, also when a URL parser reads the result.
#![no_main]

use std::collections::BTreeMap;

use lgw_fuzz::{config_like_url, line, lines, url_query_pairs};
use libfuzzer_sys::fuzz_target;
use logout_gateway::probe::decide::{plan, Client, HintCheck, HintClaims, Plan, Policy, Reject};
use logout_gateway::probe::logout_uri::{append_query, encode_component, redirect_with_state};
use logout_gateway::probe::percent_decode;
use logout_gateway::probe::RedirectPattern;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let lines = lines(data);
    let requested = Some(line(&lines, 0)).filter(|s| !s.is_empty());
    // The parameter parser turns an empty state into none, so "" never reaches the functions.
    let state = Some(line(&lines, 1)).filter(|s| !s.is_empty());
    let registered: Vec<String> = lines.iter().skip(3).filter(|s| !s.is_empty()).cloned().collect();
    for l in &lines {
        encoding_round_trips(l);
    }
    for r in &registered {
        state_is_appended_once(r, state);
    }
    exact_match_only(requested, state, &registered, Policy::default());
    if let Ok(p) = RedirectPattern::parse(line(&lines, 2)) {
        if let Some(uri) = requested {
            if p.matches(uri) {
                pattern_match_is_narrow(line(&lines, 2), uri);
            }
        }
        let policy = Policy { unregistered_redirect_patterns: vec![p], ..Policy::default() };
        exact_match_only(requested, state, &registered, policy);
    }
});

/// Any text survives `encode_component` byte for byte, with nothing but unreserved characters
/// and escapes in the result (so no `&`, `#`, `+` or space can split or end the parameter).
fn encoding_round_trips(s: &str) {
    let e = encode_component(s);
    assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)), "{e}");
    assert_eq!(percent_decode(e.as_bytes(), false), s.as_bytes());
    let two = append_query("https://rp.example/x", &[("a", s), ("b", s)]);
    assert_eq!(two, format!("https://rp.example/x?a={e}&b={e}"));
}

fn state_is_appended_once(registered: &str, state: Option<&str>) {
    let out = redirect_with_state(registered, state);
    let Some(s) = state else {
        assert_eq!(out, registered, "nothing may be added without a state (RPI-11e)");
        return;
    };
    // Raw shape, for any string: the registered URI, one separator if needed, one state.
    // `?` starts a query; an empty one, or one ending in `&`, needs no separator.
    let sep = match registered.split_once('?') {
        None => "?",
        Some((_, query)) if query.is_empty() || query.ends_with('&') => "",
        Some(_) => "&",
    };
    assert_eq!(out, format!("{registered}{sep}state={}", encode_component(s)));
    // Parsed back, for URIs config validation accepts: the registered query, then the state.
    if config_like_url(registered) {
        let (Some(mut before), Some(after)) = (url_query_pairs(registered), url_query_pairs(&out)) else {
            panic!("appending a state made {registered:?} unparsable: {out:?}");
        };
        before.push(("state".to_string(), s.to_string()));
        assert_eq!(after, before, "state did not round-trip in {out:?}");
    }
}

/// `plan` with a valid hint for a client registering `registered`: the request is redirected
/// exactly when the URI is registered byte for byte or covered by the policy's pattern.
fn exact_match_only(requested: Option<&str>, state: Option<&str>, registered: &[String], policy: Policy) {
    let client = Client::redirecting_to(registered.to_vec());
    let clients = BTreeMap::from([("rp".to_string(), client)]);
    let hint = HintCheck::Valid(HintClaims {
        client_id: "rp".into(),
        sub: "U1".into(),
        sid: Some("S1".into()),
        expired: false,
    });
    let got = plan(&hint, None, requested, state, &clients, &policy);
    let Some(uri) = requested else {
        assert!(matches!(&got, Plan::End { next, .. } if next.redirect.is_none()), "{got:?}");
        return;
    };
    let allowed = registered.iter().any(|r| r.as_bytes() == uri.as_bytes())
        || policy.unregistered_redirect_patterns.iter().any(|p| p.matches(uri));
    if !allowed {
        assert_eq!(got, Plan::Reject(Reject::RedirectNotRegistered), "{uri:?} must be refused");
        return;
    }
    let Plan::End { next, .. } = &got else { panic!("{uri:?} allowed but {got:?}") };
    let redirect = next.redirect.as_deref().unwrap_or_default();
    assert_eq!(redirect, redirect_with_state(uri, state));
    assert!(redirect.starts_with(uri), "the redirect must start with the allowed URI");
    assert_eq!(next.client_id.as_deref(), Some("rp"));
}

/// A pattern match sends the browser only to the pattern's scheme, host (or a subdomain of a
/// `*.` host), port and path, as a URL parser (a browser) reads the URI.
fn pattern_match_is_narrow(pattern: &str, uri: &str) {
    assert!(!uri.bytes().any(|b| b <= 0x20 || b == 0x7f || b == b'\\' || b == b'#'), "{uri:?}");
    let (wildcard, probe) = match pattern.split_once("://*.") {
        Some((scheme, rest)) => (true, format!("{scheme}://{rest}")),
        None => (false, pattern.to_string()),
    };
    let (Ok(p), Ok(u)) = (Url::parse(&probe), Url::parse(uri)) else { panic!("{pattern:?} matched {uri:?}") };
    let (phost, host) = (p.host_str().unwrap_or_default().to_ascii_lowercase(), u.host_str().unwrap_or_default());
    let host_ok = host == phost || (wildcard && host.ends_with(&format!(".{phost}")));
    assert!(host_ok, "{pattern:?} matched host {host:?}");
    assert_eq!(u.scheme(), p.scheme(), "{pattern:?} matched {uri:?}");
    assert_eq!(u.port_or_known_default(), p.port_or_known_default(), "{pattern:?} matched {uri:?}");
    assert!(u.username().is_empty() && u.password().is_none(), "{pattern:?} matched {uri:?}");
    let prefix = p.path().trim_end_matches('/');
    let path = u.path();
    let under = prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/"));
    assert!(under, "{pattern:?} matched path {path:?}");
}
