//! SIGHUP: re-read the config file and apply what can change without a restart.
//!
//! The new file is validated exactly as `check` does (the same problems, the same text, each
//! logged), and its templates compiled; anything wrong keeps the running configuration and
//! counts `config_reloads_total{result="invalid"}`. A valid file's `clients`, `templates_dir`
//! (re-read), `end_session`, `limits`, `rate_limit` and `log` (level and access log) apply to
//! requests that start after the reload; requests in flight finish with the configuration they
//! started with, and no connection is touched. The other sections (listeners, upstream,
//! issuer, keys, session store, registration, back-channel, revocation, server, log format)
//! shape sockets, connections and background work: a change there is logged, by key, as
//! needing a restart or an upgrade (`run --upgrade`), and the running value stays.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::certs::CertSet;
use super::parts::Parts;
use crate::config::{self, Config};
use crate::metrics::Metrics;
use crate::proxy::Gateway;
use crate::render::Pages;

pub(crate) struct Reloader {
    path: PathBuf,
    /// The configuration in force (the file's reloadable sections over the start-up values).
    running: Mutex<Config>,
    parts: Arc<Parts>,
    live: Arc<ArcSwap<Gateway>>,
    /// The listeners' certificate pairs: re-read on every SIGHUP, valid config or not.
    certs: Arc<CertSet>,
}

impl Reloader {
    pub(crate) fn new(
        path: PathBuf,
        running: Config,
        parts: Arc<Parts>,
        live: Arc<ArcSwap<Gateway>>,
        certs: Arc<CertSet>,
    ) -> Self {
        Reloader { path, running: Mutex::new(running), parts, live, certs }
    }

    /// Re-read the file; true when it was applied.
    pub(crate) fn reload(&self) -> bool {
        let applied = self.try_reload();
        if !applied {
            // The certificate files may have changed even when the config did not load.
            self.certs.refresh(true, None);
        }
        let result = if applied { "ok" } else { "invalid" };
        Metrics::get().config_reloads.with_label_values(&[result]).inc();
        applied
    }

    fn try_reload(&self) -> bool {
        let file = self.path.display().to_string();
        let new = match config::load(&self.path, &config::process_env) {
            Ok(c) => c,
            Err(problems) => return refuse(&problems.render(&file)),
        };
        let pages = match Pages::load(&new.templates_dir) {
            Ok(p) => Arc::new(p),
            Err(e) => return refuse(&format!("{file}: templates_dir: {e}")),
        };
        let Ok(mut running) = self.running.lock() else { return refuse("reload state poisoned") };
        let (merged, fixed) = merge(&running, &new);
        for key in fixed {
            tracing::warn!(key, "changed in the file, but applies only after a restart or an upgrade (run --upgrade); the running value stays");
        }
        self.parts.clients.replace_configured(&merged.clients);
        self.parts.backchannel.clients_changed();
        self.live.store(Arc::new(self.parts.gateway(&merged, pages)));
        crate::telemetry::reload(&merged.log);
        self.certs.refresh(true, Some(&new));
        *running = merged;
        tracing::info!(file = %file, "configuration reloaded");
        true
    }
}

/// Log every problem (one line each, the text `check` prints) and keep the running config.
fn refuse(problems: &str) -> bool {
    for line in problems.lines().filter(|l| !l.trim().is_empty()) {
        tracing::error!(problem = %line, "reload refused: the running configuration stays");
    }
    false
}

/// The running configuration with `new`'s reloadable sections, and the keys whose change in
/// `new` was not applied.
fn merge(running: &Config, new: &Config) -> (Config, Vec<&'static str>) {
    let mut merged = running.clone();
    merged.clients = new.clients.clone();
    merged.templates_dir = new.templates_dir.clone();
    merged.end_session = new.end_session.clone();
    // The connection cap and the header deadline belong to the listener's connections.
    merged.limits = crate::config::Limits {
        max_connections: running.limits.max_connections,
        header_timeout: running.limits.header_timeout,
        ..new.limits.clone()
    };
    merged.rate_limit = new.rate_limit;
    merged.log.level = new.log.level.clone();
    merged.log.access = new.log.access;
    let fixed = fixed_sections(&merged)
        .into_iter()
        .zip(fixed_sections(new))
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, _)| a.0)
        .collect();
    (merged, fixed)
}

/// The sections a reload does not apply, each as comparable text. Secrets compare by value.
fn fixed_sections(c: &Config) -> [(&'static str, String); 18] {
    let admin_token = c.admin.token.as_ref().map(|t| t.expose().to_string());
    let global =
        c.global_revocation.as_ref().map(|g| (&g.path, g.tokens.iter().map(|t| t.expose()).collect::<Vec<_>>()));
    let ssf = c.ssf.as_ref().map(|x| {
        let receivers: Vec<_> =
            x.receivers.iter().map(|r| (&r.name, r.token.expose(), &r.client_id, r.max_streams)).collect();
        (&x.path, receivers)
    });
    [
        ("listen", format!("{:?}", c.listen)),
        ("tls.listen", format!("{:?}", c.tls.as_ref().map(|t| t.listen))),
        ("mtls", format!("{:?}", c.mtls.as_ref().map(|m| (m.tls.listen, &m.client_ca_file, &m.public_origin)))),
        ("admin", format!("{:?} {admin_token:?}", c.admin)),
        ("upstream", format!("{:?}", c.upstream)),
        ("issuer", c.issuer.clone()),
        ("jwks", format!("{:?}", c.jwks)),
        ("session_store", format!("{:?}", c.session_store)),
        ("registration", format!("{:?}", c.registration)),
        ("backchannel", format!("{:?}", c.backchannel)),
        ("revocation", format!("{:?}", c.revocation)),
        ("server", format!("{:?}", c.server)),
        ("log.format", format!("{:?}", c.log.format)),
        ("limits.max_connections", c.limits.max_connections.to_string()),
        ("limits.header_timeout", format!("{:?}", c.limits.header_timeout)),
        ("global_token_revocation", format!("{global:?}")),
        ("ssf", format!("{ssf:?}")),
        ("session_management", format!("{:?}", c.session_management)),
    ]
}

#[cfg(test)]
mod tests {
    use super::merge;
    use crate::config::raw::RawConfig;

    fn load(raw: &RawConfig) -> crate::config::Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy.yaml");
        std::fs::write(&path, raw.to_yaml()).unwrap();
        crate::config::load(&path, &|_| None).unwrap()
    }

    fn base() -> RawConfig {
        let mut raw = RawConfig::new("http://127.0.0.1:3000", "https://op.example");
        raw.session_store.backend = "memory".into();
        raw.templates_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates").into();
        raw
    }

    #[test]
    fn the_same_file_changes_nothing_fixed() {
        let (a, b) = (load(&base()), load(&base()));
        let (_, fixed) = merge(&a, &b);
        assert_eq!(fixed, Vec::<&str>::new(), "two loads of one file compare equal");
    }

    #[test]
    fn reloadable_sections_apply_and_fixed_ones_are_named() {
        let running = load(&base());
        let mut raw = base();
        raw.log.level = Some("debug".into());
        raw.limits.max_uri_length = 4000;
        raw.limits.max_connections = 7;
        raw.listen = Some("127.0.0.1:18081".into());
        raw.issuer = "https://other.example".into();
        let (merged, fixed) = merge(&running, &load(&raw));
        assert_eq!(fixed, vec!["listen", "issuer", "limits.max_connections"]);
        assert_eq!(merged.log.level, "debug", "log level applies");
        assert_eq!(merged.limits.max_uri_length, 4000, "limits apply");
        assert_eq!(merged.limits.max_connections, running.limits.max_connections, "the connection cap stays");
        assert_eq!(merged.listen, running.listen, "the listener stays");
        assert_eq!(merged.issuer, running.issuer, "the issuer stays");
    }
}
