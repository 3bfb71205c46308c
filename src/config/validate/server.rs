//! `limits`, `rate_limit`, `log` and `server`: how the process runs.

use std::num::NonZeroU32;
use std::time::Duration;

use super::V;
use crate::config::raw::{RawLimits, RawLog, RawRateLimit, RawServer};
use crate::config::{Limits, Log, LogFormat, RateLimit, Server};

pub(super) fn limits(v: &mut V, raw: &RawLimits) -> Limits {
    // pingora refuses more than 256 headers or 1 MiB of header by itself (400); ours apply below.
    let mut count = |key: &str, n: usize, min: usize, max: usize| {
        if n < min || n > max {
            v.err(format!("limits.{key}"), format!("must be between {min} and {max}"));
        }
        n
    };
    let l = Limits {
        max_connections: count("max_connections", raw.max_connections, 1, 1_000_000),
        max_uri_length: count("max_uri_length", raw.max_uri_length, 256, 1 << 20),
        max_headers: count("max_headers", raw.max_headers, 8, 256),
        max_header_bytes: count("max_header_bytes", raw.max_header_bytes, 1024, 1 << 20),
        end_session_max_uri_length: count("end_session_max_uri_length", raw.end_session_max_uri_length, 256, 1 << 20),
        end_session_max_headers: count("end_session_max_headers", raw.end_session_max_headers, 8, 256),
        end_session_max_header_bytes: count(
            "end_session_max_header_bytes",
            raw.end_session_max_header_bytes,
            1024,
            1 << 20,
        ),
        header_timeout: Duration::ZERO,
        keepalive_timeout: Duration::ZERO,
    };
    Limits {
        header_timeout: v.duration("limits.header_timeout", &raw.header_timeout, Duration::from_secs(10)),
        keepalive_timeout: v.duration("limits.keepalive_timeout", &raw.keepalive_timeout, Duration::from_secs(60)),
        ..l
    }
}

/// `rate_limit`; None when `per_second` is 0 (off).
pub(super) fn rate_limit(v: &mut V, raw: &RawRateLimit) -> Option<RateLimit> {
    let per_second = NonZeroU32::new(raw.per_second)?;
    let burst = NonZeroU32::new(raw.burst);
    if burst.is_none() {
        v.err("rate_limit.burst", "must be at least 1 (set rate_limit.per_second: 0 to turn the limit off)");
    }
    Some(RateLimit { per_second, burst: burst.unwrap_or(NonZeroU32::MIN) })
}

pub(super) fn log(v: &mut V, raw: RawLog) -> Log {
    let log = Log {
        level: raw.level.unwrap_or_else(|| "info".into()),
        format: match raw.format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                v.err("log.format", format!("must be text or json (got {other:?})"));
                LogFormat::Text
            }
        },
        access: raw.access.unwrap_or(true),
    };
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log.level) {
        v.err("log.level", format!("not a valid filter: {e}"));
    } else if let Some(bad) = log.level.split(',').map(str::trim).find(|d| !matches_something(d)) {
        v.err(
            "log.level",
            format!(
                "{bad:?} matches nothing the gateway logs (a level: trace, debug, info, warn, error, off; \
                 or target=level with a target such as logout_gateway or pingora_core)"
            ),
        );
    }
    log
}

/// Crates whose log lines the gateway emits (targets start with their names).
const LOG_TARGETS: &[&str] =
    &["logout_gateway", "pingora", "tokio", "hyper", "h2", "reqwest", "rustls", "redis", "handlebars", "tower"];

/// Whether a filter directive can match anything: a level alone, or a target of a crate the
/// gateway runs (`inf0` is a syntactically valid filter for a target nobody logs under).
fn matches_something(directive: &str) -> bool {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    if directive.is_empty() {
        return true;
    }
    let (target, level) = directive.split_once('=').map_or((directive, None), |(t, l)| (t, Some(l)));
    let target = target.split('[').next().unwrap_or("").trim();
    if level.is_none() && LEVELS.iter().any(|l| l.eq_ignore_ascii_case(target)) {
        return true;
    }
    target.is_empty() || LOG_TARGETS.iter().any(|t| target.starts_with(t))
}

pub(super) fn server(v: &mut V, raw: &RawServer) -> Server {
    if raw.threads == 0 || raw.threads > 1024 {
        v.err("server.threads", "must be between 1 and 1024");
    }
    let upgrade_sock = std::path::PathBuf::from(&raw.upgrade_sock);
    if !upgrade_sock.is_absolute() {
        v.err("server.upgrade_sock", "must be an absolute path");
    } else if raw.upgrade_sock.len() > 100 {
        // sockaddr_un holds 108 bytes; leave room for the terminating NUL and be plain about it.
        v.err("server.upgrade_sock", "must be at most 100 bytes long (a Unix socket path)");
    }
    Server {
        upgrade_sock,
        threads: raw.threads,
        work_stealing: raw.work_stealing,
        grace_period: v.duration("server.grace_period", &raw.grace_period, Duration::from_secs(5)),
        shutdown_timeout: v.duration("server.shutdown_timeout", &raw.shutdown_timeout, Duration::from_secs(5)),
    }
}
