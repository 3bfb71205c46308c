//! SIGUSR2: the process starts its own successor, for supervisors that must see the new
//! process as one of their own (systemd keeps a service's processes in its cgroup, and the
//! successor tells it its PID with `MAINPID=`). The successor is the binary at the path this
//! process was started from (so an upgraded file is the one that runs), with `run --upgrade`
//! and the same config file. It must pass `check` first; it is then started, and once it waits
//! on `server.upgrade_sock` this process hands the sockets over as on SIGQUIT. When anything
//! fails before the hand-over, this process keeps serving and says why.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the successor may take to start waiting for the sockets.
const START_PATIENCE: Duration = Duration::from_secs(10);

pub(crate) struct Successor {
    pub(crate) config: PathBuf,
    pub(crate) upgrade_sock: PathBuf,
}

impl Successor {
    /// Start the successor; true once it waits for the sockets (then hand them over).
    pub(crate) async fn start(&self) -> bool {
        let (config, sock) = (self.config.clone(), self.upgrade_sock.clone());
        match tokio::task::spawn_blocking(move || start(&config, &sock)).await {
            Ok(Ok(pid)) => {
                tracing::info!(pid, "SIGUSR2: the new process waits for the listening sockets");
                true
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "SIGUSR2: upgrade not started; this process keeps serving");
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "SIGUSR2: upgrade task failed; this process keeps serving");
                false
            }
        }
    }
}

/// The upgrade socket's directory lets other users create files (such as /tmp): another local
/// user could take the listening sockets during an upgrade. Warned at start.
pub(crate) fn warn_if_shared(sock: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    let Some(dir) = sock.parent() else { return };
    if !dir.is_dir() {
        tracing::warn!(upgrade_sock = %sock.display(), "the directory of server.upgrade_sock does not exist: an upgrade (run --upgrade) will fail until it does");
    } else if std::fs::metadata(dir).is_ok_and(|m| m.mode() & 0o002 != 0) {
        tracing::warn!(upgrade_sock = %sock.display(), "server.upgrade_sock is in a directory every user can write to; during an upgrade another local user could take the listening sockets: use a private directory such as /run/logout-gateway");
    }
}

/// The binary to start: argv[0] when absolute (an upgraded file at that path), else the
/// running executable's path.
fn binary() -> Result<PathBuf, String> {
    if let Some(a) = std::env::args_os().next().map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Ok(a);
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the binary: {e}"))?;
    // Linux names a replaced file "<path> (deleted)"; the path is what matters.
    let s = exe.to_string_lossy();
    Ok(PathBuf::from(s.strip_suffix(" (deleted)").unwrap_or(&s)))
}

fn start(config: &std::path::Path, sock: &std::path::Path) -> Result<u32, String> {
    let bin = binary()?;
    let check = Command::new(&bin)
        .args(["check", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !check.status.success() {
        let problems = String::from_utf8_lossy(&check.stderr);
        return Err(format!("{} check refused the config: {}", bin.display(), problems.trim()));
    }
    // A stale socket file would look like the successor waiting.
    let _ = std::fs::remove_file(sock);
    let child = Command::new(&bin)
        .args(["run", "--upgrade", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    wait_for_socket(child, sock)
}

/// Wait until the successor created the upgrade socket, or give up if it exits first.
fn wait_for_socket(mut child: Child, sock: &std::path::Path) -> Result<u32, String> {
    let deadline = Instant::now() + START_PATIENCE;
    loop {
        if sock.exists() {
            return Ok(child.id());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the new process exited before taking the sockets ({status})"));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the new process did not wait on {} within {START_PATIENCE:?}", sock.display()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
