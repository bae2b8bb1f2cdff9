//! Network namespaces with unique names, deleted (after their processes are killed) on drop.

use std::collections::HashMap;
use std::path::Path;
use std::process::{
    Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Output, Stdio,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::{cmd, ffi};

/// Every namespace this library creates is named `igt<pid>-<n>`: `<pid>` is the creating
/// process, `<n>` a per-process counter. At most 15 characters for PIDs up to 7 digits and
/// fewer than 10 000 namespaces per process, so a name also fits an interface name.
pub const NETNS_PREFIX: &str = "igt";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A process spawned in a namespace: still running (unreaped), or reaped with this status.
#[derive(Debug)]
enum Proc {
    Running(Child),
    Exited(ExitStatus),
}

/// The processes spawned in one namespace, shared by the [`Netns`] and each [`NsChild`].
#[derive(Debug, Default)]
struct Children {
    next_id: u64,
    procs: HashMap<u64, Proc>,
}

type SharedChildren = Arc<Mutex<Children>>;

fn lock(c: &SharedChildren) -> MutexGuard<'_, Children> {
    // A panic while holding this lock leaves the map consistent; keep going.
    c.lock().unwrap_or_else(|e| e.into_inner())
}

/// A network namespace named `igt<pid>-<n>` with its loopback up.
///
/// On drop, every process spawned with [`Netns::spawn`] that is still running gets SIGKILL
/// (by PID, and reaped), then the namespace is deleted with `ip netns del`.
#[derive(Debug)]
pub struct Netns {
    name: String,
    children: SharedChildren,
}

impl Netns {
    /// Creates a fresh namespace (`ip netns add`) and brings its loopback up.
    pub fn new() -> Result<Netns> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{NETNS_PREFIX}{}-{n}", std::process::id());
        // Concurrent first uses of /run/netns can race in `ip netns add` (it makes the
        // directory a shared mount); retry a few times.
        let mut attempt = 0;
        loop {
            match cmd::run_ok(&["ip", "netns", "add", &name], None) {
                Ok(_) => break,
                Err(e) if attempt < 5 && !Path::new("/run/netns").join(&name).exists() => {
                    attempt += 1;
                    eprintln!("netns-tests: retrying `ip netns add {name}`: {e:#}");
                    std::thread::sleep(Duration::from_millis(50 * attempt));
                }
                Err(e) => return Err(e),
            }
        }
        let ns = Netns {
            name,
            children: SharedChildren::default(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `argv` in this namespace; see [`crate::exec`].
    pub fn exec(&self, argv: &[&str]) -> Result<Output> {
        cmd::exec(&self.name, argv)
    }

    /// Runs `argv` in this namespace, failing on a non-zero exit; see [`crate::exec_ok`].
    pub fn exec_ok(&self, argv: &[&str]) -> Result<String> {
        cmd::exec_ok(&self.name, argv)
    }

    /// `ip -n NS ARGS...`; fails on a non-zero exit status, returns stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        cmd::ip(&self.name, args)
    }

    /// `ip -n NS -batch -` fed `commands` (one `ip` command a line, without the `ip`);
    /// fails on a non-zero exit status.
    pub fn ip_batch(&self, commands: &str) -> Result<()> {
        let argv = ["ip", "-n", self.name.as_str(), "-batch", "-"];
        cmd::run_ok(&argv, Some(commands.as_bytes()))
            .with_context(|| format!("ip batch in {}:\n{commands}", self.name))
            .map(drop)
    }

    /// Turns IPv6 duplicate address detection off for the interfaces created in or moved
    /// into this namespace from now on (they take its `default` IPv6 settings), so their
    /// addresses are usable at once.
    pub fn disable_dad(&self) -> Result<()> {
        self.exec_ok(&[
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ])
        .map(drop)
    }

    /// Sets a sysctl in this namespace; see [`crate::sysctl`].
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        cmd::sysctl(&self.name, key, value)
    }

    /// Reads a sysctl in this namespace.
    pub fn sysctl_get(&self, key: &str) -> Result<String> {
        cmd::sysctl_get(&self.name, key)
    }

    /// Loads an nftables ruleset in this namespace; see [`crate::nft`].
    pub fn nft(&self, ruleset: &str) -> Result<()> {
        cmd::nft(&self.name, ruleset)
    }

    /// The ifindex of interface `ifname` in this namespace.
    pub fn ifindex(&self, ifname: &str) -> Result<u32> {
        let out = self.ip(&["-j", "link", "show", "dev", ifname])?;
        let v: serde_json::Value = serde_json::from_str(&out).context("parse `ip -j link`")?;
        v.get(0)
            .and_then(|l| l.get("ifindex"))
            .and_then(serde_json::Value::as_u64)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| anyhow!("no ifindex for {ifname} in {}", self.name))
    }

    /// Spawns `argv` inside this namespace (`ip netns exec NS ARGV...`, which execs, so the
    /// PID is the program's own) with stdin, stdout and stderr piped. The process is killed
    /// when the returned [`NsChild`] or this namespace is dropped, whichever comes first,
    /// and also (SIGKILL via the parent-death signal) when the spawning thread exits.
    pub fn spawn(&self, argv: &[&str]) -> Result<NsChild> {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.name])
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        ffi::kill_on_parent_death(&mut command);
        let mut child = command
            .spawn()
            .with_context(|| format!("spawn `{}` in {}", argv.join(" "), self.name))?;
        let pid = child.id();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let id = {
            let mut c = lock(&self.children);
            let id = c.next_id;
            c.next_id += 1;
            c.procs.insert(id, Proc::Running(child));
            id
        };
        Ok(NsChild {
            id,
            pid,
            children: Arc::clone(&self.children),
            stdin,
            stdout,
            stderr,
        })
    }

    /// PIDs of the processes spawned here that have not been reaped yet.
    pub fn running_pids(&self) -> Vec<u32> {
        lock(&self.children)
            .procs
            .values()
            .filter_map(|p| match p {
                Proc::Running(c) => Some(c.id()),
                Proc::Exited(_) => None,
            })
            .collect()
    }
}

/// Runs `f` on a new thread inside the namespace `name` (as `ip netns` knows it): for
/// sockets that must live in it (senders, netlink listeners) without a helper process.
pub fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> std::thread::JoinHandle<Result<T>> {
    let path = Path::new("/run/netns").join(name);
    std::thread::spawn(move || {
        let file =
            std::fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
        ffi::enter_netns(&file).context("setns")?;
        f()
    })
}

impl Drop for Netns {
    fn drop(&mut self) {
        {
            let mut c = lock(&self.children);
            for p in c.procs.values_mut() {
                if let Proc::Running(child) = p {
                    // Unreaped, so the PID is still this child's.
                    let _ = child.kill();
                    if let Ok(status) = child.wait() {
                        *p = Proc::Exited(status);
                    }
                }
            }
        }
        delete_namespace(&self.name);
    }
}

fn delete_namespace(name: &str) {
    for attempt in 0..3u64 {
        match cmd::run_ok(&["ip", "netns", "del", name], None) {
            Ok(_) => return,
            Err(_) if !Path::new("/run/netns").join(name).exists() => return,
            Err(e) => {
                eprintln!("netns-tests: `ip netns del {name}` failed: {e:#}");
                std::thread::sleep(Duration::from_millis(50 * (attempt + 1)));
            }
        }
    }
}

/// A process spawned by [`Netns::spawn`]. Dropping it kills the process (SIGKILL by PID)
/// and reaps it, unless it already exited.
#[derive(Debug)]
pub struct NsChild {
    id: u64,
    pid: u32,
    children: SharedChildren,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
}

impl NsChild {
    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The write end of the process's stdin (once).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// The read end of the process's stdout (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.stdout.take()
    }

    /// The read end of the process's stderr (once).
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.stderr.take()
    }

    /// Sends signal `sig` (e.g. `libc::SIGTERM`) if the process has not been reaped yet.
    pub fn signal(&self, sig: i32) -> Result<()> {
        let c = lock(&self.children);
        if let Some(Proc::Running(_)) = c.procs.get(&self.id) {
            // Checked under the lock that every reap takes: the PID is still ours.
            ffi::send_signal(self.pid, sig).with_context(|| format!("kill -{sig} {}", self.pid))?;
        }
        Ok(())
    }

    /// The exit status if the process has exited (reaping it), `None` while it runs.
    pub fn try_wait(&self) -> Result<Option<ExitStatus>> {
        let mut c = lock(&self.children);
        match c.procs.get_mut(&self.id) {
            Some(Proc::Running(child)) => {
                let status = child.try_wait().context("try_wait")?;
                if let Some(s) = status {
                    c.procs.insert(self.id, Proc::Exited(s));
                }
                Ok(status)
            }
            Some(Proc::Exited(s)) => Ok(Some(*s)),
            None => bail!("process {} is not tracked", self.pid),
        }
    }

    /// Waits up to `timeout` for the process to exit; `None` if it still runs.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills the process (SIGKILL) unless it already exited, and reaps it.
    pub fn kill(&self) -> Result<ExitStatus> {
        let mut c = lock(&self.children);
        match c.procs.get_mut(&self.id) {
            Some(Proc::Running(child)) => {
                let _ = child.kill();
                let s = child.wait().context("wait after kill")?;
                c.procs.insert(self.id, Proc::Exited(s));
                Ok(s)
            }
            Some(Proc::Exited(s)) => Ok(*s),
            None => bail!("process {} is not tracked", self.pid),
        }
    }
}

impl Drop for NsChild {
    fn drop(&mut self) {
        let _ = self.kill();
        lock(&self.children).procs.remove(&self.id);
    }
}

/// Deletes namespaces left behind by earlier runs that crashed: those named
/// `igt<pid>-<n>` whose `<pid>` no longer exists. Processes still inside such a namespace
/// (helpers of that dead run) get SIGKILL first. Namespaces of live processes, this one
/// included, are never touched. Returns the names deleted. [`crate::Lab::builder`]'s
/// `build` calls this first.
pub fn cleanup_stale_namespaces() -> Result<Vec<String>> {
    let dir = match std::fs::read_dir("/run/netns") {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context("read /run/netns"),
    };
    let mut removed = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = creator_pid(&name) else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        if let Ok(out) = cmd::run_ok(&["ip", "netns", "pids", &name], None) {
            for p in out.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
                let _ = ffi::send_signal(p, libc::SIGKILL);
            }
        }
        if cmd::run_ok(&["ip", "netns", "del", &name], None).is_ok() {
            removed.push(name);
        }
    }
    Ok(removed)
}

/// `igt<pid>-<n>` -> `pid`.
fn creator_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NETNS_PREFIX)?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creator_pid_parses_only_our_names() {
        assert_eq!(creator_pid("igt1234-7"), Some(1234));
        assert_eq!(creator_pid("igt1234"), None);
        assert_eq!(creator_pid("igtx-1"), None);
        assert_eq!(creator_pid("other1-1"), None);
        assert_eq!(creator_pid("igt12-ab"), None);
    }
}
