//! `listen`, `tls`, `mtls` and the addresses of every listener: each distinct; the TLS files
//! readable, parsing and matching (a problem under the key of the file that has it).

use super::*;
use crate::config::raw::{RawMtls, RawTls};

/// The public listeners: plain (default `0.0.0.0:8080` unless `tls` is set), https, mutual TLS.
pub(super) fn listeners(
    v: &mut V,
    listen: Option<&str>,
    tls: Option<&RawTls>,
    mtls: Option<&RawMtls>,
    base: &Path,
) -> (Option<SocketAddr>, Option<TlsListener>, Option<MtlsListener>) {
    let plain = match (listen, tls) {
        (Some(l), _) => Some(v.addr("listen", l)),
        (None, None) => Some(SocketAddr::from(([0, 0, 0, 0], 8080))),
        (None, Some(_)) => None,
    };
    let tls = tls.map(|t| pair(v, "tls", &t.listen, &t.cert_file, &t.key_file, base));
    let mtls = mtls.map(|m| {
        let tls = pair(v, "mtls", &m.listen, &m.cert_file, &m.key_file, base);
        let client_ca_file = base.join(&m.client_ca_file);
        if let Err(e) = crate::tls::load_roots(&client_ca_file) {
            v.err("mtls.client_ca_file", e);
        }
        MtlsListener { tls, client_ca_file, public_origin: public_origin(v, &m.public_origin) }
    });
    (plain, tls, mtls)
}

fn pair(v: &mut V, section: &str, listen: &str, cert: &str, key: &str, base: &Path) -> TlsListener {
    let listen = v.addr(&format!("{section}.listen"), listen);
    let (cert_file, key_file) = (base.join(cert), base.join(key));
    if let Err(e) = crate::tls::load_pair(&cert_file, &key_file) {
        v.err(format!("{section}.{}", e.part.key()), e.message);
    }
    TlsListener { listen, cert_file, key_file }
}

/// An https origin: scheme, host, optional port; no path, query or fragment.
fn public_origin(v: &mut V, s: &str) -> String {
    match url::Url::parse(s) {
        Ok(u)
            if u.scheme() == "https"
                && u.host().is_some()
                && matches!(u.path(), "" | "/")
                && u.query().is_none()
                && u.fragment().is_none()
                && u.username().is_empty() =>
        {
            u.origin().ascii_serialization()
        }
        _ => {
            v.err(
                "mtls.public_origin",
                format!("must be an https origin without a path, such as https://mtls.login.example.com (got {s:?})"),
            );
            String::new()
        }
    }
}

/// Every listener on its own address.
pub(super) fn distinct(v: &mut V, addrs: &[(&str, Option<SocketAddr>)]) {
    for (i, (key, a)) in addrs.iter().enumerate() {
        let Some(a) = a.filter(|a| a.port() != 0) else { continue };
        if let Some((earlier, _)) = addrs[..i].iter().find(|(_, b)| *b == Some(a)) {
            v.err(*key, format!("must differ from {earlier}"));
        }
    }
}
