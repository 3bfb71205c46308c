//! Finding the credentials a request carries, wherever it carries them (enforcement is by
//! credential, not by endpoint spelling). Pure functions over header values, the query and
//! the body (form, or JSON where the body is JSON); no I/O.
//!
//! - `Authorization`: the schemes `Bearer` and `DPoP` (RFC 6750 §2.1, RFC 9449 §7.1) in any
//!   letter case, separated from the token by any run of spaces or tabs, every header of the
//!   request;
//! - parameters, in the query (RFC 6750 §2.3) and in form bodies alike, names decoded and
//!   compared in any letter case: `access_token`, `token` (introspection, revocation),
//!   `refresh_token`, and RFC 8693's `subject_token` and `actor_token`; every value of a repeated
//!   parameter is a credential;
//! - OP session cookies (by name; see `cookies::OpCookies`).
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
pub(crate) const CREDENTIAL_PARAMS: [&str; 5] =
    ["access_token", "token", "refresh_token", "subject_token", "actor_token"];

/// Parameters refused when repeated (in the query, the body, or across both).
pub(crate) const SINGLE_PARAMS: [&str; 8] =
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
    pub(crate) repeated: Option<&'static str>,
    /// `grant_type`, when given once.
    pub(crate) grant_type: Option<String>,
    /// `code`, when given once.
    pub(crate) code: Option<String>,
}

/// Scan a query and a form body (either may be empty). Cheap for a query without any of the
/// names: `form_urlencoded` borrows undecoded pairs.
pub fn scan(query: &[u8], form: &[u8]) -> Params {
    let mut s = Scanner::default();
    for part in [query, form] {
        for (k, v) in url::form_urlencoded::parse(part) {
            s.add(&k, &v);
        }
    }
    s.out
}

/// Like [`scan`] for a query and a JSON body (a careless OP may read credentials from one):
/// the top-level string members, names in any case, a member given twice counting as repeated.
/// Err when the body is not a JSON object (it cannot be checked, so it is refused).
pub(crate) fn scan_json(query: &[u8], body: &[u8]) -> Result<Params, NotAnObject> {
    let mut s = Scanner::default();
    for (k, v) in url::form_urlencoded::parse(query) {
        s.add(&k, &v);
    }
    let members: Members = serde_json::from_slice(body).map_err(|_| NotAnObject)?;
    for (k, v) in &members.0 {
        if let serde_json::Value::String(v) = v {
            s.add(k, v);
        } else {
            // A credential name with a non-string value still counts for repetition.
            s.add(k, "");
        }
    }
    Ok(s.out)
}

/// A JSON body that is not one JSON object.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NotAnObject;

#[derive(Default)]
struct Scanner {
    out: Params,
    seen: [u8; SINGLE_PARAMS.len()],
}

impl Scanner {
    fn add(&mut self, k: &str, v: &str) {
        if let Some(i) = SINGLE_PARAMS.iter().position(|p| p.eq_ignore_ascii_case(k)) {
            self.seen[i] = self.seen[i].saturating_add(1);
            if self.seen[i] > 1 && self.out.repeated.is_none() {
                self.out.repeated = Some(SINGLE_PARAMS[i]);
            }
            match SINGLE_PARAMS[i] {
                "grant_type" => self.out.grant_type = Some(v.to_string()),
                "code" => self.out.code = Some(v.to_string()),
                _ => {}
            }
        }
        if let Some(name) = canonical(k, &CREDENTIAL_PARAMS) {
            if !v.is_empty() {
                self.out.credentials.push((name, v.to_string()));
            }
        }
    }
}

/// A JSON object's members in order, duplicates kept (serde_json's map keeps only the last).
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
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

    #[test]
    fn json_bodies() {
        let p = scan_json(b"", br#"{"grant_type":"refresh_token","REFRESH_TOKEN":"r","n":{"token":"x"}}"#).unwrap();
        assert_eq!(p.credentials, [("refresh_token", "r".to_string())]);
        assert_eq!(p.grant_type.as_deref(), Some("refresh_token"));
        let dup = scan_json(b"", br#"{"refresh_token":"junk","refresh_token":"r"}"#).unwrap();
        assert_eq!(dup.repeated, Some("refresh_token"));
        assert_eq!(scan_json(b"token=a", br#"{"token":"b"}"#).unwrap().repeated, Some("token"));
        assert_eq!(scan_json(b"", br#"{"token":1,"token":"b"}"#).unwrap().repeated, Some("token"));
        for bad in [&b"[1]"[..], b"{", b"", b"token=a"] {
            assert!(scan_json(b"", bad).is_err(), "{bad:?}");
        }
    }
}
