//! The OP's session cookies, as every layer reads them: the one parser of a `Cookie` header for
//! them, their hashes (how the store knows them), the cap on how many one request may carry,
//! and the `Set-Cookie` lines that expire them in the browser.

use crate::config::Config;
use crate::crypto::token_hash;

/// The upstream OP's session cookies as configured: their names, the OP pages where they are
/// checked, and how they are expired. One value shared by the edge, learning and logout.
#[derive(Debug, Clone, Default)]
pub(crate) struct OpCookies {
    /// `upstream.session_cookies`.
    pub(crate) names: Vec<String>,
    /// `upstream.session_cookie_paths`: canonical path prefixes of the OP's login and resume
    /// pages, where a request's OP cookie is checked and its code redirects learned from.
    pub(crate) login_paths: Vec<String>,
    /// `upstream.session_cookie_expiry_paths`: the `Path` attributes they are expired on.
    pub(crate) expiry_paths: Vec<String>,
    /// Expiring lines (and the gateway's own cookies) carry `Secure`: the issuer is https.
    pub(crate) secure: bool,
}

impl OpCookies {
    pub(crate) fn new(config: &Config) -> OpCookies {
        let up = &config.upstream;
        OpCookies {
            names: up.session_cookies.clone(),
            login_paths: up.session_cookie_paths.clone(),
            expiry_paths: up.session_cookie_expiry_paths.clone(),
            secure: config.issuer.starts_with("https://"),
        }
    }

    /// Every (name, value) pair of an OP cookie in a Cookie header, uncapped (the edge counts them).
    pub(crate) fn all_pairs<'a>(&'a self, header: Option<&'a str>) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        op_cookie_pairs(header, &self.names)
    }

    /// At most [`MAX_OP_COOKIES`] (name, value) pairs of OP cookies in a Cookie header.
    pub(crate) fn pairs<'a>(&'a self, header: Option<&'a str>) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.all_pairs(header).take(MAX_OP_COOKIES)
    }

    /// Hashes of at most [`MAX_OP_COOKIES`] OP cookie values in a Cookie header.
    pub(crate) fn hashes(&self, header: Option<&str>) -> Vec<String> {
        self.pairs(header).map(|(_, v)| token_hash(v.as_bytes())).collect()
    }

    /// `Set-Cookie` values expiring each of `names` on every expiry path.
    pub(crate) fn expiring<'a>(&'a self, names: &'a [String]) -> impl Iterator<Item = String> + 'a {
        expiring_cookies(names, &self.expiry_paths, self.secure)
    }

    /// `Set-Cookie` values expiring every OP cookie on every expiry path.
    pub(crate) fn expiring_all(&self) -> impl Iterator<Item = String> + '_ {
        self.expiring(&self.names)
    }
}

/// Most OP session cookie values one request may carry (a browser sends one or two per name);
/// the edge refuses more, and learning reads no more from one exchange.
pub(crate) const MAX_OP_COOKIES: usize = 8;

/// `Set-Cookie` values expiring each of `names` on each of `paths` (HttpOnly; Secure when the
/// issuer is https). Used at logout (`logout`) and at the edge.
fn expiring_cookies<'a>(names: &'a [String], paths: &'a [String], secure: bool) -> impl Iterator<Item = String> + 'a {
    let secure = if secure { "; Secure" } else { "" };
    names.iter().flat_map(move |n| {
        paths
            .iter()
            .map(move |p| format!("{n}=; Path={p}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly{secure}"))
    })
}

/// The (name, value) pairs of the OP session cookies (by `names`, non-empty values) in a Cookie
/// header: the one parser behind every OP-cookie check.
fn op_cookie_pairs<'a>(
    cookie_header: Option<&'a str>,
    names: &'a [String],
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    cookie_header
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(move |(k, v)| !v.is_empty() && names.iter().any(|n| n == k))
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
    fn op_cookies_by_name_capped_and_hashed() {
        let c = OpCookies { names: vec!["op".to_string()], ..OpCookies::default() };
        assert_eq!(c.hashes(Some("a=1; op=v; op=; xop=w")), [token_hash(b"v")]);
        assert!(c.hashes(None).is_empty());
        let many: Vec<String> = (0..MAX_OP_COOKIES + 3).map(|i| format!("op=v{i}")).collect();
        let header = many.join("; ");
        assert_eq!(c.all_pairs(Some(&header)).count(), MAX_OP_COOKIES + 3);
        assert_eq!(c.hashes(Some(&header)).len(), MAX_OP_COOKIES);
    }
}
