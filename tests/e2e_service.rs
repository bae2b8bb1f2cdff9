//! `igmpd run` as a service: the sd_notify protocol against a socket the test listens on,
//! the capability set and no_new_privs in /proc (every mode), control-socket permissions for an unprivileged user,
//! reloads that keep state, and scripts/install.sh into a staging directory.

use std::net::IpAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use igmpd_netns_tests::mdb::igmpd_protocol;
use igmpd_netns_tests::{Igmpd, Lab, Member};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_igmpd");
const WAIT: Duration = Duration::from_secs(20);
const FAST: &str = "query_interval = \"2s\"\nquery_response_interval = \"1s\"\n";

fn temp_dir(tag: &str) -> Result<PathBuf> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("igmpd-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// The datagrams arriving on `sock` until one contains `want` (bounded).
fn recv_until(sock: &UnixDatagram, want: &str, timeout: Duration) -> Result<Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        sock.set_read_timeout(Some(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ))?;
        match sock.recv(&mut buf) {
            Ok(n) => {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = m.contains(want);
                seen.push(m);
                if done {
                    return Ok(seen);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => return Err(e.into()),
        }
    }
    bail!("no {want:?} within {timeout:?}; got {seen:?}")
}

/// Exactly CAP_NET_ADMIN (12) and CAP_NET_RAW (13) effective, permitted and in the
/// bounding set, none inheritable or ambient, and no_new_privs, in every thread of `pid`.
fn assert_least_privilege(pid: u32) -> Result<()> {
    let mut threads = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let st = std::fs::read_to_string(task?.path().join("status"))?;
        let field = |key: &str| {
            st.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(str::trim)
                .with_context(|| format!("no {key} in {st}"))
        };
        for key in ["CapEff:", "CapPrm:", "CapBnd:"] {
            ensure!(field(key)? == "0000000000003000", "{key} in {st}");
        }
        for key in ["CapInh:", "CapAmb:"] {
            ensure!(field(key)? == "0000000000000000", "{key} in {st}");
        }
        ensure!(field("NoNewPrivs:")? == "1", "NoNewPrivs in {st}");
        threads += 1;
    }
    ensure!(threads > 0, "no threads of {pid}");
    Ok(())
}

/// `igmpd query` and `igmpd snoop` (with its writer and capture threads, and after a
/// status request, which starts the encoder thread) keep only the network capabilities.
#[test]
fn query_and_snoop_keep_only_the_network_capabilities() -> Result<()> {
    let lab = Lab::builder()
        .bridge(igmpd_netns_tests::BridgeConfig::snooping())
        .hosts(&["a"])
        .build()?;
    let q = Igmpd::spawn(lab.host("a").netns(), BIN, &["query", "eth0"])?;
    let s = Igmpd::spawn(lab.switch().netns(), BIN, &["snoop", "br0", "--querier"])?;
    for d in [&q, &s] {
        d.status()?;
        assert_least_privilege(d.pid())?;
    }
    let threads = std::fs::read_dir(format!("/proc/{}/task", s.pid()))?.count();
    ensure!(
        threads >= 3,
        "snoop runs {threads} threads: the test checks too few"
    );
    Ok(())
}

/// The groups `st` shows: on bridge port `port` (snoop), or on the first interface (query).
fn shown_groups(st: &Value, port: Option<&str>) -> Vec<String> {
    let groups = match port {
        Some(p) => st["bridges"][0]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["name"] == p)
            .map(|x| x["groups"].clone()),
        None => Some(st["interfaces"][0]["igmp"]["groups"].clone()),
    };
    groups
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|g| g["group"].as_str().map(str::to_owned))
        .collect()
}

/// SIGHUP in `igmpd query` and `igmpd snoop` reads links and addresses again and keeps
/// every membership (its default action used to end them, skipping their cleanup).
#[test]
fn sighup_in_query_and_snoop_rereads_links_and_keeps_memberships() -> Result<()> {
    let lab = Lab::builder()
        .bridge(igmpd_netns_tests::BridgeConfig::snooping())
        .hosts(&["a", "q"])
        .build()?;
    let timers = ["--query-interval", "2s", "--query-response-interval", "1s"];
    let mut qa = vec!["query", "eth0"];
    qa.extend(timers);
    let mut sa = vec!["snoop", "br0"];
    sa.extend(timers);
    let q = Igmpd::spawn(lab.host("q").netns(), BIN, &qa)?;
    let s = Igmpd::spawn(lab.switch().netns(), BIN, &sa)?;
    let g = "239.10.0.1";
    let mut a = Member::spawn(lab.host("a"), Member::locate_binary()?)?;
    a.join(g.parse()?)?;
    let port = lab.host("a").port().to_owned();
    let shown = |d: &Igmpd, port: Option<&str>| -> Result<()> {
        d.wait_status(WAIT, |st| {
            shown_groups(st, port).contains(&g.to_owned()).then_some(())
        })
    };
    shown(&s, Some(&port))?;
    shown(&q, None)?;
    for d in [&q, &s] {
        d.signal(libc::SIGHUP)?;
    }
    for d in [&q, &s] {
        igmpd_netns_tests::poll_until(WAIT, Duration::from_millis(50), || {
            d.log_text()
                .contains("links and addresses read again")
                .then_some(())
        })
        .with_context(|| format!("no re-read logged:\n{}", d.log_text()))?;
    }
    // Both still run and still hold the membership.
    ensure!(shown_groups(&s.status()?, Some(&port)).contains(&g.to_owned()));
    ensure!(shown_groups(&q.status()?, None).contains(&g.to_owned()));
    ensure!(
        lab.mdb()?
            .iter()
            .any(|e| e.group.to_string() == g && e.port == port),
        "the MDB entry went"
    );
    Ok(())
}

/// Bridge names that differ only in characters nft and file names cannot hold get a table
/// and a state file each: one daemon's exit leaves the other's table in place.
#[test]
fn bridges_whose_names_sanitise_alike_keep_their_own_tables() -> Result<()> {
    let lab = Lab::builder().host("r").build()?;
    let ns = lab.host("r").netns();
    for b in ["br-lan", "br_lan"] {
        ns.ip(&["link", "add", b, "type", "bridge", "mcast_snooping", "1"])?;
        ns.ip(&["link", "set", b, "up"])?;
    }
    let tables = || -> Result<Vec<String>> {
        let out = ns.exec_ok(&["nft", "list", "tables"])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2))
            .filter(|t| t.starts_with("igmpd_snoop_br_lan"))
            .map(str::to_owned)
            .collect())
    };
    let dash = Igmpd::spawn(ns, BIN, &["snoop", "br-lan"])?;
    let under = Igmpd::spawn(ns, BIN, &["snoop", "br_lan"])?;
    for d in [&dash, &under] {
        d.wait_status(WAIT, |st| {
            (st["bridges"][0]["active"] == true).then_some(())
        })?;
    }
    let both = igmpd_netns_tests::poll_until(WAIT, Duration::from_millis(50), || {
        let t = tables().ok()?;
        (t.len() == 2).then_some(t)
    })
    .with_context(|| format!("two tables expected: {:?}", tables()))?;
    ensure!(both[0] != both[1], "{both:?}");
    dash.stop()?;
    let left = tables()?;
    ensure!(left.len() == 1, "after br-lan's daemon ended: {left:?}");
    ensure!(under.status()?["bridges"][0]["active"] == true);
    Ok(())
}

/// A state file that is not JSON (a crash mid-write on an old version, a disk error) is
/// ignored with a warning: igmpd snoops as without one.
#[test]
fn a_corrupt_state_file_is_ignored_with_a_warning() -> Result<()> {
    let lab = Lab::builder()
        .bridge(igmpd_netns_tests::BridgeConfig::snooping())
        .hosts(&["a"])
        .build()?;
    let sw = lab.switch().netns();
    // Where `igmpd snoop br0` keeps it: next to the control socket (the tests' sockets are
    // in the temporary directory), per network namespace.
    let ino = sw.exec_ok(&["stat", "-L", "-c", "%i", "/proc/self/ns/net"])?;
    let file = std::env::temp_dir().join(format!("igmpd-snoop-br0-net{}.json", ino.trim()));
    std::fs::write(&file, b"{\"bridge\": \"br0\", garbage")?;
    let d = Igmpd::spawn(sw, BIN, &["snoop", "br0"]);
    let r = (|| -> Result<()> {
        let d = d?;
        d.wait_status(WAIT, |st| {
            (st["bridges"][0]["active"] == true).then_some(())
        })?;
        ensure!(
            d.log_text().contains("state file unreadable: ignored"),
            "{}",
            d.log_text()
        );
        Ok(())
    })();
    let _ = std::fs::remove_file(&file);
    r
}

/// The control socket serves at most 8 clients at once and closes one that sends no
/// request within its read timeout: with 8 idle clients holding every slot, a status
/// request is answered only after the daemon dropped one of them, and it is answered.
#[test]
fn the_control_socket_bounds_its_clients_and_drops_idle_ones() -> Result<()> {
    use std::io::Read;
    let lab = Lab::builder().host("r").build()?;
    let d = Igmpd::spawn(lab.host("r").netns(), BIN, &["query", "eth0"])?;
    d.status()?;
    let t0 = Instant::now();
    let idle: Vec<std::os::unix::net::UnixStream> = (0..8)
        .map(|_| std::os::unix::net::UnixStream::connect(d.control_socket()))
        .collect::<Result<_, _>>()?;
    // The daemon accepted them all before the status request below connects.
    std::thread::scope(|s| -> Result<()> {
        let status = s.spawn(|| {
            let r = d.status();
            (r, Instant::now())
        });
        for mut c in idle {
            c.set_read_timeout(Some(WAIT))?;
            let mut b = [0u8; 16];
            // EOF (0) once the daemon gave up on it.
            let n = c.read(&mut b)?;
            ensure!(n == 0, "an idle client got {n} bytes");
        }
        let (r, answered) = status
            .join()
            .map_err(|_| anyhow::anyhow!("status thread"))?;
        r?;
        // Not before the idle ones' 5 s read timeout freed a slot (a lower bound: a slow
        // machine only makes it later).
        let waited = answered.duration_since(t0);
        ensure!(
            waited >= Duration::from_secs(4),
            "status was served after {waited:?}, while all 8 slots were held"
        );
        Ok(())
    })
}

#[test]
fn notify_protocol_watchdog_reload_stop_and_capabilities() -> Result<()> {
    let lab = Lab::builder().host("r").build()?;
    let dir = temp_dir("notify")?;
    let notify = dir.join("notify.sock");
    let listener = UnixDatagram::bind(&notify)?;
    let cfg = dir.join("igmpd.toml");
    std::fs::write(&cfg, format!("[defaults]\n{FAST}\n[interface.eth0]\n"))?;
    let control = dir.join("igmpd.sock");
    let env_notify = format!("NOTIFY_SOCKET={}", notify.display());
    let child = lab.host("r").netns().spawn(&[
        "env",
        &env_notify,
        "WATCHDOG_USEC=400000",
        BIN,
        "run",
        "--config",
        cfg.to_str().context("utf8")?,
        "--control-socket",
        control.to_str().context("utf8")?,
    ])?;
    let ready = recv_until(&listener, "READY=1", WAIT)?;
    ensure!(!ready.iter().any(|m| m.contains("RELOADING")), "{ready:?}");
    // Pings at half of WATCHDOG_USEC: at least two within a second.
    recv_until(&listener, "WATCHDOG=1", Duration::from_secs(2))?;
    recv_until(&listener, "WATCHDOG=1", Duration::from_secs(2))?;

    assert_least_privilege(child.pid())?;

    // Reload: RELOADING=1 with MONOTONIC_USEC, then READY=1.
    child.signal(libc::SIGHUP)?;
    let msgs = recv_until(&listener, "RELOADING=1", WAIT)?;
    let reloading = msgs.last().context("no message")?;
    let usec: u64 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .context("no MONOTONIC_USEC")?
        .parse()?;
    ensure!(usec > 0);
    recv_until(&listener, "READY=1", WAIT)?;

    child.signal(libc::SIGTERM)?;
    recv_until(&listener, "STOPPING=1", WAIT)?;
    let status = child.wait_timeout(WAIT)?.context("igmpd did not exit")?;
    ensure!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn no_watchdog_no_pings() -> Result<()> {
    let lab = Lab::builder().host("r").build()?;
    let dir = temp_dir("nowd")?;
    let notify = dir.join("notify.sock");
    let listener = UnixDatagram::bind(&notify)?;
    let cfg = dir.join("igmpd.toml");
    std::fs::write(&cfg, "[interface.eth0]\n")?;
    let control = dir.join("igmpd.sock");
    let env_notify = format!("NOTIFY_SOCKET={}", notify.display());
    let child = lab.host("r").netns().spawn(&[
        "env",
        &env_notify,
        BIN,
        "run",
        "--config",
        cfg.to_str().context("utf8")?,
        "--control-socket",
        control.to_str().context("utf8")?,
    ])?;
    recv_until(&listener, "READY=1", WAIT)?;
    ensure!(
        recv_until(&listener, "WATCHDOG=1", Duration::from_millis(1500)).is_err(),
        "pinged without WATCHDOG_USEC"
    );
    child.signal(libc::SIGTERM)?;
    child.wait_timeout(WAIT)?.context("igmpd did not exit")?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `igmpd <args> --control-socket S` as the unprivileged user nobody.
fn as_nobody(args: &[&str], socket: &Path) -> Result<std::process::Output> {
    Ok(std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(args)
        .arg("--control-socket")
        .arg(socket)
        .output()?)
}

fn write_config(path: &Path, eth0_extra: &str, vx0_interval: &str) -> Result<()> {
    std::fs::write(
        path,
        format!(
            "[defaults]\n{FAST}\n[interface.eth0]\n{eth0_extra}\n[interface.vx0]\nquery_interval = \"{vx0_interval}\"\n"
        ),
    )?;
    Ok(())
}

fn groups(s: &Value, iface: &str) -> Vec<String> {
    s["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["name"] == iface)
        .flat_map(|i| i["igmp"]["groups"].as_array().cloned().unwrap_or_default())
        .filter_map(|g| g["group"].as_str().map(str::to_owned))
        .collect()
}

fn iface<'a>(s: &'a Value, name: &str) -> Option<&'a Value> {
    s["interfaces"]
        .as_array()?
        .iter()
        .find(|i| i["name"] == name)
}

#[test]
fn reload_keeps_unchanged_interfaces_and_rejects_a_bad_file_and_nobody() -> Result<()> {
    let lab = Lab::builder().host("r").host("h").build()?;
    let r = lab.host("r").netns();
    // A second interface for the querier in r.
    r.ip(&["link", "add", "vx0", "type", "veth", "peer", "name", "vx1"])?;
    r.ip(&["link", "set", "vx0", "up"])?;
    r.ip(&["link", "set", "vx1", "up"])?;
    let dir = temp_dir("reload")?;
    let cfg = dir.join("igmpd.toml");
    write_config(&cfg, "", "2s")?;
    let d = Igmpd::spawn(r, BIN, &["run", "--config", cfg.to_str().context("utf8")?])?;
    let mut m = Member::spawn(lab.host("h"), Member::locate_binary()?)?;
    let g: IpAddr = "239.7.7.7".parse()?;
    m.join(g)?;
    d.wait_status(WAIT, |s| {
        groups(s, "eth0").contains(&g.to_string()).then_some(())
    })?;
    let before = d.status()?;
    let sent_before = iface(&before, "eth0").context("eth0")?["igmp"]["queries_sent"]
        .as_u64()
        .context("queries_sent")?;

    // Unprivileged: status yes, reload no.
    let st = as_nobody(&["status", "--json"], d.control_socket())?;
    ensure!(
        st.status.success(),
        "nobody's status: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let rl = as_nobody(&["reload"], d.control_socket())?;
    ensure!(!rl.status.success(), "nobody could reload");
    ensure!(
        String::from_utf8_lossy(&rl.stderr).contains("permission denied"),
        "{}",
        String::from_utf8_lossy(&rl.stderr)
    );

    // Change vx0 only, reload through the CLI: eth0 keeps its group and its counters.
    write_config(&cfg, "", "3s")?;
    let out = std::process::Command::new(BIN)
        .args(["reload", "--control-socket"])
        .arg(d.control_socket())
        .output()?;
    ensure!(
        out.status.success(),
        "reload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = d.status()?;
    ensure!(
        groups(&after, "eth0").contains(&g.to_string()),
        "group lost: {after}"
    );
    let eth0 = iface(&after, "eth0").context("eth0")?;
    ensure!(
        eth0["igmp"]["queries_sent"].as_u64() >= Some(sent_before),
        "eth0 restarted: {after}"
    );
    let vx0 = iface(&after, "vx0").context("vx0")?;
    assert_eq!(vx0["igmp"]["query_interval_ms"], 3000, "{after}");

    // A bad file: reload refused with the file and line, the daemon keeps running as it was.
    std::fs::write(&cfg, "[interface.eth0]\nrobustnes = 2\n")?;
    let out = std::process::Command::new(BIN)
        .args(["reload", "--control-socket"])
        .arg(d.control_socket())
        .output()?;
    ensure!(!out.status.success(), "bad file accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        err.contains("igmpd.toml:2") && err.contains("robustnes"),
        "{err}"
    );
    let still = d.status()?;
    ensure!(
        iface(&still, "vx0").is_some(),
        "running config changed: {still}"
    );
    ensure!(groups(&still, "eth0").contains(&g.to_string()), "{still}");
    ensure!(d.log_text().contains("reload rejected"), "{}", d.log_text());

    // SIGHUP with a good file removes vx0.
    std::fs::write(&cfg, format!("[defaults]\n{FAST}\n[interface.eth0]\n"))?;
    // SAFETY-free: kill(1) by PID, our own child.
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status()?;
    ensure!(ok.success());
    d.wait_status(WAIT, |s| iface(s, "vx0").is_none().then_some(()))?;
    ensure!(groups(&d.status()?, "eth0").contains(&g.to_string()));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn install_script_installs_everything_into_destdir() -> Result<()> {
    let dir = temp_dir("install")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(root.join("scripts/install.sh"))
        .arg(BIN)
        .env("DESTDIR", &dir)
        .env("PREFIX", "/usr")
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "usr/sbin/igmpd",
        "usr/share/man/man8/igmpd.8",
        "etc/systemd/system/igmpd.service",
        "etc/igmpd/igmpd.toml",
        "usr/share/doc/igmpd/igmpd.toml",
        "usr/share/bash-completion/completions/igmpd",
        "usr/share/zsh/site-functions/_igmpd",
        "usr/share/fish/vendor_completions.d/igmpd.fish",
    ] {
        let p = dir.join(f);
        ensure!(
            std::fs::metadata(&p).map(|m| m.len() > 0).unwrap_or(false),
            "missing {f}"
        );
    }
    let man = std::fs::read(dir.join("usr/share/man/man8/igmpd.8"))?;
    assert_eq!(
        man,
        std::fs::read(root.join("dist/igmpd.8"))?,
        "installed man page differs"
    );
    let unit = std::fs::read_to_string(dir.join("etc/systemd/system/igmpd.service"))?;
    ensure!(unit.contains("ExecStart=/usr/sbin/igmpd run"), "{unit}");
    ensure!(
        unit.contains("ExecStopPost=-/usr/sbin/igmpd cleanup --config /etc/igmpd/igmpd.toml"),
        "{unit}"
    );
    let check = std::process::Command::new(BIN)
        .arg("check-config")
        .arg(root.join("dist/igmpd.toml"))
        .output()?;
    ensure!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Snooping from the config file: `igmpd run` with a `[bridge.br0]` section snoops (MDB
/// entries with igmpd's protocol 73), and a reload that leaves the bridge's settings alone
/// keeps its memberships.
#[test]
fn run_snoops_a_bridge_from_the_config_and_a_reload_keeps_it() -> Result<()> {
    let lab = Lab::builder()
        .bridge(
            igmpd_netns_tests::BridgeConfig::snooping()
                .igmp_version(igmpd_netns_tests::IgmpVersion::V3),
        )
        .host("a")
        .build()?;
    let dir = temp_dir("runbridge")?;
    let cfg = dir.join("igmpd.toml");
    let write = |extra: &str| -> Result<()> {
        std::fs::write(
            &cfg,
            format!("[defaults]\n{FAST}\n[bridge.br0]\nquerier = true\n{extra}\n"),
        )?;
        Ok(())
    };
    write("")?;
    let d = Igmpd::spawn(
        lab.switch().netns(),
        BIN,
        &["run", "--config", cfg.to_str().context("utf8")?],
    )?;
    let mut a = Member::spawn(lab.host("a"), Member::locate_binary()?)?;
    let g: IpAddr = "239.9.9.9".parse()?;
    a.join(g)?;
    let port = lab.host("a").port().to_string();
    let ours = |lab: &Lab| -> bool {
        lab.mdb()
            .map(|m| {
                m.iter().any(|e| {
                    e.group == g
                        && e.port == port
                        && e.protocol.as_deref() == Some(igmpd_protocol())
                })
            })
            .unwrap_or(false)
    };
    igmpd_netns_tests::poll_until(WAIT, Duration::from_millis(100), || {
        ours(&lab).then_some(())
    })
    .map_err(|_| {
        anyhow::anyhow!(
            "no entry of igmpd's (proto {}) for {g} on {port}: {:?}\n{}",
            igmpd_protocol(),
            lab.mdb(),
            d.log_text()
        )
    })?;
    d.wait_status(WAIT, |s| {
        (!s["bridges"].as_array()?.is_empty()).then_some(())
    })?;
    let reports = |s: &Value| s["bridges"][0]["counters"]["reports"].as_u64();
    let before = d.wait_status(WAIT, |s| reports(s).filter(|n| *n > 0))?;
    // A reload that changes nothing for br0 (a comment only) keeps its state and entries.
    write("# reloaded")?;
    let out = std::process::Command::new(BIN)
        .args(["reload", "--control-socket"])
        .arg(d.control_socket())
        .output()?;
    ensure!(
        out.status.success(),
        "reload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Watch it for a while: it must never disappear (a restarted snooper would flush it).
    let gone =
        igmpd_netns_tests::poll_until(Duration::from_secs(2), Duration::from_millis(50), || {
            (!ours(&lab)).then_some(())
        });
    // Not restarted: its counters go on (a new snooper would start from zero and adopt its
    // own entries).
    let st = d.status()?;
    ensure!(
        reports(&st).is_some_and(|n| n >= before) && st["bridges"][0]["counters"]["adopted"] == 0,
        "{st:#}"
    );
    ensure!(
        gone.is_err(),
        "the entry went away across the reload: {:?}\n{}",
        lab.mdb(),
        d.log_text()
    );
    Ok(())
}
