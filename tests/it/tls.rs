//! The gateway's own TLS: the https listener (TLS 1.2 and 1.3 only, HTTP/2 and HTTP/1.1 by
//! ALPN), certificate rotation while serving, the mutual-TLS alias of end_session, and `check`
//! on the files. Real TLS clients (rustls, reqwest, OpenSSL's s_client) against the real binary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use tokio_rustls::rustls;

use crate::harness::{binary, eventually, free_port, Gateway, GatewayOpts};
use crate::logout::Env;
use crate::upstream::Upstream;

/// A test CA that signs server and client certificates.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        Ca { cert: p.self_signed(&key).unwrap(), key }
    }

    /// (certificate PEM, key PEM) for `names` (DNS names or IP addresses), serverAuth or clientAuth.
    pub fn issue(&self, names: &[&str], client: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("client"));
        p.extended_key_usages =
            vec![if client { ExtendedKeyUsagePurpose::ClientAuth } else { ExtendedKeyUsagePurpose::ServerAuth }];
        (p.signed_by(&key, &self.cert, &self.key).unwrap().pem(), key.serialize_pem())
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// The `tls-*` directives of a TLS-only Redis node (server pair, CA, the client pair it
    /// presents to other nodes, clients unauthenticated, replication over TLS), files in `dir`;
    /// and the CA file's path.
    pub fn redis_node_tls(&self, dir: &Path) -> (String, Vec<(&'static str, String)>) {
        let [cert, key, ca] = self.server_files(dir);
        let (client_cert, client_key) = self.issue(&["node"], true);
        let write = |name: &str, body: &str| {
            let p = dir.join(name);
            std::fs::write(&p, body).unwrap();
            p.display().to_string()
        };
        let directives = vec![
            ("tls-cert-file", cert),
            ("tls-key-file", key),
            ("tls-ca-cert-file", ca.clone()),
            ("tls-client-cert-file", write("client.crt", &client_cert)),
            ("tls-client-key-file", write("client.key", &client_key)),
            ("tls-auth-clients", "no".into()),
            ("tls-replication", "yes".into()),
        ];
        (ca, directives)
    }

    /// A server pair for localhost and 127.0.0.1 and this CA, written into `dir`: the paths of
    /// the certificate, the key and the CA.
    pub fn server_files(&self, dir: &Path) -> [String; 3] {
        let (cert, key) = self.issue(&["localhost", "127.0.0.1"], false);
        [("server.crt", cert), ("server.key", key), ("ca.pem", self.pem())].map(|(name, body)| {
            let p = dir.join(name);
            std::fs::write(&p, body).unwrap();
            p.display().to_string()
        })
    }
}

/// Files of a pair in `dir`, written atomically (a temporary file renamed over the name).
fn write_pair(dir: &Path, name: &str, (cert, key): &(String, String)) -> (PathBuf, PathBuf) {
    let (c, k) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    for (path, body) in [(&k, key), (&c, cert)] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, body).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
    (c, k)
}

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

/// A rustls client config trusting `ca`, for `versions`, with an optional client certificate.
fn client_config(
    ca: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client_cert: Option<&(String, String)>,
) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(ca.as_bytes()).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match client_cert {
        Some((c, k)) => b
            .with_client_auth_cert(
                vec![rustls::pki_types::CertificateDer::from_pem_slice(c.as_bytes()).unwrap()],
                rustls::pki_types::PrivateKeyDer::from_pem_slice(k.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// A blocking TLS connection to 127.0.0.1:`port` as `localhost`.
struct Tls(rustls::StreamOwned<rustls::ClientConnection, TcpStream>);

impl Tls {
    fn connect(port: u16, cfg: Arc<rustls::ClientConfig>) -> std::io::Result<Tls> {
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let conn = rustls::ClientConnection::new(cfg, "localhost".try_into().unwrap()).unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        // Drive the handshake (and, in TLS 1.3, the server's verdict on a client certificate).
        s.flush()?;
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        Ok(Tls(s))
    }

    fn version(&self) -> Option<rustls::ProtocolVersion> {
        self.0.conn.protocol_version()
    }

    fn leaf(&self) -> Vec<u8> {
        self.0.conn.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).unwrap_or_default()
    }

    /// One HTTP/1.1 GET on this connection; the status line and body (sized bodies only).
    fn get(&mut self, target: &str) -> std::io::Result<(u16, String)> {
        self.0.write_all(format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = self.0.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed"));
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0usize);
                if body.len() >= len {
                    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                    return Ok((status, body.to_string()));
                }
            }
        }
    }
}

/// A gateway with a plain and an https listener (certificate for localhost and 127.0.0.1).
struct TlsEnv {
    e: Env,
    ca: Ca,
    dir: tempfile::TempDir,
    tls_port: u16,
}

fn tls_env(f: impl FnOnce(&mut GatewayOpts, &Ca, &Path)) -> TlsEnv {
    let ca = Ca::new("logout-gateway test CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), "server", &ca.issue(&["localhost", "127.0.0.1"], false));
    let tls_port = free_port();
    let e = crate::logout::env_opts(None, |o| {
        o.config.tls = Some(crate::harness::RawTls {
            listen: format!("127.0.0.1:{tls_port}"),
            cert_file: cert.display().to_string(),
            key_file: key.display().to_string(),
        });
        f(o, &ca, dir.path());
    });
    TlsEnv { e, ca, dir, tls_port }
}

fn https_client(ca: &Ca, h1_only: bool) -> reqwest::blocking::Client {
    let b = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(20));
    if h1_only { b.http1_only() } else { b }.build().unwrap()
}

#[test]
fn https_serves_passthrough_logout_and_documents_over_http2_and_http11() {
    let t = tls_env(|_, _, _| {});
    for (h1_only, version) in [(false, reqwest::Version::HTTP_2), (true, reqwest::Version::HTTP_11)] {
        let c = https_client(&t.ca, h1_only);
        let base = format!("https://localhost:{}", t.tls_port);
        let r = c.get(format!("{base}/app/over-tls?x=1")).send().unwrap();
        assert_eq!((r.status().as_u16(), r.version()), (200, version), "passthrough");
        let seen = t.e.up.seen().into_iter().rev().find(|s| s.target.starts_with("/app/over-tls")).unwrap();
        assert_eq!(seen.header("x-forwarded-proto"), Some("https"), "the listener's scheme");
        assert_eq!(seen.header("x-forwarded-host"), Some(format!("localhost:{}", t.tls_port).as_str()));
        let q = "/session/end?client_id=rp-c&post_logout_redirect_uri=https%3A%2F%2Fc.example.com%2Fout";
        let r = c.get(format!("{base}{q}")).send().unwrap();
        assert_eq!((r.status().as_u16(), r.version()), (200, version), "the confirmation page");
        assert!(r.text().unwrap().contains("<form method=\"post\""));
        let r = c.get(format!("{base}/session/end?id_token_hint=garbage")).send().unwrap();
        assert_eq!(r.status(), 400, "a bad hint is refused over {version:?} too");
        let jwks = c.get(format!("{base}/jwks")).send().unwrap();
        assert_eq!(jwks.status(), 200, "published keys");
    }
    // The access log says which version each request came over.
    let log = t.e.gw.log();
    assert!(log.lines().any(|l| l.contains("path=/app/over-tls") && l.contains("http=\"2\"")), "{log}");
    assert!(log.lines().any(|l| l.contains("path=/app/over-tls") && l.contains("http=\"1.1\"")), "{log}");
    // The plain listener still says http.
    let r = crate::harness::client().get(t.e.gw.url("/app/plain")).send().unwrap();
    assert_eq!(r.status(), 200);
    let seen = t.e.up.seen().into_iter().rev().find(|s| s.target == "/app/plain").unwrap();
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
}

#[test]
fn tls_12_and_13_handshake_and_older_versions_are_refused() {
    let t = tls_env(|_, _, _| {});
    for (versions, want) in [
        (&[&rustls::version::TLS12][..], rustls::ProtocolVersion::TLSv1_2),
        (&[&rustls::version::TLS13][..], rustls::ProtocolVersion::TLSv1_3),
    ] {
        let mut s = Tls::connect(t.tls_port, client_config(&t.ca.pem(), versions, None)).unwrap();
        assert_eq!(s.version(), Some(want));
        assert_eq!(s.get("/app/v").unwrap().0, 200);
    }
    // OpenSSL offers TLS 1.0 and 1.1 when told to (security level 0 lets the client try).
    for flag in ["-tls1", "-tls1_1"] {
        let out = std::process::Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{}", t.tls_port), flag, "-cipher", "DEFAULT@SECLEVEL=0"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl (scripts/test installs it)");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        // The gateway answers the old ClientHello with a fatal alert (rustls: handshake failure or
        // protocol version); no cipher is agreed.
        assert!(text.contains("CONNECTED"), "{flag}: the client reached the gateway: {text}");
        assert!(
            text.contains("SSL alert number") && text.contains("Cipher is (NONE)"),
            "{flag}: refused by the gateway: {text}"
        );
    }
    // And the control: s_client with TLS 1.2 gets through.
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{}", t.tls_port), "-tls1_2", "-servername", "localhost"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Protocol  : TLSv1.2"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn tls_reloads(gw: &Gateway, result: &str) -> f64 {
    gw.metric(&format!("logout_gateway_tls_reloads_total{{result=\"{result}\"}}"))
}

#[test]
fn a_rotated_pair_serves_new_handshakes_and_established_connections_continue() {
    let t = tls_env(|_, _, _| {});
    let cfg = client_config(&t.ca.pem(), &[&rustls::version::TLS13], None);
    let pid = t.e.gw.pid();
    let mut before = Tls::connect(t.tls_port, cfg.clone()).unwrap();
    assert_eq!(before.get("/app/1").unwrap().0, 200);
    let first = before.leaf();

    // Atomic renames of a new pair: new handshakes get it within 5 s.
    let second = t.ca.issue(&["localhost", "127.0.0.1"], false);
    write_pair(t.dir.path(), "server", &second);
    eventually("the new certificate is presented", Duration::from_secs(5), || {
        (Tls::connect(t.tls_port, cfg.clone()).ok()?.leaf() == der(&second.0)).then_some(())
    });
    assert_ne!(first, der(&second.0));
    assert_eq!(before.get("/app/2").unwrap().0, 200, "the connection made before the rotation continues");
    assert!(tls_reloads(&t.e.gw, "ok") >= 1.0);
    assert_eq!(t.e.gw.pid(), pid);

    // A key that does not match: refused, logged under its key, the previous pair stays.
    let stranger = t.ca.issue(&["localhost"], false);
    let key = t.dir.path().join("server.key");
    std::fs::write(key.with_extension("tmp"), &stranger.1).unwrap();
    std::fs::rename(key.with_extension("tmp"), &key).unwrap();
    eventually("the mismatch is refused", Duration::from_secs(5), || {
        (tls_reloads(&t.e.gw, "invalid") >= 1.0).then_some(())
    });
    assert!(t.e.gw.log().contains("tls.key_file"), "{}", t.e.gw.log());
    assert_eq!(Tls::connect(t.tls_port, cfg.clone()).unwrap().leaf(), der(&second.0), "the previous pair stays");

    // SIGHUP reads the files at once, whatever they look like.
    let third = t.ca.issue(&["localhost", "127.0.0.1"], false);
    write_pair(t.dir.path(), "server", &third);
    t.e.gw.signal(libc::SIGHUP);
    eventually("the third certificate", Duration::from_secs(5), || {
        (Tls::connect(t.tls_port, cfg.clone()).ok()?.leaf() == der(&third.0)).then_some(())
    });
    assert_eq!(t.e.gw.pid(), pid);
}

#[test]
fn the_mtls_alias_wants_a_trusted_client_certificate_and_answers_end_session_only() {
    let mtls_port = free_port();
    let clients = Ca::new("client CA");
    let t = tls_env(|o, ca, dir| {
        let (cert, key) = write_pair(dir, "mtls", &ca.issue(&["localhost", "127.0.0.1"], false));
        std::fs::write(dir.join("clients.pem"), clients.pem()).unwrap();
        o.config.mtls = Some(crate::harness::RawMtls {
            listen: format!("127.0.0.1:{mtls_port}"),
            cert_file: cert.display().to_string(),
            key_file: key.display().to_string(),
            client_ca_file: dir.join("clients.pem").display().to_string(),
            public_origin: "https://mtls.login.example".into(),
        });
    });
    let v13 = &[&rustls::version::TLS13][..];
    let q = "/session/end?client_id=rp-c&post_logout_redirect_uri=https%3A%2F%2Fc.example.com%2Fout";
    // No certificate, and one from a CA the gateway does not trust: no handshake (no request).
    let untrusted = Ca::new("someone else").issue(&["mallory"], true);
    for (what, cert) in [("no certificate", None), ("an untrusted certificate", Some(&untrusted))] {
        let r = Tls::connect(mtls_port, client_config(&t.ca.pem(), v13, cert)).and_then(|mut s| s.get(q));
        assert!(r.is_err(), "{what}: refused, got {r:?}");
    }
    let trusted = clients.issue(&["rp-c"], true);
    let mut s = Tls::connect(mtls_port, client_config(&t.ca.pem(), v13, Some(&trusted))).unwrap();
    let (status, body) = s.get(q).unwrap();
    assert_eq!(status, 200, "end_session answers");
    assert!(body.contains("<form method=\"post\""));
    let before = t.e.up.count_app();
    let mut s = Tls::connect(mtls_port, client_config(&t.ca.pem(), v13, Some(&trusted))).unwrap();
    assert_eq!(s.get("/app/not-here").unwrap().0, 404, "nothing else is served there");
    let mut s = Tls::connect(mtls_port, client_config(&t.ca.pem(), v13, Some(&trusted))).unwrap();
    assert_eq!(s.get("/.well-known/openid-configuration").unwrap().0, 404);
    assert_eq!(t.e.up.count_app(), before, "and never proxied");
    // Discovery (public listener) names the alias.
    let doc = eventually("discovery", Duration::from_secs(10), || {
        let r = crate::harness::client().get(t.e.gw.url("/.well-known/openid-configuration")).send().ok()?;
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().ok()?).ok()?;
        v.get("mtls_endpoint_aliases").is_some().then_some(v)
    });
    assert_eq!(doc["mtls_endpoint_aliases"]["end_session_endpoint"], "https://mtls.login.example/session/end");
}

fn check(yaml: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("proxy.yaml");
    std::fs::write(&p, yaml).unwrap();
    let out = std::process::Command::new(binary()).args(["check", "--config"]).arg(&p).output().unwrap();
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn check_names_the_key_of_each_tls_file_problem() {
    let ca = Ca::new("check CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), "good", &ca.issue(&["localhost"], false));
    let (_, other_key) = write_pair(dir.path(), "other", &ca.issue(&["localhost"], false));
    std::fs::write(dir.path().join("garbage.pem"), "not pem at all").unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    let up = Upstream::start();
    let yaml = |tls: (&Path, &Path), ca_file: &str, origin: &str| {
        let mut o = GatewayOpts::new(up.url());
        o.config.tls = Some(crate::harness::RawTls {
            listen: "127.0.0.1:18443".into(),
            cert_file: tls.0.display().to_string(),
            key_file: tls.1.display().to_string(),
        });
        o.config.mtls = Some(crate::harness::RawMtls {
            listen: "127.0.0.1:19443".into(),
            cert_file: cert.display().to_string(),
            key_file: key.display().to_string(),
            client_ca_file: ca_file.into(),
            public_origin: origin.into(),
        });
        o.yaml(free_port(), free_port())
    };
    let ca_file = dir.path().join("ca.pem").display().to_string();
    assert_eq!(check(&yaml((&cert, &key), &ca_file, "https://mtls.example")).0, 0, "the good files pass");
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    for (files, ca_file, origin, key_path, words) in [
        ((&missing, &key), ca_file.as_str(), "https://mtls.example", "tls.cert_file", "cannot read"),
        ((&garbage, &key), &ca_file, "https://mtls.example", "tls.cert_file", "no PEM certificate"),
        ((&cert, &garbage), &ca_file, "https://mtls.example", "tls.key_file", "private key"),
        ((&cert, &other_key), &ca_file, "https://mtls.example", "tls.key_file", "does not match"),
        ((&cert, &key), garbage.to_str().unwrap(), "https://mtls.example", "mtls.client_ca_file", "no PEM certificate"),
        ((&cert, &key), &ca_file, "https://mtls.example/path", "mtls.public_origin", "without a path"),
        ((&cert, &key), &ca_file, "http://mtls.example", "mtls.public_origin", "https origin"),
    ] {
        let (code, err) = check(&yaml((files.0, files.1), ca_file, origin));
        assert_eq!(code, 64, "{key_path}: {err}");
        assert!(err.contains(key_path) && err.contains(words), "{key_path} / {words}: {err}");
    }
}

#[test]
fn a_confirmation_over_http2_with_each_cookie_in_its_own_field_ends_the_browsers_session() {
    // HTTP/2 browsers send one `cookie` field per cookie (RFC 9113 section 8.2.3); the gateway
    // must read them all, at end_session as at the edge.
    let t = tls_env(|_, _, _| {});
    crate::learning::wait_for_discovery(&t.e);
    let op_cookie = crate::learning::code_flow(&t.e, "h2user", "h2code");
    let c = https_client(&t.ca, false);
    let base = format!("https://localhost:{}", t.tls_port);
    let page = c.get(format!("{base}/session/end")).header("cookie", &op_cookie).send().unwrap();
    assert_eq!((page.status().as_u16(), page.version()), (200, reqwest::Version::HTTP_2));
    let binder = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let html = page.text().unwrap();
    let token = crate::logout::attr(&html, "name=\"token\"", "value").unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.append("cookie", binder.parse().unwrap());
    headers.append("cookie", op_cookie.parse().unwrap());
    let r = c
        .post(format!("{base}/session/end/confirm"))
        .headers(headers)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}&action=logout"))
        .send()
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200, "logged out: {}", r.text().unwrap_or_default());
    assert_eq!(t.e.status("sid-h2code").as_deref(), Some("ended"));
}

#[test]
fn the_edge_refuses_an_ended_sessions_token_over_http2_as_over_http11() {
    let t = tls_env(|_, _, _| {});
    crate::learning::wait_for_discovery(&t.e);
    let (at, _, _) = crate::attacks::learned(&t.e, "edge_h2");
    let c = https_client(&t.ca, false);
    let base = format!("https://localhost:{}", t.tls_port);
    let userinfo = |c: &reqwest::blocking::Client| {
        c.get(format!("{base}/userinfo")).header("authorization", format!("Bearer {at}")).send().unwrap()
    };
    assert_eq!(userinfo(&c).status(), 200, "a live session's token passes");
    let r = crate::harness::client().delete(t.e.gw.admin("/sessions/sid-edge_h2")).send().unwrap();
    assert_eq!(r.status(), 204);
    for c in [c, https_client(&t.ca, true)] {
        let r = eventually("refused", Duration::from_secs(5), || {
            let r = userinfo(&c);
            (r.status() == 401).then_some(r)
        });
        let www = r.headers()["www-authenticate"].to_str().unwrap().to_string();
        assert!(www.contains("invalid_token"), "{:?}: {www}", r.version());
    }
}
