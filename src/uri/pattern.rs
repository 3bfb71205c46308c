//! Operator-given redirect URI patterns (`https://host[:port][/path]`, host may start with `*.`)
//! and the loopback rule for plain http.

use std::net::IpAddr;

use url::Url;

/// localhost, 127.0.0.0/8 and ::1: where plain http is tolerated.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.to_ascii_lowercase().ends_with(".localhost")
        || h.parse::<IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

/// One allowed shape for an unregistered post_logout_redirect_uri (opt-in, dangerous):
/// `https://host[:port][/path-prefix]`, where host may start with `*.` for any subdomain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectPattern {
    scheme: String,
    /// Lower-case host, without a leading `*.`.
    host: String,
    wildcard: bool,
    port: u16,
    path_prefix: String,
}

impl RedirectPattern {
    pub fn parse(p: &str) -> Result<RedirectPattern, String> {
        let (wildcard, probe) = match p.split_once("://*.") {
            Some((scheme, rest)) => (true, format!("{scheme}://{rest}")),
            None => (false, p.to_string()),
        };
        let u = Url::parse(&probe).map_err(|e| format!("not a URL pattern ({e})"))?;
        let host = u.host_str().ok_or("needs a host")?.to_ascii_lowercase();
        if !matches!(u.scheme(), "https" | "http") || (u.scheme() == "http" && !is_loopback_host(&host)) {
            return Err("must be https (http only on loopback)".into());
        }
        if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() || u.password().is_some() {
            return Err("must not have a query, fragment or user information".into());
        }
        if wildcard && !host.contains('.') {
            return Err("a wildcard needs at least two labels after *.".into());
        }
        Ok(RedirectPattern {
            scheme: u.scheme().to_string(),
            host,
            wildcard,
            port: u.port_or_known_default().unwrap_or(443),
            path_prefix: u.path().to_string(),
        })
    }

    /// Whether `uri` has this pattern's scheme, host (or a subdomain for `*.`), port and path prefix.
    pub fn matches(&self, uri: &str) -> bool {
        if uri.bytes().any(|b| b <= 0x20 || b == 0x7f || b == b'\\') || uri.contains('#') {
            return false;
        }
        let Ok(u) = Url::parse(uri) else { return false };
        let Some(host) = u.host_str() else { return false };
        let host_ok = if self.wildcard {
            host.len() > self.host.len() + 1
                && host.ends_with(&self.host)
                && host[..host.len() - self.host.len()].ends_with('.')
        } else {
            host == self.host
        };
        u.scheme() == self.scheme
            && host_ok
            && u.username().is_empty()
            && u.password().is_none()
            && u.port_or_known_default() == Some(self.port)
            && path_within(u.path(), &self.path_prefix)
    }
}

/// `path` is `prefix` or below it, on a segment boundary (`/app` covers `/app/x`, not `/apple`).
fn path_within(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty() || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_patterns_match_narrowly() {
        let p = RedirectPattern::parse("https://*.example.com/app").unwrap();
        assert!(p.matches("https://rp.example.com/app/bye?x=1"));
        assert!(p.matches("https://a.b.example.com/app"));
        for bad in [
            "https://example.com/app",
            "https://evilexample.com/app",
            "https://rp.example.com.evil.org/app",
            "http://rp.example.com/app",
            "https://rp.example.com:8443/app",
            "https://rp.example.com/other",
            "https://rp.example.com/apple",
            "https://rp.example.com/app/../evil",
            "https://user@rp.example.com/app",
            "https://rp.example.com/app#frag",
            "https://rp.example.com/app\\@evil",
        ] {
            assert!(!p.matches(bad), "{bad}");
        }
        let exact = RedirectPattern::parse("https://rp.example.com").unwrap();
        assert!(exact.matches("https://rp.example.com/anything"));
        assert!(!exact.matches("https://x.rp.example.com/"));
        assert!(RedirectPattern::parse("http://rp.example.com").is_err());
        assert!(RedirectPattern::parse("https://*.com").is_err());
    }
}
