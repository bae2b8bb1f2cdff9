//! Pieces the end-to-end test targets share: the story of issue 6 (a querier with short
//! timers, hosts A and B joining one group that S sends to, B's firewall) and finding
//! lookups. Each target includes it with `mod common;` and uses what it needs.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::capture::Capture;
use igmpd_netns_tests::poll_until;
use igmpd_netns_tests::{Host, Igmpd, Lab, Member, Netns};
use serde_json::Value;

pub mod monitor;

/// A bridge whose own querier is off and which filters sources (IGMPv3/MLDv2 mode).
pub fn v3_bridge() -> igmpd_netns_tests::BridgeConfig {
    igmpd_netns_tests::BridgeConfig::snooping()
        .igmp_version(igmpd_netns_tests::IgmpVersion::V3)
        .mld_version(igmpd_netns_tests::MldVersion::V2)
}

/// Whether `g` is in igmpd's default flood list (solicited-node ff02::1:ffXX:XXXX, mDNS
/// ff02::fb and 224.0.0.251): igmpd writes those on every port, whoever joined them.
pub fn is_default_flood_group(g: IpAddr) -> bool {
    match g {
        IpAddr::V4(a) => a == std::net::Ipv4Addr::new(224, 0, 0, 251),
        IpAddr::V6(a) => {
            let s = a.segments();
            a == std::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb)
                || (s[..5] == [0xff02, 0, 0, 0, 0] && s[5] == 1 && s[6] >> 8 == 0xff)
        }
    }
}

/// The igmpd binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_igmpd");
/// The application's UDP port in the story.
pub const PORT: u16 = 5001;
/// Short timers: GMI = 2 x 2 s + 1 s = 5 s, last member time = 2 x 500 ms.
pub const FAST: &[&str] = &[
    "--query-interval",
    "2s",
    "--query-response-interval",
    "1s",
    "--last-member-query-interval",
    "500ms",
];
/// `igmpd snoop br0` with [`FAST`] timers and `extra` flags, in the lab's switch.
pub fn snoop(lab: &Lab, extra: &[&str]) -> Result<Igmpd> {
    let mut a = vec!["snoop", "br0"];
    a.extend_from_slice(FAST);
    a.extend_from_slice(extra);
    Igmpd::spawn(lab.switch().netns(), BIN, &a)
}

/// [`snoop`] with `env` (`NAME=VALUE`, e.g. a debug build's failure injection).
pub fn snoop_env(lab: &Lab, env: &[&str], extra: &[&str]) -> Result<Igmpd> {
    let mut a = vec!["snoop", "br0"];
    a.extend_from_slice(FAST);
    a.extend_from_slice(extra);
    Igmpd::spawn_env(lab.switch().netns(), BIN, env, &a)
}

/// Where `igmpd snoop br0` in `lab`'s switch keeps its state file: next to the tests'
/// control sockets (the temporary directory), named after the namespace's inode.
pub fn state_file(lab: &Lab) -> Result<std::path::PathBuf> {
    let ns = lab.switch().netns();
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(format!(
        "/run/netns/{}",
        ns.name()
    ))?);
    Ok(std::env::temp_dir().join(format!("igmpd-snoop-br0-net{inode}.json")))
}

/// The kernel's `mcast_router` of bridge port `port` (`ip -d link show`).
pub fn mcast_router(lab: &Lab, port: &str) -> Result<u64> {
    let out = lab
        .switch()
        .netns()
        .exec_ok(&["ip", "-d", "-j", "link", "show", "dev", port])?;
    let v: Value = serde_json::from_str(&out)?;
    v[0]["linkinfo"]["info_slave_data"]["multicast_router"]
        .as_u64()
        .with_context(|| format!("no multicast_router in {out}"))
}

/// A multicast host application (`mcast-member`) on `host`'s interface.
pub fn member(lab: &Lab, host: &str) -> Result<Member> {
    Member::spawn(lab.host(host), Member::locate_binary()?)
}

/// How long the tests wait for a state to show.
pub const WAIT: Duration = Duration::from_secs(20);

/// B's firewall in the story: input policy drop, the application's port open, plus
/// `extra` rules (e.g. `ip protocol igmp accept` to let IGMP but not MLD in).
pub fn hostfw(extra: &str) -> String {
    format!(
        "table inet hostfw {{
            chain input {{
                type filter hook input priority filter; policy drop;
                iif lo accept
                udp dport {PORT} accept
                {extra}
            }}
        }}"
    )
}

/// `igmpd query eth0` on `host` with the story's timers: 2 s interval, 1 s response, so a
/// membership lasts 2 x 2 s + 1 s.
pub fn fast_querier(host: &Host) -> Result<Igmpd> {
    Igmpd::spawn(
        host.netns(),
        BIN,
        &[
            "query",
            "eth0",
            "--query-interval",
            "2s",
            "--query-response-interval",
            "1s",
        ],
    )
}

/// The story's hosts: S (on `sender`) sends, A and B listen on [`PORT`] and join `group`.
pub struct Story {
    /// The sender.
    pub s: Member,
    /// The member that keeps answering.
    pub a: Member,
    /// The member whose firewall drops the queries.
    pub b: Member,
}

impl Story {
    /// Spawns the three members and makes A and B join `group`.
    pub fn join(lab: &Lab, sender: &str, group: IpAddr) -> Result<Story> {
        let bin = Member::locate_binary()?;
        let s = Member::spawn(lab.host(sender), &bin)?;
        let mut a = Member::spawn(lab.host("a"), &bin)?;
        let mut b = Member::spawn(lab.host("b"), &bin)?;
        a.listen(PORT)?;
        b.listen(PORT)?;
        a.join(group)?;
        b.join(group)?;
        Ok(Story { s, a, b })
    }
}

/// The first finding with `code` in a status or doctor document.
pub fn finding<'a>(doc: &'a Value, code: &str) -> Option<&'a Value> {
    doc["findings"]
        .as_array()?
        .iter()
        .find(|f| f["code"] == code)
}

/// The `member-silent` finding naming `host`, if present.
pub fn member_silent(doc: &Value, host: &str) -> Option<Value> {
    doc["findings"]
        .as_array()?
        .iter()
        .find(|f| f["code"] == "member-silent" && f["host"] == host)
        .cloned()
}

/// Where a receiver listens: (label, namespace, interface).
pub type End<'a> = (String, &'a Netns, String);

/// Every host of the lab at its interface, labelled by its name.
pub fn host_ends(lab: &Lab) -> Vec<End<'_>> {
    lab.hosts()
        .iter()
        .map(|h| (h.name().to_owned(), h.netns(), h.ifname().to_owned()))
        .collect()
}

/// Ends (other than `from`) where datagrams from `sender` to `group` arrive. Positive
/// evidence first (some end gets all of them, or 3 s pass), then a bounded half second
/// for stragglers.
pub fn receivers_at(
    ends: &[End<'_>],
    sender: &mut Member,
    from: &str,
    group: IpAddr,
) -> Result<BTreeSet<String>> {
    let filter = format!("udp and dst port {PORT} and dst host {group}");
    let caps: Vec<(&str, Capture)> = ends
        .iter()
        .filter(|(l, ..)| l != from)
        .map(|(l, ns, ifname)| Ok((l.as_str(), Capture::start(ns, ifname, &filter)?)))
        .collect::<Result<_>>()?;
    sender.send(group, PORT, 3)?;
    let _ = poll_until(Duration::from_secs(3), Duration::from_millis(20), || {
        caps.iter()
            .any(|(_, c)| c.packets().map(|p| p.len() >= 3).unwrap_or(false))
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut out = BTreeSet::new();
    for (l, c) in caps {
        if !c.stop()?.is_empty() {
            out.insert(l.to_owned());
        }
    }
    Ok(out)
}

/// [`receivers_at`] the lab's hosts.
pub fn receivers(
    lab: &Lab,
    sender: &mut Member,
    sender_host: &str,
    group: IpAddr,
) -> Result<BTreeSet<String>> {
    receivers_at(&host_ends(lab), sender, sender_host, group)
}

/// Polls [`receivers_at`] until it is `want`: the kernel forwards by the MDB only one Max
/// Response Time after it saw a querier, and floods until then (with or without igmpd).
pub fn expect_receivers_at(
    lab: &Lab,
    ends: &[End<'_>],
    sender: &mut Member,
    from: &str,
    group: IpAddr,
    want: &[&str],
) -> Result<()> {
    let want = set(want);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = receivers_at(ends, sender, from, group)?;
        if got == want {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{group} from {from}: received by {got:?}, expected {want:?}; MDB {:?}",
            lab.mdb()
        );
    }
}

/// [`expect_receivers_at`] the lab's hosts.
pub fn expect_receivers(
    lab: &Lab,
    sender: &mut Member,
    sender_host: &str,
    group: IpAddr,
    want: &[&str],
) -> Result<()> {
    expect_receivers_at(lab, &host_ends(lab), sender, sender_host, group, want)
}

/// The frames `cap` has so far, as tshark decodes them (see [`tshark`]).
pub fn tshark_capture(
    cap: &Capture,
    fields: &[&str],
) -> Result<Vec<std::collections::BTreeMap<String, String>>> {
    let frames: Vec<Vec<u8>> = cap.packets()?.into_iter().map(|p| p.data).collect();
    tshark(&frames, fields)
}

pub fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Runs tshark over `frames` and returns one map per frame: field -> comma-joined values.
pub fn tshark(
    frames: &[Vec<u8>],
    fields: &[&str],
) -> Result<Vec<std::collections::BTreeMap<String, String>>> {
    let dir = std::env::temp_dir().join(format!(
        "igmpd-e2e-tshark-{}-{}",
        std::process::id(),
        frames.len()
    ));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("queries.pcap");
    let records: Vec<igmpd_wire::pcap::Record> = frames
        .iter()
        .map(|d| igmpd_wire::pcap::Record {
            timestamp_us: 0,
            link_type: igmpd_wire::pcap::LINKTYPE_ETHERNET,
            data: d.clone(),
        })
        .collect();
    std::fs::write(&file, igmpd_wire::pcap::write(&records))?;
    let mut cmd = std::process::Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(&file).args([
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
        "-E",
        "separator=\t",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().context("tshark runs")?;
    std::fs::remove_dir_all(&dir).ok();
    ensure!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .map(|l| {
            fields
                .iter()
                .zip(l.split('\t'))
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect()
        })
        .collect())
}

/// Whether `cap` holds an IGMPv3 report with a record for `group` (igmpd's decoder).
pub fn saw_v3_report(cap: &Capture, group: std::net::Ipv4Addr) -> bool {
    cap.packets().is_ok_and(|ps| {
        ps.iter().any(|p| {
            matches!(p.decode(), Ok(f) if matches!(&f.packet,
                igmpd_wire::Packet::Igmp { igmp: igmpd_wire::IgmpRepr::V3Report { records }, .. }
                    if records.iter().any(|r| r.group == group)))
        })
    })
}
