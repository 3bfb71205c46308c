//! The OP's session cookies, as every layer reads them: the one parser of a `Cookie` header for
//! them, their hashes (how the store knows them), the cap on how many one request may carry,
//! and the `Set-Cookie` lines that expire them in the browser.

pub(crate) mod browser_state;
mod scope;

use self::scope::{Learned, Scope};
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
    /// Session Management 1.0's browser-state cookie, when `session_management` is set.
    pub(crate) browser_state: Option<browser_state::BrowserState>,
    /// Where the OP puts its cookies (Domain, Path, Secure, SameSite), learned from its
    /// `Set-Cookie` lines; shared by every clone.
    learned: Learned,
}

impl OpCookies {
    pub(crate) fn new(config: &Config) -> OpCookies {
        let up = &config.upstream;
        OpCookies {
            names: up.session_cookies.clone(),
            login_paths: up.session_cookie_paths.clone(),
            expiry_paths: up.session_cookie_expiry_paths.clone(),
            secure: config.issuer.starts_with("https://"),
            browser_state: config
                .session_management
                .as_ref()
                .map(|sm| browser_state::BrowserState::new(sm, config.issuer.starts_with("https://"))),
            learned: Learned::default(),
        }
    }

    /// A `Set-Cookie` line of an upstream response to a request for `request_path`: when it
    /// sets one of the OP's session cookies, remember where.
    pub(crate) fn observe(&self, request_path: &str, set_cookie: &str) {
        self.learned.observe(&self.names, request_path, set_cookie);
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

    /// `Set-Cookie` values expiring each of `names` wherever it lives: in every scope the OP
    /// was seen to set it (its Domain, Path, Secure, SameSite, Partitioned), and host-only on
    /// every configured expiry path not already among them.
    pub(crate) fn expiring<'a>(&'a self, names: &'a [String]) -> impl Iterator<Item = String> + 'a {
        names.iter().flat_map(move |n| {
            let learned = self.learned.scopes(n);
            let configured = self
                .expiry_paths
                .iter()
                .filter(|p| !learned.iter().any(|s| s.domain.is_none() && &s.path == *p))
                .map(|p| Scope { domain: None, path: p.clone(), secure: false, same_site: None, partitioned: false })
                .collect::<Vec<_>>();
            learned.into_iter().chain(configured).map(move |s| s.expiring(n, self.secure))
        })
    }

    /// `Set-Cookie` values expiring every OP cookie on every expiry path.
    pub(crate) fn expiring_all(&self) -> impl Iterator<Item = String> + '_ {
        self.expiring(&self.names)
    }
}

/// Most OP session cookie values one request may carry (a browser sends one or two per name);
/// the edge refuses more, and learning reads no more from one exchange.
pub(crate) const MAX_OP_COOKIES: usize = 8;

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
        let names = vec!["KEYCLOAK_IDENTITY".to_string(), "KEYCLOAK_SESSION".to_string()];
        let paths = vec!["/".to_string(), "/realms/r/".to_string()];
        let c = OpCookies { names: names.clone(), expiry_paths: paths, secure: true, ..OpCookies::default() };
        let all: Vec<String> = c.expiring_all().collect();
        assert_eq!(all.len(), 4);
        assert!(all[1].starts_with("KEYCLOAK_IDENTITY=; Path=/realms/r/; Max-Age=0;"), "{all:?}");
        assert!(all.iter().all(|c| c.ends_with("; HttpOnly; Secure")), "{all:?}");
        let plain = OpCookies { secure: false, ..c.clone() };
        assert!(plain.expiring_all().all(|c| !c.contains("Secure")));
        // Once the OP was seen setting a cookie with a Domain, it is expired there too; a
        // learned host-only scope on a configured path replaces that path's line.
        c.observe("/login", "KEYCLOAK_IDENTITY=v; Domain=.login.example.com; Path=/realms/r/; SameSite=None; Secure");
        c.observe("/login", "KEYCLOAK_SESSION=v; Path=/; SameSite=Lax");
        let all: Vec<String> = c.expiring_all().collect();
        assert_eq!(all.len(), 5, "{all:?}");
        assert!(
            all.iter().any(|l| l.starts_with("KEYCLOAK_IDENTITY=; Domain=login.example.com; Path=/realms/r/;")
                && l.ends_with("; Secure; SameSite=None")),
            "{all:?}"
        );
        assert_eq!(all.iter().filter(|l| l.starts_with("KEYCLOAK_SESSION=; Path=/;")).count(), 1, "{all:?}");
        assert!(all.iter().any(|l| l.starts_with("KEYCLOAK_SESSION=; Path=/;") && l.ends_with("; SameSite=Lax")));
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
