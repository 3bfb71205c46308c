//! OpenID Connect Session Management 1.0, the browser side: the browser-state cookie (the
//! spec's "OP browser state") that the check_session_iframe reads, `session_state` (SM section
//! 3: a hash of the client, the RP's origin, the browser state and a salt, followed by the
//! salt), and the iframe page itself, a constant page whose script CSP names by its hash.
//!
//! The cookie is readable by script (the iframe's), carries a random value only, and changes at
//! every logout that ends the browser's session, so every RP iframe then sees `changed`. While a
//! browser is sent to an RP's authorization endpoint, a short-lived HttpOnly cookie per
//! redirect-URI origin remembers the client, for OPs whose final redirect comes from a request
//! that does not name it (a login form's POST).

use base64::Engine;
use sha2::Digest;

use crate::config::SessionManagement;

/// How long the client remembered for an origin lives: one sign-in.
const CLIENT_COOKIE_SECONDS: u32 = 1800;

/// The browser-state cookie and the iframe that reads it.
#[derive(Debug, Clone)]
pub(crate) struct BrowserState {
    pub(crate) name: String,
    /// The issuer is https: `SameSite=None; Secure`, so RPs on other sites can read it in the
    /// iframe (where the browser allows third-party cookies); else `SameSite=Lax`.
    secure: bool,
    /// The iframe page and its CSP.
    page: String,
    csp: String,
}

impl BrowserState {
    pub(crate) fn new(sm: &SessionManagement, secure: bool) -> BrowserState {
        let script = IFRAME_SCRIPT.replace("__NAME__", &sm.cookie);
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()));
        let page = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>check_session_iframe</title></head><body><script>{script}</script></body></html>"
        );
        // Any RP may frame it: it shows nothing and answers only what a caller could compute.
        let csp = format!("default-src 'none'; script-src 'sha256-{hash}'; frame-ancestors *");
        BrowserState { name: sm.cookie.clone(), secure, page, csp }
    }

    /// The iframe page and its Content-Security-Policy.
    pub(crate) fn page(&self) -> (&str, &str) {
        (&self.page, &self.csp)
    }

    /// A new random browser state.
    pub(crate) fn fresh() -> String {
        crate::crypto::random_token()
    }

    /// The `Set-Cookie` line giving the browser the state `value`.
    pub(crate) fn set_cookie(&self, value: &str) -> String {
        let site = if self.secure { "SameSite=None; Secure" } else { "SameSite=Lax" };
        format!("{}={value}; Path=/; {site}", self.name)
    }

    /// The browser's state from its Cookie header.
    pub(crate) fn value(&self, cookie: Option<&str>) -> Option<String> {
        find(cookie, &self.name).filter(|v| !v.is_empty() && v.len() <= 64).map(String::from)
    }

    fn client_cookie_name(&self, origin: &str) -> String {
        let h = crate::crypto::token_hash(origin.as_bytes());
        format!("{}_c{}", self.name, &h[..12])
    }

    /// The line remembering, for the redirect URI's `origin`, which client is being authorized.
    pub(crate) fn client_cookie(&self, origin: &str, client_id: &str) -> String {
        let v = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(client_id.as_bytes());
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={v}; Path=/; HttpOnly; SameSite=Lax; Max-Age={CLIENT_COOKIE_SECONDS}{secure}",
            self.client_cookie_name(origin)
        )
    }

    /// The client remembered for `origin`.
    pub(crate) fn client_for(&self, cookie: Option<&str>, origin: &str) -> Option<String> {
        let v = find(cookie, &self.client_cookie_name(origin))?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v).ok()?;
        String::from_utf8(bytes).ok().filter(|c| !c.is_empty() && c.len() <= 256)
    }
}

/// The first value of cookie `name` in a Cookie header.
fn find<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?.split(';').find_map(|p| {
        let (n, v) = p.trim().split_once('=')?;
        (n.trim() == name).then(|| v.trim())
    })
}

/// SM section 3: `base64url(SHA-256(client_id + " " + origin + " " + browser state + " " +
/// salt)) + "." + salt`; the iframe computes the same with the origin of the message.
pub(crate) fn session_state(client_id: &str, origin: &str, browser_state: &str, salt: &str) -> String {
    let d = sha2::Sha256::digest(format!("{client_id} {origin} {browser_state} {salt}").as_bytes());
    format!("{}.{salt}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d))
}

/// `location` with `session_state` added where the response's other parameters are (the
/// fragment for implicit and hybrid responses, else the query), replacing one the OP put there.
pub(crate) fn with_session_state(location: &str, ss: &str) -> String {
    let (before, frag) = match location.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (location, None),
    };
    let in_fragment = frag.is_some_and(|f| {
        url::form_urlencoded::parse(f.as_bytes())
            .any(|(k, _)| ["code", "id_token", "access_token", "error"].contains(&k.as_ref()))
    });
    let add = |params: &str| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in url::form_urlencoded::parse(params.as_bytes()).filter(|(k, _)| k != "session_state") {
            s.append_pair(&k, &v);
        }
        s.append_pair("session_state", ss);
        s.finish()
    };
    if in_fragment {
        return format!("{before}#{}", add(frag.unwrap_or("")));
    }
    let (path, query) = before.split_once('?').unwrap_or((before, ""));
    let frag = frag.map(|f| format!("#{f}")).unwrap_or_default();
    format!("{path}?{}{frag}", add(query))
}

/// The iframe's script (SM section 3.2): a message `client_id + " " + session_state` from an
/// RP's frame is answered `unchanged` when the state computed for the sender's origin and the
/// current browser state equals it, `changed` when not, `error` when it cannot be read.
const IFRAME_SCRIPT: &str = r#"(function () {
  var NAME = "__NAME__";
  function state() {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (eq > 0 && parts[i].substring(0, eq) === NAME) return parts[i].substring(eq + 1);
    }
    return "";
  }
  function b64url(buf) {
    var s = String.fromCharCode.apply(null, new Uint8Array(buf));
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  window.addEventListener("message", function (e) {
    if (typeof e.data !== "string" || !e.source || e.data.length > 4096) return;
    var reply = function (r) { e.source.postMessage(r, e.origin); };
    var sp = e.data.lastIndexOf(" ");
    var ss = sp > 0 ? e.data.substring(sp + 1) : "";
    var dot = ss.lastIndexOf(".");
    if (dot <= 0 || !window.crypto || !crypto.subtle || !window.TextEncoder) { reply("error"); return; }
    var salt = ss.substring(dot + 1);
    var text = e.data.substring(0, sp) + " " + e.origin + " " + state() + " " + salt;
    crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)).then(function (d) {
      reply(b64url(d) + "." + salt === ss ? "unchanged" : "changed");
    }, function () { reply("error"); });
  });
})();"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn bs(secure: bool) -> BrowserState {
        BrowserState::new(&SessionManagement { path: "/check-session".into(), cookie: "lgw_bs".into() }, secure)
    }

    #[test]
    fn session_state_binds_client_origin_state_and_salt() {
        let a = session_state("rp-a", "https://rp.example", "S1", "salt");
        assert!(a.ends_with(".salt"));
        for other in [
            session_state("rp-b", "https://rp.example", "S1", "salt"),
            session_state("rp-a", "https://evil.example", "S1", "salt"),
            session_state("rp-a", "https://rp.example", "S2", "salt"),
            session_state("rp-a", "https://rp.example", "S1", "pepper"),
        ] {
            assert_ne!(a, other);
        }
        assert_eq!(a, session_state("rp-a", "https://rp.example", "S1", "salt"));
    }

    #[test]
    fn session_state_goes_where_the_response_parameters_are() {
        assert_eq!(
            with_session_state("https://rp/cb?code=c&state=s", "x.y"),
            "https://rp/cb?code=c&state=s&session_state=x.y"
        );
        assert_eq!(
            with_session_state("https://rp/cb#id_token=t&state=s", "x.y"),
            "https://rp/cb#id_token=t&state=s&session_state=x.y"
        );
        assert_eq!(
            with_session_state("https://rp/cb?code=c&session_state=op.old", "x.y"),
            "https://rp/cb?code=c&session_state=x.y"
        );
        assert_eq!(
            with_session_state("https://rp/cb?tenant=1#code=c", "x.y"),
            "https://rp/cb?tenant=1#code=c&session_state=x.y"
        );
    }

    #[test]
    fn cookies_and_the_page() {
        let (http, https) = (bs(false), bs(true));
        assert_eq!(http.set_cookie("v"), "lgw_bs=v; Path=/; SameSite=Lax");
        assert_eq!(https.set_cookie("v"), "lgw_bs=v; Path=/; SameSite=None; Secure");
        assert_eq!(http.value(Some("a=1; lgw_bs=S1; b=2")).as_deref(), Some("S1"));
        assert_eq!(http.value(Some("lgw_bsx=S1")), None);
        let line = https.client_cookie("https://rp.example", "rp a;b");
        assert!(line.contains("HttpOnly") && line.ends_with("; Secure"), "{line}");
        let pair = line.split(';').next().unwrap();
        assert_eq!(https.client_for(Some(pair), "https://rp.example").as_deref(), Some("rp a;b"));
        assert_eq!(https.client_for(Some(pair), "https://other.example"), None, "per origin");
        let (page, csp) = http.page();
        assert!(page.contains("var NAME = \"lgw_bs\""));
        let script = page.split("<script>").nth(1).unwrap().split("</script>").next().unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()));
        assert!(csp.contains(&format!("'sha256-{hash}'")), "CSP names the script's hash");
    }
}
