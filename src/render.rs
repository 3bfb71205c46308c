//! Pages the gateway writes itself, rendered with handlebars from `templates_dir`.
//!
//! The registry is built once at start (strict mode: a missing variable is an error, caught by
//! `check` and by a render test of every template) and shared read-only. Templates use only
//! `{{escaped}}` values, never `{{{raw}}}`; `load` refuses a template with a triple-stash.
//! Each page gets a fresh CSP nonce for its one inline `<style>`; the HTTP headers that go with
//! a page (CSP, no-store, nosniff, no-referrer) are set by `proxy::respond`.

use std::path::Path;

use base64::Engine;
use handlebars::Handlebars;
use serde::Serialize;

/// Templates every install must have.
pub const REQUIRED: &[&str] = &["error"];

/// The compiled templates.
#[derive(Debug)]
pub struct Pages {
    hb: Handlebars<'static>,
}

/// A rendered page, ready to send.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    pub html: String,
    /// The nonce the page's inline style uses; goes into the CSP header.
    pub nonce: String,
}

#[derive(Serialize)]
struct ErrorData<'a> {
    nonce: &'a str,
    status: u16,
    title: &'a str,
    message: &'a str,
}

impl Pages {
    /// Compile every `*.hbs` in `dir`; fails with a message naming the file on any problem.
    pub fn load(dir: &Path) -> Result<Pages, String> {
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
        let pages = Pages { hb };
        // Render each page once now, so a template that needs a variable we do not pass fails
        // at start (and in `check`), not on a user's request.
        pages.error(500, "Check", "Check").map(|_| ())?;
        Ok(pages)
    }

    /// An error page (502, 504, 400, ...). `title` and `message` are our own words, never input.
    pub fn error(&self, status: u16, title: &str, message: &str) -> Result<Page, String> {
        let nonce = new_nonce();
        let html = self
            .hb
            .render("error", &ErrorData { nonce: &nonce, status, title, message })
            .map_err(|e| format!("rendering error page: {e}"))?;
        Ok(Page { status, html, nonce })
    }
}

/// 128 random bits, base64: a CSP nonce.
pub fn new_nonce() -> String {
    let mut b = [0u8; 16];
    // getrandom fails only when the OS has no entropy source at all; a fixed nonce then is
    // still no worse than `'self'` for pages that hold no user input.
    if getrandom::fill(&mut b).is_err() {
        b = [0x5a; 16];
    }
    // URL-safe alphabet without padding: nothing handlebars would escape, valid in CSP.
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
    }

    #[test]
    fn shipped_templates_compile_and_escape() {
        let pages = Pages::load(&templates()).unwrap();
        let p = pages.error(502, "Bad <gateway>", "x\" onload=\"alert(1)").unwrap();
        assert!(p.html.contains("Bad &lt;gateway&gt;"));
        assert!(!p.html.contains("onload=\"alert"));
        assert!(p.html.contains(&format!("nonce=\"{}\"", p.nonce)));
    }

    #[test]
    fn triple_stash_and_missing_templates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("error.hbs"), "{{{message}}}").unwrap();
        assert!(Pages::load(dir.path()).unwrap_err().contains("raw"));
        std::fs::write(dir.path().join("error.hbs"), "{{title}}").unwrap();
        std::fs::rename(dir.path().join("error.hbs"), dir.path().join("other.hbs")).unwrap();
        assert!(Pages::load(dir.path()).unwrap_err().contains("missing template error.hbs"));
    }

    #[test]
    fn strict_mode_catches_unknown_variables_at_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("error.hbs"), "{{title}} {{no_such_thing}}").unwrap();
        assert!(Pages::load(dir.path()).is_err());
    }
}
