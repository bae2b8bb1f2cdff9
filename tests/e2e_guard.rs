//! Untrusted access ports end to end: real hosts in namespaces, the real binary in the
//! switch, the kernel bridge as what forwards.
//!
//! - a host on a guarded port sends a query from a lower address, a PIM hello and an MRD
//!   advertisement: igmpd stays querier, the port is never a router port (in status and
//!   in the kernel's `mcast_router`), no other host hears the forged query, and the
//!   findings name the port and the source;
//! - a host over `max_groups` (deny, then replace);
//! - a denied group never reaches the MDB nor the router port;
//! - a port flooding spoofed joins does not stop a second port's join.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::capture::Capture;
use igmpd_netns_tests::mdb::igmpd_protocol;
use igmpd_netns_tests::{poll_until, BridgeConfig, IgmpVersion, Igmpd, Lab};
use igmpd_wire::frame::{Frame, Ipv4Header};
use igmpd_wire::pim::PimHello;
use igmpd_wire::{IgmpQuery, IgmpRepr, IgmpVersion as WireIgmp, Packet};
use serde_json::Value;

mod common;
use common::{finding, mcast_router, member, snoop, BIN, WAIT};

fn lab(hosts: &[&str]) -> Result<Lab> {
    Lab::builder()
        .bridge(BridgeConfig::snooping().igmp_version(IgmpVersion::V3))
        .bridge_ipv4(true)
        .hosts(hosts)
        .build()
}

/// The IPv4 packet of `packet` (the frame without its Ethernet header).
fn ip_bytes(packet: Packet) -> Vec<u8> {
    let frame = Frame {
        ethernet: igmpd_wire::frame::EthernetHeader {
            dst: [0; 6],
            src: [0; 6],
            vlan: None,
        },
        packet,
    };
    frame.to_bytes()[14..].to_vec()
}

/// The groups of igmpd's own entries on `port`.
fn igmpd_groups(lab: &Lab, port: &str) -> Result<Vec<IpAddr>> {
    let mut g: Vec<IpAddr> = lab
        .mdb()?
        .into_iter()
        .filter(|e| e.port == port && e.protocol.as_deref() == Some(igmpd_protocol()))
        .map(|e| e.group)
        // Flooded groups (every port has them) count against no port's limit.
        .filter(|g| !common::is_default_flood_group(*g))
        .collect();
    g.sort();
    g.dedup();
    Ok(g)
}

fn port_doc<'a>(s: &'a Value, port: &str) -> Option<&'a Value> {
    s["bridges"][0]["ports"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == port)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

#[test]
fn untrusted_guarded_port_never_becomes_a_router_port_and_igmpd_stays_querier() -> Result<()> {
    let lab = lab(&["rogue", "a"])?;
    let rogue_port = lab.host("rogue").port().to_owned();
    let d = snoop(&lab, &["--querier", "--router-guard", &rogue_port])?;
    let role = |s: &Value| s["bridges"][0]["igmp"]["role"].as_str().map(str::to_owned);
    d.wait_status(WAIT, |s| {
        (role(s).as_deref() == Some("querier")).then_some(())
    })
    .context("igmpd should be the querier before the forged query")?;
    let src = lab.host("rogue").ipv4();
    ensure!(
        lab.switch().ipv4().is_some_and(|b| src < b),
        "the rogue host must have the lower address"
    );
    // What host a hears from the rogue: nothing, if the bridge drops it at ingress.
    let heard = Capture::start(
        lab.host("a").netns(),
        "eth0",
        &format!("src host {src} and (igmp or ip proto 103)"),
    )?;
    let mut rogue = member(&lab, "rogue")?;
    let query = Packet::Igmp {
        ip: Ipv4Header::igmp(src, Ipv4Addr::new(224, 0, 0, 1)),
        igmp: IgmpRepr::Query(IgmpQuery::general(WireIgmp::V3, 1000, 2, 125)),
    };
    let pim = Packet::PimHelloV4 {
        ip: Ipv4Header {
            router_alert: false,
            ..Ipv4Header::igmp(src, igmpd_wire::pim::ALL_PIM_ROUTERS_V4)
        },
        hello: PimHello {
            holdtime: Some(0xffff),
        },
    };
    // Three rounds: a router that means it repeats itself.
    for _ in 0..3 {
        rogue.send_ipv4(&ip_bytes(query.clone()))?;
        rogue.send_ipv4(&ip_bytes(pim.clone()))?;
        rogue.mrd_advertise(src, 20)?;
    }
    let s = d
        .wait_status(WAIT, |s| {
            let c = &port_doc(s, &rogue_port)?["counters"];
            (c["guard_drops"].as_u64()? >= 9).then(|| s.clone())
        })
        .context("the guard should count 9 drops")?;
    ensure!(role(&s).as_deref() == Some("querier"), "{s:#}");
    ensure!(
        s["bridges"][0]["router_ports"]
            .as_array()
            .is_some_and(|r| r.is_empty()),
        "no router port: {s:#}"
    );
    ensure!(
        port_doc(&s, &rogue_port).is_some_and(|p| p["limits"]["router_guard"] == true),
        "{s:#}"
    );
    for code in ["rogue-querier", "rogue-router"] {
        let f = finding(&s, code).with_context(|| format!("{code} in {s:#}"))?;
        ensure!(
            f["iface"] == rogue_port.as_str() && f["host"] == src.to_string().as_str(),
            "{f:#}"
        );
        ensure!(
            f["message"].as_str().is_some_and(|m| m.contains("IGMP")),
            "{f:#}"
        );
    }
    ensure!(
        mcast_router(&lab, &rogue_port)? == 1,
        "the kernel's mcast_router"
    );
    ensure!(
        lab.switch()
            .router_ports()?
            .iter()
            .all(|r| r.port != rogue_port),
        "the kernel made the port a router port: {:?}",
        lab.switch().router_ports()
    );
    // igmpd's own queries still reach a; the rogue's never did.
    let got = heard.stop()?;
    ensure!(
        got.is_empty(),
        "a heard the rogue's messages: {} frames",
        got.len()
    );
    d.stop()?;
    Ok(())
}

#[test]
fn untrusted_host_over_max_groups_is_refused_or_replaces_its_oldest() -> Result<()> {
    let lab = lab(&["a"])?;
    let port = lab.host("a").port().to_owned();
    let a_ip = lab.host("a").ipv4().to_string();
    let groups = [ip("239.20.0.1"), ip("239.20.0.2"), ip("239.20.0.3")];
    // deny: the third is refused; the port's limit is in status; the finding names a.
    // IPv4 only: the host's MLD groups (solicited-node) would count against the limit.
    let d = snoop(&lab, &["--querier", "--no-mld", "--max-groups", "2"])?;
    let mut a = member(&lab, "a")?;
    for g in groups {
        a.join(g)?;
    }
    let s = d.wait_status(WAIT, |s| {
        let c = &port_doc(s, &port)?["counters"];
        (c["refused"].as_u64()? >= 1).then(|| s.clone())
    })?;
    let f = finding(&s, "port-group-limit").with_context(|| format!("{s:#}"))?;
    ensure!(
        f["iface"] == port.as_str() && f["host"] == a_ip.as_str(),
        "{f:#}"
    );
    let held = poll_until(WAIT, Duration::from_millis(50), || {
        let g = igmpd_groups(&lab, &port).ok()?;
        (g.len() == 2).then_some(g)
    })?;
    // Which one is refused depends on the order the reports arrive in (the first ones
    // may come before igmpd listens, and are re-sent on its queries): the one named.
    let refused: IpAddr = f["group"].as_str().context("group")?.parse()?;
    ensure!(
        groups.contains(&refused) && !held.contains(&refused),
        "{refused} refused, {held:?} held"
    );
    ensure!(
        port_doc(&d.status()?, &port).is_some_and(|p| p["limits"]["max_groups"] == 2),
        "limits"
    );
    d.stop()?;
    a.quit()?;
    // replace: the newest join gets in, the port never holds more than two.
    let d = snoop(
        &lab,
        &[
            "--querier",
            "--no-mld",
            "--max-groups",
            "2",
            "--limit-action",
            "replace",
        ],
    )?;
    let mut a = member(&lab, "a")?;
    for g in &groups[..2] {
        a.join(*g)?;
        poll_until(WAIT, Duration::from_millis(50), || {
            igmpd_groups(&lab, &port).ok()?.contains(g).then_some(())
        })?;
    }
    a.join(groups[2])?;
    poll_until(WAIT, Duration::from_millis(50), || {
        igmpd_groups(&lab, &port)
            .ok()?
            .contains(&groups[2])
            .then_some(())
    })
    .context("the newest join should replace the oldest")?;
    let s = d.wait_status(WAIT, |s| {
        let c = &port_doc(s, &port)?["counters"];
        (c["replaced"].as_u64()? >= 1).then(|| s.clone())
    })?;
    ensure!(
        port_doc(&s, &port).is_some_and(|p| p["limits"]["groups"].as_u64() <= Some(2)),
        "{s:#}"
    );
    ensure!(igmpd_groups(&lab, &port)?.len() <= 2, "{:?}", lab.mdb());
    d.stop()?;
    Ok(())
}

/// A config file in a directory of its own, removed when this goes (a failing test too).
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(name: &str, text: &str) -> Result<TempConfig> {
        let dir = std::env::temp_dir().join(format!("igmpd-guard-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("igmpd.toml"), text)?;
        Ok(TempConfig(dir))
    }

    fn path(&self) -> PathBuf {
        self.0.join("igmpd.toml")
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn untrusted_denied_group_never_reaches_the_mdb_nor_the_router_port() -> Result<()> {
    let lab = lab(&["r", "a"])?;
    let (rport, aport) = (
        lab.host("r").port().to_owned(),
        lab.host("a").port().to_owned(),
    );
    let cfg = TempConfig::new(
        "acl",
        &format!(
            "[defaults]\nquery_interval = \"2s\"\nquery_response_interval = \"1s\"\n\
             [bridge.br0]\nquerier = true\nrouter_ports = [\"{rport}\"]\n\
             [bridge.br0.port.{aport}]\n\
             acl = [{{ action = \"deny\", group = \"239.255.0.0/16\" }}]\n"
        ),
    )?;
    let reports = Capture::start(lab.host("r").netns(), "eth0", "igmp")?;
    let d = Igmpd::spawn(
        lab.switch().netns(),
        BIN,
        &["run", "--config", cfg.path().to_str().context("utf8")?],
    )?;
    let (denied, permitted) = (ip("239.255.1.1"), ip("239.1.1.1"));
    let mut a = member(&lab, "a")?;
    a.join(denied)?;
    a.join(permitted)?;
    poll_until(WAIT, Duration::from_millis(50), || {
        igmpd_groups(&lab, &aport)
            .ok()?
            .contains(&permitted)
            .then_some(())
    })?;
    // Several general queries: a answers each with both records in one report; the
    // router port gets that report without the denied record.
    let s = d.wait_status(WAIT, |s| {
        let p = port_doc(s, &aport)?;
        (p["counters"]["denied"].as_u64()? >= 3).then(|| s.clone())
    })?;
    let acl = &port_doc(&s, &aport).context("port")?["acl"];
    ensure!(
        acl[0]["group"] == "239.255.0.0/16" && acl[0]["hits"].as_u64() >= Some(3),
        "{acl:#}"
    );
    ensure!(finding(&s, "denied-join").is_some(), "{s:#}");
    ensure!(
        !igmpd_groups(&lab, &aport)?.contains(&denied),
        "{:?}",
        lab.mdb()
    );
    let frames = reports.stop()?;
    let mut to_router = Vec::new();
    for f in &frames {
        if let Ok(Frame {
            packet: Packet::Igmp { ip, igmp },
            ..
        }) = f.decode()
        {
            if ip.src == lab.host("a").ipv4() {
                to_router.push(igmp);
            }
        }
    }
    let names = |g: IpAddr| {
        to_router.iter().any(|m| match m {
            IgmpRepr::V3Report { records } => records.iter().any(|r| IpAddr::V4(r.group) == g),
            IgmpRepr::V2Report { group } | IgmpRepr::V1Report { group } => IpAddr::V4(*group) == g,
            _ => false,
        })
    };
    ensure!(
        names(permitted),
        "the router got no report of {permitted}: {to_router:?}"
    );
    ensure!(
        !names(denied),
        "the router got a report of {denied}: {to_router:?}"
    );
    d.stop()?;
    Ok(())
}

#[test]
fn untrusted_flooding_port_does_not_stop_a_second_ports_join() -> Result<()> {
    let lab = lab(&["flood", "a"])?;
    let (fport, aport) = (
        lab.host("flood").port().to_owned(),
        lab.host("a").port().to_owned(),
    );
    let d = snoop(&lab, &["--querier", "--max-groups", "256"])?;
    let mut f = member(&lab, "flood")?;
    let mut a = member(&lab, "a")?;
    // Five rounds: 4 000 spoofed joins from the flooding port, then one real join on a.
    for round in 0..5u8 {
        f.flood_igmp(Ipv4Addr::new(239, 100 + round, 0, 0), 4000)?;
        let g = IpAddr::V4(Ipv4Addr::new(239, 30, 0, round));
        a.join(g)?;
        poll_until(WAIT, Duration::from_millis(20), || {
            igmpd_groups(&lab, &aport).ok()?.contains(&g).then_some(())
        })
        .with_context(|| format!("a's join of {g} during the flood (round {round})"))?;
    }
    let s = d.status()?;
    let p = port_doc(&s, &fport).context("flood port")?;
    // 20 000 distinct groups were offered; the ring may drop some under the flood, but
    // most reached igmpd and were refused at the limit.
    ensure!(
        p["limits"]["groups"].as_u64() <= Some(256)
            && p["counters"]["refused"].as_u64() >= Some(10_000),
        "{p:#}"
    );
    ensure!(igmpd_groups(&lab, &fport)?.len() <= 256);
    d.stop()?;
    Ok(())
}
