//! The many-ports scenario: `PORTS` hosts on one bridge, each joining `GROUPS` groups of
//! its own at the same moment (even ports IGMPv2, odd ports MLDv1: both families), with the
//! kernel's own snooping and with `igmpd snoop --querier` on the same topology. Measured:
//! the time from the first frame until the MDB holds every membership, igmpd's RSS then,
//! and, with that state, one port's join -> MDB latency for joins one at a time.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use igmpd_netns_tests::{in_netns, BridgeConfig, IgmpVersion, Igmpd, Lab, MldVersion};
use igmpd_wire::{Frame, Ipv6Header, MldRepr};
use serde_json::{json, Value};

use crate::bed::Mode;
use crate::join;
use crate::metrics::rss_kib;
use crate::opts::Opts;
use crate::sender::{one_by_one, parse_mac, v2_report_frames, Sender};
use crate::stats::{pct, r2};
use crate::watcher::Watcher;

const WAIT: Duration = Duration::from_secs(60);
/// Joins one at a time after the convergence, one each 10 ms.
const LATENCY_JOINS: usize = 50;

/// What one run of one side found.
#[derive(Debug, Clone)]
pub(crate) struct PortsRun {
    pub(crate) ports: usize,
    pub(crate) groups_per_port: usize,
    pub(crate) igmpd_ms: f64,
    pub(crate) kernel_ms: f64,
    pub(crate) rss_kib: u64,
    pub(crate) join_p99_ms: f64,
}

/// Port `p`'s groups: IPv4 239.(20 + p / 256).(p % 256).x for even ports, ff3e::p:x for
/// odd ones (distinct for every port: each is a key of the bridge's hash).
fn port_groups(p: usize, n: usize) -> Vec<IpAddr> {
    (0..n)
        .map(|i| {
            if p % 2 == 0 {
                let base = u32::from(Ipv4Addr::new(239, 20, 0, 0)) + ((p as u32) << 10);
                IpAddr::V4(Ipv4Addr::from(base + i as u32 + 1))
            } else {
                IpAddr::V6(Ipv6Addr::new(0xff3e, 0, 0, 0, 0, p as u16, 0, i as u16 + 1))
            }
        })
        .collect()
}

/// The report frames of one host for `groups` (MLDv1 from its link-local address).
fn frames(mac: [u8; 6], v4: Ipv4Addr, ll: Ipv6Addr, groups: &[IpAddr]) -> Vec<Vec<u8>> {
    groups
        .iter()
        .map(|g| match g {
            IpAddr::V4(g) => v2_report_frames(mac, v4, &[*g]).remove(0),
            IpAddr::V6(g) => Frame::mld(
                mac,
                None,
                Ipv6Header::mld(ll, *g),
                MldRepr::V1Report { group: *g },
            )
            .to_bytes(),
        })
        .collect()
}

fn lab(ports: usize, mode: Mode, hash_max: u32) -> Result<Lab> {
    let names: Vec<String> = (0..ports).map(|i| format!("h{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let kernel = mode == Mode::Kernel;
    let cfg = BridgeConfig::snooping()
        .querier(kernel)
        .query_use_ifaddr(true)
        .igmp_version(IgmpVersion::V2)
        .mld_version(MldVersion::V1);
    let lab = Lab::builder()
        .bridge(cfg)
        .bridge_ipv4(true)
        .hosts(&names)
        .build()?;
    let hm = hash_max.to_string();
    lab.switch().netns().ip(&[
        "link",
        "set",
        "br0",
        "type",
        "bridge",
        "mcast_hash_max",
        &hm,
    ])?;
    Ok(lab)
}

/// One side: the time until every port's every group is in the MDB; igmpd's RSS; the
/// latency of joins one at a time then.
fn side(opts: &Opts, mode: Mode, ports: usize, n: usize) -> Result<(f64, u64, f64)> {
    let hash_max = ((ports * n) as u32 + 1024).next_power_of_two();
    let lab = lab(ports, mode, hash_max)?;
    let sw = lab.switch().netns();
    let daemon = match mode {
        Mode::Kernel => None,
        Mode::Igmpd => Some(Igmpd::spawn(
            sw,
            &opts.igmpd,
            &["snoop", "br0", "--querier"],
        )?),
    };
    // Settle: the startup queries went out (and igmpd's nft table is in place).
    std::thread::sleep(Duration::from_millis(500));
    let mut want: HashSet<(u32, IpAddr)> = HashSet::with_capacity(ports * n);
    let mut senders = Vec::new();
    let go = Arc::new(Barrier::new(ports + 1));
    for (p, h) in lab.hosts().iter().enumerate() {
        let gs = port_groups(p, n);
        want.extend(gs.iter().map(|g| (h.port_ifindex(), *g)));
        let fr = frames(parse_mac(h.mac())?, h.ipv4(), h.ipv6_ll(), &gs);
        let go = Arc::clone(&go);
        senders.push(in_netns(h.ns_name(), move || {
            let s = Sender::open("eth0")?;
            go.wait();
            s.blast(&fr)
        }));
    }
    let w = Watcher::start_both(lab.switch().ns_name())?;
    let t0 = Instant::now();
    go.wait();
    let total = want.len();
    let deadline = t0 + WAIT;
    let mut done = None;
    while Instant::now() < deadline {
        match w.rx.recv_timeout(Duration::from_millis(200)) {
            Ok(e) => {
                if e.added && want.remove(&(e.port, e.ip)) && want.is_empty() {
                    done = Some(e.at);
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => bail!("watcher: {e}"),
        }
    }
    for s in senders {
        join(s)?;
    }
    let done = done.with_context(|| {
        format!(
            "{}: {} of {total} memberships in the MDB within {WAIT:?}",
            mode.name(),
            total - want.len()
        )
    })?;
    let conv = (done - t0).as_secs_f64() * 1e3;
    let rss = match &daemon {
        Some(d) => rss_kib(d.pid())?,
        None => 0,
    };
    // With all that state: host h0 joins new groups one at a time.
    let h = &lab.hosts()[0];
    let fresh: Vec<Ipv4Addr> = (0..LATENCY_JOINS as u32)
        .map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(239, 250, 0, 1)) + i))
        .collect();
    let fr = v2_report_frames(parse_mac(h.mac())?, h.ipv4(), &fresh);
    let (tx, rx) = mpsc::channel();
    join(one_by_one(
        h.ns_name(),
        fr,
        Duration::ZERO,
        Duration::from_millis(10),
        tx,
    ))?;
    let sent: HashMap<Ipv4Addr, Instant> = rx.try_iter().map(|(i, t)| (fresh[i], t)).collect();
    let mut lat = HashMap::new();
    let until = Instant::now() + Duration::from_secs(10);
    while lat.len() < LATENCY_JOINS && Instant::now() < until {
        if let Ok(e) = w.rx.recv_timeout(Duration::from_millis(100)) {
            if e.added && e.port == h.port_ifindex() {
                if let Some(t) = sent.get(&e.group) {
                    lat.entry(e.group)
                        .or_insert_with(|| e.at.saturating_duration_since(*t).as_secs_f64() * 1e3);
                }
            }
        }
    }
    w.finish()?;
    ensure!(
        lat.len() == LATENCY_JOINS,
        "{}: {} of {LATENCY_JOINS} joins one at a time reached the MDB",
        mode.name(),
        lat.len()
    );
    let mut v: Vec<f64> = lat.into_values().collect();
    v.sort_by(f64::total_cmp);
    drop(daemon);
    Ok((conv, rss, pct(&v, 0.99)))
}

/// One run: the kernel, then igmpd.
pub(crate) fn ports(opts: &Opts, ports: usize, n: usize) -> Result<PortsRun> {
    let (kernel_ms, _, _) = side(opts, Mode::Kernel, ports, n)?;
    let (igmpd_ms, rss_kib, join_p99_ms) = side(opts, Mode::Igmpd, ports, n)?;
    eprintln!(
        "ports {ports} x {n}: igmpd {igmpd_ms:.1} ms, kernel {kernel_ms:.1} ms, RSS {rss_kib} KiB, join p99 {join_p99_ms:.3} ms"
    );
    Ok(PortsRun {
        ports,
        groups_per_port: n,
        igmpd_ms,
        kernel_ms,
        rss_kib,
        join_p99_ms,
    })
}

/// results.json's `"ports"`: medians over the runs.
pub(crate) fn to_json(runs: &[PortsRun]) -> Value {
    let m = |f: fn(&PortsRun) -> f64| {
        r2(crate::stats::mmm(&runs.iter().map(f).collect::<Vec<_>>()).med)
    };
    let (i, k) = (m(|r| r.igmpd_ms), m(|r| r.kernel_ms));
    json!({
        "ports": runs.first().map_or(0, |r| r.ports),
        "groups_per_port": runs.first().map_or(0, |r| r.groups_per_port),
        "igmpd_ms": i,
        "kernel_ms": k,
        "ratio": r2(i / k.max(1e-9)),
        "rss_kib": m(|r| r.rss_kib as f64),
        "join_p99_ms": m(|r| r.join_p99_ms),
        "runs": runs.len(),
    })
}
