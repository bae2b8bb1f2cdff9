//! `igmpd doctor IFACE [--duration DUR] [--probe] [--json]`: from any host of a LAN, find
//! why multicast stops: no querier, a 0.0.0.0 querier, queriers fighting, this host's own
//! firewall dropping queries, and (with --probe) the hosts that are alive but never answer.
//!
//! It listens with AF_PACKET, which sees queries before the local firewall does and sees
//! this host's own reports going out, so "the query arrived but the kernel never answered"
//! is a fact, not a guess. It reads this host's memberships from /proc and its firewall
//! rules from nft / iptables to say which rule is to blame.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use igmpd_netlink::{Monitor, SystemEvent};
use igmpd_packet::{Filter, PacketSocket};
use igmpd_querier::adapter::{self as codec, Input};
use igmpd_querier::core::observer::{Finding, Observer, Severity};
use igmpd_querier::core::{Generation, Instant, Proto};
use igmpd_runtime::status::FindingDoc;
use igmpd_wire::frame::{Ipv4Header, Ipv6Header, Packet};
use igmpd_wire::{igmp, mrd, Frame, IgmpQuery, IgmpRepr, IgmpVersion, MldRepr, MrdRepr};
use serde_json::{json, Value};

use crate::cli::DoctorArgs;
use crate::firewall;

/// The longest the doctor listens by default: one default query interval plus a response.
const DEFAULT_CAP: Duration = Duration::from_secs(130);
/// Max Resp Time of the probe's own IGMP query.
const PROBE_MAX_RESP: Duration = Duration::from_secs(2);
/// Largest subnet the probe scans for live hosts.
const MAX_SCAN: u32 = 1024;

struct Iface {
    ifindex: u32,
    mac: [u8; 6],
    up: bool,
    v4: Vec<(Ipv4Addr, u8)>,
    v6_ll: Option<Ipv6Addr>,
}

async fn resolve(monitor: &Monitor, name: &str) -> Result<Iface> {
    let events = monitor
        .dump()
        .await
        .context("reading interfaces over netlink")?;
    let (ifindex, mac, up) = events
        .iter()
        .find_map(|e| match e {
            SystemEvent::Link {
                ifindex,
                name: n,
                up,
                mac,
            } if n == name => Some((*ifindex, mac.unwrap_or([0; 6]), *up)),
            _ => None,
        })
        .with_context(|| format!("no such interface: {name}"))?;
    let mut v4 = Vec::new();
    let mut v6_ll = None;
    for e in &events {
        if let SystemEvent::Address {
            ifindex: i,
            addr,
            prefix_len,
            present: true,
            usable: true,
        } = e
        {
            if *i != ifindex {
                continue;
            }
            match addr {
                IpAddr::V4(a) => v4.push((*a, *prefix_len)),
                IpAddr::V6(a) if codec::is_link_local(a) => {
                    v6_ll = Some(v6_ll.map_or(*a, |o: Ipv6Addr| o.min(*a)))
                }
                IpAddr::V6(_) => {}
            }
        }
    }
    v4.sort();
    Ok(Iface {
        ifindex,
        mac,
        up,
        v4,
        v6_ll,
    })
}

/// This host's memberships on `ifname` from /proc/net/igmp and /proc/net/igmp6, without
/// the all-nodes/all-systems groups that are never reported.
pub fn local_memberships(ifname: &str) -> (Vec<Ipv4Addr>, Vec<Ipv6Addr>) {
    let mut v4 = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/proc/net/igmp") {
        let mut current = false;
        for line in text.lines().skip(1) {
            if !line.starts_with('\t') && !line.starts_with(' ') {
                // "2\teth0      :     2      V3"
                current = line
                    .split_whitespace()
                    .nth(1)
                    .map(|n| n.trim_end_matches(':'))
                    == Some(ifname);
                continue;
            }
            if !current {
                continue;
            }
            if let Some(hex) = line.split_whitespace().next() {
                if let Ok(v) = u32::from_str_radix(hex, 16) {
                    // The kernel prints the address in host byte order.
                    let a = Ipv4Addr::from(v.to_le_bytes());
                    if a != igmp::ALL_SYSTEMS {
                        v4.push(a);
                    }
                }
            }
        }
    }
    let mut v6 = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/proc/net/igmp6") {
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 3 || f[1] != ifname || f[2].len() != 32 {
                continue;
            }
            let mut b = [0u8; 16];
            for (i, byte) in b.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&f[2][2 * i..2 * i + 2], 16).unwrap_or(0);
            }
            let a = Ipv6Addr::from(b);
            // ff02::1 is never reported (RFC 9777 §6).
            if a != igmpd_wire::mld::ALL_NODES && a.segments()[0] & 0xff0f != 0xff01 {
                v6.push(a);
            }
        }
    }
    v4.sort();
    v4.dedup();
    v6.sort();
    v6.dedup();
    (v4, v6)
}

/// What the doctor saw of this host's own answers.
#[derive(Default)]
struct Answers {
    /// When this host sent reports, per family.
    v4: Vec<(Instant, BTreeSet<IpAddr>)>,
    v6: Vec<(Instant, BTreeSet<IpAddr>)>,
}

fn report_groups_igmp(r: &IgmpRepr) -> BTreeSet<IpAddr> {
    match r {
        IgmpRepr::V1Report { group } | IgmpRepr::V2Report { group } => [IpAddr::V4(*group)].into(),
        IgmpRepr::V3Report { records } => records.iter().map(|r| IpAddr::V4(r.group)).collect(),
        _ => BTreeSet::new(),
    }
}

fn report_groups_mld(r: &MldRepr) -> BTreeSet<IpAddr> {
    match r {
        MldRepr::V1Report { group } => [IpAddr::V6(*group)].into(),
        MldRepr::V2Report { records } => records.iter().map(|r| IpAddr::V6(r.group)).collect(),
        _ => BTreeSet::new(),
    }
}

fn mac_str(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Runs the doctor; returns the exit status: 0 nothing wrong, 1 a warning or error found.
pub async fn diagnose(args: &DoctorArgs) -> Result<u8> {
    let monitor = Monitor::new().context("opening rtnetlink")?;
    let iface = resolve(&monitor, &args.iface).await?;
    if !iface.up {
        bail!("{} is down", args.iface);
    }
    let sock = PacketSocket::open(iface.ifindex, Filter::IgmpMld).map_err(|e| {
        if e.raw_os_error() == Some(libc::EPERM) {
            anyhow::anyhow!(
                "cannot listen on {}: {e} (needs CAP_NET_RAW: run as root)",
                args.iface
            )
        } else {
            anyhow::anyhow!("cannot listen on {}: {e}", args.iface)
        }
    })?;
    let sock = sock.into_async()?;
    let epoch = tokio::time::Instant::now();
    let now = || Instant::from_millis(epoch.elapsed().as_millis() as u64);
    let (groups4, groups6) = local_memberships(&args.iface);
    // Both observers start at the epoch, so "how long was nothing heard" is the whole
    // listening time.
    let mut obs4: Observer<Ipv4Addr> = Observer::new(Proto::Igmp, Instant::ZERO);
    let mut obs6: Observer<Ipv6Addr> = Observer::new(Proto::Mld, Instant::ZERO);
    let mut answers = Answers::default();
    // Reports by source MAC: who answered (for --probe).
    let mut answered_macs: BTreeMap<[u8; 6], (bool, bool)> = BTreeMap::new();
    // Queriers do not hear their own queries, so they never answer them: not silent hosts.
    let mut querier_macs: BTreeSet<[u8; 6]> = BTreeSet::new();
    let mut sent: Vec<String> = Vec::new();
    let mut probe_query_at = None;

    if args.probe {
        let src4 = iface
            .v4
            .first()
            .map(|a| a.0)
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        // RFC 4286 advertisement: a snooping switch makes this port a router port, so the
        // hosts' reports reach us. It takes no part in the querier election.
        let adv = MrdRepr::Advertisement {
            advertisement_interval: 20,
            query_interval: 0,
            robustness: 0,
        };
        let f = Frame::igmp(
            iface.mac,
            None,
            Ipv4Header::igmp(src4, mrd::ALL_SNOOPERS_V4),
            IgmpRepr::Mrd(adv),
        );
        sock.get_ref().send(&f.to_bytes())?;
        sent.push(format!(
            "an IGMP Multicast Router Advertisement (RFC 4286) to {}",
            mrd::ALL_SNOOPERS_V4
        ));
        if let Some(ll) = iface.v6_ll {
            let f = Frame::mld(
                iface.mac,
                None,
                Ipv6Header::mld(ll, mrd::ALL_SNOOPERS_V6),
                MldRepr::Mrd(adv),
            );
            sock.get_ref().send(&f.to_bytes())?;
            sent.push(format!(
                "an MLD Multicast Router Advertisement to {}",
                mrd::ALL_SNOOPERS_V6
            ));
        }
        // Find the live hosts: the kernel resolves every address of the subnet (ARP), and
        // every IPv6 node answers an echo to all-nodes.
        if let Some((a, len)) = iface.v4.first().copied() {
            let n = 1u32 << (32 - u32::from(len.min(32)));
            if n <= MAX_SCAN && len < 31 {
                let base = u32::from(a) & !(n - 1);
                let udp = std::net::UdpSocket::bind((a, 0))?;
                let mut count = 0;
                for i in 1..n - 1 {
                    let t = Ipv4Addr::from(base + i);
                    if t != a {
                        let _ = udp.send_to(b"", (t, 9));
                        count += 1;
                    }
                }
                sent.push(format!("{count} empty UDP datagrams to port 9 (discard) so the kernel resolves every address of {}/{len} by ARP", Ipv4Addr::from(base)));
            } else {
                sent.push(format!(
                    "no address scan: the subnet /{len} is larger than {MAX_SCAN} addresses"
                ));
            }
        }
        // An IGMPv3 general query from 0.0.0.0: hosts answer it, and a query from the
        // unspecified address never wins the election (RFC 9776 §6.6.2).
        let q = IgmpRepr::Query(IgmpQuery::general(
            IgmpVersion::V3,
            PROBE_MAX_RESP.as_millis() as u32,
            2,
            125,
        ));
        let f = Frame::igmp(
            iface.mac,
            None,
            Ipv4Header::igmp(Ipv4Addr::UNSPECIFIED, igmp::ALL_SYSTEMS),
            q,
        );
        // Give the switch a moment to install the router port from the advertisement.
        tokio::time::sleep(Duration::from_millis(200)).await;
        sock.get_ref().send(&f.to_bytes())?;
        probe_query_at = Some(now());
        sent.push(format!(
            "an IGMPv3 general query from 0.0.0.0 (Max Resp {} s; a query from 0.0.0.0 never wins the querier election)",
            PROBE_MAX_RESP.as_secs()
        ));
    }

    let fixed = args.duration;
    let min_wait = if args.probe {
        Duration::from_secs(4)
    } else {
        Duration::from_secs(1)
    };
    let mut buf = vec![0u8; 65_536];
    loop {
        let elapsed = epoch.elapsed();
        let done = match fixed {
            Some(d) => elapsed >= d,
            None => {
                elapsed >= DEFAULT_CAP
                    || (elapsed >= min_wait
                        && answered_enough(&obs4, &obs6, &groups4, &groups6, now()))
            }
        };
        if done {
            break;
        }
        let remaining = fixed
            .unwrap_or(DEFAULT_CAP)
            .saturating_sub(elapsed)
            .min(Duration::from_millis(250));
        let Ok(guard) = tokio::time::timeout(remaining, sock.readable()).await else {
            continue;
        };
        let mut guard = guard?;
        loop {
            match guard.get_inner().recv(&mut buf) {
                Ok(Some(info)) => {
                    let Ok(frame) = igmpd_wire::parse_ethernet(&buf[..info.len]) else {
                        continue;
                    };
                    let outgoing = info.pkttype == libc::PACKET_OUTGOING;
                    let t = now();
                    match &frame.packet {
                        Packet::Igmp { ip, igmp } => {
                            let src = (!ip.src.is_unspecified()).then_some(ip.src);
                            match codec::igmp_input(igmp) {
                                Input::Query(q) if !outgoing => {
                                    obs4.query(t, src, &q, false);
                                    querier_macs.insert(frame.ethernet.src);
                                }
                                Input::Reports(rs) => {
                                    if outgoing {
                                        answers.v4.push((t, report_groups_igmp(igmp)));
                                    } else {
                                        let gen = match igmp {
                                            IgmpRepr::V1Report { .. } => Generation::V1,
                                            IgmpRepr::V3Report { .. } => Generation::V3,
                                            _ => Generation::V2,
                                        };
                                        for r in &rs {
                                            obs4.report(t, src, r, gen);
                                        }
                                        answered_macs.entry(frame.ethernet.src).or_default().0 =
                                            true;
                                    }
                                }
                                _ => {}
                            }
                        }
                        Packet::Mld { ip, mld } => {
                            let src = (!ip.src.is_unspecified()).then_some(ip.src);
                            match codec::mld_input(mld) {
                                Input::Query(q) if !outgoing && codec::is_link_local(&ip.src) => {
                                    obs6.query(t, src, &q, false);
                                    querier_macs.insert(frame.ethernet.src);
                                }
                                Input::Reports(rs) => {
                                    if outgoing {
                                        answers.v6.push((t, report_groups_mld(mld)));
                                    } else {
                                        let gen = if matches!(mld, MldRepr::V2Report { .. }) {
                                            Generation::V3
                                        } else {
                                            Generation::V2
                                        };
                                        for r in &rs {
                                            obs6.report(t, src, r, gen);
                                        }
                                        answered_macs.entry(frame.ethernet.src).or_default().1 =
                                            true;
                                    }
                                }
                                _ => {}
                            }
                        }
                        _ => {}
                    }
                }
                Ok(None) => {
                    guard.clear_ready();
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let end = now();
    let listened = end.saturating_since(Instant::ZERO);
    let present = listened.max(Duration::from_millis(1));

    // Findings from what was seen on the wire.
    let mut findings: Vec<Finding> = obs4.findings(end, &args.iface, present, false);
    findings.extend(obs6.findings(end, &args.iface, present, false));
    // This host's own kernel: did it answer the queries it received?
    let local4 = local_answer(&obs4, &answers.v4, end);
    let local6 = local_answer(&obs6, &answers.v6, end);
    if local4 == Some(false) && !groups4.is_empty() {
        findings.push(blocked_locally(
            false,
            &args.iface,
            &groups4.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
        ));
    }
    if local6 == Some(false) && !groups6.is_empty() {
        findings.push(blocked_locally(
            true,
            &args.iface,
            &groups6.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
        ));
    }
    // A Linux bridge with snooping and nobody querying forgets every membership.
    if is_snooping_bridge(&args.iface) && obs4.queriers().all(|q| q.address.is_none()) {
        findings.retain(|f| f.code != "no-querier");
        findings.push(Finding {
            code: "snooping-without-querier",
            severity: Severity::Error,
            iface: args.iface.clone(),
            host: None,
            group: None,
            message: format!("{} is a Linux bridge with IGMP snooping on, and no querier with an address was heard: its ports' memberships expire after the membership interval (260 s by default) and multicast stops", args.iface),
            hint: format!("run `igmpd query {}` or `igmpd snoop {} --querier`, or enable the bridge's querier from an address: `ip link set {} type bridge mcast_querier 1 mcast_query_use_ifaddr 1` with an address on the bridge", args.iface, args.iface, args.iface),
        });
    }
    // --probe: live hosts that answered nothing.
    let mut live: Vec<Value> = Vec::new();
    if args.probe {
        let neigh = monitor.neighbours(iface.ifindex).await.unwrap_or_default();
        let mut by_mac: BTreeMap<[u8; 6], Vec<IpAddr>> = BTreeMap::new();
        for (a, m) in neigh {
            if m != iface.mac {
                by_mac.entry(m).or_default().push(a);
            }
        }
        let waited = probe_query_at.is_some_and(|t| end.saturating_since(t) >= PROBE_MAX_RESP);
        for (mac, addrs) in &by_mac {
            let (igmp_ok, mld_ok) = answered_macs.get(mac).copied().unwrap_or_default();
            let name = addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .map(ToString::to_string)
                .unwrap_or_default();
            let querier = querier_macs.contains(mac);
            live.push(json!({"address": name, "mac": mac_str(mac), "answered_igmp": igmp_ok, "answered_mld": mld_ok, "querier": querier}));
            if waited && !igmp_ok && !mld_ok && !querier_macs.contains(mac) {
                findings.push(Finding {
                    code: "host-silent",
                    severity: Severity::Error,
                    iface: args.iface.clone(),
                    host: Some(name.clone()),
                    group: None,
                    message: format!("host {name} ({}) is alive on the LAN (it answers address resolution) but answered no IGMP and no MLD query: a snooping switch forgets its groups and it stops receiving multicast (a host without any group and with IPv6 off would look the same)", mac_str(mac)),
                    hint: format!("on {name}: let IGMP and MLD queries in (nftables: `ip protocol igmp accept` and `icmpv6 type mld-listener-query accept` in the input chain), then check with `igmpd doctor IFACE` there"),
                });
            }
        }
    }
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.code.cmp(b.code)));

    let queriers: Vec<Value> = obs4
        .queriers()
        .map(|q| {
            querier_json(
                "igmp",
                q.address.map(|a| a.to_string()),
                q.gen.version(Proto::Igmp),
                q.qqi,
                q.qrv,
                q.max_resp,
                q.general_queries,
            )
        })
        .chain(obs6.queriers().map(|q| {
            querier_json(
                "mld",
                q.address.map(|a| a.to_string()),
                q.gen.version(Proto::Mld),
                q.qqi,
                q.qrv,
                q.max_resp,
                q.general_queries,
            )
        }))
        .collect();
    let memberships: Vec<Value> = groups4
        .iter()
        .map(|g| membership_json(IpAddr::V4(*g), &answers.v4, local4))
        .chain(
            groups6
                .iter()
                .map(|g| membership_json(IpAddr::V6(*g), &answers.v6, local6)),
        )
        .collect();
    let mut doc = json!({
        "iface": args.iface,
        "listened_ms": listened.as_millis() as u64,
        "addresses": iface.v4.iter().map(|a| a.0.to_string()).chain(iface.v6_ll.map(|a| a.to_string())).collect::<Vec<_>>(),
        "queriers": queriers,
        "memberships": memberships,
        "findings": findings.iter().map(FindingDoc::from).collect::<Vec<_>>(),
    });
    if args.probe {
        doc["probe"] = json!({
            "sent": sent,
            "leaves_behind": "this port counts as a multicast router port on snooping switches until their router-port timeout (on Linux bridges the querier interval, 255 s by default); the kernel's neighbour cache holds the addresses it resolved; nothing else",
            "live_hosts": live,
        });
    }
    let out = if args.json {
        serde_json::to_string_pretty(&doc)?
    } else {
        render(&doc)
    };
    let _ = writeln!(std::io::stdout().lock(), "{}", out.trim_end());
    Ok(u8::from(
        findings.iter().any(|f| f.severity >= Severity::Warning),
    ))
}

use std::io::Write as _;

/// Stop early once every family with local groups saw a general query and its response
/// window closed (so "answered or not" is known).
fn answered_enough(
    o4: &Observer<Ipv4Addr>,
    o6: &Observer<Ipv6Addr>,
    g4: &[Ipv4Addr],
    g6: &[Ipv6Addr],
    now: Instant,
) -> bool {
    let closed4 = o4.queriers().any(|q| {
        q.recent
            .iter()
            .any(|t| *t + q.max_resp + Duration::from_millis(500) <= now)
    });
    let closed6 = o6.queriers().any(|q| {
        q.recent
            .iter()
            .any(|t| *t + q.max_resp + Duration::from_millis(500) <= now)
    });
    (g4.is_empty() || closed4) && (g6.is_empty() || closed6) && (closed4 || closed6)
}

/// Some(true) when this host answered a general query whose window closed, Some(false)
/// when such queries arrived and it sent nothing after them, None when no query arrived.
fn local_answer<A: Ord + Copy + std::hash::Hash + std::fmt::Display>(
    o: &Observer<A>,
    sent: &[(Instant, BTreeSet<IpAddr>)],
    now: Instant,
) -> Option<bool> {
    let first = o
        .queriers()
        .flat_map(|q| {
            q.recent
                .iter()
                .filter(move |t| **t + q.max_resp + Duration::from_millis(500) <= now)
                .copied()
        })
        .min()?;
    Some(sent.iter().any(|(t, _)| *t >= first))
}

fn blocked_locally(v6: bool, iface: &str, groups: &[String]) -> Finding {
    let (code, what, qname) = if v6 {
        ("mld-blocked-locally", "MLD", "MLD")
    } else {
        ("igmp-blocked-locally", "IGMP", "IGMP")
    };
    let verdict = firewall::check(&firewall::Probe {
        v6,
        iface: iface.to_string(),
    });
    let (cause, hint) = match &verdict {
        firewall::Verdict::Dropped(c) => (format!(": the {} drops them", c.describe()), c.fix(v6)),
        firewall::Verdict::Unknown(why) => (format!("; the firewall may explain it: {why}"), format!("make sure {qname} queries are accepted on {iface} before any drop rule")),
        firewall::Verdict::Accepted => (
            "; no local firewall rule explains it (check `sysctl net.ipv4.conf.IFACE.force_igmp_version`, rp_filter, or another filter such as a bridge or ebtables rule)".to_string(),
            format!("capture on {iface} (`tcpdump -ni {iface} igmp`) to see which side drops the answers"),
        ),
    };
    Finding {
        code,
        severity: Severity::Error,
        iface: iface.to_string(),
        host: None,
        group: (groups.len() == 1).then(|| groups[0].clone()),
        message: format!(
            "{what} queries arrive on {iface}, but this host's kernel never answered them although it is a member of {}{cause}",
            groups.join(", ")
        ),
        hint,
    }
}

fn is_snooping_bridge(iface: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/bridge/multicast_snooping"))
        .is_ok_and(|s| s.trim() == "1")
}

fn querier_json(
    proto: &str,
    addr: Option<String>,
    version: u8,
    qqi: Option<Duration>,
    qrv: u8,
    max_resp: Duration,
    n: u64,
) -> Value {
    json!({
        "family": proto,
        "address": addr.unwrap_or_else(|| if proto == "igmp" { "0.0.0.0".into() } else { "::".into() }),
        "version": version,
        "interval_ms": qqi.map(|d| d.as_millis() as u64),
        "robustness": qrv,
        "max_resp_ms": max_resp.as_millis() as u64,
        "general_queries": n,
    })
}

fn membership_json(
    g: IpAddr,
    sent: &[(Instant, BTreeSet<IpAddr>)],
    answered: Option<bool>,
) -> Value {
    let reported = sent.iter().any(|(_, gs)| gs.contains(&g));
    json!({
        "group": g.to_string(),
        "family": if g.is_ipv4() { "igmp" } else { "mld" },
        "answered": answered.map(|a| a && reported),
        "reported_during_listen": reported,
    })
}

fn render(doc: &Value) -> String {
    let mut out = String::new();
    let ms = |v: &Value| {
        v.as_u64().map_or("-".to_string(), |m| {
            crate::duration::format(Duration::from_millis(m))
        })
    };
    let _ = writeln!(
        out,
        "igmpd doctor {} ({}) listened {}",
        doc["iface"].as_str().unwrap_or(""),
        doc["addresses"]
            .as_array()
            .map(|a| a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default(),
        ms(&doc["listened_ms"])
    );
    let _ = writeln!(out, "\nqueriers seen:");
    let qs = doc["queriers"].as_array().cloned().unwrap_or_default();
    if qs.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for q in qs {
        let _ = writeln!(
            out,
            "  {:<4} {:<26} v{}  interval {}  robustness {}  max resp {}  ({} general queries)",
            q["family"].as_str().unwrap_or("").to_uppercase(),
            q["address"].as_str().unwrap_or(""),
            q["version"],
            ms(&q["interval_ms"]),
            q["robustness"],
            ms(&q["max_resp_ms"]),
            q["general_queries"]
        );
    }
    let _ = writeln!(out, "\nthis host's groups:");
    let ms_ = doc["memberships"].as_array().cloned().unwrap_or_default();
    if ms_.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for m in ms_ {
        let state = match m["answered"].as_bool() {
            Some(true) => "answered the querier",
            Some(false) => "NOT answered",
            None => "no query seen",
        };
        let _ = writeln!(out, "  {:<30} {}", m["group"].as_str().unwrap_or(""), state);
    }
    if let Some(p) = doc.get("probe") {
        let _ = writeln!(out, "\nprobe sent:");
        for s in p["sent"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  - {}", s.as_str().unwrap_or(""));
        }
        let _ = writeln!(
            out,
            "probe leaves behind: {}",
            p["leaves_behind"].as_str().unwrap_or("")
        );
        let _ = writeln!(out, "live hosts:");
        for h in p["live_hosts"].as_array().into_iter().flatten() {
            let ans = match (
                h["answered_igmp"].as_bool(),
                h["answered_mld"].as_bool(),
                h["querier"].as_bool(),
            ) {
                (Some(true), Some(true), _) => "answered IGMP and MLD",
                (Some(true), _, _) => "answered IGMP",
                (_, Some(true), _) => "answered MLD",
                (_, _, Some(true)) => "a querier (it does not hear its own queries)",
                _ => "answered nothing",
            };
            let _ = writeln!(
                out,
                "  {:<26} {}  {}",
                h["address"].as_str().unwrap_or(""),
                h["mac"].as_str().unwrap_or(""),
                ans
            );
        }
    }
    let fs = doc["findings"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(out, "\nfindings:");
    if fs.is_empty() {
        let _ = writeln!(out, "  none: queriers and this host look healthy");
    }
    for f in fs {
        let _ = writeln!(
            out,
            "  {} {}: {}",
            f["severity"].as_str().unwrap_or("").to_uppercase(),
            f["code"].as_str().unwrap_or(""),
            f["message"].as_str().unwrap_or("")
        );
        let _ = writeln!(out, "    fix: {}", f["hint"].as_str().unwrap_or(""));
    }
    out
}
