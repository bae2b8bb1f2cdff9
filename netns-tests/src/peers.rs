//! Independent IGMP queriers to interoperate with: FRR's pimd (with its zebra) and
//! troglobit pimd, each run in the foreground inside a test namespace and killed by PID.
//!
//! Both run through `ip netns exec`, which gives each process a private (slave) mount
//! namespace; the spawn command mounts a small tmpfs there over the directory the daemon
//! would otherwise write to in the root file system (`/var/tmp` for FRR's crash-log
//! directories, `/run` for troglobit pimd's pid and dump files), so nothing is left behind
//! and no instance sees another's files. Their own sockets, pid files and configuration
//! live in a private temporary directory removed on drop.
//!
//! Install them with `scripts/install-deps.sh`: FRR from apt (`/usr/lib/frr`, `vtysh`);
//! troglobit pimd, which conflicts with FRR in apt, unpacked into
//! [`TROGLOBIT_PIMD_CACHE`].

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::cmd;
use crate::netns::{Netns, NsChild};
use crate::poll::{poll_until, poll_until_ok};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// How long a peer may take to come up (both daemons running, the interface in service).
pub const PEER_START_TIMEOUT: Duration = Duration::from_secs(30);

/// Where `scripts/install-deps.sh` unpacks the troglobit pimd package (`dpkg -x`).
pub const TROGLOBIT_PIMD_CACHE: &str = "/var/cache/igmpd-test/pimd";

/// A private directory under the temp dir, removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new(kind: &str) -> Result<TempDir> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("igt-{kind}-{}-{n}", std::process::id()));
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("remove {}", p.display()))?;
        }
        std::fs::create_dir(&p).with_context(|| format!("create {}", p.display()))?;
        Ok(TempDir(p))
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn file(&self, name: &str) -> Result<String> {
        self.0
            .join(name)
            .into_os_string()
            .into_string()
            .map_err(|_| anyhow!("temp path is not UTF-8"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A shared log filled by threads reading a child's stdout and stderr.
type Log = Arc<Mutex<String>>;

fn collect_output(child: &mut NsChild, log: &Log, tag: &str) {
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .take_stdout()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .take_stderr()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    for mut pipe in pipes.into_iter().flatten() {
        let log = Arc::clone(log);
        let tag = tag.to_owned();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut pending = String::new();
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                pending.push_str(&String::from_utf8_lossy(&buf[..n]));
                while let Some(i) = pending.find('\n') {
                    let line: String = pending.drain(..=i).collect();
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&tag);
                        l.push_str(": ");
                        l.push_str(&line);
                    }
                }
            }
            if !pending.is_empty() {
                if let Ok(mut l) = log.lock() {
                    l.push_str(&format!("{tag}: {pending}\n"));
                }
            }
        });
    }
}

fn log_text(log: &Log) -> String {
    log.lock().map(|l| l.clone()).unwrap_or_default()
}

/// SIGTERM, a bounded wait for the exit, then SIGKILL (by PID, via [`NsChild`]).
fn stop_child(child: &NsChild) {
    let _ = child.signal(libc::SIGTERM);
    if !matches!(child.wait_timeout(Duration::from_secs(5)), Ok(Some(_))) {
        let _ = child.kill();
    }
}

/// `ip netns exec NS sh -c 'mount -t tmpfs ... DIR && exec PROG ARGS...'`: the program
/// runs with a fresh tmpfs over `dir` in its own mount namespace, and keeps the PID.
fn spawn_with_tmpfs(ns: &Netns, dir: &str, argv: &[&str]) -> Result<NsChild> {
    let script =
        format!("mount -t tmpfs -o size=8m,mode=1777 igmpd-test {dir} && exec \"$0\" \"$@\"");
    let mut full = vec!["sh", "-c", script.as_str()];
    full.extend_from_slice(argv);
    ns.spawn(&full)
}

/// IGMP settings of an FRR pimd interface, in FRR's own units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrrIgmp {
    /// `ip igmp version`.
    pub version: u8,
    /// `ip igmp query-interval`, in seconds.
    pub query_interval_s: u32,
    /// `ip igmp query-max-response-time`, in deciseconds (FRR rejects a query interval at
    /// or below it, so it is configured first).
    pub max_response_ds: u32,
    /// `ip pim` on the interface with `ip pim hello` this many seconds (FRR then sends PIM
    /// hellos with a holdtime of 3.5 x that); None: no PIM.
    pub pim_hello_s: Option<u16>,
}

impl Default for FrrIgmp {
    /// IGMPv3, 3 s query interval, 1 s max response time.
    fn default() -> Self {
        FrrIgmp {
            version: 3,
            query_interval_s: 3,
            max_response_ds: 10,
            pim_hello_s: None,
        }
    }
}

/// FRR's `zebra` and `pimd` in a namespace, with `ip igmp` on one interface.
///
/// Each daemon runs in the foreground as FRR's `frr` user with its zserv socket, vty
/// sockets, pid files and configuration in a private directory (owned by `frr`). Dropping
/// it stops pimd then zebra (SIGTERM, SIGKILL after 5 s) by PID and removes the directory.
#[derive(Debug)]
pub struct FrrPimd {
    // Field order = drop order after `Drop::drop`: daemons before their directory.
    pimd: NsChild,
    zebra: NsChild,
    log: Log,
    ifname: String,
    dir: TempDir,
}

impl FrrPimd {
    /// Directory of FRR's daemons (Debian's layout).
    pub const DAEMON_DIR: &'static str = "/usr/lib/frr";

    /// Starts zebra, then pimd with `ip igmp` on `ifname` per `igmp`, and waits until pimd
    /// shows the interface up with an address.
    pub fn spawn(ns: &Netns, ifname: &str, igmp: &FrrIgmp) -> Result<FrrPimd> {
        let zebra_bin = format!("{}/zebra", Self::DAEMON_DIR);
        let pimd_bin = format!("{}/pimd", Self::DAEMON_DIR);
        for b in [&zebra_bin, &pimd_bin] {
            if !Path::new(b).is_file() {
                bail!("{b} not found: install FRR (scripts/install-deps.sh)");
            }
        }
        let dir = TempDir::new("frr")?;
        // The daemons drop to user frr: the directory must be theirs.
        let uid = id_of("-u")?;
        let gid = id_of("-g")?;
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
            .with_context(|| format!("chown {}", dir.path().display()))?;
        std::fs::write(dir.path().join("zebra.conf"), "hostname igt-zebra\n")?;
        let mut pimd_conf = format!(
            "hostname igt-pimd\n\
             interface {ifname}\n \
             ip igmp\n \
             ip igmp version {}\n \
             ip igmp query-max-response-time {}\n \
             ip igmp query-interval {}\n",
            igmp.version, igmp.max_response_ds, igmp.query_interval_s
        );
        if let Some(h) = igmp.pim_hello_s {
            pimd_conf += &format!(" ip pim\n ip pim hello {h}\n");
        }
        std::fs::write(dir.path().join("pimd.conf"), pimd_conf)?;
        let d = dir.file("")?;
        let d = d.trim_end_matches('/').to_owned();
        let zserv = dir.file("zserv.api")?;
        let common = |name: &str| -> Result<Vec<String>> {
            Ok(vec![
                "-z".into(),
                zserv.clone(),
                "--vty_socket".into(),
                d.clone(),
                "-i".into(),
                dir.file(&format!("{name}.pid"))?,
                "-f".into(),
                dir.file(&format!("{name}.conf"))?,
                // No TCP vty.
                "-P".into(),
                "0".into(),
                "--log".into(),
                "stdout".into(),
            ])
        };
        let log = Log::default();
        let zebra_args = common("zebra")?;
        let mut argv: Vec<&str> = vec![&zebra_bin];
        argv.extend(zebra_args.iter().map(String::as_str));
        let mut zebra = spawn_with_tmpfs(ns, "/var/tmp", &argv)?;
        collect_output(&mut zebra, &log, "zebra");
        let zserv_path = PathBuf::from(&zserv);
        poll_until(PEER_START_TIMEOUT, Duration::from_millis(50), || {
            if let Ok(Some(s)) = zebra.try_wait() {
                return Some(Err(anyhow!("zebra exited ({s}): {}", log_text(&log))));
            }
            zserv_path.exists().then_some(Ok(()))
        })
        .map_err(|_| anyhow!("zebra did not open {zserv}: {}", log_text(&log)))??;

        let pimd_args = common("pimd")?;
        let mut argv: Vec<&str> = vec![&pimd_bin];
        argv.extend(pimd_args.iter().map(String::as_str));
        let mut pimd = spawn_with_tmpfs(ns, "/var/tmp", &argv)?;
        collect_output(&mut pimd, &log, "pimd");
        let frr = FrrPimd {
            pimd,
            zebra,
            log,
            ifname: ifname.to_owned(),
            dir,
        };
        poll_until_ok(PEER_START_TIMEOUT, Duration::from_millis(100), || {
            for (name, c) in [("pimd", &frr.pimd), ("zebra", &frr.zebra)] {
                if let Ok(Some(s)) = c.try_wait() {
                    bail!("FRR {name} exited ({s})");
                }
            }
            let i = frr.igmp_interface()?;
            Ok::<_, anyhow::Error>(
                (i["state"] == "up" && i["address"].as_str().is_some_and(|a| a != "0.0.0.0"))
                    .then_some(()),
            )
        })
        .map_err(|e| {
            anyhow!(
                "FRR pimd did not bring up IGMP on {ifname}: {e}\n{}",
                frr.log_text()
            )
        })?;
        Ok(frr)
    }

    /// Runs one `vtysh` command against this instance's pimd (through its vty socket in
    /// the private directory); returns the output.
    pub fn vtysh(&self, command: &str) -> Result<String> {
        let d = self.dir.file("")?;
        let argv = [
            "vtysh",
            "--vty_socket",
            d.trim_end_matches('/'),
            "-d",
            "pimd",
            "-c",
            command,
        ];
        let out = cmd::run(&argv, None, Duration::from_secs(10))?;
        if !out.status.success() {
            bail!(
                "`vtysh -c {command}` failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `show ip igmp interface IF json`, the object for the interface: `querier`
    /// (`"local"` or `"other"`), `querierIp`, `timerQueryInterval`, ...
    pub fn igmp_interface(&self) -> Result<Value> {
        let out = self.vtysh(&format!("show ip igmp interface {} json", self.ifname))?;
        let v: Value = serde_json::from_str(&out)
            .with_context(|| format!("vtysh printed invalid JSON: {out}"))?;
        v.get(&self.ifname)
            .cloned()
            .ok_or_else(|| anyhow!("no {} in {v}", self.ifname))
    }

    /// PIDs of zebra and pimd.
    pub fn pids(&self) -> (u32, u32) {
        (self.zebra.pid(), self.pimd.pid())
    }

    /// Everything both daemons logged so far.
    pub fn log_text(&self) -> String {
        log_text(&self.log)
    }
}

impl Drop for FrrPimd {
    fn drop(&mut self) {
        stop_child(&self.pimd);
        stop_child(&self.zebra);
    }
}

fn id_of(flag: &str) -> Result<u32> {
    let out = cmd::run(&["id", flag, "frr"], None, Duration::from_secs(10))?;
    if !out.status.success() {
        bail!("no user frr: install FRR (scripts/install-deps.sh)");
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("parse `id frr`")
}

/// Serializes troglobit pimd instances within this process (it was written for one instance
/// per host; the private /run makes several safe, but one at a time keeps it predictable).
static TROGLOBIT_LOCK: Mutex<()> = Mutex::new(());

/// How long [`TroglobitPimd::spawn`] waits for another instance of this process to finish.
pub const TROGLOBIT_LOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// troglobit pimd (2.3.x) in a namespace, enabled on one interface only (`-N` plus
/// `phyint IF enable`), run in the foreground (`-f`) with IGMP debug logging.
///
/// It reads its interface addresses once at start: give the interface its final address
/// before spawning. Dropping it stops it (SIGTERM, SIGKILL after 5 s) by PID.
#[derive(Debug)]
pub struct TroglobitPimd {
    child: NsChild,
    log: Log,
    _dir: TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl TroglobitPimd {
    /// The binary: `$IGMPD_TEST_PIMD`, else `usr/sbin/pimd` under [`TROGLOBIT_PIMD_CACHE`].
    pub fn locate_binary() -> Result<PathBuf> {
        if let Ok(p) = std::env::var("IGMPD_TEST_PIMD") {
            return Ok(PathBuf::from(p));
        }
        let p = Path::new(TROGLOBIT_PIMD_CACHE).join("usr/sbin/pimd");
        if p.is_file() {
            Ok(p)
        } else {
            bail!(
                "{} not found: run scripts/install-deps.sh (or set IGMPD_TEST_PIMD)",
                p.display()
            )
        }
    }

    /// Starts `bin` on `ifname` with `igmp-query-interval` and `igmp-querier-timeout` (whole
    /// seconds; pimd runs its IGMP timers in 5 s steps, so intervals that are not
    /// multiples of 5 s are stretched) and waits until the interface is in service.
    pub fn spawn(
        ns: &Netns,
        bin: impl AsRef<Path>,
        ifname: &str,
        query_interval_s: u32,
        querier_timeout_s: u32,
    ) -> Result<TroglobitPimd> {
        let turn =
            poll_until(
                TROGLOBIT_LOCK_TIMEOUT,
                Duration::from_millis(100),
                || match TROGLOBIT_LOCK.try_lock() {
                    Ok(g) => Some(g),
                    Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
                    Err(TryLockError::WouldBlock) => None,
                },
            )
            .map_err(|_| anyhow!("another troglobit pimd of this process ran for too long"))?;
        let bin = bin.as_ref().to_str().context("pimd path is not UTF-8")?;
        let dir = TempDir::new("pimd")?;
        let conf = dir.file("pimd.conf")?;
        std::fs::write(
            &conf,
            format!(
                "phyint {ifname} enable\n\
                 igmp-query-interval {query_interval_s}\n\
                 igmp-querier-timeout {querier_timeout_s}\n"
            ),
        )?;
        let mut child =
            spawn_with_tmpfs(ns, "/run", &[bin, "-f", "-N", "-c", &conf, "--debug=igmp"])?;
        let log = Log::default();
        collect_output(&mut child, &log, "pimd");
        let p = TroglobitPimd {
            child,
            log,
            _dir: dir,
            _turn: turn,
        };
        let up = format!("Interface {ifname} comes up");
        poll_until(PEER_START_TIMEOUT, Duration::from_millis(50), || {
            if let Ok(Some(s)) = p.child.try_wait() {
                return Some(Err(anyhow!("pimd exited ({s}): {}", p.log_text())));
            }
            p.log_text().contains(&up).then_some(Ok(()))
        })
        .map_err(|_| anyhow!("pimd did not bring up {ifname}: {}", p.log_text()))??;
        Ok(p)
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Everything it logged so far (stdout and stderr).
    pub fn log_text(&self) -> String {
        log_text(&self.log)
    }
}

impl Drop for TroglobitPimd {
    fn drop(&mut self) {
        stop_child(&self.child);
    }
}
