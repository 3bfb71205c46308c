//! The gateway's own TLS material: certificate/key pairs for its https and mutual-TLS listeners,
//! and the client CAs of the latter. `check` and start-up load them with [`load_pair`] and
//! [`load_roots`] (a problem names the file's key); the listeners present [`Certs`], which
//! answers every handshake with the pair loaded last, so a rotated pair is used by new
//! handshakes while established connections continue with theirs.
//!
//! Protocols and suites: TLS 1.2 and 1.3 only (pingora's rustls listener), with rustls' default
//! suites: AES-GCM and ChaCha20-Poly1305 with ECDHE key exchange (X25519, P-256, P-384), no CBC,
//! no RSA key exchange, no renegotiation, no compression.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{ClientHello, CryptoProvider, ResolvesServerCert, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Which file of a pair a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Cert,
    Key,
}

impl Part {
    /// The config key's last segment (`tls.cert_file`, `mtls.key_file`, ...).
    pub(crate) fn key(self) -> &'static str {
        match self {
            Part::Cert => "cert_file",
            Part::Key => "key_file",
        }
    }
}

/// A pair that cannot be used, and which of its files says why.
#[derive(Debug, Clone)]
pub(crate) struct PairError {
    pub(crate) part: Part,
    pub(crate) message: String,
}

fn err(part: Part, message: impl Into<String>) -> PairError {
    PairError { part, message: message.into() }
}

/// The process's rustls provider (pingora installs ring's once).
fn provider() -> Option<Arc<CryptoProvider>> {
    pingora::tls::install_default_crypto_provider();
    CryptoProvider::get_default().cloned()
}

/// A PEM chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1), checked to match.
pub(crate) fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, PairError> {
    let chain = certificates(cert).map_err(|m| err(Part::Cert, m))?;
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| err(Part::Key, pem_problem(key, "a private key", &e)))?;
    let provider = provider().ok_or_else(|| err(Part::Key, "no TLS crypto provider installed"))?;
    let signer = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| err(Part::Key, format!("{}: not a usable private key: {e}", key.display())))?;
    let pair = CertifiedKey::new(chain, signer);
    match pair.keys_match() {
        Ok(()) => Ok(Arc::new(pair)),
        Err(pingora::tls::RusTlsError::InconsistentKeys(_)) => {
            Err(err(Part::Key, format!("{} does not match the certificate in {}", key.display(), cert.display())))
        }
        Err(e) => Err(err(Part::Cert, format!("{}: {e}", cert.display()))),
    }
}

/// Every certificate of a PEM file, at least one, each parsing as X.509.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| pem_problem(path, "certificates", &e))?;
    let chain: Vec<_> = iter.collect::<Result<_, _>>().map_err(|e| pem_problem(path, "certificates", &e))?;
    if chain.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    for (i, c) in chain.iter().enumerate() {
        webpki_parse(c).map_err(|e| format!("{}: certificate {} does not parse: {e}", path.display(), i + 1))?;
    }
    Ok(chain)
}

fn webpki_parse(c: &CertificateDer<'_>) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    // Adding a certificate as a trust anchor parses it (the subject, the key, the extensions).
    roots.add(c.clone()).map_err(|e| e.to_string())
}

fn pem_problem(path: &Path, what: &str, e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => format!("{}: cannot read: {io}", path.display()),
        rustls_pki_types::pem::Error::NoItemsFound => format!("{}: no PEM {what} in it", path.display()),
        other => format!("{}: not PEM {what}: {other:?}", path.display()),
    }
}

/// The client CAs of the mutual-TLS listener: every certificate of a PEM file, at least one.
pub(crate) fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    for c in certificates(path)? {
        roots.add(c).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(Arc::new(roots))
}

/// What identifies a file's content without reading it: modification time, size, inode.
type Stamp = Option<(std::time::SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len(), m.ino())))
}

/// The pair a listener presents, replaceable while it serves.
pub(crate) struct Certs {
    current: ArcSwap<CertifiedKey>,
    /// The files and their stamps when last looked at (loaded or refused).
    files: Mutex<(PathBuf, PathBuf, Stamp, Stamp)>,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Certs")
    }
}

impl Certs {
    pub(crate) fn new(cert: &Path, key: &Path) -> Result<Arc<Certs>, PairError> {
        let (sc, sk) = (stamp(cert), stamp(key));
        let pair = load_pair(cert, key)?;
        Ok(Arc::new(Certs {
            current: ArcSwap::new(pair),
            files: Mutex::new((cert.to_path_buf(), key.to_path_buf(), sc, sk)),
        }))
    }

    /// Load the pair again when either file changed since it was last looked at (or always,
    /// with `force`; or from new paths). `Ok(true)`: a new pair is in use; `Ok(false)`:
    /// nothing changed; `Err`: the files changed but do not make a pair (the old one stays).
    pub(crate) fn refresh(&self, force: bool, paths: Option<(&Path, &Path)>) -> Result<bool, PairError> {
        let Ok(mut files) = self.files.lock() else { return Ok(false) };
        if let Some((c, k)) = paths {
            if (c, k) != (files.0.as_path(), files.1.as_path()) {
                (files.0, files.1) = (c.to_path_buf(), k.to_path_buf());
                files.2 = None;
            }
        }
        let (sc, sk) = (stamp(&files.0), stamp(&files.1));
        if !force && (sc, sk) == (files.2, files.3) {
            return Ok(false);
        }
        (files.2, files.3) = (sc, sk);
        let pair = load_pair(&files.0, &files.1)?;
        self.current.store(pair);
        Ok(true)
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}
