//! `igmpd-bench`: igmpd's snooping against the kernel's own, side by side (driven by
//! `scripts/bench.sh`).
//!
//! Every scenario builds its own namespaces with the lab library (never the root
//! namespace's interfaces) and runs twice on the same topology: once with the kernel's
//! snooping alone (bridge querier on, no igmpd) and once with `igmpd snoop --querier` (the
//! bridge's own querier off). Both runs use the same prebuilt IGMPv2 frames, built with
//! igmpd-wire, blasted from a host namespace by one AF_PACKET sender thread (`sendmmsg`).
//! MDB changes are observed by a netlink socket on RTNLGRP_MDB in the switch namespace
//! (a 64 MiB receive buffer; an overrun is reported), so no dump sits on the measured path;
//! one final dump cross-checks the count.
//!
//! Kernel loss in the sustained scenario: with `mcast_stats_enabled 1` the bridge counts
//! the IGMPv2 reports each port received (`ip link xstats type bridge_slave`); a rate is
//! lossless when that counter grew by exactly the number of frames sent. igmpd: its
//! `reports` status counter grew by the number sent and its capture sockets dropped none
//! (PACKET_STATISTICS, the `capture_drops` counter).
//!
//! Usage: `igmpd-bench --igmpd PATH --out DIR [--quick] [--runs N] [--sustain-secs S]`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use igmpd_netns_tests::{in_netns, poll_until, BridgeConfig, IgmpVersion, Igmpd, Lab, Netns};
use igmpd_wire::{Frame, IgmpRepr, Ipv4Header};
use serde_json::{json, Value};

/// Every wait in here is bounded by this unless a scenario says otherwise.
const WAIT: Duration = Duration::from_secs(30);
/// Sustained scenario: rates tried, in reports per second.
const RATES: &[u64] = &[
    25_000, 50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 400_000,
];

#[derive(Clone, Debug)]
struct Opts {
    igmpd: PathBuf,
    out: PathBuf,
    quick: bool,
    runs: usize,
    sizes: Vec<usize>,
    /// Only this scenario (profiling): "convergence".
    only: Option<String>,
    sustain: Duration,
    latency_groups: usize,
    idle_window: Duration,
}

fn parse_args() -> Result<Opts> {
    let mut a = std::env::args().skip(1);
    let mut igmpd = None;
    let mut out = PathBuf::from("target/bench");
    let mut quick = false;
    let mut runs = None;
    let mut sustain = None;
    let mut sizes = None;
    let mut only = None;
    while let Some(x) = a.next() {
        match x.as_str() {
            "--igmpd" => igmpd = a.next().map(PathBuf::from),
            "--out" => out = a.next().map(PathBuf::from).context("--out DIR")?,
            "--quick" => quick = true,
            "--runs" => runs = Some(a.next().context("--runs N")?.parse()?),
            "--sustain-secs" => {
                sustain = Some(Duration::from_secs_f64(
                    a.next().context("--sustain-secs S")?.parse()?,
                ))
            }
            "--sizes" => {
                sizes = Some(
                    a.next()
                        .context("--sizes N,N")?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<Vec<usize>, _>>()?,
                )
            }
            "--only" => {
                let o = a.next().context("--only convergence|sustained")?;
                ensure!(
                    o == "convergence" || o == "sustained",
                    "--only takes convergence or sustained, not {o}"
                );
                only = Some(o);
            }
            "-h" | "--help" => {
                println!(
                    "igmpd-bench --igmpd PATH [--out DIR] [--quick] [--runs N] [--sizes N,N] [--sustain-secs S] [--only convergence|sustained]"
                );
                std::process::exit(0);
            }
            o => bail!("unknown argument {o:?}"),
        }
    }
    let igmpd = igmpd.context("--igmpd PATH is required")?;
    Ok(Opts {
        igmpd,
        out,
        quick,
        runs: runs.unwrap_or(if quick { 1 } else { 3 }),
        only,
        sizes: sizes.unwrap_or_else(|| {
            if quick {
                vec![1000, 4000]
            } else {
                vec![1000, 4000, 10_000]
            }
        }),
        sustain: sustain.unwrap_or(if quick {
            Duration::from_millis(1500)
        } else {
            Duration::from_secs(10)
        }),
        latency_groups: if quick { 100 } else { 500 },
        idle_window: if quick {
            Duration::from_secs(3)
        } else {
            Duration::from_secs(10)
        },
    })
}

// ---------------------------------------------------------------------------------------
// Threads inside a namespace

/// Runs `f` on a new thread that entered the network namespace `ns` first.
fn join<T>(h: std::thread::JoinHandle<Result<T>>) -> Result<T> {
    h.join()
        .map_err(|_| anyhow::anyhow!("bench thread panicked"))?
}

// ---------------------------------------------------------------------------------------
// The sender: AF_PACKET + sendmmsg

struct Sender {
    fd: OwnedFd,
}

impl Sender {
    /// An AF_PACKET socket bound to `ifname` (of the calling thread's namespace) that
    /// receives nothing.
    fn open(ifname: &str) -> Result<Sender> {
        Ok(Sender {
            fd: sys::packet_sender(ifname)?,
        })
    }

    /// Sends `frames[from..from + n]` (cyclically) with one sendmmsg per 64 frames; returns
    /// how many the kernel took.
    fn send_batch(&self, frames: &[Vec<u8>], from: usize, n: usize) -> Result<usize> {
        sys::send_frames(&self.fd, frames, from, n)
    }

    /// Sends every frame once, as fast as possible.
    fn blast(&self, frames: &[Vec<u8>]) -> Result<usize> {
        let mut sent = 0;
        while sent < frames.len() {
            let n = (frames.len() - sent).min(64);
            sent += self.send_batch(frames, sent, n)?;
        }
        Ok(sent)
    }

    /// Sends `frames` cyclically at `rate` per second for `dur`; returns the number sent
    /// and the time taken.
    fn paced(&self, frames: &[Vec<u8>], rate: u64, dur: Duration) -> Result<(u64, Duration)> {
        let start = Instant::now();
        let total = (rate as f64 * dur.as_secs_f64()) as u64;
        let mut sent: u64 = 0;
        while sent < total {
            let el = start.elapsed();
            if el > dur * 3 {
                break; // the sender cannot keep up; report what it achieved
            }
            let due = ((rate as f64 * el.as_secs_f64()) as u64).min(total);
            if due > sent {
                let n = (due - sent).min(64) as usize;
                sent += self.send_batch(frames, (sent % frames.len() as u64) as usize, n)? as u64;
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        Ok((sent, start.elapsed()))
    }
}

fn v2_report_frames(src_mac: [u8; 6], src: Ipv4Addr, groups: &[Ipv4Addr]) -> Vec<Vec<u8>> {
    groups
        .iter()
        .map(|g| {
            Frame::igmp(
                src_mac,
                None,
                Ipv4Header::igmp(src, *g),
                IgmpRepr::V2Report { group: *g },
            )
            .to_bytes()
        })
        .collect()
}

fn v2_leave_frame(src_mac: [u8; 6], src: Ipv4Addr, group: Ipv4Addr) -> Vec<u8> {
    Frame::igmp(
        src_mac,
        None,
        Ipv4Header::igmp(src, Ipv4Addr::new(224, 0, 0, 2)),
        IgmpRepr::V2Leave { group },
    )
    .to_bytes()
}

/// `n` distinct groups 239.10.0.0 + i (never link-local 224.0.0.x).
fn groups(n: usize) -> Vec<Ipv4Addr> {
    (0..n as u32)
        .map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(239, 10, 0, 1)) + i))
        .collect()
}

fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let mut m = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    ensure!(parts.len() == 6, "bad MAC {s}");
    for (o, p) in m.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16)?;
    }
    Ok(m)
}

// ---------------------------------------------------------------------------------------
// The MDB watcher: RTNLGRP_MDB events

#[derive(Debug, Clone, Copy)]
struct MdbEvent {
    at: Instant,
    added: bool,
    port: u32,
    group: Ipv4Addr,
}

struct Watcher {
    stop: Arc<AtomicBool>,
    rx: mpsc::Receiver<MdbEvent>,
    handle: Option<std::thread::JoinHandle<Result<u64>>>,
}

impl Watcher {
    /// Starts watching in namespace `ns`; returns once subscribed.
    fn start(ns: &str) -> Result<Watcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let st = Arc::clone(&stop);
        let handle = in_netns(ns, move || watch(st, tx, ready_tx));
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(()) => {}
            Err(_) => {
                let r = join(handle);
                bail!("MDB watcher did not start: {:?}", r.err());
            }
        }
        Ok(Watcher {
            stop,
            rx,
            handle: Some(handle),
        })
    }

    /// Stops; returns the number of overruns (ENOBUFS) seen.
    fn finish(mut self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        join(self.handle.take().context("watcher already finished")?)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn watch(
    stop: Arc<AtomicBool>,
    tx: mpsc::Sender<MdbEvent>,
    ready: mpsc::Sender<()>,
) -> Result<u64> {
    let fd = sys::mdb_event_socket()?;
    let _ = ready.send(());
    let mut buf = vec![0u8; 1 << 20];
    let mut overruns = 0;
    while !stop.load(Ordering::Relaxed) {
        let n = sys::recv(&fd, &mut buf);
        let at = Instant::now();
        let n = match n {
            Ok(n) => n,
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => continue,
                Some(libc::ENOBUFS) => {
                    overruns += 1;
                    continue;
                }
                _ => return Err(e).context("recv netlink"),
            },
        };
        parse_nl(&buf[..n], at, &tx);
    }
    Ok(overruns)
}

fn u16_at(b: &[u8], o: usize) -> usize {
    u16::from_ne_bytes([b[o], b[o + 1]]) as usize
}

fn parse_nl(mut b: &[u8], at: Instant, tx: &mpsc::Sender<MdbEvent>) {
    const RTM_NEWMDB: u16 = 84;
    const RTM_DELMDB: u16 = 85;
    while b.len() >= 16 {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let ty = u16::from_ne_bytes([b[4], b[5]]);
        if len < 16 || len > b.len() {
            return;
        }
        let msg = &b[16..len];
        if (ty == RTM_NEWMDB || ty == RTM_DELMDB) && msg.len() >= 8 {
            attrs(&msg[8..], 0, &mut |info| {
                // struct br_mdb_entry: ifindex u32, state u8, flags u8, vid u16,
                // addr (16 bytes union), proto be16
                if info.len() >= 26 && u16::from_be_bytes([info[24], info[25]]) == 0x0800 {
                    let port = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]);
                    let group = Ipv4Addr::new(info[8], info[9], info[10], info[11]);
                    let _ = tx.send(MdbEvent {
                        at,
                        added: ty == RTM_NEWMDB,
                        port,
                        group,
                    });
                }
            });
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
}

/// Walks MDBA_MDB (1) > MDBA_MDB_ENTRY (1) > MDBA_MDB_ENTRY_INFO (1), calling `f` with
/// each entry-info payload.
fn attrs(mut b: &[u8], depth: u8, f: &mut dyn FnMut(&[u8])) {
    while b.len() >= 4 {
        let len = u16_at(b, 0);
        let ty = u16_at(b, 2) & 0x3fff;
        if len < 4 || len > b.len() {
            return;
        }
        let payload = &b[4..len];
        if ty == 1 {
            if depth == 2 {
                f(payload);
            } else {
                attrs(payload, depth + 1, f);
            }
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
}

// ---------------------------------------------------------------------------------------
// Topology, modes, process metrics

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Kernel,
    Igmpd,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Kernel => "kernel",
            Mode::Igmpd => "igmpd",
        }
    }
}

const HASH_MAX: u32 = 16384;

struct Bed {
    lab: Lab,
    daemon: Option<Igmpd>,
    port_ifindex: u32,
    src_mac: [u8; 6],
    src_ip: Ipv4Addr,
}

/// One switch with a sender host "a" (and a spare host "b"), kernel querier on for
/// `Mode::Kernel`, `igmpd snoop --querier` for `Mode::Igmpd`.
fn bed(opts: &Opts, mode: Mode, lmi: Duration, extra: &[&str]) -> Result<Bed> {
    let kernel = mode == Mode::Kernel;
    let cfg = BridgeConfig::snooping()
        .querier(kernel)
        .query_use_ifaddr(true)
        .igmp_version(IgmpVersion::V3)
        .last_member_interval(lmi)
        .last_member_count(2);
    let lab = Lab::builder()
        .bridge(cfg)
        .bridge_ipv4(true)
        .hosts(&["a", "b"])
        .build()?;
    let sw = lab.switch().netns();
    let hm = HASH_MAX.to_string();
    sw.ip(&[
        "link",
        "set",
        "br0",
        "type",
        "bridge",
        "mcast_hash_max",
        &hm,
        "mcast_stats_enabled",
        "1",
    ])?;
    let daemon = if kernel {
        None
    } else {
        let lmi_s = format!("{}ms", lmi.as_millis());
        let igmpd = opts.igmpd.to_str().context("igmpd path")?;
        let _ = igmpd;
        let mut a = vec![
            "snoop",
            "br0",
            "--querier",
            "--no-mld",
            "--last-member-query-interval",
            &lmi_s,
        ];
        a.extend_from_slice(extra);
        let d = Igmpd::spawn(sw, &opts.igmpd, &a)?;
        // Settle: the startup query went out and the nft table is in place.
        std::thread::sleep(Duration::from_millis(300));
        Some(d)
    };
    let h = lab.host("a");
    Ok(Bed {
        port_ifindex: h.port_ifindex(),
        src_mac: parse_mac(h.mac())?,
        src_ip: h.ipv4(),
        daemon,
        lab,
    })
}

impl Bed {
    fn host_ns(&self) -> String {
        self.lab.host("a").ns_name().to_owned()
    }
    fn sw_ns(&self) -> String {
        self.lab.switch().ns_name().to_owned()
    }
    /// Entries of port p1 in one dump (kernel-learned or igmpd-owned depending on mode).
    fn mdb_count(&self) -> Result<usize> {
        let port = self.lab.host("a").port().to_owned();
        let e = self.lab.mdb()?;
        Ok(e.iter()
            .filter(|e| e.port == port && e.group.is_ipv4())
            .filter(|e| match &self.daemon {
                None => e.protocol.as_deref().is_none_or(|p| p == "kernel"),
                Some(_) => e.protocol.as_deref() != Some("kernel"),
            })
            .count())
    }
    fn status(&self) -> Result<Value> {
        self.daemon.as_ref().context("no igmpd")?.status()
    }
    fn counter(&self, name: &str) -> Result<u64> {
        let s = self.status()?;
        s["bridges"][0]["counters"][name]
            .as_u64()
            .with_context(|| format!("status has no counter {name}: {s}"))
    }
    /// The bridge's count of IGMPv2 reports received on port p1 (mcast_stats_enabled).
    fn kernel_v2_reports(&self) -> Result<u64> {
        let port = self.lab.host("a").port().to_owned();
        let out = self.lab.switch().netns().exec_ok(&[
            "ip",
            "-j",
            "link",
            "xstats",
            "type",
            "bridge_slave",
            "dev",
            &port,
        ])?;
        let v: Value = serde_json::from_str(&out).context("xstats JSON")?;
        find_key(&v, "igmp_reports")
            .and_then(|x| x.get("rx_v2"))
            .and_then(Value::as_u64)
            .with_context(|| format!("no igmp_reports.rx_v2 in xstats: {out}"))
    }
}

fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m
            .get(key)
            .or_else(|| m.values().find_map(|x| find_key(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}

fn proc_field(pid: u32, key: &str) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|r| r.trim_start_matches(':').split_whitespace().next())
        .and_then(|x| x.parse().ok())
        .with_context(|| format!("no {key} in /proc/{pid}/status"))
}

fn rss_kib(pid: u32) -> Result<u64> {
    proc_field(pid, "VmRSS")
}

/// Context switches summed over all threads, and the thread count.
fn ctx_switches(pid: u32) -> Result<(u64, u64)> {
    let mut total = 0;
    let mut threads = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let t = t?.path();
        let s = std::fs::read_to_string(t.join("status"))?;
        for l in s.lines() {
            if let Some(r) = l
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += r.trim().parse::<u64>().unwrap_or(0);
            }
        }
        threads += 1;
    }
    Ok((total, threads))
}

/// utime + stime in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &s[s.rfind(')').context("stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // fields after ")" start at field 3 (state): utime is field 14, stime 15.
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

fn ticks_per_s() -> f64 {
    let t = sys::clk_tck();
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

// ---------------------------------------------------------------------------------------
// Scenarios

/// Time from the first frame until the MDB held `n` entries on the sender's port.
fn convergence(opts: &Opts, mode: Mode, n: usize, rss: &mut Option<(u64, u64)>) -> Result<f64> {
    let b = bed(opts, mode, Duration::from_secs(1), &[])?;
    let frames = v2_report_frames(b.src_mac, b.src_ip, &groups(n));
    let idle_rss = match &b.daemon {
        Some(d) => Some(rss_kib(d.pid())?),
        None => None,
    };
    let w = Watcher::start(&b.sw_ns())?;
    let host = b.host_ns();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (t0_tx, t0_rx) = mpsc::channel::<Instant>();
    let sender = in_netns(&host, move || {
        let s = Sender::open("eth0")?;
        go_rx.recv_timeout(WAIT)?;
        let t0 = Instant::now();
        let _ = t0_tx.send(t0);
        s.blast(&frames)
    });
    go_tx.send(())?;
    let t0 = t0_rx.recv_timeout(WAIT)?;
    // Read once: the loop below runs per MDB event.
    let trace = std::env::var_os("IGMPD_BENCH_TRACE").is_some();
    let mut seen = std::collections::HashSet::with_capacity(n);
    let deadline = Instant::now() + WAIT;
    let mut done_at = None;
    while Instant::now() < deadline {
        match w.rx.recv_timeout(Duration::from_millis(200)) {
            Ok(e) => {
                if e.added && e.port == b.port_ifindex && seen.insert(e.group) {
                    if trace && seen.len() % (n / 10).max(1) == 1 {
                        eprintln!(
                            "TRACE {} {} at {:.1} ms",
                            mode.name(),
                            seen.len(),
                            (e.at - t0).as_secs_f64() * 1e3
                        );
                    }
                    if seen.len() == n {
                        done_at = Some(e.at);
                        break;
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => bail!("watcher: {e}"),
        }
    }
    join(sender)?;
    let overruns = w.finish()?;
    let count = b.mdb_count()?;
    let done = done_at.with_context(|| {
        format!(
            "{}: MDB events for {} of {n} groups within {WAIT:?} (overruns {overruns}, dump {count})",
            mode.name(),
            seen.len()
        )
    })?;
    ensure!(
        count >= n,
        "{}: events said {n} groups but the dump shows {count}",
        mode.name()
    );
    if let (Some(d), Some(idle)) = (&b.daemon, idle_rss) {
        *rss = Some((idle, rss_kib(d.pid())?));
        let st = b.status()?;
        let refused = st["bridges"][0]["counters"]["groups_refused"].as_u64();
        ensure!(refused == Some(0), "igmpd refused groups: {refused:?}");
    }
    Ok((done - t0).as_secs_f64() * 1e3)
}

#[derive(Debug, Default, Clone)]
struct Sustained {
    best_rate: f64,
    capture_drops: u64,
    steps: Vec<Value>,
}

/// Re-joins of 1000 groups at rising rates; the highest achieved rate without loss.
fn sustained(opts: &Opts, mode: Mode) -> Result<Sustained> {
    let b = bed(opts, mode, Duration::from_secs(1), &[])?;
    let frames = Arc::new(v2_report_frames(b.src_mac, b.src_ip, &groups(1000)));
    // Join them all first.
    let f = Arc::clone(&frames);
    join(in_netns(&b.host_ns(), move || {
        Sender::open("eth0")?.blast(&f)
    }))?;
    poll_until(WAIT, Duration::from_millis(100), || {
        (b.mdb_count().ok()? >= 1000).then_some(())
    })
    .context("1000 initial joins not in the MDB")?;
    let count = |b: &Bed| -> Result<(u64, u64)> {
        match mode {
            Mode::Kernel => Ok((b.kernel_v2_reports()?, 0)),
            Mode::Igmpd => Ok((b.counter("reports")?, b.counter("capture_drops")?)),
        }
    };
    let mut out = Sustained::default();
    for &rate in RATES {
        let (r0, d0) = count(&b)?;
        let f = Arc::clone(&frames);
        let dur = opts.sustain;
        let (sent, took) = join(in_netns(&b.host_ns(), move || {
            Sender::open("eth0")?.paced(&f, rate, dur)
        }))?;
        // Let the receiver drain what is queued.
        let (r1, d1) = poll_until(Duration::from_secs(3), Duration::from_millis(100), || {
            let (r, d) = count(&b).ok()?;
            (r - r0 >= sent).then_some((r, d))
        })
        .or_else(|_| count(&b))?;
        let got = r1 - r0;
        let drops = d1 - d0;
        let achieved = sent as f64 / took.as_secs_f64();
        let lossless = got == sent && drops == 0;
        out.steps.push(json!({"target_rate": rate, "achieved_rate": achieved.round(), "sent": sent, "counted": got, "capture_drops": drops, "lossless": lossless}));
        eprintln!(
            "  sustained {}: target {rate}/s achieved {:.0}/s sent {sent} counted {got} drops {drops}{}",
            mode.name(),
            achieved,
            if lossless { "" } else { "  LOSS" }
        );
        if !lossless {
            out.capture_drops = drops;
            break;
        }
        // The highest rate reached without loss: a sender-limited step may reach less
        // than the one before it.
        out.best_rate = out.best_rate.max(achieved);
        if achieved < rate as f64 * 0.9 {
            break; // the sender is the limit
        }
    }
    Ok(out)
}

/// Join -> MDB event latency at a low rate (200 new groups per second).
fn join_latency(opts: &Opts, mode: Mode) -> Result<Vec<f64>> {
    let b = bed(opts, mode, Duration::from_secs(1), &[])?;
    let n = opts.latency_groups;
    let gs = groups(n);
    let frames = v2_report_frames(b.src_mac, b.src_ip, &gs);
    let w = Watcher::start(&b.sw_ns())?;
    let (times_tx, times_rx) = mpsc::channel();
    let sender = in_netns(&b.host_ns(), move || {
        let s = Sender::open("eth0")?;
        let start = Instant::now();
        for i in 0..frames.len() {
            let due = start + Duration::from_millis(5 * i as u64);
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            let t = Instant::now();
            s.send_batch(&frames, i, 1)?;
            let _ = times_tx.send((i, t));
        }
        Ok(())
    });
    join(sender)?;
    let sent: HashMap<Ipv4Addr, Instant> = times_rx.try_iter().map(|(i, t)| (gs[i], t)).collect();
    let mut lat = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while lat.len() < n && Instant::now() < deadline {
        if let Ok(e) = w.rx.recv_timeout(Duration::from_millis(100)) {
            if e.added && e.port == b.port_ifindex {
                if let Some(t) = sent.get(&e.group) {
                    lat.entry(e.group)
                        .or_insert_with(|| e.at.saturating_duration_since(*t).as_secs_f64() * 1e3);
                }
            }
        }
    }
    w.finish()?;
    ensure!(
        lat.len() == n,
        "{}: only {} of {n} joins reached the MDB",
        mode.name(),
        lat.len()
    );
    let mut v: Vec<f64> = lat.into_values().collect();
    v.sort_by(f64::total_cmp);
    Ok(v)
}

/// Leave latency: a joined group, then a v2 leave; time until the MDB deletion event.
fn leave_latency(opts: &Opts, mode: Mode, lmi: Duration) -> Result<f64> {
    let b = bed(opts, mode, lmi, &[])?;
    let g = Ipv4Addr::new(239, 20, 0, 1);
    let join_f = v2_report_frames(b.src_mac, b.src_ip, &[g]);
    let leave_f = vec![v2_leave_frame(b.src_mac, b.src_ip, g)];
    // The kernel's querier sends group-specific queries only once it is the querier: give
    // both a moment after start.
    std::thread::sleep(Duration::from_millis(500));
    join(in_netns(&b.host_ns(), move || {
        Sender::open("eth0")?.blast(&join_f)
    }))?;
    poll_until(Duration::from_secs(5), Duration::from_millis(20), || {
        (b.mdb_count().ok()? >= 1).then_some(())
    })
    .context("join not in the MDB")?;
    let w = Watcher::start(&b.sw_ns())?;
    let t0 = join(in_netns(&b.host_ns(), move || {
        let s = Sender::open("eth0")?;
        let t = Instant::now();
        s.blast(&leave_f)?;
        Ok(t)
    }))?;
    let limit = lmi * 6 + Duration::from_secs(5);
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(e) = w.rx.recv_timeout(Duration::from_millis(100)) {
            if !e.added && e.group == g && e.port == b.port_ifindex {
                return Ok((e.at - t0).as_secs_f64() * 1e3);
            }
        }
    }
    bail!("{}: leave of {g} not seen within {limit:?}", mode.name())
}

#[derive(Debug, Default, Clone)]
struct Idle {
    cpu_percent: f64,
    wakeups_per_s: f64,
    cpu_ms_per_round: f64,
    status_ms: f64,
    rss_1: u64,
    rss_200: u64,
    threads: u64,
    wakeups_per_s_1: f64,
    status_ms_1: f64,
}

/// `igmpd query` on 1 and on 200 macvlan uppers (mode private) of a bridge.
fn idle(opts: &Opts) -> Result<Idle> {
    let ns = Netns::new()?;
    ns.exec_ok(&[
        "sysctl",
        "-q",
        "-w",
        "net.ipv6.conf.all.accept_dad=0",
        "net.ipv6.conf.default.accept_dad=0",
    ])?;
    let mut batch = String::from("link add br0 type bridge mcast_snooping 0\nlink set br0 up\n");
    for i in 1..=200 {
        batch += &format!(
            "link add mv{i} link br0 type macvlan mode private\naddr add 10.77.{}.{}/16 dev mv{i}\nlink set mv{i} up\n",
            i / 250,
            i % 250 + 1
        );
    }
    run_stdin(&["ip", "-n", ns.name(), "-batch", "-"], &batch)?;
    let ifaces: Vec<String> = (1..=200).map(|i| format!("mv{i}")).collect();
    let mut out = Idle::default();
    let tps = ticks_per_s();
    let measure = |d: &Igmpd, window: Duration| -> Result<(f64, f64, u64)> {
        let (c0, _) = ctx_switches(d.pid())?;
        let t0 = cpu_ticks(d.pid())?;
        std::thread::sleep(window);
        let (c1, threads) = ctx_switches(d.pid())?;
        let t1 = cpu_ticks(d.pid())?;
        let s = window.as_secs_f64();
        Ok((
            (t1 - t0) as f64 / tps / s * 100.0,
            (c1 - c0) as f64 / s,
            threads,
        ))
    };
    // 1 interface, default timers: RSS and wake-ups after the first startup query.
    {
        let d = Igmpd::spawn(&ns, &opts.igmpd, &["query", "mv1"])?;
        std::thread::sleep(Duration::from_secs(2));
        let (_, w, _) = measure(&d, opts.idle_window.min(Duration::from_secs(5)))?;
        out.wakeups_per_s_1 = w;
        out.rss_1 = rss_kib(d.pid())?;
        out.status_ms_1 = status_median(&d)?;
        d.stop()?;
    }
    // 200 interfaces, default timers (125 s; startup queries 31 s apart): a window with no
    // deadline in it.
    {
        let mut a: Vec<&str> = vec!["query"];
        a.extend(ifaces.iter().map(String::as_str));
        let d = Igmpd::spawn(&ns, &opts.igmpd, &a)?;
        std::thread::sleep(Duration::from_secs(2));
        let (cpu, w, th) = measure(&d, opts.idle_window)?;
        out.cpu_percent = cpu;
        out.wakeups_per_s = w;
        out.threads = th;
        out.rss_200 = rss_kib(d.pid())?;
        out.status_ms = status_median(&d)?;
        d.stop()?;
    }
    // 200 interfaces, 1 s query interval: CPU per round.
    {
        let mut a: Vec<&str> = vec![
            "query",
            "--query-interval",
            "1s",
            "--query-response-interval",
            "500ms",
        ];
        a.extend(ifaces.iter().map(String::as_str));
        let d = Igmpd::spawn(&ns, &opts.igmpd, &a)?;
        std::thread::sleep(Duration::from_millis(1500));
        let window = Duration::from_secs(5);
        let t0 = cpu_ticks(d.pid())?;
        std::thread::sleep(window);
        let t1 = cpu_ticks(d.pid())?;
        out.cpu_ms_per_round = (t1 - t0) as f64 / tps * 1e3 / window.as_secs_f64();
        d.stop()?;
    }
    Ok(out)
}

/// Median wall time of `igmpd status --json` (a new process each time, as a user runs it).
fn status_median(d: &Igmpd) -> Result<f64> {
    let mut st = Vec::new();
    for _ in 0..7 {
        let (took, _) = d.status_timed()?;
        st.push(took.as_secs_f64() * 1e3);
    }
    st.sort_by(f64::total_cmp);
    Ok(st[st.len() / 2])
}

fn run_stdin(argv: &[&str], input: &str) -> Result<()> {
    use std::io::Write;
    let mut c = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    c.stdin
        .take()
        .context("stdin")?
        .write_all(input.as_bytes())?;
    let st = c.wait()?;
    ensure!(st.success(), "{} failed", argv.join(" "));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Statistics, output

#[derive(Debug, Clone, Copy, Default)]
struct Mmm {
    min: f64,
    med: f64,
    max: f64,
}

fn mmm(v: &[f64]) -> Mmm {
    if v.is_empty() {
        return Mmm::default();
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let med = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    Mmm {
        min: s[0],
        med,
        max: s[s.len() - 1],
    }
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn j(m: Mmm) -> Value {
    json!({"min": r2(m.min), "median": r2(m.med), "max": r2(m.max)})
}

fn svg_chart(points: &[(usize, Mmm, Mmm)]) -> String {
    let (w, h, l, r, t, bm) = (640.0, 400.0, 70.0, 20.0, 40.0, 50.0);
    let xmax = points.iter().map(|p| p.0).max().unwrap_or(1) as f64;
    let ymax = points
        .iter()
        .map(|p| p.1.max.max(p.2.max))
        .fold(1.0, f64::max)
        * 1.1;
    let x = |g: usize| l + (g as f64 / xmax) * (w - l - r);
    let y = |v: f64| h - bm - (v / ymax) * (h - t - bm);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="20" text-anchor="middle" font-size="14">Convergence time vs groups (median; bars: min-max)</text>
<line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{l}" y1="{t}" x2="{l}" y2="{}" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">groups joined from one port</text>
<text x="15" y="{}" transform="rotate(-90 15 {})" text-anchor="middle">ms until the MDB holds all</text>
"#,
        w / 2.0,
        h - bm,
        w - r,
        h - bm,
        h - bm,
        (l + w - r) / 2.0,
        h - 12.0,
        h / 2.0,
        h / 2.0
    );
    for i in 0..=4 {
        let v = ymax * i as f64 / 4.0;
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{:.0}</text><line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>"##,
            l - 5.0,
            y(v) + 4.0,
            v,
            y(v),
            w - r,
            y(v)
        );
    }
    for p in points {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            x(p.0),
            h - bm + 16.0,
            p.0
        );
    }
    for (idx, (name, color)) in [("igmpd", "#d62728"), ("kernel", "#1f77b4")]
        .iter()
        .enumerate()
    {
        let pick = |p: &(usize, Mmm, Mmm)| if idx == 0 { p.1 } else { p.2 };
        let pts: Vec<String> = std::iter::once(format!("{},{}", x(0), y(0.0)))
            .chain(
                points
                    .iter()
                    .map(|p| format!("{:.1},{:.1}", x(p.0), y(pick(p).med))),
            )
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        for p in points {
            let m = pick(p);
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{color}"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}"/>"#,
                x(p.0),
                y(m.med),
                x(p.0),
                y(m.min),
                x(p.0),
                y(m.max)
            );
        }
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{}" width="12" height="12" fill="{color}"/><text x="{}" y="{}">{name}</text>"#,
            l + 20.0,
            t + 10.0 + 18.0 * idx as f64,
            l + 38.0,
            t + 20.0 + 18.0 * idx as f64
        );
    }
    s.push_str("</svg>\n");
    s
}

fn main() -> Result<()> {
    let opts = parse_args()?;
    ensure!(
        opts.igmpd.is_file(),
        "no igmpd binary at {}",
        opts.igmpd.display()
    );
    std::fs::create_dir_all(&opts.out)?;
    let started = Instant::now();
    let kernel_release = std::fs::read_to_string("/proc/sys/kernel/osrelease")?
        .trim()
        .to_owned();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runs = opts.runs;

    // convergence
    let mut conv: Vec<(usize, Vec<f64>, Vec<f64>)> = Vec::new();
    let mut rss_snoop: Vec<(u64, u64)> = Vec::new();
    let only = opts.only.as_deref();
    let sizes: &[usize] = if only == Some("sustained") {
        &[]
    } else {
        &opts.sizes
    };
    for &n in sizes {
        let (mut ig, mut ke) = (Vec::new(), Vec::new());
        for run in 0..runs {
            let k = convergence(&opts, Mode::Kernel, n, &mut None)?;
            let mut rss = None;
            let i = convergence(&opts, Mode::Igmpd, n, &mut rss)?;
            if n == 10_000 {
                rss_snoop.extend(rss);
            }
            eprintln!("convergence n={n} run {run}: igmpd {i:.1} ms, kernel {k:.1} ms");
            ig.push(i);
            ke.push(k);
        }
        conv.push((n, ig, ke));
    }
    if only == Some("convergence") {
        return Ok(());
    }
    // RSS at 10k memberships even in --quick (where the largest size is smaller).
    if only.is_none() && !opts.sizes.contains(&10_000) {
        let mut rss = None;
        convergence(&opts, Mode::Igmpd, 10_000, &mut rss)?;
        rss_snoop.extend(rss);
    }

    // sustained
    let (mut s_ig, mut s_ke, mut s_drops, mut s_steps) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let k = sustained(&opts, Mode::Kernel)?;
        let i = sustained(&opts, Mode::Igmpd)?;
        s_ig.push(i.best_rate);
        s_ke.push(k.best_rate);
        s_drops.push(i.capture_drops as f64);
        s_steps.push(json!({"igmpd": i.steps, "kernel": k.steps}));
    }
    if only == Some("sustained") {
        return Ok(());
    }

    // join latency
    let (mut p50, mut p99, mut kp50, mut kp99) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let i = join_latency(&opts, Mode::Igmpd)?;
        let k = join_latency(&opts, Mode::Kernel)?;
        p50.push(pct(&i, 0.5));
        p99.push(pct(&i, 0.99));
        kp50.push(pct(&k, 0.5));
        kp99.push(pct(&k, 0.99));
        eprintln!(
            "join latency: igmpd p50 {:.3} p99 {:.3} ms; kernel p50 {:.3} p99 {:.3} ms",
            pct(&i, 0.5),
            pct(&i, 0.99),
            pct(&k, 0.5),
            pct(&k, 0.99)
        );
    }

    // leave latency
    let lmis = [Duration::from_secs(1), Duration::from_millis(100)];
    let mut leaves = Vec::new();
    for lmi in lmis {
        let (mut ig, mut ke) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            ig.push(leave_latency(&opts, Mode::Igmpd, lmi)?);
            ke.push(leave_latency(&opts, Mode::Kernel, lmi)?);
        }
        eprintln!(
            "leave lmi {} ms: igmpd {:?} kernel {:?}",
            lmi.as_millis(),
            ig,
            ke
        );
        leaves.push((lmi.as_millis() as u64, ig, ke));
    }

    // idle
    let mut idles = Vec::new();
    for _ in 0..runs {
        idles.push(idle(&opts)?);
    }
    let im = |f: fn(&Idle) -> f64| mmm(&idles.iter().map(f).collect::<Vec<_>>());

    // ---- results
    let conv_json: Vec<Value> = conv
        .iter()
        .map(|(n, ig, ke)| {
            let (i, k) = (mmm(ig), mmm(ke));
            json!({"groups": n, "igmpd_ms": r2(i.med), "kernel_ms": r2(k.med),
                   "ratio": r2(i.med / k.med.max(1e-9)),
                   "igmpd": j(i), "kernel": j(k)})
        })
        .collect();
    let si = mmm(&s_ig);
    let sk = mmm(&s_ke);
    let rss_idle = mmm(&rss_snoop.iter().map(|r| r.0 as f64).collect::<Vec<_>>());
    let rss_10k = mmm(&rss_snoop.iter().map(|r| r.1 as f64).collect::<Vec<_>>());
    let leave_json: Vec<Value> = leaves
        .iter()
        .map(|(lmi, ig, ke)| {
            json!({"last_member_interval_ms": lmi, "igmpd": r2(mmm(ig).med), "kernel": r2(mmm(ke).med),
                   "igmpd_range": j(mmm(ig)), "kernel_range": j(mmm(ke))})
        })
        .collect();
    let results = json!({
        "runs": runs,
        "quick": opts.quick,
        "machine": {"kernel": kernel_release, "cpus": cpus},
        "convergence": conv_json,
        "sustained": {
            "igmpd_reports_per_s": si.med.round(),
            "kernel_reports_per_s": sk.med.round(),
            "ratio": r2(si.med / sk.med.max(1e-9)),
            "capture_drops": mmm(&s_drops).med as u64,
            "seconds_per_rate": opts.sustain.as_secs_f64(),
            "igmpd": j(si), "kernel": j(sk),
            "steps": s_steps,
        },
        "join_to_mdb_ms": {"p50": r2(mmm(&p50).med * 100.0) / 100.0, "p99": r2(mmm(&p99).med * 100.0) / 100.0,
                           "groups": opts.latency_groups, "rate_per_s": 200,
                           "p50_range": j(mmm(&p50)), "p99_range": j(mmm(&p99)),
                           "kernel_p50": mmm(&kp50).med, "kernel_p99": mmm(&kp99).med},
        "leave_ms": leave_json,
        "rss_kib": {"snoop_idle": rss_idle.med as u64, "snoop_10k_memberships": rss_10k.med as u64,
                    "query_idle_1_iface": im(|i| i.rss_1 as f64).med as u64,
                    "query_idle_200_ifaces": im(|i| i.rss_200 as f64).med as u64},
        "idle": {"interfaces": 200, "cpu_percent": r2(im(|i| i.cpu_percent).med * 100.0) / 100.0,
                 "wakeups_per_s": r2(im(|i| i.wakeups_per_s).med),
                 "cpu_ms_per_query_round": r2(im(|i| i.cpu_ms_per_round).med),
                 "status_ms": r2(im(|i| i.status_ms).med),
                 "wakeups_per_s_1_iface": r2(im(|i| i.wakeups_per_s_1).med),
                 "status_ms_1_iface": r2(im(|i| i.status_ms_1).med),
                 "threads": idles.first().map_or(0, |i| i.threads),
                 "window_s": opts.idle_window.as_secs_f64()},
        "elapsed_s": started.elapsed().as_secs(),
    });
    let path = opts.out.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)? + "\n")?;
    let chart: Vec<(usize, Mmm, Mmm)> = conv
        .iter()
        .map(|(n, ig, ke)| (*n, mmm(ig), mmm(ke)))
        .collect();
    std::fs::write(opts.out.join("convergence.svg"), svg_chart(&chart))?;

    // ---- summary
    let mut t = String::new();
    let row = |t: &mut String, what: &str, m: Mmm, unit: &str, target: &str, ok: bool| {
        let _ = writeln!(
            t,
            "{what:<36} {:>10.2} {:>10.2} {:>10.2} {unit:<6} {target:<22} {}",
            m.min,
            m.med,
            m.max,
            if ok { "PASS" } else { "FAIL" }
        );
    };
    let info = |t: &mut String, what: &str, m: Mmm, unit: &str| {
        let _ = writeln!(
            t,
            "{what:<36} {:>10.2} {:>10.2} {:>10.2} {unit:<6}",
            m.min, m.med, m.max
        );
    };
    let _ = writeln!(
        t,
        "\nigmpd bench: kernel {kernel_release}, {cpus} CPUs, {runs} run(s){}",
        if opts.quick { " (--quick)" } else { "" }
    );
    let _ = writeln!(
        t,
        "{:<36} {:>10} {:>10} {:>10} {:<6} {:<22} result",
        "measure", "min", "median", "max", "unit", "target"
    );
    for (n, ig, ke) in &conv {
        let (i, k) = (mmm(ig), mmm(ke));
        info(&mut t, &format!("convergence {n}: kernel"), k, "ms");
        let ratio = i.med / k.med.max(1e-9);
        let last = Some(n) == opts.sizes.last();
        if last {
            row(
                &mut t,
                &format!("convergence {n}: igmpd"),
                i,
                "ms",
                &format!("<= 1.5x kernel ({ratio:.2}x)"),
                ratio <= 1.5,
            );
        } else {
            info(
                &mut t,
                &format!("convergence {n}: igmpd ({ratio:.2}x)"),
                i,
                "ms",
            );
        }
    }
    info(&mut t, "sustained lossless: kernel", sk, "rep/s");
    let sr = si.med / sk.med.max(1e-9);
    row(
        &mut t,
        "sustained lossless: igmpd",
        si,
        "rep/s",
        &format!(">= 0.9x kernel ({sr:.2}x)"),
        sr >= 0.9,
    );
    info(&mut t, "join->MDB p50: igmpd", mmm(&p50), "ms");
    row(
        &mut t,
        "join->MDB p99: igmpd",
        mmm(&p99),
        "ms",
        "<= 2 ms",
        mmm(&p99).med <= 2.0,
    );
    info(&mut t, "join->MDB p99: kernel", mmm(&kp99), "ms");
    for (lmi, ig, ke) in &leaves {
        info(
            &mut t,
            &format!("leave lmi {lmi} ms: kernel"),
            mmm(ke),
            "ms",
        );
        row(
            &mut t,
            &format!("leave lmi {lmi} ms: igmpd"),
            mmm(ig),
            "ms",
            "<= kernel (+5 ms)",
            mmm(ig).med <= mmm(ke).med + 5.0,
        );
    }
    info(&mut t, "RSS snoop idle", rss_idle, "KiB");
    row(
        &mut t,
        "RSS snoop 10k memberships",
        rss_10k,
        "KiB",
        "<= 16384 KiB",
        rss_10k.med <= 16384.0,
    );
    row(
        &mut t,
        "RSS query idle, 1 iface",
        im(|i| i.rss_1 as f64),
        "KiB",
        "<= 4096 KiB",
        im(|i| i.rss_1 as f64).med <= 4096.0,
    );
    info(
        &mut t,
        "RSS query idle, 200 ifaces",
        im(|i| i.rss_200 as f64),
        "KiB",
    );
    row(
        &mut t,
        "query idle CPU, 200 ifaces",
        im(|i| i.cpu_percent),
        "%",
        "<= 0.1 %",
        im(|i| i.cpu_percent).med <= 0.1,
    );
    row(
        &mut t,
        "query wake-ups/s, 200 ifaces",
        im(|i| i.wakeups_per_s),
        "1/s",
        "0 between deadlines",
        im(|i| i.wakeups_per_s).med < 0.5,
    );
    info(
        &mut t,
        "query wake-ups/s, 1 iface",
        im(|i| i.wakeups_per_s_1),
        "1/s",
    );
    info(
        &mut t,
        "query CPU per round, 200 ifaces",
        im(|i| i.cpu_ms_per_round),
        "ms",
    );
    row(
        &mut t,
        "status --json, 200 ifaces",
        im(|i| i.status_ms),
        "ms",
        "<= 10 ms",
        im(|i| i.status_ms).med <= 10.0,
    );
    let _ = writeln!(
        t,
        "\nwrote {} and {} in {} s",
        path.display(),
        opts.out.join("convergence.svg").display(),
        started.elapsed().as_secs()
    );
    print!("{t}");
    std::fs::write(opts.out.join("summary.txt"), t)?;
    let _ = Path::new("");
    Ok(())
}

/// The system calls the benchmark needs that std does not offer (AF_PACKET
/// sendmmsg, the MDB event socket). `unsafe` lives here only;
/// each block says why it is sound.
#[allow(unsafe_code)]
mod sys {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use anyhow::{ensure, Context, Result};

    fn check(rc: libc::c_int, what: &str) -> Result<libc::c_int> {
        if rc < 0 {
            Err(std::io::Error::last_os_error()).context(what.to_owned())
        } else {
            Ok(rc)
        }
    }

    pub(super) fn setsockopt_int(
        fd: &OwnedFd,
        level: i32,
        opt: i32,
        v: i32,
        what: &str,
    ) -> Result<()> {
        // SAFETY: passes a pointer to a live c_int and its size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                opt,
                (&v as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        check(rc, what).map(drop)
    }

    /// An AF_PACKET socket bound to `ifname` of the calling thread's namespace, for sending.
    pub(super) fn packet_sender(ifname: &str) -> Result<OwnedFd> {
        // SAFETY: plain socket(2) call.
        let raw = check(
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) },
            "AF_PACKET socket",
        )?;
        // SAFETY: raw is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let name = std::ffi::CString::new(ifname)?;
        // SAFETY: a NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        ensure!(ifindex != 0, "no interface {ifname}");
        // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        sll.sll_protocol = 0;
        // SAFETY: pointer and size of a live sockaddr_ll.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        check(rc, "bind AF_PACKET")?;
        setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 8 << 20, "SO_SNDBUF")?;
        setsockopt_int(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            1,
            "PACKET_QDISC_BYPASS",
        )?;
        Ok(fd)
    }

    /// sendmmsg of `frames[from..from + n]` (cyclically); returns how many the kernel took.
    pub(super) fn send_frames(
        fd: &OwnedFd,
        frames: &[Vec<u8>],
        from: usize,
        n: usize,
    ) -> Result<usize> {
        let mut iov: Vec<libc::iovec> = (0..n)
            .map(|i| {
                let f = &frames[(from + i) % frames.len()];
                libc::iovec {
                    iov_base: f.as_ptr() as *mut libc::c_void,
                    iov_len: f.len(),
                }
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = iov
            .iter_mut()
            .map(|v| {
                // SAFETY: mmsghdr is plain old data; all-zero is valid.
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_iov = v as *mut libc::iovec;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        let mut done = 0;
        let mut spins = 0;
        while done < n {
            // SAFETY: msgs[done..] point at iovecs that point into `frames`, all alive.
            let rc = unsafe {
                libc::sendmmsg(
                    fd.as_raw_fd(),
                    msgs[done..].as_mut_ptr(),
                    (n - done) as u32,
                    0,
                )
            };
            if rc < 0 {
                let e = std::io::Error::last_os_error();
                if matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::EAGAIN)) && spins < 1000 {
                    spins += 1;
                    std::thread::yield_now();
                    continue;
                }
                return Err(e).context("sendmmsg");
            }
            done += rc as usize;
        }
        Ok(done)
    }
    /// A NETLINK_ROUTE socket subscribed to RTNLGRP_MDB with a 64 MiB buffer and a 50 ms
    /// receive timeout.
    pub(super) fn mdb_event_socket() -> Result<OwnedFd> {
        // SAFETY: plain socket(2) call.
        let raw = check(
            unsafe {
                libc::socket(
                    libc::AF_NETLINK,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    libc::NETLINK_ROUTE,
                )
            },
            "netlink socket",
        )?;
        // SAFETY: fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain old data.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: pointer and size of a live sockaddr_nl.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        check(rc, "bind netlink")?;
        setsockopt_int(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            64 << 20,
            "SO_RCVBUFFORCE",
        )?;
        setsockopt_int(
            &fd,
            libc::SOL_NETLINK,
            libc::NETLINK_ADD_MEMBERSHIP,
            libc::RTNLGRP_MDB as i32,
            "RTNLGRP_MDB",
        )?;
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        // SAFETY: pointer and size of a live timeval.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        check(rc, "SO_RCVTIMEO")?;
        Ok(fd)
    }

    /// One recv(2) into `buf`.
    pub(super) fn recv(fd: &OwnedFd, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: buf is a live, writable buffer of buf.len() bytes.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Clock ticks per second (for /proc/PID/stat times).
    pub(super) fn clk_tck() -> libc::c_long {
        // SAFETY: sysconf has no memory effects.
        unsafe { libc::sysconf(libc::_SC_CLK_TCK) }
    }
}
