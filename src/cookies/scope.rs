//! Where the OP's session cookies live in the browser, learned from the OP's own `Set-Cookie`
//! headers as they pass: a browser replaces (and so expires) a cookie only with one of the same
//! name, `Domain` and `Path` (and partition), so the gateway expires each cookie with the
//! attributes the OP gave it. Learned in the process, bounded per name.

use std::sync::Arc;

use arc_swap::ArcSwap;

/// Most scopes kept per cookie name (an OP sets a cookie on one or two paths and domains).
pub(crate) const MAX_SCOPES: usize = 8;

/// One place a cookie lives: `Domain` (None: host-only) and `Path`, with the attributes its
/// expiring line must repeat for the browser to accept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub(crate) domain: Option<String>,
    pub(crate) path: String,
    pub(crate) secure: bool,
    /// `Strict`, `Lax` or `None` as the OP wrote it (canonical case).
    pub(crate) same_site: Option<&'static str>,
    pub(crate) partitioned: bool,
}

impl Scope {
    /// Whether the two address the same cookie slot (domain and path).
    fn same_slot(&self, other: &Scope) -> bool {
        self.domain == other.domain && self.path == other.path
    }

    /// The `Set-Cookie` value that expires cookie `name` in this scope. `secure` adds `Secure`
    /// even when the OP's line had none (the issuer is https).
    pub(crate) fn expiring(&self, name: &str, secure: bool) -> String {
        let mut s = format!("{name}=; ");
        if let Some(d) = &self.domain {
            s.push_str(&format!("Domain={d}; "));
        }
        s.push_str(&format!("Path={}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly", self.path));
        // Prefixed names are accepted by browsers only with Secure (and SameSite=None too).
        if self.secure || secure || name.starts_with("__Host-") || name.starts_with("__Secure-") {
            s.push_str("; Secure");
        }
        if let Some(ss) = self.same_site {
            s.push_str(&format!("; SameSite={ss}"));
        }
        if self.partitioned {
            s.push_str("; Partitioned");
        }
        s
    }
}

/// The (name, scope) pairs learned so far; shared by every holder of one `OpCookies`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Learned(Arc<ArcSwap<Vec<(String, Scope)>>>);

impl Learned {
    /// Remember where a `Set-Cookie` line (for one of `names`, answering a request for
    /// `request_path`) puts its cookie. Cheap when nothing is new: one load and a compare.
    pub(crate) fn observe(&self, names: &[String], request_path: &str, set_cookie: &str) {
        let Some((name, scope)) = parse(set_cookie, request_path) else { return };
        let Some(name) = names.iter().find(|n| n.as_str() == name) else { return };
        let known = self.0.load();
        if known.iter().any(|(n, s)| n == name && s.same_slot(&scope) && *s == scope) {
            return;
        }
        self.0.rcu(|cur| {
            let mut next: Vec<(String, Scope)> = cur.as_ref().clone();
            match next.iter().position(|(n, s)| n == name && s.same_slot(&scope)) {
                Some(i) => next[i].1 = scope.clone(),
                None if next.iter().filter(|(n, _)| n == name).count() < MAX_SCOPES => {
                    next.push((name.clone(), scope.clone()))
                }
                None => {}
            }
            next
        });
    }

    /// The scopes learned for `name`.
    pub(crate) fn scopes(&self, name: &str) -> Vec<Scope> {
        self.0.load().iter().filter(|(n, _)| n == name).map(|(_, s)| s.clone()).collect()
    }
}

/// A `Set-Cookie` line's name and scope; None when a browser would refuse it anyway (a bad
/// `Domain`, a `Path` that is not absolute).
fn parse<'a>(set_cookie: &'a str, request_path: &str) -> Option<(&'a str, Scope)> {
    let mut parts = set_cookie.split(';');
    let (name, _) = parts.next()?.split_once('=')?;
    let mut scope =
        Scope { domain: None, path: default_path(request_path), secure: false, same_site: None, partitioned: false };
    for attr in parts {
        let (k, v) = attr.split_once('=').map_or((attr.trim(), ""), |(k, v)| (k.trim(), v.trim()));
        match k.to_ascii_lowercase().as_str() {
            "domain" => {
                let d = v.trim_start_matches('.').to_ascii_lowercase();
                let ok = !d.is_empty()
                    && d.len() <= 253
                    && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
                if !ok {
                    return None;
                }
                scope.domain = Some(d);
            }
            // RFC 6265 §5.2.4: a Path that does not start with '/' means the default path.
            "path" if v.starts_with('/') => {
                if v.len() > 1024 || v.bytes().any(|b| b < 0x21 || b == 0x7f || b == b',') {
                    return None;
                }
                scope.path = v.to_string();
            }
            "secure" => scope.secure = true,
            "samesite" => {
                scope.same_site = ["Strict", "Lax", "None"].into_iter().find(|s| s.eq_ignore_ascii_case(v));
            }
            "partitioned" => scope.partitioned = true,
            _ => {}
        }
    }
    Some((name.trim(), scope))
}

/// RFC 6265 §5.1.4: the directory of the request path (up to its last '/'), or "/".
fn default_path(request_path: &str) -> String {
    match request_path.rfind('/') {
        Some(i) if request_path.starts_with('/') && i > 0 => request_path[..i].to_string(),
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_parsed_as_a_browser_would() {
        let (n, s) =
            parse("KC=v; Domain=.Login.Example.com; Path=/realms/r/; Secure; SameSite=none; HttpOnly", "/x").unwrap();
        assert_eq!(n, "KC");
        assert_eq!(s.domain.as_deref(), Some("login.example.com"));
        assert_eq!((s.path.as_str(), s.secure, s.same_site), ("/realms/r/", true, Some("None")));
        // No Path, or a relative one: the request's directory.
        assert_eq!(parse("a=1", "/realms/r/login-actions/auth").unwrap().1.path, "/realms/r/login-actions");
        assert_eq!(parse("a=1; Path=rel", "/login").unwrap().1.path, "/");
        // What a browser refuses is not learned.
        assert!(parse("a=1; Domain=ex ample.com", "/").is_none());
        assert!(parse("a=1; Domain=.", "/").is_none());
        assert!(parse("novalue", "/").is_none());
    }

    #[test]
    fn expiring_lines_repeat_the_scope() {
        let s = Scope {
            domain: Some("login.example.com".into()),
            path: "/auth".into(),
            secure: true,
            same_site: Some("None"),
            partitioned: true,
        };
        assert_eq!(
            s.expiring("sid", false),
            "sid=; Domain=login.example.com; Path=/auth; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=None; Partitioned"
        );
        let host = Scope { domain: None, path: "/".into(), secure: false, same_site: None, partitioned: false };
        assert!(host.expiring("__Host-s", false).ends_with("; HttpOnly; Secure"), "prefixed names need Secure");
        assert!(!host.expiring("s", false).contains("Secure"));
    }

    #[test]
    fn learning_is_bounded_and_updates_a_slot_in_place() {
        let l = Learned::default();
        let names = ["s".to_string()];
        l.observe(&names, "/", "other=1; Domain=a.example");
        assert!(l.scopes("other").is_empty(), "only the OP's session cookies");
        l.observe(&names, "/", "s=1; Domain=a.example; Path=/");
        l.observe(&names, "/", "s=2; Domain=a.example; Path=/; Secure");
        assert_eq!(l.scopes("s").len(), 1);
        assert!(l.scopes("s")[0].secure, "the newest attributes of a slot win");
        for i in 0..20 {
            l.observe(&names, "/", &format!("s=1; Path=/p{i}"));
        }
        assert_eq!(l.scopes("s").len(), MAX_SCOPES);
    }
}
