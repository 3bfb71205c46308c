//! end_session parameters: strict parsing of a query string or form body (RPI-01, GW-10).
//!
//! Known parameters may appear once (a duplicate is an error, RFC 6749 §3.1 by analogy, as
//! node-oidc-provider's `rejectDupes`); an empty value means absent; unknown parameters are
//! ignored; values must be UTF-8 and within per-parameter size caps. Pure functions only.

use crate::uri::decode;

/// The end_session parameters of RP-Initiated Logout 1.0 §2.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogoutParams {
    pub id_token_hint: Option<String>,
    pub logout_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub ui_locales: Option<String>,
    /// RP back-end logout (Keycloak's form): the refresh token of the session to end.
    pub refresh_token: Option<String>,
    /// The client's secret, for back-end logout with `client_secret_post` authentication.
    pub client_secret: Option<String>,
}

/// Why the parameters were refused. Messages name the parameter, never echo its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("the parameter {0} appears more than once")]
    Duplicate(&'static str),
    #[error("the parameter {0} is too long")]
    TooLong(&'static str),
    #[error("a parameter is not valid UTF-8")]
    NotUtf8,
    #[error("the parameter {0} contains control characters")]
    Control(&'static str),
    #[error("too many parameters")]
    TooMany,
}

/// Whole query or form body; larger requests are refused before parsing (414/413).
pub const MAX_INPUT: usize = 32 * 1024;
/// More non-empty `&`-separated pairs than this are refused (public for the fuzz targets' checks).
pub const MAX_PAIRS: usize = 64;

/// (name, cap in bytes after decoding); public for the fuzz targets' checks.
pub const KNOWN: [(&str, usize); 8] = [
    ("id_token_hint", 16 * 1024),
    ("logout_hint", 512),
    ("client_id", 256),
    ("post_logout_redirect_uri", 2048),
    ("state", 2048),
    ("ui_locales", 256),
    ("refresh_token", 16 * 1024),
    ("client_secret", 1024),
];

impl LogoutParams {
    /// Parse `a=1&b=2` (a query string without `?`, or an x-www-form-urlencoded body).
    pub fn parse(input: &[u8]) -> Result<LogoutParams, ParamError> {
        let mut p = LogoutParams::default();
        let mut seen = [false; KNOWN.len()];
        // Pairs end at each `&` and at the end; memchr finds the `&`s (a hint is about a
        // kilobyte with no `&` in it).
        let mut start = 0;
        let ends = memchr::memchr_iter(b'&', input).chain(std::iter::once(input.len()));
        let pairs = ends.map(|end| std::mem::replace(&mut start, end + 1)..end).map(|r| &input[r]);
        for (n, pair) in pairs.filter(|s| !s.is_empty()).enumerate() {
            if n >= MAX_PAIRS {
                return Err(ParamError::TooMany);
            }
            let (raw_name, raw_value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let name = decode(raw_name);
            let Some(idx) = KNOWN.iter().position(|(k, _)| k.as_bytes() == name.as_slice()) else {
                continue; // unknown parameters are ignored
            };
            let (key, cap) = KNOWN[idx];
            if seen[idx] {
                return Err(ParamError::Duplicate(key));
            }
            seen[idx] = true;
            let value = decode(raw_value);
            if value.len() > cap {
                return Err(ParamError::TooLong(key));
            }
            let value = String::from_utf8(value).map_err(|_| ParamError::NotUtf8)?;
            if has_control(&value) {
                return Err(ParamError::Control(key));
            }
            if value.is_empty() {
                continue; // empty means absent
            }
            let slot = match idx {
                0 => &mut p.id_token_hint,
                1 => &mut p.logout_hint,
                2 => &mut p.client_id,
                3 => &mut p.post_logout_redirect_uri,
                4 => &mut p.state,
                5 => &mut p.ui_locales,
                6 => &mut p.refresh_token,
                _ => &mut p.client_secret,
            };
            *slot = Some(value);
        }
        Ok(p)
    }
}

/// Whether `v` holds a control character (C0, DEL or C1). The common case, printable ASCII
/// only, is one pass without an early exit, which the compiler vectorises; anything else (a
/// control character, or any non-ASCII byte) is looked at char by char.
fn has_control(v: &str) -> bool {
    let unusual = v.bytes().fold(false, |acc, b| acc | !(0x20..0x7f).contains(&b));
    unusual && v.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_parameters_and_ignores_others() {
        let p = LogoutParams::parse(b"id_token_hint=a.b.c&state=s%201+2&foo=bar&ui_locales=fr-CA%20fr&client_id=rp1")
            .unwrap();
        assert_eq!(p.id_token_hint.as_deref(), Some("a.b.c"));
        assert_eq!(p.state.as_deref(), Some("s 1 2"));
        assert_eq!(p.ui_locales.as_deref(), Some("fr-CA fr"));
        assert_eq!(p.client_id.as_deref(), Some("rp1"));
        assert_eq!(p.post_logout_redirect_uri, None);
    }

    #[test]
    fn empty_means_absent_and_duplicates_are_refused() {
        let p = LogoutParams::parse(b"state=&post_logout_redirect_uri").unwrap();
        assert_eq!(p, LogoutParams::default());
        assert_eq!(
            LogoutParams::parse(b"post_logout_redirect_uri=https://a/x&post_logout_redirect_uri=https://evil/"),
            Err(ParamError::Duplicate("post_logout_redirect_uri"))
        );
        // Even an empty duplicate is a duplicate.
        assert_eq!(LogoutParams::parse(b"state=a&state="), Err(ParamError::Duplicate("state")));
        // An encoded name is the same name.
        assert_eq!(LogoutParams::parse(b"state=a&%73tate=b"), Err(ParamError::Duplicate("state")));
    }

    #[test]
    fn caps_utf8_and_control_characters() {
        let long = format!("state={}", "x".repeat(2049));
        assert_eq!(LogoutParams::parse(long.as_bytes()), Err(ParamError::TooLong("state")));
        assert_eq!(LogoutParams::parse(b"state=%ff%fe"), Err(ParamError::NotUtf8));
        assert_eq!(LogoutParams::parse(b"state=a%0d%0aSet-Cookie:x"), Err(ParamError::Control("state")));
        assert_eq!(LogoutParams::parse(b"state=a%7f"), Err(ParamError::Control("state")));
        assert_eq!(LogoutParams::parse(b"state=a%09b"), Err(ParamError::Control("state")));
        // C1 controls (U+0080..U+009F) in a value that is not ASCII.
        assert_eq!(LogoutParams::parse(b"state=%c3%a9%c2%85"), Err(ParamError::Control("state")));
        assert!(LogoutParams::parse(b"state=%c3%a9t%c3%a9").is_ok());
        let many = "x=1&".repeat(70);
        assert_eq!(LogoutParams::parse(many.as_bytes()), Err(ParamError::TooMany));
    }

    #[test]
    fn empty_pairs_are_skipped_and_not_counted() {
        let p = LogoutParams::parse(b"&&state=a&&&client_id=b&").unwrap();
        assert_eq!(p.state.as_deref(), Some("a"));
        assert_eq!(p.client_id.as_deref(), Some("b"));
        assert_eq!(LogoutParams::parse(b""), Ok(LogoutParams::default()));
        assert_eq!(LogoutParams::parse(b"&"), Ok(LogoutParams::default()));
        // MAX_PAIRS non-empty pairs with empty ones between them pass; one more does not.
        let spaced = "x=1&&".repeat(MAX_PAIRS);
        assert!(LogoutParams::parse(spaced.as_bytes()).is_ok());
        assert_eq!(LogoutParams::parse(format!("{spaced}y=2").as_bytes()), Err(ParamError::TooMany));
    }

    #[test]
    fn the_control_check_agrees_with_char_is_control() {
        for c in (0..0x3000).chain(0xfff0..0x10000).chain(0x10ff00..0x110000).filter_map(char::from_u32) {
            for v in [c.to_string(), format!("abc{c}"), format!("{c}{}", "x".repeat(40))] {
                assert_eq!(has_control(&v), c.is_control(), "{c:?} in {v:?}");
            }
        }
    }
}
