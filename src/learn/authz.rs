//! Authorization responses on their way to the browser:
//! the code in an OP redirect or a `response_mode=form_post` page is bound to the OP session
//! cookies the browser sent or was given, so redeeming it later ties those cookies to the
//! session; an ID token in one (implicit and hybrid flows) records its session directly.
//!
//! Form_post pages are copied (capped, decoded from gzip/deflate like token responses) as they
//! stream through and read at the end in a spawned task; the page the browser gets is never
//! altered or delayed. This module does not decide which responses are authorization
//! responses; `proxy` does.

use std::sync::Arc;

use bytes::Bytes;

use super::codings::{count_skipped, decode, Encoding};
use super::{bounded, token_hash, Learner, RawToken};

/// How long a code's cookie binding waits for the code to be redeemed.
const CODE_BINDING_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// Largest form_post page (as sent, before decoding) that is inspected.
const FORM_POST_MAX: usize = 64 * 1024;

/// A form_post page being copied, with what the request and response said of cookies.
pub(crate) struct FormPost {
    buf: Vec<u8>,
    encoding: Encoding,
    cookie: Option<String>,
    set_cookies: Vec<String>,
}

impl FormPost {
    /// Start copying an HTML page in `content_encoding`, or None (counted, warned once) when the
    /// gateway cannot decode that coding.
    pub(crate) fn start(
        content_encoding: Option<&str>,
        cookie: Option<String>,
        set_cookies: Vec<String>,
    ) -> Option<Self> {
        let Some(encoding) = Encoding::parse(content_encoding) else {
            count_skipped("encoding");
            tracing::warn!("a possible form_post page in a content coding the gateway cannot decode; not read");
            return None;
        };
        Some(FormPost { buf: Vec::new(), encoding, cookie, set_cookies })
    }

    /// Copy a chunk; false when the page is too large to inspect (stop copying).
    pub(crate) fn push(&mut self, chunk: &Bytes) -> bool {
        if self.buf.len() + chunk.len() > FORM_POST_MAX {
            count_skipped("too_large");
            return false;
        }
        self.buf.extend_from_slice(chunk);
        true
    }
}

impl Learner {
    /// Hashes of the OP cookie values the OP issued or accepted in this exchange: the ones this
    /// response sets, and the ones the browser sent that the response leaves in place. A value
    /// the response replaces or expires is not the OP's (it may have been planted), so it never
    /// joins a session; at most [`crate::cookies::MAX_OP_COOKIES`] of each are read.
    fn accepted_cookies(&self, request_cookies: Option<&str>, set_cookies: &[&str]) -> Vec<String> {
        let names = &self.cookies.names;
        let mut replaced: Vec<&str> = Vec::new();
        let mut hashes = Vec::new();
        for sc in set_cookies {
            let Some((name, value, live)) = set_cookie_value(sc) else { continue };
            let Some(n) = names.iter().find(|n| n.as_str() == name) else { continue };
            replaced.push(n);
            if live && !value.is_empty() && hashes.len() < crate::cookies::MAX_OP_COOKIES {
                hashes.push(token_hash(value.as_bytes()));
            }
        }
        let kept = self
            .cookies
            .all_pairs(request_cookies)
            .filter(|(n, _)| !replaced.contains(n))
            .take(crate::cookies::MAX_OP_COOKIES)
            .map(|(_, v)| token_hash(v.as_bytes()));
        hashes.extend(kept);
        hashes.dedup();
        hashes
    }

    /// An OP redirect carried a code: bind it to the OP cookies the OP issued or accepted (see
    /// `accepted_cookies`). The first binding of a code stays: a later response that carries the
    /// same code (a careless OP reflecting it) cannot rebind it to other cookies. Awaited (bounded by the store's timeouts) before the redirect goes
    /// out, so the RP cannot redeem the code before the binding exists; a store failure is only
    /// logged, never a failed response.
    pub(crate) async fn bind_code(&self, code_hash: String, request_cookies: Option<&str>, set_cookies: &[&str]) {
        let hashes = self.accepted_cookies(request_cookies, set_cookies);
        if hashes.is_empty() {
            return;
        }
        if let Err(e) = self.store.bind_code(&code_hash, &hashes, CODE_BINDING_TTL).await {
            tracing::warn!(error = %e, "code not bound to the OP cookies (store unavailable)");
        }
    }

    /// An authorization response (redirect parameters or a form_post page) seen on its way to
    /// the browser: bind its code to the browser's OP cookies (awaited), and record the session
    /// an ID token in it names (implicit and hybrid flows; in the background).
    pub(crate) async fn on_authorization_response(
        self: &Arc<Self>,
        params: &[(String, String)],
        request_cookies: Option<&str>,
        set_cookies: &[&str],
    ) {
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        if let Some(code) = get("code") {
            self.bind_code(token_hash(code.as_bytes()), request_cookies, set_cookies).await;
        }
        if let Some(id_token) = get("id_token") {
            let cookies = self.accepted_cookies(request_cookies, set_cookies);
            let expires_in = get("expires_in").and_then(|e| e.parse::<u64>().ok());
            let tokens = get("access_token")
                .map(|t| {
                    vec![RawToken {
                        value: t.to_string(),
                        hint: "access_token",
                        ttl: bounded(expires_in, self.access_token_ttl),
                    }]
                })
                .unwrap_or_default();
            let (me, id_token) = (self.clone(), id_token.to_string());
            tokio::spawn(async move { me.record(&id_token, tokens, cookies).await });
        }
    }

    /// A form_post page ended: read its hidden inputs and learn from them, in the background.
    pub(crate) fn on_form_post_end(self: &Arc<Self>, page: FormPost) {
        let me = self.clone();
        tokio::spawn(async move {
            let Some(html) = decode(page.buf, page.encoding, FORM_POST_MAX * 8) else {
                count_skipped("corrupt");
                return tracing::warn!("a compressed form_post page did not decode; not read");
            };
            let params = form_post_params(&String::from_utf8_lossy(&html));
            if params.iter().any(|(k, _)| k == "code" || k == "id_token") {
                let set: Vec<&str> = page.set_cookies.iter().map(String::as_str).collect();
                me.on_authorization_response(&params, page.cookie.as_deref(), &set).await;
            }
        });
    }
}

/// The name and value of a `Set-Cookie` header, and whether it keeps the cookie (false when it
/// expires it: `Max-Age` zero or negative, or an `Expires` in the past).
fn set_cookie_value(set_cookie: &str) -> Option<(&str, &str, bool)> {
    let mut parts = set_cookie.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    // RFC 6265 §5.3: Max-Age wins over Expires.
    let (mut max_age, mut expires) = (None, None);
    for attr in parts {
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        let k = k.trim();
        if k.eq_ignore_ascii_case("max-age") {
            max_age = v.trim().parse::<i64>().ok().map(|n| n > 0).or(max_age);
        } else if k.eq_ignore_ascii_case("expires") {
            expires = httpdate::parse_http_date(v.trim()).ok().map(|t| t > std::time::SystemTime::now()).or(expires);
        }
    }
    Some((name.trim(), value.trim().trim_matches('"'), max_age.or(expires).unwrap_or(true)))
}

/// The parameters of an authorization redirect: its query and its fragment, decoded.
pub(crate) fn redirect_params(location: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (before_frag, frag) = location.split_once('#').unwrap_or((location, ""));
    let query = before_frag.split_once('?').map(|x| x.1).unwrap_or("");
    for part in [query, frag] {
        out.extend(url::form_urlencoded::parse(part.as_bytes()).into_owned());
    }
    out
}

/// The hidden inputs of a form_post page (`<input type="hidden" name=".." value="..">`), with
/// the HTML character references OPs use in attribute values decoded.
pub(crate) fn form_post_params(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for tag in html.split("<input").skip(1).take(32) {
        let tag = tag.split('>').next().unwrap_or("");
        let attr = |a: &str| {
            let v = tag.split(&format!("{a}=\"")).nth(1)?.split('"').next()?;
            Some(
                v.replace("&quot;", "\"")
                    .replace("&#x27;", "'")
                    .replace("&#39;", "'")
                    .replace("&#x2F;", "/")
                    .replace("&#x3D;", "=")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&"),
            )
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            out.push((n, v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_response_parameters() {
        let p = redirect_params("https://rp/cb?code=a%2Bb&state=s#id_token=x.y.z&access_token=at");
        assert!(p.contains(&("code".into(), "a+b".into())));
        assert!(p.contains(&("id_token".into(), "x.y.z".into())));
        let html = r#"<form method="post"><input type="hidden" name="code" value="c&amp;1"/>
            <input type="hidden" name="state" value="&quot;s&quot;"><input name="id_token" value="h.p.s"></form>"#;
        let f = form_post_params(html);
        assert_eq!(f[0], ("code".into(), "c&1".into()));
        assert_eq!(f[1], ("state".into(), "\"s\"".into()));
        assert_eq!(f[2], ("id_token".into(), "h.p.s".into()));
        assert!(form_post_params("<input name=").is_empty());
    }

    #[test]
    fn set_cookie_values_and_whether_they_keep_the_cookie() {
        assert_eq!(set_cookie_value("op=v1; Path=/; HttpOnly"), Some(("op", "v1", true)));
        assert_eq!(set_cookie_value("op=; Max-Age=0"), Some(("op", "", false)));
        assert_eq!(set_cookie_value("op=x; max-age=-1"), Some(("op", "x", false)));
        assert_eq!(set_cookie_value("op=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT"), Some(("op", "x", false)));
        assert_eq!(set_cookie_value("op=x; Expires=Thu, 01 Jan 2099 00:00:00 GMT"), Some(("op", "x", true)));
        // Max-Age wins over Expires (RFC 6265 5.3).
        assert_eq!(
            set_cookie_value("op=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60"),
            Some(("op", "x", true))
        );
        assert_eq!(set_cookie_value("op=\"q\"; Path=/"), Some(("op", "q", true)));
        assert_eq!(set_cookie_value("garbage"), None);
    }

    #[test]
    fn form_post_copies_are_capped_and_codings_checked() {
        assert!(FormPost::start(Some("br"), None, Vec::new()).is_none());
        let mut fp = FormPost::start(Some("gzip"), None, Vec::new()).unwrap();
        assert_eq!(fp.encoding, Encoding::Gzip);
        assert!(fp.push(&Bytes::from(vec![0u8; FORM_POST_MAX])));
        assert!(!fp.push(&Bytes::from_static(b"x")));
    }
}
