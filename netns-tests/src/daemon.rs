//! Running the real `igmpd` binary inside a namespace: each instance gets its own control
//! socket, its log is collected, and it is stopped by PID (SIGTERM, then SIGKILL) on drop.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::netns::{Netns, NsChild};
use crate::poll::poll_until;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// How long [`Igmpd::spawn`] waits for the control socket to answer.
pub const IGMPD_START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `igmpd` in a namespace.
#[derive(Debug)]
pub struct Igmpd {
    child: NsChild,
    socket: PathBuf,
    log: Arc<Mutex<String>>,
    bin: PathBuf,
}

impl Igmpd {
    /// Runs `bin args... --control-socket <unique>` in `ns` and waits until `igmpd status`
    /// answers. `args` is the subcommand and its flags, e.g. `["query", "eth0"]`.
    pub fn spawn(ns: &Netns, bin: impl AsRef<Path>, args: &[&str]) -> Result<Igmpd> {
        Igmpd::spawn_env(ns, bin, &[], args)
    }

    /// [`Igmpd::spawn`] with `env` (`NAME=VALUE`) added to its environment (through
    /// env(1), which execs: the PID stays igmpd's).
    pub fn spawn_env(
        ns: &Netns,
        bin: impl AsRef<Path>,
        env: &[&str],
        args: &[&str],
    ) -> Result<Igmpd> {
        let bin = bin.as_ref().to_owned();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let socket = std::env::temp_dir().join(format!("igt-{}-{n}.sock", std::process::id()));
        let socket_s = socket
            .to_str()
            .context("temp path is not UTF-8")?
            .to_owned();
        let bin_s = bin.to_str().context("binary path is not UTF-8")?.to_owned();
        let mut argv: Vec<&str> = Vec::new();
        if !env.is_empty() {
            argv.push("env");
            argv.extend_from_slice(env);
        }
        argv.push(&bin_s);
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--control-socket", &socket_s]);
        let mut child = ns.spawn(&argv)?;
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = child.take_stderr() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            });
        }
        let d = Igmpd {
            child,
            socket,
            log,
            bin,
        };
        let started = poll_until(IGMPD_START_TIMEOUT, Duration::from_millis(50), || {
            if let Ok(Some(status)) = d.child.try_wait() {
                return Some(Err(anyhow::anyhow!(
                    "igmpd exited at start ({status}): {}",
                    d.log_text()
                )));
            }
            d.status().ok().map(|_| Ok(()))
        });
        match started {
            Ok(r) => r?,
            Err(_) => bail!(
                "igmpd did not answer on {} within {IGMPD_START_TIMEOUT:?}: {}",
                d.socket.display(),
                d.log_text()
            ),
        }
        Ok(d)
    }

    /// Process ID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Its control socket.
    pub fn control_socket(&self) -> &Path {
        &self.socket
    }

    /// Everything it logged so far.
    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// `igmpd status --json`, run as a separate process like a user would.
    pub fn status(&self) -> Result<Value> {
        self.status_timed().map(|(_, v)| v)
    }

    /// `status` and how long the command took, start to exit (the JSON is parsed after the
    /// clock stops: the caller's parsing is not the command's latency).
    pub fn status_timed(&self) -> Result<(Duration, Value)> {
        let (took, out) = self.status_run(true)?;
        let v = serde_json::from_slice(&out).context("igmpd status --json printed invalid JSON")?;
        Ok((took, v))
    }

    /// `igmpd status` (the tables) and how long it took, start to exit.
    pub fn status_plain_timed(&self) -> Result<(Duration, String)> {
        let (took, out) = self.status_run(false)?;
        Ok((took, String::from_utf8_lossy(&out).into_owned()))
    }

    /// Runs `igmpd status [--json]`: its wall time and standard output.
    fn status_run(&self, json: bool) -> Result<(Duration, Vec<u8>)> {
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.arg("status");
        if json {
            cmd.arg("--json");
        }
        cmd.arg("--control-socket").arg(&self.socket);
        let t = std::time::Instant::now();
        let out = cmd.output().context("run igmpd status")?;
        let took = t.elapsed();
        if !out.status.success() {
            bail!(
                "igmpd status failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok((took, out.stdout))
    }

    /// Polls `status` until `pred` returns Some, or fails with the last status and the log.
    pub fn wait_status<T>(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&Value) -> Option<T>,
    ) -> Result<T> {
        let mut last = Value::Null;
        let r = poll_until(timeout, Duration::from_millis(100), || {
            let s = self.status().ok()?;
            let r = pred(&s);
            last = s;
            r
        });
        r.map_err(|_| {
            anyhow::anyhow!(
                "status condition not met within {timeout:?}; last status: {last:#}\nlog:\n{}",
                self.log_text()
            )
        })
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) -> Result<()> {
        self.child.signal(sig)
    }

    /// SIGTERM and wait for a clean exit (SIGKILL after 10 s).
    pub fn stop(self) -> Result<std::process::ExitStatus> {
        self.child.signal(libc::SIGTERM)?;
        match self.child.wait_timeout(Duration::from_secs(10))? {
            Some(s) => Ok(s),
            None => {
                let s = self.child.kill()?;
                bail!(
                    "igmpd ignored SIGTERM for 10 s (killed: {s}); log:\n{}",
                    self.log_text()
                )
            }
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(self) -> Result<std::process::ExitStatus> {
        self.child.kill()
    }

    /// Path of the igmpd binary: `$IGMPD_BIN`, else `target/<profile>/igmpd` next to this
    /// test's executable.
    pub fn locate_binary() -> Result<PathBuf> {
        if let Ok(p) = std::env::var("IGMPD_BIN") {
            return Ok(PathBuf::from(p));
        }
        let exe = std::env::current_exe()?;
        for dir in exe.ancestors().skip(1) {
            let candidate = dir.join("igmpd");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        bail!("igmpd binary not found; build it (cargo build) or set IGMPD_BIN")
    }
}

impl Drop for Igmpd {
    fn drop(&mut self) {
        let _ = self.child.signal(libc::SIGTERM);
        if !matches!(self.child.wait_timeout(Duration::from_secs(5)), Ok(Some(_))) {
            let _ = self.child.kill();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}
