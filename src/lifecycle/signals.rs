//! The process's signals, in place of pingora's own watcher (which knows only QUIT, TERM and
//! INT, so a SIGHUP killed the process):
//!
//! | signal | what happens |
//! |---|---|
//! | SIGHUP | reload the config file (`reload`); keep serving either way |
//! | SIGUSR2 | start the binary again with `run --upgrade` (`upgrade`), then as SIGQUIT |
//! | SIGQUIT | hand the listening sockets to the process started with `run --upgrade`, drain, exit 0 |
//! | SIGTERM | not ready any more; stop accepting, drain for `server.grace_period`, exit 0 |
//! | SIGINT | exit at once |

use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{signal, SignalKind};

use super::reload::Reloader;
use super::upgrade::Successor;
use crate::serving::{sd_notify, Serving};

pub(crate) struct Signals {
    pub(crate) reloader: Arc<Reloader>,
    pub(crate) serving: Arc<Serving>,
    pub(crate) successor: Successor,
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let watch = |k| signal(k).map_err(|e| tracing::error!(error = %e, "cannot watch signals; exiting"));
        let (Ok(mut hup), Ok(mut usr2), Ok(mut quit), Ok(mut term), Ok(mut int)) = (
            watch(SignalKind::hangup()),
            watch(SignalKind::user_defined2()),
            watch(SignalKind::quit()),
            watch(SignalKind::terminate()),
            watch(SignalKind::interrupt()),
        ) else {
            return ShutdownSignal::FastShutdown;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => self.reload().await,
                _ = usr2.recv() => {
                    if self.successor.start().await {
                        return self.hand_over();
                    }
                }
                _ = quit.recv() => return self.hand_over(),
                _ = term.recv() => {
                    tracing::info!("SIGTERM: not ready any more; draining, then exiting");
                    self.serving.drain();
                    sd_notify("STOPPING=1");
                    return ShutdownSignal::GracefulTerminate;
                }
                _ = int.recv() => {
                    sd_notify("STOPPING=1");
                    return ShutdownSignal::FastShutdown;
                }
            }
        }
    }
}

impl Signals {
    async fn reload(&self) {
        sd_notify("RELOADING=1");
        let reloader = self.reloader.clone();
        // File reads and template compilation: off the thread that watches signals.
        if let Err(e) = tokio::task::spawn_blocking(move || reloader.reload()).await {
            tracing::error!(error = %e, "reload task failed; the running configuration stays");
        }
        sd_notify("READY=1");
    }

    fn hand_over(&self) -> ShutdownSignal {
        tracing::info!("handing the listening sockets to the new process (run --upgrade), then draining");
        ShutdownSignal::GracefulUpgrade
    }
}
