//! Logging: tracing with an env filter (RUST_LOG wins over `log.level`), text or JSON on stderr.
//! pingora logs through the `log` crate; tracing-subscriber's `tracing-log` bridge picks it up.
//! Nothing logged by the gateway contains tokens, cookies, `state` or query strings (GW-07).

use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

pub fn init(log: &Log) {
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
