//! Request limits of the public listener, checked on the parsed request header before anything
//! else happens: the request target's length (414), the header count and size (431; stricter on
//! end_session than on passthrough), and a per-client-address rate limit on end_session and its
//! confirmation (429). Connection-level limits (count, header deadline) live in `guard`.
//!
//! The rate limit is a keyed GCRA (the `governor` crate), kept per process: with several
//! instances a client gets the configured rate at each. Keys are the client's IP address, IPv6
//! addresses by their /64 (one host usually holds a whole /64). Behind a trusted proxy
//! (`upstream.trust_forwarded_headers`) the last `X-Forwarded-For` entry is the client.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use pingora::http::RequestHeader;

use crate::config;
use crate::render::ErrorKind;

type Keyed = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// How often (in checks) forgotten keys are dropped from the rate limiter.
const PRUNE_EVERY: u64 = 4096;

pub(crate) struct Limits {
    cfg: config::Limits,
    rate: Option<Keyed>,
    checks: AtomicU64,
    trust_forwarded: bool,
}

/// A refusal: status, page, and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) kind: ErrorKind,
    pub(crate) label: &'static str,
}

impl Limits {
    pub(crate) fn new(cfg: &config::Limits, rate: Option<config::RateLimit>, trust_forwarded: bool) -> Limits {
        let rate =
            rate.map(|r| RateLimiter::keyed(Quota::per_second(r.per_second).allow_burst(r.burst.max(NonZeroU32::MIN))));
        Limits { cfg: cfg.clone(), rate, checks: AtomicU64::new(0), trust_forwarded }
    }

    pub(crate) fn keepalive_secs(&self) -> u64 {
        self.cfg.keepalive_timeout.as_secs().max(1)
    }

    /// Size limits on the request header; `end_session`: the stricter set.
    pub(crate) fn check_request(&self, req: &RequestHeader, end_session: bool) -> Option<Refusal> {
        let (max_uri, max_headers, max_bytes) = if end_session {
            (
                self.cfg.end_session_max_uri_length,
                self.cfg.end_session_max_headers,
                self.cfg.end_session_max_header_bytes,
            )
        } else {
            (self.cfg.max_uri_length, self.cfg.max_headers, self.cfg.max_header_bytes)
        };
        if req.raw_path().len() > max_uri {
            return Some(Refusal { status: 414, kind: ErrorKind::UriTooLong, label: "uri" });
        }
        let bytes: usize = req.headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
        if req.headers.len() > max_headers || bytes > max_bytes {
            return Some(Refusal { status: 431, kind: ErrorKind::HeadersTooLarge, label: "headers" });
        }
        None
    }

    /// Count one end_session request of this client; Some(wait) when it is over the rate.
    pub(crate) fn check_rate(&self, socket_ip: Option<IpAddr>, req: &RequestHeader) -> Option<Duration> {
        let rate = self.rate.as_ref()?;
        let ip = self.client_ip(socket_ip, req)?;
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            rate.retain_recent();
            rate.shrink_to_fit();
        }
        match rate.check_key(&key(ip)) {
            Ok(()) => None,
            Err(not_until) => Some(not_until.wait_time_from(DefaultClock::default().now())),
        }
    }

    fn client_ip(&self, socket_ip: Option<IpAddr>, req: &RequestHeader) -> Option<IpAddr> {
        if self.trust_forwarded {
            let last = req
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .next_back();
            if last.is_some() {
                return last;
            }
        }
        socket_ip
    }
}

/// The rate-limit key of an address: IPv4 as is, IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> config::Limits {
        config::Limits {
            max_connections: 10,
            header_timeout: Duration::from_secs(1),
            keepalive_timeout: Duration::from_secs(1),
            max_uri_length: 300,
            max_headers: 10,
            max_header_bytes: 2000,
            end_session_max_uri_length: 260,
            end_session_max_headers: 8,
            end_session_max_header_bytes: 1500,
        }
    }

    fn req(path: &str, headers: usize) -> RequestHeader {
        let mut r = RequestHeader::build("GET", path.as_bytes(), None).unwrap();
        for i in 0..headers {
            r.append_header(format!("x-h{i}"), "v").unwrap();
        }
        r
    }

    #[test]
    fn uri_and_header_limits_are_stricter_on_end_session() {
        let l = Limits::new(&cfg(), None, false);
        assert_eq!(l.check_request(&req(&format!("/{}", "a".repeat(280)), 1), false), None);
        assert_eq!(l.check_request(&req(&format!("/{}", "a".repeat(280)), 1), true).unwrap().status, 414);
        assert_eq!(l.check_request(&req(&format!("/{}", "a".repeat(320)), 1), false).unwrap().status, 414);
        assert_eq!(l.check_request(&req("/", 9), false), None);
        assert_eq!(l.check_request(&req("/", 9), true).unwrap().status, 431);
        assert_eq!(l.check_request(&req("/", 11), false).unwrap().status, 431);
        let mut big = req("/", 1);
        big.insert_header("x-big", "v".repeat(1800)).unwrap();
        assert_eq!(l.check_request(&big, false), None);
        assert_eq!(l.check_request(&big, true).unwrap().label, "headers");
    }

    #[test]
    fn rate_is_per_client_and_ipv6_by_prefix() {
        let rate = config::RateLimit { per_second: NonZeroU32::new(1).unwrap(), burst: NonZeroU32::new(2).unwrap() };
        let l = Limits::new(&cfg(), Some(rate), false);
        let r = req("/", 0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.check_rate(Some(a), &r).is_none());
        assert!(l.check_rate(Some(a), &r).is_none());
        let wait = l.check_rate(Some(a), &r).expect("third in a burst of two");
        assert!(wait <= Duration::from_secs(1));
        assert!(l.check_rate(Some(b), &r).is_none(), "another client is not affected");
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        assert!(l.check_rate(Some(v6a), &r).is_none());
        assert!(l.check_rate(Some(v6b), &r).is_none());
        assert!(l.check_rate(Some(v6a), &r).is_some(), "one /64 shares one budget");
        // Behind a trusted proxy the last X-Forwarded-For entry is the client.
        let t = Limits::new(&cfg(), Some(rate), true);
        let mut fwd = req("/", 0);
        fwd.insert_header("x-forwarded-for", "203.0.113.9, 198.51.100.7").unwrap();
        for _ in 0..2 {
            assert!(t.check_rate(Some(a), &fwd).is_none());
        }
        assert!(t.check_rate(Some(b), &fwd).is_some(), "keyed by the forwarded address, not the socket");
    }
}
