//! Logging: tracing with an env filter (RUST_LOG wins over `log.level`), text or JSON on stderr.
//! pingora logs through the `log` crate; tracing-subscriber's `tracing-log` bridge picks it up.
//! Nothing logged by the gateway contains tokens, cookies, `state` or query strings (GW-07).

use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

/// Replaces the running filter (`log.level` on SIGHUP); set by [`init`].
type SetFilter = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;
static SET_FILTER: OnceLock<SetFilter> = OnceLock::new();

/// The filter `log.level` asks for, unless RUST_LOG names one (then RUST_LOG's, and `true`).
fn filter_for(log: &Log) -> (EnvFilter, bool) {
    match std::env::var("RUST_LOG").ok().and_then(|v| EnvFilter::try_new(v).ok()) {
        Some(f) => (f, true),
        None => (EnvFilter::new(&log.level), false),
    }
}

pub(crate) fn init(log: &Log) {
    let (filter, _) = filter_for(log);
    // Colours only on a terminal: a journal or a file gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(ansi);
    // try_init: a second call (tests) is harmless; the first one's filter stays the reloadable one.
    let _ = match log.format {
        LogFormat::Json => {
            let b = builder.json().with_env_filter(filter).with_filter_reloading();
            let handle = b.reload_handle();
            let _ = SET_FILTER.set(Box::new(move |f| handle.reload(f).map_err(|e| e.to_string())));
            b.try_init()
        }
        LogFormat::Text => {
            let b = builder.with_env_filter(filter).with_filter_reloading();
            let handle = b.reload_handle();
            let _ = SET_FILTER.set(Box::new(move |f| handle.reload(f).map_err(|e| e.to_string())));
            b.try_init()
        }
    };
}

/// Apply a reloaded `log.level` to the running process (a change of `log.format` needs a
/// restart; RUST_LOG, when set, still wins).
pub(crate) fn reload(log: &Log) {
    let (filter, from_env) = filter_for(log);
    if from_env {
        tracing::info!("RUST_LOG is set and wins over log.level; the log filter stays");
        return;
    }
    if let Some(Err(e)) = SET_FILTER.get().map(|set| set(filter)) {
        tracing::warn!(error = %e, "log.level could not be applied");
    }
}

/// Count and log every panic, then let the previous hook run. A panic in request handling
/// unwinds only its own task (pingora runs each connection in one), so the process keeps
/// serving; the counter makes it visible (it should stay at zero).
pub(crate) fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Not `get`: a panic inside metric registration would wait on itself.
        if let Some(m) = crate::metrics::Metrics::registered() {
            m.panics.inc();
        }
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(location = %at, "panic caught; the request or task it happened in was abandoned");
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    #[test]
    fn panics_are_counted_and_stay_in_their_task() {
        super::install_panic_hook();
        let before = crate::metrics::Metrics::get().panics.get();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let res = rt.block_on(async { tokio::spawn(async { panic!("test panic") }).await });
        assert!(res.unwrap_err().is_panic(), "the panic ended only its task");
        assert!(crate::metrics::Metrics::get().panics.get() > before);
        let _ = std::panic::take_hook();
    }
}
