//! Oracles shared by the fuzz targets: decoders written independently of the gateway's own
//! (on the `url` and `percent-encoding` crates), the shape config validation allows for the
//! URLs the gateway appends to, and the line-based input format of the URI targets' seeds.
//! Nothing here is the gateway's code: a target that compared the gateway with itself would
//! prove nothing.

use url::Url;

/// `a=1&b=2` split as an x-www-form-urlencoded decoder does: non-empty pieces, name and value
/// split at the first `=`, `+` as a space, `%XX` as a byte, a malformed escape kept as it is.
pub fn form_pairs(input: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    input
        .split(|b| *b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.iter().position(|b| *b == b'=') {
            Some(i) => (form_decode(&piece[..i]), form_decode(&piece[i + 1..])),
            None => (form_decode(piece), Vec::new()),
        })
        .collect()
}

fn form_decode(s: &[u8]) -> Vec<u8> {
    // `+` first, then escapes: `%2B` must stay a plus, which this order guarantees.
    let plus: Vec<u8> = s.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    percent_encoding::percent_decode(&plus).collect()
}

/// The query of `uri` as a browser-grade parser reads it (WHATWG URL, form decoding); None
/// when it is not an absolute URL.
pub fn url_query_pairs(uri: &str) -> Option<Vec<(String, String)>> {
    let u = Url::parse(uri).ok()?;
    Some(u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
}

/// What config validation lets through as a redirect or front-channel URI, in shape (its
/// `check_url` is private): absolute, no spaces, control characters, backslashes or `#`, no
/// user information. Only such URIs reach the appending functions at run time, so properties
/// that depend on parsing the result back are checked for them only.
pub fn config_like_url(s: &str) -> bool {
    if s.bytes().any(|b| b <= 0x20 || b == 0x7f || b == b'\\' || b == b'#') {
        return false;
    }
    let Ok(u) = Url::parse(s) else { return false };
    // The url crate reads `x://@` as no host yet refuses `x://@?q` ("empty host"): a quirk of
    // the oracle's parser (WHATWG fails both), not of the gateway, so such URIs are left out.
    let authority = s.split_once("://").map_or("", |(_, rest)| rest.split(['/', '?']).next().unwrap_or(""));
    let hostless_at = u.host_str().is_none_or(str::is_empty) && authority.contains('@');
    u.username().is_empty() && u.password().is_none() && !hostless_at
}

/// The URI targets' input: text (invalid UTF-8 replaced, so no input is wasted) split on
/// `\n`, one field per line, so seeds stay readable and easy to write by hand.
pub fn lines(data: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(data).split('\n').map(str::to_string).collect()
}

/// Line `i`, or "" when the input has fewer lines.
pub fn line(lines: &[String], i: usize) -> &str {
    lines.get(i).map_or("", String::as_str)
}
