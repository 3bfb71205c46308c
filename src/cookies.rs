//! The OP's session cookies, as every layer reads them: the one parser of a `Cookie` header for
//! them, their hashes (how the store knows them), the cap on how many one request may carry,
//! and the `Set-Cookie` lines that expire them in the browser.

use crate::crypto::token_hash;

/// Most OP session cookie values one request may carry (a browser sends one or two per name);
/// the edge refuses more, and learning reads no more from one exchange.
pub(crate) const MAX_OP_COOKIES: usize = 8;

/// `Set-Cookie` values expiring each of `names` on each of `paths` (HttpOnly; Secure when the
/// issuer is https). Used at logout (`logout`) and at the edge.
pub(crate) fn expiring_cookies<'a>(
    names: &'a [String],
    paths: &'a [String],
    secure: bool,
) -> impl Iterator<Item = String> + 'a {
    let secure = if secure { "; Secure" } else { "" };
    names.iter().flat_map(move |n| {
        paths
            .iter()
            .map(move |p| format!("{n}=; Path={p}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly{secure}"))
    })
}

/// The OP session cookies (by `names`) in a Cookie header, as (name, hash of the value).
pub(crate) fn op_cookies(cookie_header: Option<&str>, names: &[String]) -> Vec<(String, String)> {
    op_cookie_pairs(cookie_header, names).map(|(k, v)| (k.to_string(), token_hash(v.as_bytes()))).collect()
}

/// The (name, value) pairs of the OP session cookies (by `names`, non-empty values) in a Cookie
/// header: the one parser behind every OP-cookie check.
pub(crate) fn op_cookie_pairs<'a>(
    cookie_header: Option<&'a str>,
    names: &'a [String],
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    cookie_header
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(move |(k, v)| !v.is_empty() && names.iter().any(|n| n == k))
}

/// Hashes of the OP session cookies (by `names`) in a Cookie header.
pub(crate) fn op_cookie_hashes(cookie_header: Option<&str>, names: &[String]) -> Vec<String> {
    op_cookies(cookie_header, names).into_iter().map(|(_, h)| h).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_expiring_cookie_per_name_and_path() {
        let names = ["KEYCLOAK_IDENTITY".to_string(), "KEYCLOAK_SESSION".to_string()];
        let paths = ["/".to_string(), "/realms/r/".to_string()];
        let all: Vec<String> = expiring_cookies(&names, &paths, true).collect();
        assert_eq!(all.len(), 4);
        assert!(all[1].starts_with("KEYCLOAK_IDENTITY=; Path=/realms/r/; Max-Age=0;"), "{all:?}");
        assert!(all.iter().all(|c| c.ends_with("; HttpOnly; Secure")), "{all:?}");
        assert!(expiring_cookies(&names, &paths, false).all(|c| !c.contains("Secure")));
    }

    #[test]
    fn op_cookies_by_name() {
        let names = ["op".to_string()];
        let found = op_cookies(Some("a=1; op=v; op=; xop=w"), &names);
        assert_eq!(found, [("op".to_string(), token_hash(b"v"))]);
        assert!(op_cookies(None, &names).is_empty());
    }
}
