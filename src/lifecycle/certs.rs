//! Certificate rotation for the https and mutual-TLS listeners: every second the pairs' files
//! are looked at (modification time, size, inode: an atomic rename counts), and on SIGHUP they
//! are read again whatever they look like (with the reloaded config's paths). A complete new
//! pair that matches is used for new handshakes at once; one that does not load or match is
//! refused, logged under its key (`tls.key_file: … does not match …`), counted in
//! `tls_reloads_total{result="invalid"}`, and the old pair stays. Established connections keep
//! the pair they started with.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::tls::Certs;

/// How often the files are looked at (CONTRACT: a new pair in use within 5 seconds).
const POLL: Duration = Duration::from_secs(1);

/// The listeners' pairs by config section (`tls`, `mtls`).
#[derive(Default)]
pub(crate) struct CertSet(pub(crate) Vec<(&'static str, Arc<Certs>)>);

impl CertSet {
    /// Look at (or with `force`, re-read) every pair; `config` gives the paths after a reload.
    pub(crate) fn refresh(&self, force: bool, config: Option<&Config>) {
        for (section, certs) in &self.0 {
            let paths = config.and_then(|c| match *section {
                "tls" => c.tls.as_ref(),
                _ => c.mtls.as_ref().map(|m| &m.tls),
            });
            let paths = paths.map(|t| (t.cert_file.as_path(), t.key_file.as_path()));
            let m = &Metrics::get().tls_reloads;
            match certs.refresh(force, paths) {
                Ok(false) => {}
                Ok(true) => {
                    m.with_label_values(&["ok"]).inc();
                    tracing::info!(listener = *section, "certificate pair loaded; new handshakes use it");
                }
                Err(e) => {
                    m.with_label_values(&["invalid"]).inc();
                    let key = format!("{section}.{}", e.part.key());
                    tracing::error!(key = %key, problem = %e.message, "new certificate pair refused; the previous pair stays in use");
                }
            }
        }
    }
}

/// The background service that looks at the files.
pub(crate) struct CertWatcher(pub(crate) Arc<CertSet>);

#[async_trait]
impl BackgroundService for CertWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut watching = true;
        loop {
            tokio::select! {
                changed = shutdown.changed(), if watching => {
                    if changed.is_err() { watching = false; } else if *shutdown.borrow() { return; }
                }
                _ = tick.tick() => {
                    let set = self.0.clone();
                    // File reads off the runtime's worker.
                    let _ = tokio::task::spawn_blocking(move || set.refresh(false, None)).await;
                }
            }
        }
    }
}
