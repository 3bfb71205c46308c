//! Fault injection for tests only (cargo feature `fault-injection`, off by default; the
//! integration tests' build turns it on, see Cargo.toml). With the feature compiled in and
//! `LGW_FAULT_INJECTION=1` in the environment at start, a request for [`PANIC_PATH`] on the
//! public listener panics inside `request_filter`, so the integration tests can show with the
//! real binary that a panic stays in its request and is counted (docs/security.md, Panics).
//! Without both, the path is proxied like any other. Nothing else lives here.

/// The path whose request panics when armed.
pub const PANIC_PATH: &str = "/__lgw_fault/panic";

/// Set to `1` in the environment at start to arm [`PANIC_PATH`].
pub(crate) const ENV: &str = "LGW_FAULT_INJECTION";

/// Whether this process was started armed.
pub(crate) fn armed_by_env() -> bool {
    std::env::var(ENV).is_ok_and(|v| v == "1")
}

/// Panic when armed and `path` is [`PANIC_PATH`]: the fault the tests inject.
#[allow(clippy::panic)] // the one purpose of this module
pub(crate) fn panic_if_asked(armed: bool, path: &str) {
    if armed && path == PANIC_PATH {
        panic!("fault injection: {PANIC_PATH} was requested");
    }
}
