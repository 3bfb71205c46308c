//! Binding the listeners ourselves, before pingora would: pingora retries a port in use for 30
//! seconds and then panics inside the service's task, leaving a process that answers health
//! checks on its admin port but serves nothing on the public one. [`Bound`] wraps a listening
//! service: for each of its addresses not inherited from an upgrade (pingora's table of
//! listening sockets), it binds the socket, puts it into that table (where pingora's listener
//! takes it, and from where a later upgrade hands it on), and marks it serving. An address that
//! stays in use for [`IN_USE_PATIENCE`], or cannot be bound at all, ends the process with status
//! 1 and a line naming it (CONTRACT: within 5 seconds).

use std::os::fd::{IntoRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::{ListenFds, ShutdownWatch};
use pingora::services::Service;

use crate::serving::Serving;

/// How long an address in use is retried (a previous process may be closing it).
const IN_USE_PATIENCE: Duration = Duration::from_secs(3);
const IN_USE_STEP: Duration = Duration::from_millis(100);
/// pingora's listen backlog.
const BACKLOG: u32 = 65_535;
/// `TCP_DEFER_ACCEPT`: a connection is handed to `accept` once its first bytes (the request, or
/// a TLS ClientHello) have arrived, waiting up to this many seconds for them. Besides saving a
/// wake-up per connection, it closes a race in pingora's shutdown: when a process stops
/// accepting (an upgrade, SIGTERM), pingora at once drops every connection still waiting for its
/// first request header (`HttpProxy::handle_new_request`), including one accepted a moment
/// before whose request had not yet been read. With the request already there, that read
/// completes first (pingora polls it before the shutdown) and the request is served.
const DEFER_ACCEPT_SECS: libc::c_int = 5;

/// Status `run` exits with when a listener cannot be bound.
pub(crate) const EXIT_BIND: i32 = 1;

/// A listening service whose sockets are bound before it starts (see the module docs).
pub(crate) struct Bound<S> {
    inner: S,
    name: &'static str,
    addrs: Vec<String>,
    serving: Arc<Serving>,
}

impl<S> Bound<S> {
    /// `addrs` must be spelled as they were given to the inner service's listeners.
    pub(crate) fn new(inner: S, name: &'static str, addrs: Vec<String>, serving: Arc<Serving>) -> Self {
        addrs.iter().for_each(|a| serving.expect(name, a));
        Bound { inner, name, addrs, serving }
    }
}

#[async_trait]
impl<S: Service> Service for Bound<S> {
    async fn start_service(&mut self, fds: Option<ListenFds>, shutdown: ShutdownWatch, listeners_per_fd: usize) {
        if let Some(table) = &fds {
            for addr in &self.addrs {
                let inherited = table.lock().get(addr).is_some();
                if inherited {
                    tracing::info!(listener = self.name, %addr, "listening socket taken over from the previous process");
                } else {
                    match bind(addr).await {
                        Ok(fd) => table.lock().add(addr.clone(), fd),
                        Err(e) => fatal(self.name, addr, &e),
                    }
                }
                self.serving.bound(addr);
            }
        }
        self.inner.start_service(fds, shutdown, listeners_per_fd).await
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn threads(&self) -> Option<usize> {
        self.inner.threads()
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        self.inner.listen_addresses()
    }
}

/// Bind and listen as pingora does (SO_REUSEADDR, its backlog); an address in use is retried
/// for [`IN_USE_PATIENCE`].
async fn bind(addr: &str) -> std::io::Result<RawFd> {
    let sock_addr: std::net::SocketAddr =
        addr.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e}")))?;
    let deadline = Instant::now() + IN_USE_PATIENCE;
    loop {
        let socket =
            if sock_addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        defer_accept(&socket)?;
        match socket.bind(sock_addr) {
            Ok(()) => {
                let listener = socket.listen(BACKLOG)?;
                return Ok(listener.into_std()?.into_raw_fd());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                tokio::time::sleep(IN_USE_STEP).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn defer_accept(socket: &tokio::net::TcpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let secs = DEFER_ACCEPT_SECS;
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket fd and a pointer to a c_int of the length given.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&secs as *const libc::c_int).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A listener that cannot serve: say which, and exit 1 (a supervisor restarts or alerts).
fn fatal(name: &str, addr: &str, e: &std::io::Error) -> ! {
    let why = match e.kind() {
        std::io::ErrorKind::AddrInUse => "address in use".to_string(),
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (a port below 1024 needs CAP_NET_BIND_SERVICE)".to_string()
        }
        _ => e.to_string(),
    };
    tracing::error!(listener = name, %addr, error = %e, "cannot listen: {why}; exiting");
    eprintln!("logout-gateway: cannot listen on {addr} ({name} listener): {why}");
    std::process::exit(EXIT_BIND)
}
