//! What the process is serving right now, for `/healthz` and `/readyz`: each listener the config
//! names and whether its socket is bound, and whether a shutdown has begun. A listener that is
//! not bound (yet, or ever) makes both answers 503, so a load balancer never sends traffic to a
//! process that serves nothing; `lifecycle::listen` marks them as it binds. When the last one
//! is bound, a supervisor that asked (systemd `Type=notify`) is told `READY=1` with this
//! process's PID (after an upgrade the new process is the service's main process).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// One listener the config names.
struct Listener {
    /// `public`, `admin`, ...: for messages.
    name: &'static str,
    addr: String,
    bound: bool,
}

#[derive(Default)]
pub(crate) struct Serving {
    listeners: Mutex<Vec<Listener>>,
    draining: AtomicBool,
}

impl Serving {
    /// A listener the process must serve on; not serving until [`Serving::bound`].
    pub(crate) fn expect(&self, name: &'static str, addr: &str) {
        if let Ok(mut l) = self.listeners.lock() {
            l.push(Listener { name, addr: addr.to_string(), bound: false });
        }
    }

    /// The socket of `addr` is bound and listening (connections queue from now on).
    pub(crate) fn bound(&self, addr: &str) {
        let all = match self.listeners.lock() {
            Ok(mut l) => {
                l.iter_mut().filter(|x| x.addr == addr).for_each(|x| x.bound = true);
                l.iter().all(|x| x.bound)
            }
            Err(_) => false,
        };
        if all {
            sd_notify(&format!("READY=1\nMAINPID={}", std::process::id()));
        }
    }

    /// A shutdown (SIGTERM) began: not ready any more, whatever else holds.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Why the process does not serve every listener, if it does not: "public listener
    /// 0.0.0.0:8080 not serving".
    pub(crate) fn not_serving(&self) -> Option<String> {
        let l = self.listeners.lock().ok()?;
        l.iter().find(|x| !x.bound).map(|x| format!("{} listener {} not serving", x.name, x.addr))
    }

    /// Why the process must not get new traffic: a listener not serving, or a shutdown.
    pub(crate) fn not_ready(&self) -> Option<String> {
        if self.draining.load(Ordering::Relaxed) {
            return Some("shutting down".to_string());
        }
        self.not_serving()
    }
}

/// Tell the service manager something (sd_notify(3)): a datagram to `$NOTIFY_SOCKET` when it is
/// set (a path, or `@name` for the abstract namespace); nothing otherwise. Failures are logged.
pub(crate) fn sd_notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else { return };
    if let Err(e) = send_notify(&target, state) {
        tracing::warn!(error = %e, "could not notify the service manager");
    }
}

fn send_notify(target: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let sock = UnixDatagram::unbound()?;
    let bytes = target.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)?
        }
        _ => SocketAddr::from_pathname(std::path::Path::new(target))?,
    };
    sock.send_to_addr(state.as_bytes(), &addr).map(|_| ())
}

/// `logout-gateway health`: ask a running instance's admin listener for `path` (`/healthz` or
/// `/readyz`) over plain HTTP/1.1 and succeed on a 200 within `timeout`. For a container
/// HEALTHCHECK on an image that has no curl; the error says what was seen instead.
pub fn health(admin: &str, path: &str, timeout: std::time::Duration) -> Result<(), String> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("the path must start with / and hold no spaces or control characters".into());
    }
    let addr = admin
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .next()
        .ok_or("cannot resolve: no address")?;
    // One deadline for the whole exchange: each step gets what is left of it.
    let deadline = std::time::Instant::now() + timeout;
    let left = || match deadline.checked_duration_since(std::time::Instant::now()) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("no answer within {timeout:?}")),
    };
    let mut stream = std::net::TcpStream::connect_timeout(&addr, left()?).map_err(|e| format!("connect: {e}"))?;
    stream.set_write_timeout(Some(left()?)).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        stream.set_read_timeout(Some(left()?)).map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(format!("no answer within {timeout:?}"))
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let status = line.lines().next().unwrap_or("").trim();
    match status.split(' ').nth(1) {
        Some("200") => Ok(()),
        _ if status.is_empty() => Err("no answer".into()),
        _ => Err(format!("answered {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::Serving;

    #[test]
    fn notifications_reach_the_socket_named_by_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        super::send_notify(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn every_listener_must_be_bound_and_a_drain_is_final() {
        let s = Serving::default();
        assert_eq!(s.not_serving(), None, "nothing expected, nothing missing");
        s.expect("public", "127.0.0.1:8080");
        s.expect("admin", "127.0.0.1:9090");
        assert_eq!(s.not_serving().as_deref(), Some("public listener 127.0.0.1:8080 not serving"));
        s.bound("127.0.0.1:8080");
        assert_eq!(s.not_ready().as_deref(), Some("admin listener 127.0.0.1:9090 not serving"));
        s.bound("127.0.0.1:9090");
        assert_eq!(s.not_ready(), None);
        s.drain();
        assert_eq!(s.not_ready().as_deref(), Some("shutting down"));
        assert_eq!(s.not_serving(), None, "draining is not a dead listener");
    }
}
