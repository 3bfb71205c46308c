//! The front-channel page's iframe URLs and their CSP origins: `uri::frontchannel_url` and
//! `uri::origin` (FCL-03/06/07).
//!
//! Input lines: the client's `frontchannel_logout_uri`, the issuer, the sid (empty: none), and
//! `required` when the client sets `frontchannel_logout_session_required`. Checks: no panic;
//! `iss` and `sid` are added both or neither, only when required; the result starts with the
//! registered URI; parsed back, it has the registered query followed by `iss` and `sid`, byte
//! for byte; adding them never changes the origin the page's CSP allows.
#![no_main]

use lgw_fuzz::{config_like_url, line, lines, url_query_pairs};
use libfuzzer_sys::fuzz_target;
use logout_gateway::probe::logout_uri::{frontchannel_url, origin};
use url::Url;

fuzz_target!(|data: &[u8]| {
    let lines = lines(data);
    let (uri, iss) = (line(&lines, 0), line(&lines, 1));
    let sid = Some(line(&lines, 2)).filter(|s| !s.is_empty());
    let required = line(&lines, 3) == "required";

    let src = frontchannel_url(uri, required, iss, sid);
    csp_safe(origin(uri));
    csp_safe(origin(&src));
    let Some(sid) = sid.filter(|_| required) else {
        assert_eq!(src, uri, "iss and sid only when required, and both or neither (FCL-06/07)");
        return;
    };
    assert!(src.starts_with(uri), "{src:?} does not start with {uri:?}");
    if !config_like_url(uri) {
        return;
    }
    assert_eq!(origin(&src), origin(uri), "adding iss and sid moved the origin of {uri:?}");
    let (Some(mut before), Some(after)) = (url_query_pairs(uri), url_query_pairs(&src)) else {
        panic!("adding iss and sid made {uri:?} unparsable: {src:?}");
    };
    before.push(("iss".to_string(), iss.to_string()));
    before.push(("sid".to_string(), sid.to_string()));
    assert_eq!(after, before, "the registered query, then iss and sid, in {src:?}");
    // The iframe loads what a browser makes of it: still the registered host and path.
    let (u, s) = (Url::parse(uri).ok(), Url::parse(&src).ok());
    assert_eq!(u.as_ref().map(Url::host_str), s.as_ref().map(Url::host_str));
    assert_eq!(u.as_ref().map(Url::path), s.as_ref().map(Url::path));
});

/// An origin is `http(s)://host[:port]` with nothing a CSP header reads as structure: it goes
/// into `frame-src`, where a space, `;` or `,` would start another source, directive or policy.
fn csp_safe(o: Option<String>) {
    let Some(o) = o else { return };
    let rest = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")).unwrap_or_default();
    assert!(!rest.is_empty(), "{o:?}");
    assert!(rest.bytes().all(|b| b.is_ascii_graphic() && !b"/;,'\"?#\\".contains(&b)), "{o:?}");
}
