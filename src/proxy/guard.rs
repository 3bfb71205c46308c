//! Connection-level protection of the public listener, below HTTP (pingora gives no hook there):
//!
//! - a cap on open client connections (`limits.max_connections`): one more is answered a bare
//!   `503` and closed at once, before anything is parsed;
//! - a total deadline for each request header (`limits.header_timeout`). pingora's read timeout
//!   applies per read, so a client trickling a byte at a time (slowloris) could hold a connection
//!   forever; here the clock starts with the connection (first request) or with the first byte
//!   of the next request on a kept-alive connection, and the connection is closed when the header
//!   is not complete in time. Idle time between requests is the keep-alive timeout's business.
//!
//! [`Guarded`] wraps the proxy app; every accepted stream is wrapped once in a [`GuardedStream`]
//! that holds the connection's permit and watches the header bytes (only until the header's
//! blank line; bodies and responses pass without inspection).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID, UniqueIDType,
};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::metrics::Metrics;

/// The answer to a connection over the cap.
const OVER_CAP: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 33\r\n\
retry-after: 1\r\nconnection: close\r\n\r\nToo many connections; try again.\n";

/// The proxy app behind the connection cap and header deadline.
pub(crate) struct Guarded<A> {
    pub(crate) inner: Arc<A>,
    permits: Arc<Semaphore>,
    header_timeout: Duration,
}

impl<A> Guarded<A> {
    pub(crate) fn new(inner: A, max_connections: usize, header_timeout: Duration) -> Self {
        Guarded { inner: Arc::new(inner), permits: Arc::new(Semaphore::new(max_connections)), header_timeout }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Guarded<A> {
    async fn process_new(self: &Arc<Self>, stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        // A kept-alive connection comes back here already wrapped (and holding its permit).
        let stream: Stream = if stream.as_any().is::<GuardedStream>() {
            stream
        } else {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => Box::new(GuardedStream::new(stream, permit, self.header_timeout)),
                Err(_) => {
                    Metrics::get().connections_refused.inc();
                    let mut stream = stream;
                    // Best effort, bounded: the client may not read.
                    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(OVER_CAP)).await;
                    Shutdown::shutdown(stream.as_mut()).await;
                    return None;
                }
            }
        };
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

/// Where the connection is in its request/response cycle, as far as header timing goes.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Phase {
    /// Reading a request header: it must end before the deadline.
    Header,
    /// The header is complete (body, response, or waiting for it).
    Done,
    /// A response was written: the next byte read starts a new request header.
    Idle,
}

/// A client connection with its permit and the header deadline.
#[derive(Debug)]
pub(crate) struct GuardedStream {
    inner: Stream,
    _permit: OwnedSemaphorePermit,
    timeout: Duration,
    phase: Phase,
    /// When the current request header must be complete.
    deadline_at: Instant,
    /// The timer for `deadline_at`, armed only when a read would wait (see `poll_read`).
    deadline: Pin<Box<Sleep>>,
    /// The last bytes of the header seen so far (to find its end across reads).
    tail: [u8; 3],
}

impl GuardedStream {
    fn new(inner: Stream, permit: OwnedSemaphorePermit, timeout: Duration) -> Self {
        GuardedStream {
            inner,
            _permit: permit,
            timeout,
            phase: Phase::Header,
            deadline_at: Instant::now() + timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            tail: [0; 3],
        }
    }
}

/// Whether `new` bytes end a request header (`\r\n\r\n`, or `\n\n`, which parsers also
/// accept), given the `tail` of the bytes before; keeps `tail` current.
fn header_end(tail: &mut [u8; 3], new: &[u8]) -> bool {
    // The byte `back` places before new[at], reaching into `tail` before the start of `new`.
    let before = |at: usize, back: usize| if at >= back { new[at - back] } else { tail[3 + at - back] };
    for at in memchr::memchr_iter(b'\n', new) {
        if before(at, 1) == b'\n' || (before(at, 1) == b'\r' && before(at, 2) == b'\n') {
            *tail = [0; 3];
            return true;
        }
    }
    *tail = match new.len() {
        n @ 3.. => [new[n - 3], new[n - 2], new[n - 1]],
        2 => [tail[2], new[0], new[1]],
        1 => [tail[1], tail[2], new[0]],
        _ => *tail,
    };
    false
}

impl AsyncRead for GuardedStream {
    /// The deadline costs a clock read per header read; the timer is armed only when a read
    /// would wait (registering a tokio timer on every request was a measurable share of a
    /// proxied request's CPU).
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.phase == Phase::Header && Instant::now() >= this.deadline_at {
            return Poll::Ready(Err(header_timeout()));
        }
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        match res {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if !new.is_empty() {
                    if this.phase == Phase::Idle {
                        this.phase = Phase::Header;
                        this.deadline_at = Instant::now() + this.timeout;
                    }
                    if this.phase == Phase::Header && header_end(&mut this.tail, new) {
                        this.phase = Phase::Done;
                    }
                }
            }
            Poll::Pending if this.phase == Phase::Header => {
                // Waiting for more header bytes: wake up at the deadline at the latest.
                if this.deadline.deadline() != this.deadline_at {
                    let at = this.deadline_at;
                    this.deadline.as_mut().reset(at);
                }
                if this.deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(header_timeout()));
                }
            }
            _ => {}
        }
        res
    }
}

fn header_timeout() -> io::Error {
    Metrics::get().header_timeouts.inc();
    io::Error::new(io::ErrorKind::TimedOut, "request header not complete in time")
}

impl AsyncWrite for GuardedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) && self.phase == Phase::Done {
            self.phase = Phase::Idle;
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) && self.phase == Phase::Done {
            self.phase = Phase::Idle;
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for GuardedStream {
    async fn shutdown(&mut self) {
        Shutdown::shutdown(self.inner.as_mut()).await
    }
}

impl UniqueID for GuardedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for GuardedStream {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }
    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }
    fn selected_alpn_proto(&self) -> Option<pingora::protocols::ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for GuardedStream {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for GuardedStream {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
    fn set_proxy_digest(&mut self, digest: pingora::protocols::raw_connect::ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for GuardedStream {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }
    fn set_socket_digest(&mut self, digest: pingora::protocols::SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for GuardedStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::header_end;

    fn ends(chunks: &[&[u8]]) -> bool {
        let mut tail = [0u8; 3];
        chunks.iter().any(|c| header_end(&mut tail, c))
    }

    #[test]
    fn header_end_is_found_across_reads() {
        assert!(ends(&[b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"]));
        assert!(ends(&[b"GET / HTTP/1.1\r\nHost: a\r", b"\n", b"\r", b"\n"]));
        assert!(ends(&[b"GET / HTTP/1.1\nHost: a\n\n"]));
        assert!(!ends(&[b"GET / HTTP/1.1\r\nHost: a\r\n"]));
        assert!(!ends(&[b"GET / HTTP/1.1\r\nX: \r\r\n"]));
    }

    /// Byte by byte, the obvious way: what `header_end` must agree with.
    fn reference(tail: &mut [u8; 3], new: &[u8]) -> bool {
        for &b in new {
            let t = *tail;
            if b == b'\n' && (t[2] == b'\n' || (t[2] == b'\r' && t[1] == b'\n')) {
                *tail = [0; 3];
                return true;
            }
            *tail = [t[1], t[2], b];
        }
        false
    }

    #[test]
    fn header_end_agrees_with_a_byte_by_byte_scan_over_every_split() {
        let inputs: [&[u8]; 7] = [
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody",
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"GET / HTTP/1.1\r\nX: \r\r\n\r\n",
            b"\n\n",
            b"\r\n\r\n",
            b"a\r\nb\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r",
        ];
        for input in inputs {
            for i in 0..=input.len() {
                for j in i..=input.len() {
                    let chunks = [&input[..i], &input[i..j], &input[j..]];
                    let (mut a, mut b) = ([0u8; 3], [0u8; 3]);
                    for c in chunks {
                        assert_eq!(header_end(&mut a, c), reference(&mut b, c), "{input:?} split at {i}, {j}");
                        assert_eq!(a, b, "{input:?} split at {i}, {j}");
                    }
                }
            }
        }
    }
}
