//! URI work for logout, as plain functions: exact redirect-URI matching (RPI-09/21), adding
//! `state` (RPI-11), building front-channel iframe URLs (FCL-03/06/07), origins for CSP.

use url::Url;

/// Percent-encode everything but RFC 3986 unreserved characters, so any value survives a
/// round trip through a query byte for byte.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `base` with `params` appended to its query, keeping the existing query (RPI-11d, FCL-03).
/// `base` has no fragment (config validation refuses them).
pub fn append_query(base: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return base.to_string();
    }
    let mut out = base.to_string();
    let sep = match base.find('?') {
        None => Some('?'),
        // An empty query, or one ending in `&`, takes the parameters as they are. A `?` at
        // the end of a non-empty query is data (`?next=/x?`): it still needs the `&`.
        Some(q) if q + 1 == base.len() || base.ends_with('&') => None,
        Some(_) => Some('&'),
    };
    if let Some(c) = sep {
        out.push(c);
    }
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(&encode_component(v));
    }
    out
}

/// The final redirect: the registered URI plus `state` when the request carried one; nothing
/// else is added (RPI-11e).
pub fn redirect_with_state(registered: &str, state: Option<&str>) -> String {
    match state {
        Some(s) => append_query(registered, &[("state", s)]),
        None => registered.to_string(),
    }
}

/// The iframe URL for a client: its frontchannel_logout_uri, plus `iss` and `sid` (both or
/// neither, FCL-06) when it requires them (FCL-07).
pub fn frontchannel_url(uri: &str, session_required: bool, iss: &str, sid: Option<&str>) -> String {
    match (session_required, sid) {
        (true, Some(sid)) => append_query(uri, &[("iss", iss), ("sid", sid)]),
        _ => uri.to_string(),
    }
}

/// `scheme://host[:port]` of an http(s) URL, for CSP `frame-src`; None for anything else.
pub fn origin(uri: &str) -> Option<String> {
    let u = Url::parse(uri).ok()?;
    // WHATWG hosts may hold `;`, `,`, `'`, `*` and the like, which in a CSP header would end
    // the source, directive or policy, or widen it: such a host is no origin CSP can name.
    let host = u.host_str()?;
    let plain = host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b));
    (plain && matches!(u.scheme(), "http" | "https")).then(|| u.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn percent_decode(s: &str) -> Vec<u8> {
        crate::uri::decode(s.as_bytes())
    }

    #[test]
    fn rpi11_state_is_added_once_and_round_trips() {
        assert_eq!(
            redirect_with_state("https://a.example.org/logged-out", Some("s1")),
            "https://a.example.org/logged-out?state=s1"
        );
        assert_eq!(
            redirect_with_state("https://a.example.org/bye?lang=en", Some("s1")),
            "https://a.example.org/bye?lang=en&state=s1"
        );
        assert_eq!(redirect_with_state("https://a.example.org/bye?", Some("s")), "https://a.example.org/bye?state=s");
        assert_eq!(redirect_with_state("https://a.example.org/x", None), "https://a.example.org/x");
        let vschar = "aZ09!\"#$%&'()*,-./:<=>?@[\\]^_`{|}~ +;\u{e9}";
        let url = redirect_with_state("https://a/x?k=v", Some(vschar));
        let state = url.split_once("&state=").unwrap().1;
        assert!(!state.contains(['&', '#', '+', ' ']), "{state}");
        assert_eq!(percent_decode(state), vschar.as_bytes());
    }

    #[test]
    fn rpi11_state_after_a_query_ending_in_a_question_mark() {
        // Found by fuzz/redirect_uri: the `?` is the query's last byte, not its start, and the
        // state was glued onto the `next` parameter.
        let url = redirect_with_state("https://a.example.org/bye?next=/x?", Some("s"));
        assert_eq!(url, "https://a.example.org/bye?next=/x?&state=s");
        let pairs: Vec<_> =
            Url::parse(&url).unwrap().query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        assert_eq!(pairs, [("next".to_string(), "/x?".to_string()), ("state".to_string(), "s".to_string())]);
    }

    #[test]
    fn fcl_iframe_urls_keep_their_query_and_add_both_or_neither() {
        assert_eq!(
            frontchannel_url("https://a.example.org/fc?tenant=t1", true, "https://op.example.com", Some("SA")),
            "https://a.example.org/fc?tenant=t1&iss=https%3A%2F%2Fop.example.com&sid=SA"
        );
        assert_eq!(
            frontchannel_url("https://b.example.net/fc", false, "https://op", Some("SB")),
            "https://b.example.net/fc"
        );
        assert_eq!(frontchannel_url("https://b.example.net/fc", true, "https://op", None), "https://b.example.net/fc");
    }

    #[test]
    fn origins() {
        assert_eq!(origin("https://a.example.org:8443/fc?x").as_deref(), Some("https://a.example.org:8443"));
        assert_eq!(origin("https://a.example.org:443/fc").as_deref(), Some("https://a.example.org"));
        assert_eq!(origin("com.example.app:/x"), None);
        assert_eq!(origin("http://[::1]:8080/fc").as_deref(), Some("http://[::1]:8080"));
        // Found by fuzz/frontchannel_url: URL parsers accept these hosts, but in `frame-src`
        // they would split the directive or policy (`;`, `,`), or become a wildcard (`*`).
        for odd in ["https://a;b.example/fc", "https://a,b.example/fc", "https://a'b.example/", "https://*.example/"] {
            assert_eq!(origin(odd), None, "{odd}");
        }
    }
}
