//! Finding the credentials a request carries, wherever it carries them (issue: "enforce by
//! credential, not by endpoint spelling"). Pure functions over header values, the query and
//! the form body; no I/O.
//!
//! - `Authorization`: the schemes `Bearer` and `DPoP` (RFC 6750 §2.1, RFC 9449 §7.1) in any
//!   letter case, separated from the token by any run of spaces or tabs, every header of the
//!   request;
//! - parameters, in the query (RFC 6750 §2.3) and in form bodies alike, names decoded and
//!   compared in any letter case: `access_token`, `token` (introspection, revocation),
//!   `refresh_token`, and RFC 8693's `subject_token` and `actor_token`; every value of a repeated
//!   parameter is a credential;
//! - OP session cookies (by name; see `enforce::op_cookie_pairs`).
//!
//! Also here: the parameters that must not be repeated (RFC 6749 §3.1, §3.2: "parameters MUST
//! NOT be included more than once"), because an OP that takes the first and a gateway that
//! checked the last (or the other way round) disagree about which credential was used.

/// Where a credential was found; decides the answer when it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `Authorization: Bearer` (or `DPoP` when `dpop`).
    Header { dpop: bool },
    /// A parameter (query or form), by its canonical name.
    Param(&'static str),
}

/// Parameters whose value is a credential a logout may have revoked.
pub const CREDENTIAL_PARAMS: [&str; 5] = ["access_token", "token", "refresh_token", "subject_token", "actor_token"];

/// Parameters refused when repeated (in the query, the body, or across both).
pub const SINGLE_PARAMS: [&str; 8] =
    ["grant_type", "refresh_token", "token", "code", "client_id", "access_token", "subject_token", "actor_token"];

/// The token of one `Authorization` header value, when its scheme is Bearer or DPoP.
pub fn authorization_token(value: &str) -> Option<(Source, &str)> {
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let split = value.find([' ', '\t'])?;
    let (scheme, rest) = value.split_at(split);
    let token = rest.trim_matches(|c| c == ' ' || c == '\t');
    if token.is_empty() {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Some((Source::Header { dpop: false }, token))
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Some((Source::Header { dpop: true }, token))
    } else {
        None
    }
}

/// The canonical name of `name` when it is one of `list` (any letter case).
fn canonical(name: &str, list: &[&'static str]) -> Option<&'static str> {
    list.iter().copied().find(|p| p.eq_ignore_ascii_case(name))
}

/// What the query and form of a request say about credentials.
#[derive(Debug, Default)]
pub struct Params {
    /// (canonical name, value) of every credential parameter, in order.
    pub credentials: Vec<(&'static str, String)>,
    /// A parameter that appeared more than once (across query and form).
    pub repeated: Option<&'static str>,
    /// `grant_type`, when given once.
    pub grant_type: Option<String>,
    /// `code`, when given once.
    pub code: Option<String>,
}

/// Scan a query and a form body (either may be empty). Cheap for a query without any of the
/// names: `form_urlencoded` borrows undecoded pairs.
pub fn scan(query: &[u8], form: &[u8]) -> Params {
    let mut out = Params::default();
    let mut seen: [u8; SINGLE_PARAMS.len()] = [0; SINGLE_PARAMS.len()];
    for part in [query, form] {
        if part.is_empty() {
            continue;
        }
        for (k, v) in url::form_urlencoded::parse(part) {
            if let Some(i) = SINGLE_PARAMS.iter().position(|p| p.eq_ignore_ascii_case(&k)) {
                seen[i] = seen[i].saturating_add(1);
                if seen[i] > 1 && out.repeated.is_none() {
                    out.repeated = Some(SINGLE_PARAMS[i]);
                }
                match SINGLE_PARAMS[i] {
                    "grant_type" => out.grant_type = Some(v.to_string()),
                    "code" => out.code = Some(v.to_string()),
                    _ => {}
                }
            }
            if let Some(name) = canonical(&k, &CREDENTIAL_PARAMS) {
                if !v.is_empty() {
                    out.credentials.push((name, v.into_owned()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_schemes_in_any_spelling() {
        for (h, dpop) in [
            ("Bearer abc", false),
            ("bearer abc", false),
            ("BEARER abc", false),
            ("BeArEr\tabc", false),
            ("Bearer   abc  ", false),
            (" \tBearer \t abc", false),
            ("DPoP abc", true),
            ("dpop abc", true),
        ] {
            assert_eq!(authorization_token(h), Some((Source::Header { dpop }, "abc")), "{h:?}");
        }
        for h in ["Basic abc", "Bearer", "Bearer   ", "Bearerabc", "", "Token abc"] {
            assert_eq!(authorization_token(h), None, "{h:?}");
        }
    }

    #[test]
    fn credential_parameters_in_any_spelling() {
        let p = scan(b"ACCESS_TOKEN=a&x=1", b"refresh%5Ftoken=r&Token=t&subject_token=s&actor_token=&y=2");
        assert_eq!(
            p.credentials,
            [
                ("access_token", "a".to_string()),
                ("refresh_token", "r".to_string()),
                ("token", "t".to_string()),
                ("subject_token", "s".to_string())
            ]
        );
        assert_eq!(p.repeated, None);
    }

    #[test]
    fn repeated_parameters_are_found_across_query_and_form() {
        assert_eq!(scan(b"", b"refresh_token=junk&refresh_token=rt").repeated, Some("refresh_token"));
        assert_eq!(scan(b"grant_type=a", b"grant_type=b").repeated, Some("grant_type"));
        assert_eq!(scan(b"client_id=a&CLIENT_ID=a", b"").repeated, Some("client_id"));
        assert_eq!(scan(b"code=a&state=1&state=2", b"").repeated, None, "state is not ours to police");
        let both = scan(b"", b"refresh_token=junk&refresh_token=rt");
        assert_eq!(both.credentials.len(), 2, "every value is checked");
    }
}
