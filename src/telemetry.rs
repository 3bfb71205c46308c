//! Logging: tracing with an env filter (RUST_LOG wins over `log.level`), text or JSON on stderr.
//! pingora logs through the `log` crate; tracing-subscriber's `tracing-log` bridge picks it up.
//! Nothing logged by the gateway contains tokens, cookies, `state` or query strings (GW-07).

use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

pub(crate) fn init(log: &Log) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // try_init: a second call (tests) is harmless.
    let _ = match log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Count and log every panic, then let the previous hook run. A panic in request handling
/// unwinds only its own task (pingora runs each connection in one), so the process keeps
/// serving; the counter makes it visible (it should stay at zero).
pub(crate) fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        crate::metrics::Metrics::get().panics.inc();
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
