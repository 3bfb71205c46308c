//! Test harness: real processes on free loopback ports, polled for readiness with a deadline,
//! cleaned up in Drop. No fixed ports, no sleeps as synchronisation.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use logout_gateway::config::raw::{
    RawBackchannel, RawClient, RawCluster, RawConfig, RawEndSession, RawGlobalRevocation, RawLimits, RawMtls, RawRedis,
    RawRevocation, RawSentinel, RawSessionManagement, RawSsf, RawSsfReceiver, RawTls,
};

/// A port nobody listens on right now. Between this and the server's bind another process may
/// take it (pingora cannot report a port-0 bind): starters check with [`listens_on`] that the
/// process they started is the one listening, never only that something answers.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether process `pid` holds a listening TCP socket on `port` (Linux: its fds against
/// /proc/net/tcp{,6}). Another test's server on a port this one was also handed answers health
/// checks and PINGs as well as ours would.
pub fn listens_on(pid: u32, port: u16) -> bool {
    listening_fd(pid, port).is_some()
}

/// The fd number under which process `pid` holds its listening socket on `port`.
pub fn listening_fd(pid: u32, port: u16) -> Option<i32> {
    let mut inodes = std::collections::HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f.get(1).and_then(|a| a.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
            // State 0A is LISTEN; field 9 the socket's inode.
            if local_port == Some(port) && f.get(3) == Some(&"0A") {
                inodes.extend(f.get(9).map(|i| format!("socket:[{i}]")));
            }
        }
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    fds.flatten()
        .find(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| inodes.contains(&*l.to_string_lossy())))
        .and_then(|fd| fd.file_name().to_str()?.parse().ok())
}

/// A TCP-level option (`libc::TCP_*`) of process `pid`'s listening socket on `port`, read from a
/// copy of its fd (pidfd_getfd: the process is our child).
pub fn listener_tcp_option(pid: u32, port: u16, option: i32) -> i32 {
    let fd = listening_fd(pid, port).expect("a listening socket");
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) as libc::c_int;
        assert!(pidfd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
        let copy = libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) as libc::c_int;
        assert!(copy >= 0, "pidfd_getfd: {}", std::io::Error::last_os_error());
        let (mut value, mut len) = (0 as libc::c_int, std::mem::size_of::<libc::c_int>() as libc::socklen_t);
        let rc = libc::getsockopt(copy, libc::IPPROTO_TCP, option, (&mut value as *mut libc::c_int).cast(), &mut len);
        assert_eq!(rc, 0, "getsockopt: {}", std::io::Error::last_os_error());
        libc::close(copy);
        libc::close(pidfd);
        value
    }
}

/// `redis-cli` over TLS (trusting `ca`) against the node on `port`: its output.
pub fn tls_cli(ca: &str, port: u16, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args(["10", "redis-cli", "--tls", "--cacert", ca, "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
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

/// One HTTP client for the whole suite (building one loads the system's trust store, ~15 ms);
/// every request on its own connection, so tests do not share connections.
static CLIENT: std::sync::LazyLock<reqwest::blocking::Client> = std::sync::LazyLock::new(|| {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
});

pub fn client() -> reqwest::blocking::Client {
    CLIENT.clone()
}

/// A real redis-server on a free port, without persistence.
pub struct Redis {
    pub port: u16,
    child: Child,
    /// A sentinel's config file (Sentinel rewrites it).
    _dir: Option<tempfile::TempDir>,
    /// The password `command` and `ping` authenticate with.
    pub password: Option<String>,
}

impl Redis {
    /// On a free port (another one if a process took that port before redis-server bound it).
    pub fn start() -> Redis {
        for _ in 0..3 {
            let port = free_port();
            let dir = tempfile::tempdir().unwrap();
            if let Some(r) = Self::try_spawn_in(port, &Self::plain_args(port, &dir), Some(dir), None) {
                return r;
            }
        }
        panic!("redis-server did not start on three free ports");
    }

    pub fn start_on(port: u16) -> Redis {
        Self::start_with(port, &[])
    }

    /// A redis-server with extra arguments (`--replicaof 127.0.0.1 <port>`, ...), in a
    /// directory of its own: a replica writes the RDB of its initial sync there, and any other
    /// server started in the same directory would load it.
    pub fn start_with(port: u16, extra: &[&str]) -> Redis {
        let password = extra.windows(2).find(|w| w[0] == "--requirepass").map(|w| w[1].to_string());
        let dir = tempfile::tempdir().unwrap();
        let mut args = Self::plain_args(port, &dir);
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(port, Some(dir), &args, password)
    }

    fn plain_args(port: u16, dir: &tempfile::TempDir) -> Vec<String> {
        let mut args = vec!["--port".to_string(), port.to_string(), "--dir".into(), dir.path().display().to_string()];
        args.extend(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"].map(String::from));
        args
    }

    /// A Redis Sentinel watching the master on `master_port` as `mymaster` (quorum 2, a node is
    /// down after 1 s, failover timeout 3 s), with `data` (the master's and replicas' password)
    /// and `own` (the sentinel's).
    pub fn sentinel_auth(port: u16, master_port: u16, data: Option<&str>, own: Option<&str>) -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 3000\n\
                 sentinel parallel-syncs mymaster 2\n{}{}",
                dir.path().display(),
                data.map(|p| format!("sentinel auth-pass mymaster {p}\n")).unwrap_or_default(),
                own.map(|p| format!("requirepass {p}\n")).unwrap_or_default(),
            ),
        )
        .unwrap();
        Self::spawn(port, Some(dir), &[conf.display().to_string(), "--sentinel".into()], own.map(String::from))
    }

    /// A Redis Sentinel speaking only TLS on `port` (`tls`: its `tls-*` directives), watching
    /// the TLS master on `master_port` as `mymaster` (quorum 2, down after 1 s, failover timeout
    /// 3 s). Ready once it listens (PING would need TLS: see [`tls_cli`]).
    pub fn sentinel_tls(port: u16, master_port: u16, tls: &[(&str, &str)]) -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("sentinel.conf");
        let directives: String = tls.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        let text = format!(
            "port 0\ntls-port {port}\nbind 127.0.0.1\ndir {}\n{directives}sentinel monitor mymaster 127.0.0.1 \
             {master_port} 2\nsentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 3000\n",
            dir.path().display()
        );
        std::fs::write(&conf, text).unwrap();
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        eventually("the TLS sentinel to listen", Duration::from_secs(10), || {
            listens_on(child.id(), port).then_some(())
        });
        Redis { port, child, _dir: Some(dir), password: None }
    }

    fn spawn(port: u16, dir: Option<tempfile::TempDir>, args: &[String], password: Option<String>) -> Redis {
        Self::try_spawn_in(port, args, dir, password)
            .unwrap_or_else(|| panic!("redis-server on port {port} exited at start (port taken?)"))
    }

    /// redis-server with `args`, once it answers PING and is the process listening on `port`;
    /// None when it exits first.
    fn try_spawn_in(
        port: u16,
        args: &[String],
        dir: Option<tempfile::TempDir>,
        password: Option<String>,
    ) -> Option<Redis> {
        let child = Command::new("redis-server")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (the README test command installs it)");
        let mut r = Redis { port, child, _dir: dir, password };
        let up = eventually("redis-server to answer PING", Duration::from_secs(10), || {
            if r.child.try_wait().unwrap().is_some() {
                return Some(false);
            }
            (r.ping() && listens_on(r.child.id(), port)).then_some(true)
        });
        up.then_some(r)
    }

    /// A redis-server speaking only TLS (`extra` names its files and `--tls-port`); ready once
    /// its port accepts connections (the plain PING probe cannot speak TLS).
    pub fn start_tls(port: u16, extra: &[&str]) -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["--dir".to_string(), dir.path().display().to_string()];
        args.extend(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"].map(String::from));
        args.extend(extra.iter().map(|s| s.to_string()));
        let child =
            Command::new("redis-server").args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        eventually("redis-server to listen", Duration::from_secs(10), || listens_on(child.id(), port).then_some(()));
        Redis { port, child, _dir: Some(dir), password: None }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
        self.try_command(args).unwrap_or_else(|e| panic!("redis {args:?} on port {}: {e}", self.port))
    }

    /// [`Redis::command`] that reports a dropped connection instead of panicking: a server that
    /// changes role (a master demoted by a failover) closes its clients' connections, so a test
    /// polling it across that moment must retry.
    pub fn try_command(&self, args: &[&str]) -> std::io::Result<String> {
        use std::io::Read;
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        if !self.authenticate(&mut s) {
            return Err(std::io::Error::other("AUTH refused or connection lost"));
        }
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes())?;
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// `CLIENT KILL TYPE normal`: drops every client connection but the caller's; how many.
    pub fn kill_clients(&self) -> u64 {
        let reply = self.command(&["CLIENT", "KILL", "TYPE", "normal"]);
        reply.trim().strip_prefix(':').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("CLIENT KILL: {reply:?}"))
    }

    /// `AUTH <password>` first, when the server wants one: whether it said OK.
    fn authenticate(&self, s: &mut TcpStream) -> bool {
        use std::io::Read;
        let Some(p) = &self.password else { return true };
        if s.write_all(format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{p}\r\n", p.len()).as_bytes()).is_err() {
            return false;
        }
        let mut ok = [0u8; 5];
        s.read_exact(&mut ok).is_ok() && &ok == b"+OK\r\n"
    }

    pub fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        s.set_read_timeout(Some(Duration::from_secs(1))).ok();
        if !self.authenticate(&mut s) || s.write_all(b"PING\r\n").is_err() {
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

/// The generated proxy.yaml, typed: the library's own file-format structs
/// (`logout_gateway::config::raw`), serialised to YAML at start.
#[derive(Clone)]
pub struct GatewayOpts {
    /// `listen`, `admin.listen` and (unless `issuer` is set) `issuer` are filled in at start.
    pub config: RawConfig,
    /// The issuer; None: the gateway's own origin.
    pub issuer: Option<String>,
    /// Start with `LGW_FAULT_INJECTION=1`: the panic path is armed (the tests' build has the
    /// `fault-injection` feature; see src/fault.rs).
    pub fault_injection: bool,
    /// Extra environment variables for the process.
    pub env: Vec<(String, String)>,
}

/// A relying party with these post_logout_redirect_uris and nothing else.
pub fn rp(post_logout_redirect_uris: &[&str]) -> RawClient {
    RawClient {
        post_logout_redirect_uris: post_logout_redirect_uris.iter().map(|u| u.to_string()).collect(),
        ..RawClient::default()
    }
}

/// The relying parties every scenario uses.
pub fn clients() -> BTreeMap<String, RawClient> {
    let a = RawClient {
        frontchannel_logout_uri: Some("https://a.example.org/fc?tenant=t1".into()),
        frontchannel_logout_session_required: true,
        ..rp(&["https://a.example.org/logged-out", "https://a.example.org/bye?lang=en"])
    };
    let b = RawClient {
        default_post_logout_redirect_uri: Some("https://b.example.net/out".into()),
        frontchannel_logout_uri: Some("https://b.example.net/fc".into()),
        ..rp(&["https://b.example.net/out"])
    };
    BTreeMap::from([("rp-a".into(), a), ("rp-b".into(), b), ("rp-c".into(), rp(&["https://c.example.com/out"]))])
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl GatewayOpts {
    pub fn new(upstream_url: impl Into<String>) -> Self {
        let mut c = RawConfig::new(upstream_url, "");
        // A plain listener (its port is chosen at start); tests of https-only set None.
        c.listen = Some(String::new());
        c.upstream.connect_timeout = "1s".into();
        c.upstream.read_timeout = "5s".into();
        c.upstream.session_cookies = strings(&["op_session"]);
        c.upstream.session_cookie_paths = strings(&["/login"]);
        c.end_session.paths = strings(&["/session/end", "/oxauth/restv1/end_session"]);
        c.session_store.backend = "memory".into();
        c.templates_dir = templates_dir().display().to_string();
        c.log.level = Some("info,pingora_proxy=error".into());
        c.server.threads = 2;
        c.server.grace_period = "1s".into();
        c.server.shutdown_timeout = "1s".into();
        // Off, so scenario tests may send many logouts.
        c.rate_limit.per_second = 0;
        c.clients = clients();
        GatewayOpts { config: c, issuer: None, fault_injection: false, env: Vec::new() }
    }

    /// The store: the Redis at `url` (short timeouts, so outage tests are quick), or memory.
    pub fn redis(&mut self, url: Option<String>) -> &mut Self {
        let store = &mut self.config.session_store;
        store.backend = if url.is_some() { "redis" } else { "memory" }.into();
        store.redis = url.map(|u| RawRedis {
            connect_timeout: "200ms".into(),
            response_timeout: "300ms".into(),
            ..RawRedis::new(u)
        });
        self
    }

    /// A copy changed by `f`.
    pub fn with(&self, f: impl FnOnce(&mut GatewayOpts)) -> GatewayOpts {
        let mut o = self.clone();
        f(&mut o);
        o
    }

    pub fn yaml(&self, listen: u16, admin: u16) -> String {
        let mut c = self.config.clone();
        // A config without a plain listener (https only) stays without one.
        if c.listen.is_some() {
            c.listen = Some(format!("127.0.0.1:{listen}"));
        }
        c.admin.listen = format!("127.0.0.1:{admin}");
        c.issuer = self.issuer.clone().unwrap_or_else(|| format!("http://127.0.0.1:{listen}"));
        c.to_yaml()
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
    /// The config file it runs (SIGHUP re-reads it; `upgrade` starts a successor on it).
    pub config: PathBuf,
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
            cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
            let child = cmd.stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
            let mut gw = Gateway { port, admin_port, child: Some(child), dir, config: cfg };
            if gw.wait_healthy() {
                return gw;
            }
            eprintln!("gateway start attempt {attempt} failed:\n{}", gw.log());
        }
        panic!("the gateway did not start");
    }

    /// A second process on the same config, started with `run --upgrade`: it waits for this
    /// one's listening sockets (send this one SIGQUIT). Returned at once, not waited for.
    pub fn successor(&self) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let child = Command::new(binary())
            .args(["run", "--upgrade", "--config"])
            .arg(&self.config)
            .env_remove("RUST_LOG")
            .env_remove("LGW_FAULT_INJECTION")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Gateway { port: self.port, admin_port: self.admin_port, child: Some(child), dir, config: self.config.clone() }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Send a signal; the process keeps running unless the signal ends it.
    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.pid() as i32, sig) };
    }

    /// Wait for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        eventually("the gateway to exit", timeout, || child.try_wait().unwrap())
    }

    fn wait_healthy(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        let c = client();
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                return false;
            }
            // /healthz is 200 only once every listener is bound (src/serving.rs), and it is this
            // process answering only if this process holds the admin port.
            let ours = self.child.as_ref().is_some_and(|ch| listens_on(ch.id(), self.admin_port));
            let ok = ours && c.get(self.admin("/healthz")).send().is_ok_and(|r| r.status() == 200);
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
