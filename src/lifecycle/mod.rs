//! The process around the listeners: binding them (`listen`), the long-lived parts and the
//! gateway built over them (`parts`), signals (`signals`): reload (`reload`), upgrade
//! (`upgrade`), shutdown. `lib.rs` wires a [`Process`]; `main.rs` runs it.

pub(crate) mod certs;
pub(crate) mod listen;
pub(crate) mod parts;
pub(crate) mod reload;
pub(crate) mod signals;
pub(crate) mod upgrade;

use pingora::server::{RunArgs, Server};

/// A built server and its signal handling, ready to run.
pub struct Process {
    pub(crate) server: Server,
    pub(crate) signals: signals::Signals,
}

impl Process {
    /// Serve until a signal ends the process; exits with status 0 after a clean shutdown.
    pub fn run_forever(self) -> ! {
        self.server.run(RunArgs { shutdown_signal: Box::new(self.signals) });
        tracing::info!("logout-gateway stopped");
        std::process::exit(0)
    }
}

/// Before anything else: a SIGHUP or SIGUSR2 that arrives before their handlers exist must not
/// kill the process (their default action); the handlers replace this once the server runs.
pub(crate) fn ignore_until_handled() {
    for sig in [libc::SIGHUP, libc::SIGUSR2] {
        // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
        unsafe {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
}
