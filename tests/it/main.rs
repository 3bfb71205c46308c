//! One integration-test binary: real redis-server, a fake upstream on loopback, and the real
//! gateway binary with generated configs. Scenarios read like the contract they check.

mod harness;
mod tokens;
mod upstream;

mod admin;
mod attacks;
mod backchannel;
mod backend_logout;
mod browser;
mod cli;
mod cluster;
mod edge;
mod global_revocation;
mod hardening;
mod learning;
mod logout;
mod many;
mod no_sid;
mod observing;
mod ops;
mod outage;
mod passthrough;
mod registration;
mod revocation;
mod revocation_set;
mod routing;
mod sentinel;
mod session_management;
mod sessions_api;
mod ssf;
mod steering;
mod tls;
mod tooling;
mod upgrade;

/// Percent-decoding for assertions (form rules: `+` is a space).
pub fn tokens_decode(s: &str) -> Vec<u8> {
    logout_gateway::probe::decode(s.as_bytes())
}
