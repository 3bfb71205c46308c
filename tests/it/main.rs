//! One integration-test binary: real redis-server, a fake upstream on loopback, and the real
//! gateway binary with generated configs. Scenarios read like the contract they check.

mod harness;
mod upstream;

mod admin;
mod cli;
mod passthrough;
mod routing;
