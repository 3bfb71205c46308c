//! A fake upstream (the OP's stand-in) on loopback: records every request it sees and answers
//! by path. Runs in its own thread and tokio runtime; optional TLS with a test CA.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio_rustls::rustls;

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query exactly as on the request line.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
    pub body_fnv: u64,
    /// The body, when it is at most 128 KiB.
    pub body: String,
    pub at: std::time::Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Deterministic body bytes for size tests.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// The JWKS served at /jwks (tests may rotate it).
    pub jwks: Arc<Mutex<String>>,
    /// PEM of the CA that signed the TLS certificate (TLS upstreams only).
    pub ca_pem: Option<PathBuf>,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Body = BoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

/// How a careless OP (or the framework under it) routes a path: escapes decoded, `;params`
/// dropped, empty and dot segments resolved, letter case and a trailing slash ignored. Written
/// independently of the gateway's own normalisation, so the two are checked against each other.
pub fn lenient_path(path: &str) -> String {
    let mut p = path.to_string();
    for _ in 0..3 {
        let d = percent_decode(&p);
        if d == p {
            break;
        }
        p = d;
    }
    let mut out: Vec<String> = Vec::new();
    for seg in p.split(['/', '\\']) {
        let seg = seg.split(';').next().unwrap_or("");
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s.to_ascii_lowercase()),
        }
    }
    format!("/{}", out.join("/"))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every parameter of the query and the form body (a careless OP merges both).
fn all_params(target: &str, body: &str) -> Vec<(String, String)> {
    let q = target.split_once('?').map_or("", |x| x.1);
    let mut all: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(body) {
        // Careless: a JSON body's string members count as parameters too.
        Ok(m) => all.extend(m.into_iter().filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))),
        Err(_) => all.extend(url::form_urlencoded::parse(body.as_bytes()).into_owned()),
    }
    all
}

/// The token a careless OP accepts at userinfo: `Authorization` with any scheme spelling and
/// whitespace, else `access_token` in the query or any body.
fn lenient_bearer(s: &Seen) -> Option<String> {
    for (k, v) in &s.headers {
        if k.eq_ignore_ascii_case("authorization") {
            let mut parts = v.split([' ', '\t']).filter(|p| !p.is_empty());
            let scheme = parts.next().unwrap_or("").to_ascii_lowercase();
            if scheme == "bearer" || scheme == "dpop" {
                return parts.next().map(String::from);
            }
        }
    }
    all_params(&s.target, &s.body).into_iter().find(|(k, _)| k.eq_ignore_ascii_case("access_token")).map(|(_, v)| v)
}

fn query_param(target: &str, key: &str) -> Option<usize> {
    let q = target.split_once('?')?.1;
    q.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

async fn handle(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
    jwks: Arc<Mutex<String>>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().to_string();
    let target = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let small = if body.len() <= 128 * 1024 { String::from_utf8_lossy(&body).into_owned() } else { String::new() };
    let s = Seen {
        method,
        target: target.clone(),
        headers,
        body_len: body.len(),
        body_fnv: fnv(&body),
        body: small,
        at: std::time::Instant::now(),
    };
    seen.lock().unwrap().push(s.clone());

    let path = target.split('?').next().unwrap_or("");
    // The OIDC endpoints answer every spelling of their path, as careless OPs do.
    let ep = lenient_path(path);
    let resp = if path == "/.well-known/openid-configuration" {
        // Built from the Host the request names, as OPs behind a proxy do.
        let host = s.header("host").unwrap_or("localhost").to_string();
        let proto = s.header("x-forwarded-proto").unwrap_or("http").to_string();
        let doc = serde_json::json!({
            "issuer": format!("{proto}://{host}"),
            "jwks_uri": format!("{proto}://{host}/jwks"),
            "authorization_endpoint": format!("{proto}://{host}/oauth/authorize"),
            "token_endpoint": format!("{proto}://{host}/token"),
            "userinfo_endpoint": format!("{proto}://{host}/userinfo"),
            "introspection_endpoint": format!("{proto}://{host}/introspect"),
            "revocation_endpoint": format!("{proto}://{host}/revoke"),
            "registration_endpoint": format!("{proto}://{host}/reg"),
        });
        Response::builder().header("content-type", "application/json").body(full(doc.to_string()))
    } else if ep == "/token" || ep == "/alt/token" {
        return Ok(token(&s));
    } else if ep == "/userinfo" {
        // Careless: any token in any place is good, whatever happened to its session.
        let tok = lenient_bearer(&s).unwrap_or_default();
        let json = serde_json::json!({
            "sub": "U-user", "token": tok, "method": s.method, "target": s.target, "body_len": s.body_len,
        });
        Response::builder()
            .header("content-type", "application/json")
            .header("x-upstream", "fake")
            .body(full(json.to_string()))
    } else if ep == "/introspect" {
        let active =
            all_params(&s.target, &s.body).iter().any(|(k, v)| k.eq_ignore_ascii_case("token") && !v.is_empty());
        let json = serde_json::json!({"active": active, "target": s.target, "body_len": s.body_len});
        Response::builder()
            .header("content-type", "application/json")
            .header("x-upstream", "fake")
            .body(full(json.to_string()))
    } else if path == "/revoke" && s.method == "POST" {
        Response::builder().status(200).body(full(Bytes::new()))
    } else if path == "/reg" && s.method == "POST" {
        // Dynamic registration: the metadata echoed with a client_id (the client_name) and a secret.
        let mut m: serde_json::Value = serde_json::from_str(&s.body).unwrap_or_default();
        let id = m["client_name"].as_str().unwrap_or("dyn").to_string();
        m["client_id"] = id.into();
        m["client_secret"] = "registered-secret".into();
        Response::builder().status(201).header("content-type", "application/json").body(full(m.to_string()))
    } else if let Some(id) = path.strip_prefix("/reg/") {
        if s.method == "DELETE" {
            Response::builder().status(204).body(full(Bytes::new()))
        } else {
            // Careless: a client_id in the body wins over the path's.
            let mut m: serde_json::Value = serde_json::from_str(&s.body).unwrap_or_default();
            if m.get("client_id").is_none() {
                m["client_id"] = id.into();
            }
            Response::builder().status(200).header("content-type", "application/json").body(full(m.to_string()))
        }
    } else if ep == "/api/login" && s.method == "POST" {
        // A careless login API: it reuses the session id of the cookie it is sent (an ended one
        // included), else starts a fresh one.
        let form: Vec<(String, String)> = url::form_urlencoded::parse(s.body.as_bytes()).into_owned().collect();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        let reused = s
            .header("cookie")
            .and_then(|c| c.split("op_session=").nth(1))
            .map(|v| v.split(';').next().unwrap_or("").to_string());
        let n = seen.lock().unwrap().iter().filter(|x| x.target.starts_with("/api/login")).count();
        let sid = reused.filter(|v| !v.is_empty()).unwrap_or_else(|| format!("S-{}-{n}", get("user")));
        Response::builder()
            .status(302)
            .header("set-cookie", format!("op_session={sid}; Path=/; HttpOnly"))
            .header("location", format!("https://c.example.com/cb?code={}&state=s", get("code")))
            .body(full(Bytes::new()))
    } else if ep == "/login" && s.method == "POST" {
        // The OP's login form: sets its session cookie and redirects to the RP with a code (or,
        // with ?form_post=1, answers the form_post page itself, as some OPs do).
        let form: Vec<(String, String)> = url::form_urlencoded::parse(s.body.as_bytes()).into_owned().collect();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        if target.contains("form_post=1") {
            let html = format!(
                "<html><body><form method=\"post\" action=\"https://c.example.com/cb\">\
                 <input type=\"hidden\" name=\"code\" value=\"{}\"/></form></body></html>",
                get("code")
            );
            return Ok(Response::builder()
                .header("content-type", "text/html")
                .header("set-cookie", format!("op_session=S-{}; Path=/; HttpOnly", get("user")))
                .body(full(html))
                .unwrap());
        }
        // `?attrs=` gives the cookie other attributes (a Domain, a Path, SameSite…).
        let attrs = target
            .split_once('?')
            .and_then(|(_, q)| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "attrs"))
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| "Path=/; HttpOnly".into());
        Response::builder()
            .status(302)
            .header("set-cookie", format!("op_session=S-{}; {attrs}", get("user")))
            .header("location", format!("https://c.example.com/cb?code={}&state=s", get("code")))
            .body(full(Bytes::new()))
    } else if ep == "/oauth/authorize" {
        // SSO with the OP cookie: a new code at once; without it, prompt=none fails.
        let has_session = s.header("cookie").is_some_and(|c| c.contains("op_session=S-"));
        let code = target.split("code_to_issue=").nth(1).unwrap_or("").split('&').next().unwrap_or("").to_string();
        let user = s
            .header("cookie")
            .and_then(|c| c.split("op_session=S-").nth(1))
            .map(|u| u.split(';').next().unwrap_or("").to_string())
            .unwrap_or_default();
        let client =
            target.split("client_id=").nth(1).unwrap_or("rp-c").split('&').next().unwrap_or("rp-c").to_string();
        let location = if has_session && target.contains("response_mode=form_post") {
            let html = format!(
                "<html><body onload=\"document.forms[0].submit()\"><form method=\"post\" action=\"https://c.example.com/cb\">\
                 <input type=\"hidden\" name=\"code\" value=\"{code}\"/><input type=\"hidden\" name=\"state\" value=\"s\"/></form></body></html>"
            );
            let b = Response::builder().status(200).header("content-type", "text/html; charset=utf-8");
            return Ok(encoded(b, html, &target));
        } else if has_session && target.contains("response_type=id_token") {
            let iss = format!("http://{}", s.header("host").unwrap_or("localhost"));
            let t = crate::tokens::rsa(&crate::tokens::claims(
                &iss,
                &client,
                &format!("U-{user}"),
                Some(&format!("sid-{code}")),
                3600,
            ));
            format!("https://c.example.com/cb#id_token={t}&state=s")
        } else if has_session {
            format!("https://c.example.com/cb?code={code}&state=s")
        } else if target.contains("prompt=none") {
            "https://c.example.com/cb?error=login_required&state=s".to_string()
        } else {
            return Ok(Response::builder().status(200).body(full("login page")).unwrap());
        };
        let mut b = Response::builder().status(302).header("location", location);
        if target.contains("expire_cookie=1") {
            // The OP ends the presented session and issues the code anyway (careless).
            b = b.header("set-cookie", "op_session=; Path=/; Max-Age=0");
        }
        b.body(full(Bytes::new()))
    } else if path.starts_with(crate::tokens::ATTACKER_PATH) {
        // The attacker's key server (forged hints name it in jku/x5u): the foreign key set.
        let body =
            std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwks-foreign.json"))
                .unwrap();
        Response::builder().header("content-type", "application/json").body(full(body))
    } else if path == "/jwks" {
        let body = jwks.lock().unwrap().clone();
        Response::builder().header("content-type", "application/json").body(full(body))
    } else if path == "/big" {
        let n = query_param(&target, "size").unwrap_or(0);
        Response::builder().header("content-type", "application/octet-stream").body(full(pattern(n)))
    } else if path == "/chunked" {
        // No content-length: hyper sends it chunked, in 64 KiB pieces.
        let n = query_param(&target, "size").unwrap_or(0);
        let chunks: Vec<Result<Frame<Bytes>, Infallible>> =
            pattern(n).chunks(65536).map(|c| Ok(Frame::data(Bytes::copy_from_slice(c)))).collect();
        Response::builder().body(StreamBody::new(futures_util::stream::iter(chunks)).boxed())
    } else if let Some(code) = path.strip_prefix("/status/") {
        let code: u16 = code.parse().unwrap_or(500);
        Response::builder().status(code).header("etag", "\"v1\"").body(full(Bytes::new()))
    } else if path == "/flaky" {
        // The first `fail` requests for this `key` get 503, later ones 204.
        let fail = query_param(&target, "fail").unwrap_or(1);
        let key = target.split("key=").nth(1).unwrap_or("").split('&').next().unwrap_or("").to_string();
        let seen_before = seen.lock().unwrap().iter().filter(|x| x.target.contains(&format!("key={key}"))).count();
        let code = if seen_before <= fail { 503 } else { 204 };
        Response::builder().status(code).body(full(Bytes::new()))
    } else if path == "/slow" {
        let ms = query_param(&target, "ms").unwrap_or(1000);
        tokio::time::sleep(Duration::from_millis(ms as u64)).await;
        Response::builder().body(full("slow"))
    } else if path == "/cookies" {
        Response::builder()
            .header("set-cookie", "a=1; Path=/; HttpOnly")
            .header("set-cookie", "b=2; Path=/; Secure")
            .header("x-multi", "one")
            .header("x-multi", "two")
            .body(full("cookies"))
    } else {
        let json = serde_json::json!({
            "method": s.method, "target": s.target, "body_len": s.body_len, "body_fnv": s.body_fnv.to_string(),
        });
        Response::builder()
            .header("content-type", "application/json")
            .header("x-upstream", "fake")
            .body(full(json.to_string()))
    };
    Ok(resp.unwrap())
}

/// The token endpoint (also at /alt/token): a token response whose ID token names sid-<code>
/// (`?sid=` overrides) for client_id, signed with the fixture key (`?forged=1`: a foreign key
/// under the same kid); a refresh_token grant answers new tokens without an ID token.
fn token(s: &Seen) -> Response<Body> {
    let target = &s.target;
    // Careless: query and body merged, names in any case, the last value of a repeated one wins.
    let form = all_params(target, &s.body);
    let get = |k: &str| {
        form.iter().rev().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    let (code, client) = (get("code"), get("client_id"));
    let client = if client.is_empty() { "rp-c".to_string() } else { client };
    let query = |k: &str| target.split(&format!("{k}=")).nth(1).and_then(|v| v.split('&').next()).map(String::from);
    let lifetime = |k: &str| query(k).and_then(|v| v.parse::<u64>().ok());
    let b = Response::builder()
        .header("content-type", "application/json;charset=UTF-8")
        .header("cache-control", "no-store");
    if get("grant_type") == "refresh_token" {
        // Like many OPs: a refresh answers new tokens without an ID token. `?n=` makes each
        // access token unique; `?keep=1` is a non-rotating OP (no new refresh token).
        let rt = get("refresh_token");
        let n = query("n").map(|n| format!("-{n}")).unwrap_or_default();
        let mut json = serde_json::json!({
            "access_token": format!("at2-{rt}{n}"), "token_type": "Bearer", "expires_in": 3600,
        });
        if !target.contains("keep=1") {
            json["refresh_token"] = format!("rt2-{rt}").into();
        }
        return encoded(b, json.to_string(), target);
    }
    if get("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange" {
        let st = get("subject_token");
        let json = serde_json::json!({"access_token": format!("ax-{st}"), "token_type": "Bearer", "expires_in": 3600});
        return encoded(b, json.to_string(), target);
    }
    let iss = format!("http://{}", s.header("host").unwrap_or("localhost"));
    // Codes "user_n" belong to "U-user"; other codes are their own user.
    let user = code.split('_').next().unwrap_or(&code).to_string();
    let sid = query("sid").unwrap_or_else(|| format!("sid-{code}"));
    // `?nosid=1`: an OP whose ID tokens carry no sid (Glewlwyd's default).
    let sid = (!target.contains("nosid=1")).then_some(sid);
    let claims = crate::tokens::claims(&iss, &client, &format!("U-{user}"), sid.as_deref(), 3600);
    let id_token = if target.contains("forged=1") {
        let foreign = jsonwebtoken::EncodingKey::from_rsa_pem(&crate::tokens::fixture("rsa-foreign.pem")).unwrap();
        crate::tokens::sign(jsonwebtoken::Algorithm::RS256, Some("rsa1"), &foreign, &claims)
    } else {
        crate::tokens::rsa(&claims)
    };
    let mut json = serde_json::json!({
        "access_token": format!("at-{code}"), "refresh_token": format!("rt-{code}"),
        "token_type": "Bearer", "expires_in": lifetime("expires_in").unwrap_or(3600), "id_token": id_token,
    });
    if let Some(r) = lifetime("refresh_expires_in") {
        json["refresh_expires_in"] = r.into();
    }
    encoded(b, json.to_string(), target)
}

/// The body in the coding the query asks for: `gzip=1` compresses it; `coding=br` only labels
/// it br (a coding the gateway does not decode; the tests' client does not decode either).
fn encoded(b: hyper::http::response::Builder, body: String, target: &str) -> Response<Body> {
    if target.contains("gzip=1") {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(body.as_bytes()).unwrap();
        b.header("content-encoding", "gzip").body(full(gz.finish().unwrap())).unwrap()
    } else if target.contains("coding=br") {
        b.header("content-encoding", "br").body(full(body)).unwrap()
    } else {
        b.body(full(body)).unwrap()
    }
}

impl Upstream {
    pub fn start() -> Upstream {
        Self::spawn(None)
    }

    /// TLS with a certificate for `names`, signed by a fresh test CA.
    pub fn start_tls(names: &[&str]) -> Upstream {
        Self::spawn(Some(names.iter().map(|s| s.to_string()).collect()))
    }

    fn spawn(tls_names: Option<Vec<String>>) -> Upstream {
        let dir = tempfile::tempdir().unwrap();
        let (acceptor, ca_pem) = match tls_names {
            Some(names) => {
                let (acc, pem) = tls_acceptor(names);
                let path = dir.path().join("ca.pem");
                std::fs::write(&path, pem).unwrap();
                (Some(acc), Some(path))
            }
            None => (None, None),
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwks.json");
        let jwks = Arc::new(Mutex::new(std::fs::read_to_string(fixtures).unwrap()));
        let jwks2 = jwks.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let seen2 = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let (stream, _) = tokio::select! {
                        r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                        _ = &mut rx => return,
                    };
                    let seen = seen2.clone();
                    let jwks = jwks2.clone();
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| handle(req, seen.clone(), jwks.clone()));
                        let builder = hyper::server::conn::http1::Builder::new();
                        match acceptor {
                            Some(acc) => {
                                if let Ok(tls) = acc.accept(stream).await {
                                    let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                                }
                            }
                            None => {
                                let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                            }
                        }
                    });
                }
            });
        });
        Upstream { addr, seen, jwks, ca_pem, _dir: dir, shutdown: Some(tx), thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests other than key and discovery fetches.
    pub fn count_app(&self) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| !s.target.starts_with("/jwks") && !s.target.starts_with("/.well-known"))
            .count()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tls_acceptor(names: Vec<String>) -> (tokio_rustls::TlsAcceptor, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(names).unwrap().signed_by(&leaf_key, &ca, &ca_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), ca.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca.pem())
}
