//! Pages the gateway writes itself, rendered with handlebars from `templates_dir`, in the
//! language `ui_locales` asks for when a translation exists (RPI-12: never an error).
//!
//! The registry is built once at start (strict mode: a missing variable is an error, caught by
//! `check` because every page is rendered once at load) and shared read-only. Templates use only
//! `{{escaped}}` values, never `{{{raw}}}`; `load` refuses a template with a triple-stash. URLs
//! reach a template only after validation (registered redirect URIs, configured front-channel
//! URIs). Each page gets a fresh CSP nonce for its inline style and script; the headers that go
//! with it (CSP, no-store, nosniff, no-referrer) are set by `proxy::respond`. Every page is a
//! block in one layout (`layout.hbs`: the head, the style block, the body), given its `title`.

use std::collections::BTreeMap;
use std::path::Path;

use handlebars::Handlebars;
use serde::Serialize;

/// Templates every install must have.
pub(crate) const REQUIRED: &[&str] = &["error", "confirm", "logged_out", "frontchannel"];
/// The language every other translation falls back to.
mod lang;

use self::lang::load_locales;

pub(crate) const DEFAULT_LANG: &str = "en";

/// The compiled templates and translations.
#[derive(Debug)]
pub(crate) struct Pages {
    hb: Handlebars<'static>,
    /// Language tag (lower case) → message key → text. Every language has every key of `en`.
    locales: BTreeMap<String, BTreeMap<String, String>>,
}

/// What the gateway answers itself, whoever decided it (a limit, the credential check, a
/// logout, a failed upstream): one type, written by `proxy::respond::write` with the headers
/// every generated answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A generated page (its status inside), with extra headers (`Set-Cookie`, `Allow`, …).
    Page { page: Page, headers: Vec<(&'static str, String)> },
    /// 303 See Other.
    Redirect { location: String, headers: Vec<(&'static str, String)> },
    /// An OAuth-style JSON answer (the edge's refusals), never cached, with at most one extra
    /// header (`WWW-Authenticate`, `Retry-After`).
    Json { status: u16, body: &'static str, header: Option<(&'static str, &'static str)> },
    /// Plain text: what is left when even the error template failed.
    Plain { status: u16, text: &'static str },
    /// 204 No Content, never cached: a back-end call that succeeded.
    NoContent,
    /// A JSON document made for this request (the Shared Signals API), never cached; a 200 or
    /// 204 may come without a body.
    Document { status: u16, body: Option<String>, allow: Option<&'static str> },
}

impl Answer {
    /// A JSON answer without extra header.
    pub(crate) const fn json(status: u16, body: &'static str) -> Answer {
        Answer::Json { status, body, header: None }
    }

    pub(crate) fn status(&self) -> u16 {
        match self {
            Answer::Page { page, .. } => page.status,
            Answer::Redirect { .. } => 303,
            Answer::Json { status, .. } | Answer::Plain { status, .. } => *status,
            Answer::NoContent => 204,
            Answer::Document { status, .. } => *status,
        }
    }

    /// Add a header to a page or redirect (JSON and plain answers take none).
    pub(crate) fn push_header(&mut self, name: &'static str, value: String) {
        if let Answer::Page { headers, .. } | Answer::Redirect { headers, .. } = self {
            headers.push((name, value));
        }
    }
}

/// A rendered page, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) html: String,
    /// The nonce the page's inline style and script use.
    pub(crate) nonce: String,
    /// Origins the page frames (front-channel logout), for CSP `frame-src`.
    pub(crate) frame_origins: Vec<String>,
}

/// Which fixed wording an error page shows; never request data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    Rejected,
    ConfirmationInvalid,
    Unavailable,
    MethodNotAllowed,
    TooLarge,
    UriTooLong,
    HeadersTooLarge,
    TooManyRequests,
    UnsupportedMediaType,
    BadGateway,
    GatewayTimeout,
    NotFound,
    Internal,
}

impl ErrorKind {
    fn key(self) -> &'static str {
        match self {
            ErrorKind::Rejected => "rejected",
            ErrorKind::ConfirmationInvalid => "confirmation_invalid",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::UriTooLong => "uri_too_long",
            ErrorKind::HeadersTooLarge => "headers_too_large",
            ErrorKind::TooManyRequests => "too_many_requests",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::BadGateway => "bad_gateway",
            ErrorKind::GatewayTimeout => "gateway_timeout",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Internal => "internal",
        }
    }
}

/// What the confirmation page says besides its fixed wording.
pub(crate) struct Confirmation<'a> {
    /// Where the form posts.
    pub(crate) action: &'a str,
    /// The single-use token it carries.
    pub(crate) token: &'a str,
    /// Where the browser goes afterwards: a host, or a native app's scheme.
    pub(crate) destination: Option<&'a str>,
    /// The application the request proved (its name, or its client_id).
    pub(crate) application: Option<&'a str>,
    /// Where "stay signed in" leads: the post-logout URI the request named, else the OP's root.
    pub(crate) stay: &'a str,
}

/// One front-channel logout iframe.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Frame {
    pub(crate) src: String,
    /// Origin of `src`, for CSP.
    #[serde(skip)]
    pub(crate) origin: String,
}

#[derive(Serialize)]
struct Common<'a> {
    lang: &'a str,
    nonce: &'a str,
    t: &'a BTreeMap<String, String>,
}

impl Pages {
    /// Compile every `*.hbs` in `dir` and load `dir/locales/*.json`; fails with a message
    /// naming the file on any problem.
    pub(crate) fn load(dir: &Path) -> Result<Pages, String> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".hbs")) else {
                continue;
            };
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if text.contains("{{{") {
                return Err(format!("{}: raw {{{{{{...}}}}}} output is not allowed", path.display()));
            }
            hb.register_template_string(name, text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        for name in REQUIRED {
            if !hb.has_template(name) {
                return Err(format!("{}: missing template {name}.hbs", dir.display()));
            }
        }
        let pages = Pages { hb, locales: load_locales(&dir.join("locales"))? };
        // Render every page in every language now, so a template that needs a variable we do
        // not pass, or a message a translation lacks, fails at start (and in `check`).
        for lang in pages.locales.keys() {
            pages.error(500, ErrorKind::Internal, lang)?;
            let c = Confirmation {
                action: "/x/confirm",
                token: "t",
                destination: Some("rp.example.com"),
                application: Some("App"),
                stay: "https://rp.example.com/bye",
            };
            pages.confirm(lang, &c)?;
            pages.logged_out(lang)?;
            let f = Frame { src: "https://rp.example/fc".into(), origin: "https://rp.example".into() };
            pages.frontchannel(
                lang,
                std::slice::from_ref(&f),
                Some("https://rp.example/bye"),
                5000,
                Some(("/session/end/frontchannel-report", "AAAAAAAAAAAAAAAAAAAAAA")),
            )?;
            pages.frontchannel(lang, &[f], None, 5000, None)?;
        }
        Ok(pages)
    }

    fn t(&self, lang: &str) -> &BTreeMap<String, String> {
        self.locales.get(lang).or_else(|| self.locales.get(DEFAULT_LANG)).unwrap_or(&EMPTY)
    }

    fn render(&self, name: &str, data: &serde_json::Value) -> Result<String, String> {
        self.hb.render(name, data).map_err(|e| format!("rendering {name}: {e}"))
    }

    fn common(&self, lang: &str, nonce: &str) -> serde_json::Value {
        serde_json::to_value(Common { lang, nonce, t: self.t(lang) }).unwrap_or_default()
    }

    /// An error page with fixed wording for `kind`.
    pub(crate) fn error(&self, status: u16, kind: ErrorKind, lang: &str) -> Result<Page, String> {
        let nonce = new_nonce();
        let t = self.t(lang);
        let mut data = self.common(lang, &nonce);
        data["status"] = status.into();
        data["title"] = t.get(&format!("error_{}_title", kind.key())).cloned().unwrap_or_default().into();
        data["message"] = t.get(&format!("error_{}_body", kind.key())).cloned().unwrap_or_default().into();
        Ok(Page { status, html: self.render("error", &data)?, nonce, frame_origins: Vec::new() })
    }

    /// The confirmation page: one form posting `token` to `action`, and a way to stay signed in.
    pub(crate) fn confirm(&self, lang: &str, c: &Confirmation<'_>) -> Result<Page, String> {
        let nonce = new_nonce();
        let mut data = self.common(lang, &nonce);
        data["action"] = c.action.into();
        data["token"] = c.token.into();
        data["stay"] = c.stay.into();
        if let Some(d) = c.destination {
            data["destination"] = d.into();
        }
        if let Some(a) = c.application {
            data["application"] = a.into();
        }
        Ok(Page { status: 200, html: self.render("confirm", &data)?, nonce, frame_origins: Vec::new() })
    }

    /// The error page for `status` as an [`Answer`]; plain text when even the template fails.
    pub(crate) fn error_answer(&self, status: u16, kind: ErrorKind, lang: &str) -> Answer {
        match self.error(status, kind, lang) {
            Ok(page) => Answer::Page { page, headers: Vec::new() },
            Err(e) => {
                tracing::error!(error = %e, "error template failed");
                Answer::Plain { status, text: "The gateway could not complete this request." }
            }
        }
    }

    /// "You are signed out", nothing to load, nowhere to go.
    pub(crate) fn logged_out(&self, lang: &str) -> Result<Page, String> {
        let nonce = new_nonce();
        let data = self.common(lang, &nonce);
        Ok(Page { status: 200, html: self.render("logged_out", &data)?, nonce, frame_origins: Vec::new() })
    }

    /// The front-channel logout page: one sandboxed iframe per RP, then on to `next` (when
    /// given) after every iframe loaded or `timeout_ms` passed.
    pub(crate) fn frontchannel(
        &self,
        lang: &str,
        frames: &[Frame],
        next: Option<&str>,
        timeout_ms: u64,
        report: Option<(&str, &str)>,
    ) -> Result<Page, String> {
        let nonce = new_nonce();
        let mut data = self.common(lang, &nonce);
        data["frames"] = serde_json::to_value(frames).unwrap_or_default();
        // Where the page's script reports which iframes loaded, with its single-use ticket.
        let (report_url, report_ticket) = report.unwrap_or(("", ""));
        data["report_url"] = report_url.into();
        data["report_ticket"] = report_ticket.into();
        data["next"] = next.map(Into::into).unwrap_or(serde_json::Value::Null);
        data["timeout_ms"] = timeout_ms.into();
        // Browsers without script follow the meta refresh once the iframes had their time.
        data["refresh_secs"] = (timeout_ms.div_ceil(1000) + 1).into();
        // "Signed out" only once the iframes finished or timed out (the page's script).
        data["title"] = data["t"]["signing_out_title"].clone();
        let mut origins: Vec<String> = frames.iter().map(|f| f.origin.clone()).collect();
        origins.sort();
        origins.dedup();
        Ok(Page { status: 200, html: self.render("frontchannel", &data)?, nonce, frame_origins: origins })
    }
}

static EMPTY: BTreeMap<String, String> = BTreeMap::new();

/// 128 random bits: a CSP nonce or a token.
pub(crate) fn new_nonce() -> String {
    crate::crypto::random_token()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
    }

    #[test]
    fn shipped_templates_render_in_every_language() {
        let pages = Pages::load(&templates()).unwrap();
        assert!(pages.locales.len() >= 2);
        let p = pages.error(502, ErrorKind::BadGateway, "en").unwrap();
        assert!(p.html.contains(&format!("nonce=\"{}\"", p.nonce)));
        let fr = pages.error(400, ErrorKind::Rejected, "fr").unwrap();
        assert!(fr.html.contains("lang=\"fr\""));
    }

    #[test]
    fn ui_locales_picks_a_translation_or_english() {
        let pages = Pages::load(&templates()).unwrap();
        assert_eq!(pages.pick_lang(Some("fr-CA fr en"), None), "fr");
        assert_eq!(pages.pick_lang(Some("xx-YY tlh"), None), "en");
        assert_eq!(pages.pick_lang(Some("tlh FR"), None), "fr");
        // ui_locales first; then Accept-Language by weight; then English.
        assert_eq!(pages.pick_lang(Some("en"), Some("fr")), "en");
        assert_eq!(pages.pick_lang(Some("tlh"), Some("fr-CH, fr;q=0.9, en;q=0.8")), "fr");
        assert_eq!(pages.pick_lang(None, Some("en;q=0.5, fr-FR;q=0.7, *;q=0.9")), "fr");
        assert_eq!(pages.pick_lang(None, Some("fr;q=0, de")), "en");
        assert_eq!(pages.pick_lang(None, Some("fr;q=abc")), "fr");
        assert_eq!(pages.pick_lang(None, Some(",;,q=,;;")), "en");
        assert_eq!(pages.pick_lang(None, None), "en");
        assert_eq!(pages.pick_lang(Some("   "), None), "en");
    }

    #[test]
    fn frontchannel_page_escapes_urls_and_lists_origins() {
        let pages = Pages::load(&templates()).unwrap();
        let frames = [
            Frame { src: "https://a.example/fc?x=1&sid=\"><script>".into(), origin: "https://a.example".into() },
            Frame { src: "https://b.example/fc".into(), origin: "https://b.example".into() },
        ];
        let p = pages.frontchannel("en", &frames, Some("https://a.example/bye?state=a%26b"), 5000, None).unwrap();
        assert!(!p.html.contains("\"><script>"), "{}", p.html);
        assert_eq!(p.html.matches("<iframe").count(), 2);
        assert!(p.html.contains("sandbox=\"allow-scripts allow-same-origin\""));
        assert_eq!(p.frame_origins, ["https://a.example", "https://b.example"]);
    }

    #[test]
    fn triple_stash_and_missing_templates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for name in REQUIRED {
            std::fs::copy(templates().join(format!("{name}.hbs")), dir.path().join(format!("{name}.hbs"))).unwrap();
        }
        std::fs::create_dir(dir.path().join("locales")).unwrap();
        std::fs::copy(templates().join("locales/en.json"), dir.path().join("locales/en.json")).unwrap();
        assert!(Pages::load(dir.path()).is_ok());
        std::fs::write(dir.path().join("error.hbs"), "{{{title}}}").unwrap();
        assert!(Pages::load(dir.path()).unwrap_err().contains("raw"));
        std::fs::remove_file(dir.path().join("error.hbs")).unwrap();
        assert!(Pages::load(dir.path()).unwrap_err().contains("missing template error.hbs"));
        std::fs::write(dir.path().join("error.hbs"), "{{title}} {{no_such_thing}}").unwrap();
        assert!(Pages::load(dir.path()).is_err(), "strict mode catches unknown variables at load");
    }
}
