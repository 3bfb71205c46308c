//! Where the gateway may connect on behalf of a client it does not trust: a client learned from
//! dynamic registration names its own back-channel URI, so without a check anyone who can
//! register a client could make the gateway POST to its loopback, the cloud metadata address
//! or the private network behind it (server-side request forgery).
//!
//! The rule: such a URI is https, its host is not `localhost`, and every address it stands for
//! is public (or inside `registration.allowed_networks`). A host given as an address literal
//! is checked as written, in any spelling the URL standard accepts (`2130706433`, `0x7f.1`,
//! `[::ffff:127.0.0.1]` are all 127.0.0.1); a name is checked when it is resolved, at each
//! delivery, and the connection goes to the addresses that were checked ([`GuardedResolver`]
//! hands exactly those to the HTTP client), so a name that resolves differently the second
//! time (DNS rebinding) cannot slip past. Redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// An address block in CIDR form (`10.0.0.0/8`, `fd00::/8`, or one address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub(crate) fn parse(s: &str) -> Result<Network, String> {
        let (a, p) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = a.trim().parse().map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => {
                p.trim().parse::<u8>().ok().filter(|n| *n <= max).ok_or_else(|| format!("bad prefix in {s:?}"))?
            }
        };
        Ok(Network { addr: unmapped(addr), prefix })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, unmapped(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (full, rest) = ((bits / 8) as usize, bits % 8);
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || (a[full] ^ b[full]) >> (8 - rest) == 0
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is a public unicast address: not loopback, unspecified (0/8), private (RFC
/// 1918), shared (100.64/10), link-local, documentation, benchmarking, multicast or reserved,
/// nor an IPv6 unique-local, link-local, NAT64, 6to4, Teredo or IPv4-compatible address.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match unmapped(ip) {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    const BLOCKED: [([u8; 4], u8); 16] = [
        ([0, 0, 0, 0], 8),
        ([10, 0, 0, 0], 8),
        ([100, 64, 0, 0], 10),
        ([127, 0, 0, 0], 8),
        ([169, 254, 0, 0], 16),
        ([172, 16, 0, 0], 12),
        ([192, 0, 0, 0], 24),
        ([192, 0, 2, 0], 24),
        ([192, 88, 99, 0], 24),
        ([192, 168, 0, 0], 16),
        ([198, 18, 0, 0], 15),
        ([198, 51, 100, 0], 24),
        ([203, 0, 113, 0], 24),
        ([224, 0, 0, 0], 4),
        ([240, 0, 0, 0], 4),
        ([255, 255, 255, 255], 32),
    ];
    !BLOCKED.iter().any(|(net, bits)| prefix_eq(net, &ip.octets(), *bits))
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let o = ip.octets();
    const BLOCKED: [([u8; 4], u8); 8] = [
        ([0x00, 0x64, 0xff, 0x9b], 32), // 64:ff9b::/96 NAT64 (and the local-use /48)
        ([0x01, 0x00, 0x00, 0x00], 16), // 100::/64 discard
        ([0x20, 0x01, 0x00, 0x00], 23), // 2001::/23 IETF special use (Teredo, benchmarking, ...)
        ([0x20, 0x01, 0x0d, 0xb8], 32), // documentation
        ([0x20, 0x02, 0x00, 0x00], 16), // 6to4
        ([0xfc, 0x00, 0x00, 0x00], 7),  // unique local
        ([0xfe, 0x80, 0x00, 0x00], 10), // link-local (and the deprecated site-local next to it)
        ([0xff, 0x00, 0x00, 0x00], 8),  // multicast
    ];
    // ::/96 holds the unspecified address, loopback and the old IPv4-compatible form.
    if o[..12].iter().all(|b| *b == 0) || ip.is_loopback() {
        return false;
    }
    let site_local = o[0] == 0xfe && o[1] & 0xc0 == 0xc0;
    !(site_local || BLOCKED.iter().any(|(net, bits)| prefix_eq(net, &o[..4], *bits)))
}

/// Whether the gateway may connect to `ip` for an untrusted client.
pub(crate) fn permitted(ip: IpAddr, allowed: &[Network]) -> bool {
    is_public(ip) || allowed.iter().any(|n| n.contains(ip))
}

/// Check an untrusted client's URI before any connection: https, not `localhost`, and an
/// address literal must be permitted. Names are checked when resolved ([`GuardedResolver`]).
pub(crate) fn check_uri(uri: &str, allowed: &[Network]) -> Result<(), &'static str> {
    let u = url::Url::parse(uri).map_err(|_| "not a URL")?;
    if u.scheme() != "https" {
        return Err("not https");
    }
    match u.host() {
        None => Err("no host"),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d == "localhost" || d.ends_with(".localhost") {
                Err("a loopback name")
            } else {
                Ok(())
            }
        }
        Some(url::Host::Ipv4(v4)) if permitted(IpAddr::V4(v4), allowed) => Ok(()),
        Some(url::Host::Ipv6(v6)) if permitted(IpAddr::V6(v6), allowed) => Ok(()),
        Some(_) => Err("an address that is not public"),
    }
}

/// The error the resolver answers for a name it refuses.
#[derive(Debug)]
pub(crate) struct NotPermitted;

impl std::fmt::Display for NotPermitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the name resolves to an address that is not public")
    }
}

impl std::error::Error for NotPermitted {}

/// Whether a request failed because [`GuardedResolver`] refused its host.
pub(crate) fn refused_by_resolver(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<NotPermitted>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// A resolver for the HTTP client that delivers to untrusted clients: it resolves a name and
/// answers only if every address is permitted, so the client connects to what was checked.
pub(crate) struct GuardedResolver {
    pub(crate) allowed: Arc<Vec<Network>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allowed = self.allowed.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            type BoxError = Box<dyn std::error::Error + Send + Sync>;
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await.map_err(|e| Box::new(e) as BoxError)?.collect();
            if addrs.is_empty() {
                return Err::<reqwest::dns::Addrs, BoxError>("the name has no addresses".into());
            }
            if let Some(bad) = addrs.iter().find(|a| !permitted(a.ip(), &allowed)) {
                tracing::warn!(host = %host, address = %bad.ip(), "back-channel URI resolves to an address that is not public; not delivered");
                return Err(Box::new(NotPermitted) as BoxError);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A resolver that answers one name with another host's addresses (`upstream.tls_server_name`:
/// the gateway asks for the certificate's name and connects to the upstream's address); every
/// other name resolves as usual.
pub(crate) struct PinnedResolver {
    /// The name asked for (lower case).
    pub(crate) name: String,
    /// Where it really is: a host name or an IP literal.
    pub(crate) target: String,
}

impl reqwest::dns::Resolve for PinnedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let asked = name.as_str().to_ascii_lowercase();
        let host = if asked == self.name { self.target.clone() } else { asked };
        Box::pin(async move {
            type BoxError = Box<dyn std::error::Error + Send + Sync>;
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await.map_err(|e| Box::new(e) as BoxError)?.collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_in_every_spelling() {
        for bad in [
            "https://127.0.0.1/bc",
            "https://127.1/bc",
            "https://2130706433/bc",
            "https://0x7f.1/bc",
            "https://0177.0.0.1/bc",
            "https://0.0.0.0/bc",
            "https://0/bc",
            "https://10.1.2.3/bc",
            "https://172.16.0.1/bc",
            "https://192.168.1.1/bc",
            "https://100.64.0.1/bc",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/bc",
            "https://[::]/bc",
            "https://[::ffff:127.0.0.1]/bc",
            "https://[::ffff:7f00:1]/bc",
            "https://[::127.0.0.1]/bc",
            "https://[fd00::1]/bc",
            "https://[fe80::1]/bc",
            "https://[64:ff9b::a00:1]/bc",
            "https://[2002:7f00:1::]/bc",
            "https://localhost/bc",
            "https://LOCALHOST./bc",
            "https://rp.localhost/bc",
            "http://rp.example.com/bc",
            "ftp://rp.example.com/bc",
        ] {
            assert!(check_uri(bad, &[]).is_err(), "{bad}");
        }
        for good in ["https://rp.example.com/bc", "https://93.184.215.14/bc", "https://[2606:4700::1111]/bc"] {
            assert_eq!(check_uri(good, &[]), Ok(()), "{good}");
        }
    }

    #[test]
    fn allowed_networks_open_exactly_their_blocks() {
        let nets = [Network::parse("10.20.0.0/16").unwrap(), Network::parse("fd00::/8").unwrap()];
        assert_eq!(check_uri("https://10.20.3.4/bc", &nets), Ok(()));
        assert!(check_uri("https://10.21.3.4/bc", &nets).is_err());
        assert_eq!(check_uri("https://[fd12::1]/bc", &nets), Ok(()));
        assert_eq!(check_uri("https://[::ffff:10.20.0.1]/bc", &nets), Ok(()));
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("example").is_err());
        assert!(Network::parse("127.0.0.1").unwrap().contains("127.0.0.1".parse().unwrap()));
    }
}
