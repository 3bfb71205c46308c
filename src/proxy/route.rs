//! Which requests the gateway answers itself, decided on the path alone.
//!
//! GW-01: only end_session paths are answered locally, and no spelling of them may slip through
//! to the upstream's own logout handler. A path is compared after normalising it the way any
//! upstream might (`uri::canonical`): percent-escapes decoded (all of them, `%2F` too), `;params`
//! dropped, empty and `.` segments removed, `..` resolved, trailing slash ignored, ASCII case folded. Whatever
//! normalises to an end_session path is handled as logout. The request line's path is never
//! rewritten for proxied requests.

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Proxy it to the upstream unchanged.
    Proxy,
    /// Answer it as end_session; the index is into `end_session.paths`.
    EndSession(usize),
    /// The confirmation form's target: `<end_session path>/confirm`.
    Confirm(usize),
    /// The global token revocation endpoint (`global_token_revocation.path`).
    GlobalRevocation,
    /// Where front-channel pages report: `<end_session path>/frontchannel-report`.
    Report,
    /// Below the Shared Signals transmitter's path (`ssf.path`); the endpoint is `ssf`'s to say.
    Ssf,
}

/// What the confirmation form posts to, below each end_session path.
pub(crate) const CONFIRM_SUFFIX: &str = "/confirm";

/// `paths` are the canonical (lower-case, plain) end_session paths from the config.
pub(crate) fn classify(raw_path: &[u8], paths: &[String]) -> Route {
    // A path with nothing to normalise is compared as is, without allocating.
    let canon = crate::uri::canonical(raw_path);
    lookup(&canon, paths, |c, p| c.eq_ignore_ascii_case(p))
}

/// [`classify`] on the public listener: also the global token revocation path and what is
/// below the Shared Signals path, when configured (canonical, lower case), in every spelling
/// end_session's paths are matched in.
pub(crate) fn classify_public(raw_path: &[u8], paths: &[String], global: Option<&str>, ssf: Option<&str>) -> Route {
    let canon = crate::uri::canonical(raw_path);
    if global.is_some_and(|g| canon.eq_ignore_ascii_case(g.as_bytes())) {
        return Route::GlobalRevocation;
    }
    if let Some(base) = ssf.map(str::as_bytes) {
        if canon.len() > base.len() + 1 && canon[..base.len()].eq_ignore_ascii_case(base) && canon[base.len()] == b'/' {
            return Route::Ssf;
        }
    }
    lookup(&canon, paths, |c, p| c.eq_ignore_ascii_case(p))
}

fn lookup(p: &[u8], paths: &[String], eq: impl Fn(&[u8], &[u8]) -> bool) -> Route {
    for (i, c) in paths.iter().enumerate() {
        let c = c.as_bytes();
        if eq(c, p) {
            return Route::EndSession(i);
        }
        if p.len() == c.len() + CONFIRM_SUFFIX.len()
            && eq(c, &p[..c.len()])
            && eq(CONFIRM_SUFFIX.as_bytes(), &p[c.len()..])
        {
            return Route::Confirm(i);
        }
        let report = crate::logout::report::REPORT_SUFFIX.as_bytes();
        if p.len() == c.len() + report.len() && eq(c, &p[..c.len()]) && eq(report, &p[c.len()..]) {
            return Route::Report;
        }
    }
    Route::Proxy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uri::{canonical, normalize, same_path, under_path};

    fn paths() -> Vec<String> {
        vec!["/session/end".into(), "/oxauth/restv1/end_session".into()]
    }

    #[test]
    fn every_spelling_of_the_global_revocation_path_is_answered_and_nothing_else() {
        let g = Some("/global-token-revocation");
        for p in [
            "/global-token-revocation",
            "/Global-Token-Revocation/",
            "/global%2Dtoken-revocation",
            "//x/../global-token-revocation;a=b",
        ] {
            assert_eq!(classify_public(p.as_bytes(), &paths(), g, None), Route::GlobalRevocation, "{p}");
        }
        for p in ["/global-token-revocation/x", "/global-token-revocations", "/x/global-token-revocation"] {
            assert_eq!(classify_public(p.as_bytes(), &paths(), g, None), Route::Proxy, "{p}");
        }
        assert_eq!(classify_public(b"/global-token-revocation", &paths(), None, None), Route::Proxy, "off: proxied");
        assert_eq!(classify_public(b"/session/end", &paths(), g, None), Route::EndSession(0));
    }

    #[test]
    fn every_spelling_below_the_ssf_path_is_answered_and_nothing_else() {
        let s = Some("/ssf");
        for p in [
            "/ssf/streams",
            "/SSF/Streams",
            "/%73sf/streams",
            "//ssf/./streams/",
            "/x/../ssf;a/verify",
            "/ssf/poll/abc",
        ] {
            assert_eq!(classify_public(p.as_bytes(), &paths(), None, s), Route::Ssf, "{p}");
        }
        for p in ["/ssf", "/ssf/", "/ssfx/streams", "/x/ssf/streams"] {
            assert_eq!(classify_public(p.as_bytes(), &paths(), None, s), Route::Proxy, "{p}");
        }
        assert_eq!(classify_public(b"/ssf/streams", &paths(), None, None), Route::Proxy, "off: proxied");
    }

    #[test]
    fn gw01_every_spelling_of_end_session_is_intercepted() {
        for p in [
            "/session/end",
            "/session/end/",
            "/Session/END",
            "/session/%65nd",
            "/session%2Fend",
            "/session%252Fend",
            "/session/end;jsessionid=x",
            "/session;x=1/end",
            "//session/end",
            "/session//end",
            "/./session/end",
            "/x/../session/end",
            "/session/./end",
            "/session\\end",
            "/oxauth/restv1/end_session",
            "/oxauth/restv1/END_SESSION/",
        ] {
            assert_ne!(classify(p.as_bytes(), &paths()), Route::Proxy, "{p} would reach the upstream");
        }
    }

    #[test]
    fn confirm_paths() {
        for p in ["/session/end/confirm", "/Session/End/Confirm/", "/session/end/%63onfirm", "//session/end/confirm"] {
            assert_eq!(classify(p.as_bytes(), &paths()), Route::Confirm(0), "{p}");
        }
        assert_eq!(classify(b"/oxauth/restv1/end_session/confirm", &paths()), Route::Confirm(1));
        assert_eq!(classify(b"/session/end/confirmx", &paths()), Route::Proxy);
        assert_eq!(classify(b"/session/end/frontchannel-report", &paths()), Route::Report);
        assert_eq!(classify(b"/OXAUTH/restv1/end_session/FrontChannel-Report/", &paths()), Route::Report);
        assert_eq!(classify(b"/session/end/frontchannel-reports", &paths()), Route::Proxy);
    }

    #[test]
    fn gw01_neighbours_are_proxied() {
        for p in ["/", "/session/endX", "/session/en", "/session", "/token", "/session/end/confirmx/y", "/%zz", "/a%"] {
            assert_eq!(classify(p.as_bytes(), &paths()), Route::Proxy, "{p}");
        }
    }

    #[test]
    fn endpoint_paths_match_in_every_spelling() {
        for p in [
            "/userinfo",
            "/userinfo/",
            "/USERINFO",
            "/userinfo;jsessionid=1",
            "//userinfo",
            "/%75serinfo",
            "/x/../userinfo",
            "/./userinfo",
            "/userinfo%2F",
        ] {
            assert!(same_path(&canonical(p.as_bytes()), "/userinfo"), "{p}");
        }
        for p in ["/userinfox", "/user", "/userinfo/x", "/"] {
            assert!(!same_path(&canonical(p.as_bytes()), "/userinfo"), "{p}");
        }
        assert!(same_path(&canonical(b"/Token/"), "/token/"));
        assert!(under_path(&canonical(b"/REG/abc"), "/reg"));
        assert!(under_path(&canonical(b"/reg"), "/reg"));
        assert!(!under_path(&canonical(b"/regx"), "/reg"));
    }

    #[test]
    fn normalize_handles_odd_input_without_panicking() {
        assert_eq!(normalize(b""), b"/");
        assert_eq!(normalize(b"%"), b"/%");
        assert_eq!(normalize(b"/%4"), b"/%4");
        assert_eq!(normalize(b"/../../.."), b"/");
        assert_eq!(normalize(b"/a/%ff"), b"/a/\xff");
    }
}
