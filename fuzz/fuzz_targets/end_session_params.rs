//! `LogoutParams::parse`: every end_session GET query and POST form body reaches it unchanged
//! (`Logout::raw_params` only picks the source and caps the size), so the input is raw bytes.
//!
//! Checks: no panic; an accepted input reads exactly as an independent form decoder reads it
//! (no known parameter twice, caps, UTF-8, no control characters, empty means absent, RPI-01,
//! GW-10); every refusal is justified by the input; accepted values re-encoded (query style
//! and form style) parse back to the same parameters.
#![no_main]

use lgw_fuzz::form_pairs;
use libfuzzer_sys::fuzz_target;
use logout_gateway::probe::logout_uri::encode_component;
use logout_gateway::probe::params::{LogoutParams, ParamError, KNOWN, MAX_PAIRS};

fuzz_target!(|data: &[u8]| {
    let pairs = form_pairs(data);
    match LogoutParams::parse(data) {
        Ok(p) => accepted(&p, &pairs),
        Err(e) => refused(&e, &pairs),
    }
});

fn field<'a>(p: &'a LogoutParams, name: &str) -> Option<&'a str> {
    match name {
        "id_token_hint" => p.id_token_hint.as_deref(),
        "logout_hint" => p.logout_hint.as_deref(),
        "client_id" => p.client_id.as_deref(),
        "post_logout_redirect_uri" => p.post_logout_redirect_uri.as_deref(),
        "state" => p.state.as_deref(),
        "ui_locales" => p.ui_locales.as_deref(),
        "refresh_token" => p.refresh_token.as_deref(),
        "client_secret" => p.client_secret.as_deref(),
        other => panic!("params::KNOWN has {other:?}: teach this target its field"),
    }
}

fn named<'a>(pairs: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
    let name = name.as_bytes().to_vec();
    pairs.iter().filter(move |(n, _)| *n == name).map(|(_, v)| v)
}

fn accepted(p: &LogoutParams, pairs: &[(Vec<u8>, Vec<u8>)]) {
    assert!(pairs.len() <= MAX_PAIRS, "{} pairs accepted", pairs.len());
    for (name, cap) in KNOWN {
        let values: Vec<_> = named(pairs, name).collect();
        assert!(values.len() <= 1, "{name} accepted twice");
        let expected = values.first().filter(|v| !v.is_empty()).map(|v| v.as_slice());
        let got = field(p, name);
        assert_eq!(got.map(str::as_bytes), expected, "{name} differs from an independent decoder");
        if let Some(v) = got {
            assert!(v.len() <= cap, "{name} over its cap");
            assert!(!v.chars().any(char::is_control), "{name} with a control character");
        }
    }
    // Re-encoded in another order, between unknown parameters, query style and form style.
    let mut query = vec!["x=1".to_string()];
    for (name, _) in KNOWN.iter().rev() {
        if let Some(v) = field(p, name) {
            query.push(format!("{name}={}", encode_component(v)));
        }
    }
    query.push("y".to_string());
    let query = query.join("&");
    assert_eq!(LogoutParams::parse(query.as_bytes()).as_ref(), Ok(p), "query re-encoding: {query}");
    let form = query.replace("%20", "+");
    assert_eq!(LogoutParams::parse(form.as_bytes()).as_ref(), Ok(p), "form re-encoding: {form}");
}

fn refused(e: &ParamError, pairs: &[(Vec<u8>, Vec<u8>)]) {
    let cap = |name: &str| KNOWN.iter().find(|(k, _)| *k == name).map(|(_, c)| *c).unwrap_or(0);
    let justified = match e {
        ParamError::TooMany => pairs.len() > MAX_PAIRS,
        ParamError::Duplicate(k) => named(pairs, k).count() >= 2,
        ParamError::TooLong(k) => named(pairs, k).any(|v| v.len() > cap(k)),
        ParamError::NotUtf8 => KNOWN.iter().any(|(k, _)| named(pairs, k).any(|v| std::str::from_utf8(v).is_err())),
        ParamError::Control(k) => {
            named(pairs, k).any(|v| std::str::from_utf8(v).is_ok_and(|s| s.chars().any(char::is_control)))
        }
    };
    assert!(justified, "refused without cause: {e:?}");
}
