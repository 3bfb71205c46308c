//! Test harness: real processes on free loopback ports, polled for readiness with a deadline,
//! cleaned up in Drop. No fixed ports, no sleeps as synchronisation.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on right now (small race: pingora cannot report a port-0 bind).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Poll `f` until it returns Some, or panic with `what` after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A real redis-server on a free port, without persistence.
pub struct Redis {
    pub port: u16,
    child: Child,
}

impl Redis {
    pub fn start() -> Redis {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (the README test command installs it)");
        let r = Redis { port, child };
        eventually("redis-server to answer PING", Duration::from_secs(10), || r.ping().then_some(()));
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// SIGSTOP (a hung Redis: connections stay open, nothing answers) or SIGCONT.
    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Send one command (RESP over a fresh connection) and return the raw reply, e.g. `:2\r\n`.
    pub fn command(&self, args: &[&str]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = [0u8; 4096];
        use std::io::Read;
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// `CLIENT KILL TYPE normal`: drops every client connection but the caller's; how many.
    pub fn kill_clients(&self) -> u64 {
        let reply = self.command(&["CLIENT", "KILL", "TYPE", "normal"]);
        reply.trim().strip_prefix(':').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("CLIENT KILL: {reply:?}"))
    }

    pub fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        s.set_read_timeout(Some(Duration::from_secs(1))).ok();
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        use std::io::Read;
        matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What to put in the generated proxy.yaml.
#[derive(Clone)]
pub struct GatewayOpts {
    pub upstream_url: String,
    /// None: memory store.
    pub redis_url: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: &'static str,
    pub read_timeout: &'static str,
    pub trust_forwarded_headers: bool,
    /// The `clients:` block (default: [`CLIENTS`]).
    pub clients: String,
    /// Lines added under `admin:` (indented by two spaces).
    pub admin_extra: String,
    /// Lines added under `end_session:` (indented by two spaces).
    pub end_session_extra: String,
    /// The issuer; None: the gateway's own origin.
    pub issuer: Option<String>,
    /// Lines added under `session_store:` (indented by two spaces).
    pub store_extra: String,
    /// The `rate_limit:` block (default: off, so scenario tests may send many logouts).
    pub rate_limit: String,
    /// Lines added under `upstream:` (indented by two spaces).
    pub upstream_extra: String,
    /// Extra YAML appended at the top level.
    pub extra: String,
    /// Start with `LGW_FAULT_INJECTION=1`: the panic path is armed (the tests' build has the
    /// `fault-injection` feature; see src/fault.rs).
    pub fault_injection: bool,
}

/// The relying parties every scenario uses.
pub const CLIENTS: &str = "clients:
  rp-a:
    post_logout_redirect_uris: [\"https://a.example.org/logged-out\", \"https://a.example.org/bye?lang=en\"]
    frontchannel_logout_uri: \"https://a.example.org/fc?tenant=t1\"
    frontchannel_logout_session_required: true
  rp-b:
    post_logout_redirect_uris: [\"https://b.example.net/out\"]
    default_post_logout_redirect_uri: \"https://b.example.net/out\"
    frontchannel_logout_uri: \"https://b.example.net/fc\"
  rp-c:
    post_logout_redirect_uris: [\"https://c.example.com/out\"]
";

impl GatewayOpts {
    pub fn new(upstream_url: impl Into<String>) -> Self {
        GatewayOpts {
            upstream_url: upstream_url.into(),
            redis_url: None,
            ca_file: None,
            connect_timeout: "1s",
            read_timeout: "5s",
            trust_forwarded_headers: false,
            clients: CLIENTS.to_string(),
            admin_extra: String::new(),
            end_session_extra: String::new(),
            store_extra: String::new(),
            issuer: None,
            rate_limit: "rate_limit:\n  per_second: 0\n".into(),
            upstream_extra: "  session_cookie_paths: [\"/login\"]\n".into(),
            extra: String::new(),
            fault_injection: false,
        }
    }

    pub fn yaml(&self, listen: u16, admin: u16) -> String {
        let store = match &self.redis_url {
            Some(u) => format!("  backend: redis\n  redis:\n    url: \"{u}\"\n    connect_timeout: 200ms\n    response_timeout: 300ms\n"),
            None => "  backend: memory\n".to_string(),
        };
        let ca = self.ca_file.as_ref().map(|p| format!("  ca_file: \"{}\"\n", p.display())).unwrap_or_default();
        format!(
            "listen: \"127.0.0.1:{listen}\"\nadmin:\n  listen: \"127.0.0.1:{admin}\"\n{ae}\
             upstream:\n  url: \"{up}\"\n  connect_timeout: {ct}\n  read_timeout: {rt}\n  trust_forwarded_headers: {tf}\n  session_cookies: [\"op_session\"]\n{ue}{ca}\
             issuer: \"{iss}\"\n\
             end_session:\n  paths: [\"/session/end\", \"/oxauth/restv1/end_session\"]\n{es}\
             session_store:\n{store}{se}\
             templates_dir: \"{tpl}\"\n\
             log:\n  level: \"info,pingora_proxy=error\"\n\
             server:\n  threads: 2\n  grace_period: 1s\n  shutdown_timeout: 1s\n{rl}{clients}{extra}",
            up = self.upstream_url,
            ct = self.connect_timeout,
            rt = self.read_timeout,
            tf = self.trust_forwarded_headers,
            es = self.end_session_extra,
            se = self.store_extra,
            iss = self.issuer.clone().unwrap_or_else(|| format!("http://127.0.0.1:{listen}")),
            clients = self.clients,
            ae = self.admin_extra.replace("admin:\n", ""),
            tpl = templates_dir().display(),
            extra = self.extra,
            rl = self.rate_limit,
            ue = self.upstream_extra,
        )
    }
}

pub fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_logout-gateway")
}

/// The real gateway binary, running a generated config.
pub struct Gateway {
    pub port: u16,
    pub admin_port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Gateway {
    pub fn start(opts: &GatewayOpts) -> Gateway {
        // A reserved port can be taken between reserve and bind: try again with new ones.
        for attempt in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let (port, admin_port) = (free_port(), free_port());
            let cfg = dir.path().join("proxy.yaml");
            std::fs::write(&cfg, opts.yaml(port, admin_port)).unwrap();
            let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
            let mut cmd = Command::new(binary());
            cmd.args(["run", "--config"]).arg(&cfg).env_remove("RUST_LOG").env_remove("LGW_FAULT_INJECTION");
            if opts.fault_injection {
                cmd.env("LGW_FAULT_INJECTION", "1");
            }
            let child = cmd.stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
            let mut gw = Gateway { port, admin_port, child: Some(child), dir };
            if gw.wait_healthy() {
                return gw;
            }
            eprintln!("gateway start attempt {attempt} failed:\n{}", gw.log());
        }
        panic!("the gateway did not start");
    }

    fn wait_healthy(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        let c = client();
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                return false;
            }
            let ok = c.get(self.admin("/healthz")).send().is_ok_and(|r| r.status() == 200)
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            if ok {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn admin(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// Send a signal and wait for the process to exit.
    pub fn stop_with(&mut self, sig: i32, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        unsafe { libc::kill(child.id() as i32, sig) };
        eventually("the gateway to exit", timeout, || child.try_wait().unwrap())
    }

    /// The metrics text, parsed into (series, value) pairs.
    pub fn metrics(&self) -> Vec<(String, f64)> {
        let text = client().get(self.admin("/metrics")).send().unwrap().text().unwrap();
        parse_metrics(&text)
    }

    pub fn metric(&self, series: &str) -> f64 {
        self.metrics().into_iter().find(|(s, _)| s == series).map(|(_, v)| v).unwrap_or(0.0)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- gateway log ---\n{}", self.log());
        }
    }
}

/// Parse the Prometheus text format strictly enough to catch a malformed exposition.
pub fn parse_metrics(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            assert!(
                line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                "bad comment line {line:?}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(
            series[..name_end].chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels in {line:?}");
        }
        out.push((series.to_string(), value));
    }
    out
}
