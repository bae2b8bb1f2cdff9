//! `igmpd snoop` end to end: the real binary in the switch namespace, real Linux hosts
//! (their kernels send the reports), the data plane checked with captures on every host,
//! and the kernel's own snooping as the reference for the same host actions.
//!
//! This kernel has neither 802.1Q nor bridge VLAN filtering: the VLAN test probes for
//! them and skips with the reason.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::capture::Capture;
use igmpd_netns_tests::mdb::{igmpd_protocol, kernel_has_source_lists, MdbState};
use igmpd_netns_tests::{poll_until, BridgeConfig, HostSpec, Igmpd, Lab, LabBuilder, Member};
use serde_json::Value;

mod common;
use common::{
    expect_receivers, member, member_silent, receivers, saw_v3_report, snoop, v3_bridge, BIN, FAST,
    PORT, WAIT,
};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

/// The groups igmpd shows on `port`.
fn port_groups(s: &Value, port: &str) -> Vec<String> {
    s["bridges"][0]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == port)
        .flat_map(|p| p["groups"].as_array().cloned().unwrap_or_default())
        .filter_map(|g| g["group"].as_str().map(str::to_owned))
        .collect()
}

fn igmpd_entry(
    lab: &Lab,
    host: &str,
    group: IpAddr,
) -> Result<Option<igmpd_netns_tests::mdb::MdbEntry>> {
    let port = lab.host(host).port().to_owned();
    Ok(lab.mdb()?.into_iter().find(|e| e.is_star_g(&port, group)))
}

fn wait_entry(
    lab: &Lab,
    host: &str,
    group: IpAddr,
    present: bool,
    timeout: Duration,
) -> Result<Duration> {
    let t0 = Instant::now();
    poll_until(timeout, Duration::from_millis(25), || {
        let e = igmpd_entry(lab, host, group).ok()?;
        (e.is_some() == present).then_some(())
    })
    .with_context(|| {
        format!(
            "{group} on {host}'s port should be {}",
            if present { "present" } else { "gone" }
        )
    })?;
    Ok(t0.elapsed())
}

fn nft_tables(lab: &Lab) -> Result<String> {
    lab.switch().netns().exec_ok(&["nft", "list", "tables"])
}

#[test]
fn joined_host_receives_unjoined_does_not_and_a_leave_ends_it_in_the_last_member_time() -> Result<()>
{
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["s", "a", "b"])
        .build()?;
    let d = snoop(&lab, &["--querier"])?;
    ensure!(
        nft_tables(&lab)?.contains("igmpd_snoop_br0"),
        "nft table missing"
    );
    let g = ip("239.10.0.1");
    let mut a = member(&lab, "a")?;
    let mut s = member(&lab, "s")?;
    a.join(g)?;
    wait_entry(&lab, "a", g, true, WAIT)?;
    let e = igmpd_entry(&lab, "a", g)?.context("entry")?;
    ensure!(
        e.state == MdbState::Permanent && e.protocol.as_deref() == Some(igmpd_protocol()),
        "{e:?}"
    );
    // Only igmpd learns: no kernel-learned entry for the group.
    ensure!(lab
        .mdb()?
        .iter()
        .filter(|e| e.group == g)
        .all(|e| e.protocol.as_deref() == Some(igmpd_protocol())));
    expect_receivers(&lab, &mut s, "s", g, &["a"])?;
    d.wait_status(WAIT, |st| {
        port_groups(st, "p2").contains(&g.to_string()).then_some(())
    })?;
    a.leave(g)?;
    // TO_IN({}) -> two group-specific queries 500 ms apart -> gone after ~1 s.
    let took = wait_entry(&lab, "a", g, false, Duration::from_secs(5))?;
    ensure!(took < Duration::from_secs(4), "leave took {took:?}");
    d.stop()?;
    ensure!(
        !nft_tables(&lab)?.contains("igmpd_snoop_br0"),
        "nft table left behind"
    );
    Ok(())
}

#[test]
fn ipv6_listeners_and_mldv1_hosts() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["s", "a"])
        .host_spec(HostSpec::new("v1").force_mld_version(1))
        .host("b")
        .build()?;
    let _d = snoop(&lab, &["--querier"])?;
    let (g, g1) = (ip("ff0e::10:1"), ip("ff0e::10:2"));
    let mut a = member(&lab, "a")?;
    let mut v1 = member(&lab, "v1")?;
    let mut s = member(&lab, "s")?;
    a.join(g)?;
    v1.join(g1)?;
    wait_entry(&lab, "a", g, true, WAIT)?;
    wait_entry(&lab, "v1", g1, true, WAIT)?;
    expect_receivers(&lab, &mut s, "s", g, &["a"])?;
    expect_receivers(&lab, &mut s, "s", g1, &["v1"])?;
    v1.leave(g1)?;
    wait_entry(&lab, "v1", g1, false, Duration::from_secs(5))?;
    Ok(())
}

#[test]
fn igmpv3_include_and_exclude_sources_deliver_exactly_the_allowed_ones() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["s1", "s2", "inc", "exc"])
        .build()?;
    let d = snoop(&lab, &["--querier"])?;
    let g = ip("232.1.1.1");
    let s1 = IpAddr::V4(lab.host("s1").ipv4());
    let mut inc = member(&lab, "inc")?;
    let mut exc = member(&lab, "exc")?;
    inc.join_source(g, s1)?;
    exc.join(g)?;
    exc.block(g, s1)?;
    // Where the kernel takes source lists, both are (*,G) entries with one. Elsewhere
    // (before 6.3) EXCLUDE can only be a plain (*,G), and beside it INCLUDE must be one
    // too (an (S,G) entry would take s1's traffic from the plain entry's port): both
    // ports then get every source.
    let lists = kernel_has_source_lists();
    poll_until(WAIT, Duration::from_millis(50), || {
        let m = lab.mdb().ok()?;
        let listed = |port: &str| {
            m.iter()
                .any(|e| e.is_star_g(port, g) && e.source_list.iter().any(|x| x.address == s1))
        };
        let (inc_ok, exc_ok) = if lists {
            (listed("p3"), listed("p4"))
        } else {
            let plain = |port: &str| m.iter().any(|e| e.is_star_g(port, g));
            let sg = m.iter().any(|e| e.group == g && e.source.is_some());
            (plain("p3") && !sg, plain("p4"))
        };
        (inc_ok && exc_ok).then_some(())
    })
    .with_context(|| format!("source lists: {:?}", lab.mdb()))?;
    let mut m1 = member(&lab, "s1")?;
    let mut m2 = member(&lab, "s2")?;
    // From s1: inc (INCLUDE s1) yes, exc (EXCLUDE s1) no; from s2 the opposite.
    let (from_s1, from_s2): (&[&str], &[&str]) = if lists {
        (&["inc"], &["exc"])
    } else {
        (&["exc", "inc"], &["exc", "inc"])
    };
    expect_receivers(&lab, &mut m1, "s1", g, from_s1)?;
    expect_receivers(&lab, &mut m2, "s2", g, from_s2)?;
    let st = d.status()?;
    let grp = st["bridges"][0]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "p3")
        .and_then(|p| p["groups"].get(0).cloned())
        .context("p3 group")?;
    ensure!(
        grp["filter_mode"] == "include" && grp["sources"][0]["address"] == s1.to_string(),
        "{grp:#}"
    );
    Ok(())
}

#[test]
fn igmpv1_and_v2_hosts_are_snooped_and_v2_leaves_work() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .host("s")
        .host_spec(HostSpec::new("v1").force_igmp_version(1))
        .host_spec(HostSpec::new("v2").force_igmp_version(2))
        .host("other")
        .build()?;
    let _d = snoop(&lab, &["--querier"])?;
    let (g1, g2) = (ip("239.20.0.1"), ip("239.20.0.2"));
    let mut v1 = member(&lab, "v1")?;
    let mut v2 = member(&lab, "v2")?;
    let mut s = member(&lab, "s")?;
    v1.join(g1)?;
    v2.join(g2)?;
    wait_entry(&lab, "v1", g1, true, WAIT)?;
    wait_entry(&lab, "v2", g2, true, WAIT)?;
    expect_receivers(&lab, &mut s, "s", g1, &["v1"])?;
    expect_receivers(&lab, &mut s, "s", g2, &["v2"])?;
    v2.leave(g2)?;
    let took = wait_entry(&lab, "v2", g2, false, Duration::from_secs(5))?;
    ensure!(took < Duration::from_secs(4), "v2 leave took {took:?}");
    Ok(())
}

#[test]
fn another_igmpd_querier_is_a_router_port_gets_the_reports_and_drives_leaves() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["r", "s", "a"])
        .host_spec(HostSpec::new("v2").force_igmp_version(2))
        .build()?;
    // The querier is igmpd query on host r; the snooper is passive.
    let mut qargs = vec!["query", "eth0"];
    qargs.extend_from_slice(FAST);
    let q = Igmpd::spawn(lab.host("r").netns(), BIN, &qargs)?;
    let d = snoop(&lab, &[])?;
    d.wait_status(WAIT, |st| {
        st["bridges"][0]["router_ports"]
            .as_array()?
            .iter()
            .any(|r| r["name"] == "p1")
            .then_some(())
    })?;
    ensure!(
        lab.switch().router_ports()?.iter().any(|r| r.port == "p1"),
        "kernel view of router ports: {:?}",
        lab.switch().router_ports()
    );
    let g = ip("239.30.0.1");
    let mut v2 = member(&lab, "v2")?;
    v2.join(g)?;
    wait_entry(&lab, "v2", g, true, WAIT)?;
    // The querier on r hears the report only because igmpd forwarded it there.
    q.wait_status(WAIT, |st| {
        st["interfaces"][0]["igmp"]["groups"]
            .as_array()?
            .iter()
            .any(|x| x["group"] == g.to_string())
            .then_some(())
    })?;
    // Unregistered traffic and the group's traffic reach the router port.
    let mut s = member(&lab, "s")?;
    expect_receivers(&lab, &mut s, "s", g, &["r", "v2"])?;
    // The leave reaches r, r's group-specific queries lower the port timer.
    v2.leave(g)?;
    let took = wait_entry(&lab, "v2", g, false, Duration::from_secs(6))?;
    ensure!(
        took < Duration::from_secs(5),
        "leave via the other querier took {took:?}"
    );
    Ok(())
}

#[test]
fn configured_router_port_gets_reports_and_is_restored_at_exit() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["r", "a"])
        .build()?;
    let cap = Capture::start(lab.host("r").netns(), "eth0", "igmp")?;
    let d = snoop(&lab, &["--querier", "--router-port", "p1"])?;
    let port_router = |lab: &Lab| -> Result<u64> {
        let out = lab
            .switch()
            .netns()
            .exec_ok(&["ip", "-d", "-j", "link", "show", "dev", "p1"])?;
        let v: Value = serde_json::from_str(&out)?;
        Ok(v[0]["linkinfo"]["info_slave_data"]["multicast_router"]
            .as_u64()
            .unwrap_or(99))
    };
    poll_until(WAIT, Duration::from_millis(50), || {
        (port_router(&lab).ok()? == 2).then_some(())
    })?;
    let mut a = member(&lab, "a")?;
    let g = ip("239.40.0.1");
    a.join(g)?;
    let ga: std::net::Ipv4Addr = "239.40.0.1".parse()?;
    poll_until(WAIT, Duration::from_millis(50), || {
        cap.packets()
            .ok()?
            .iter()
            .any(|p| {
                matches!(p.decode(), Ok(f) if matches!(&f.packet,
                igmpd_wire::Packet::Igmp { igmp: igmpd_wire::IgmpRepr::V3Report { records }, .. }
                    if records.iter().any(|r| r.group == ga)))
            })
            .then_some(())
    })
    .context("the router port should get a's report")?;
    d.stop()?;
    ensure!(port_router(&lab)? == 1, "mcast_router restored");
    Ok(())
}

/// Reports igmpd saw in `cap` for `group` (IGMPv3 records).
fn v3_reports_for(cap: &Capture, group: std::net::Ipv4Addr) -> usize {
    cap.packets().map_or(0, |ps| {
        ps.iter()
            .filter(|p| {
                matches!(p.decode(), Ok(f) if matches!(&f.packet,
                    igmpd_wire::Packet::Igmp { igmp: igmpd_wire::IgmpRepr::V3Report { records }, .. }
                        if records.iter().any(|r| r.group == group)))
            })
            .count()
    })
}

#[test]
fn no_report_goes_out_of_a_router_port_that_stp_does_not_let_forward() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["r", "a"])
        .build()?;
    let sw = lab.switch().netns();
    // Kernel STP with a 4 s forward delay; p1 bounced, so it listens and learns for 8 s
    // or more before it forwards (the kernel takes no state from userspace while STP is
    // off, and in a namespace STP is the kernel's).
    sw.exec_ok(&[
        "ip",
        "link",
        "set",
        "br0",
        "type",
        "bridge",
        "forward_delay",
        "400",
        "stp_state",
        "1",
    ])?;
    sw.exec_ok(&["ip", "link", "set", "p1", "down"])?;
    sw.exec_ok(&["ip", "link", "set", "p1", "up"])?;
    let cap = Capture::start(lab.host("r").netns(), "eth0", "igmp")?;
    let d = snoop(&lab, &["--querier", "--router-port", "p1"])?;
    let mut a = member(&lab, "a")?;
    let (g1, g2) = ("239.41.0.1".parse()?, "239.41.0.2".parse()?);
    a.join(IpAddr::V4(g1))?;
    wait_entry(&lab, "a", IpAddr::V4(g1), true, WAIT)?;
    // The join's reports were seen and not forwarded (the bridge itself sends nothing out
    // of a port that does not forward either): none reaches r within a bounded second.
    let leaked = poll_until(Duration::from_secs(1), Duration::from_millis(50), || {
        (v3_reports_for(&cap, g1) > 0).then_some(())
    });
    ensure!(leaked.is_err(), "a report went out of a port STP blocks");
    poll_until(Duration::from_secs(40), Duration::from_millis(50), || {
        d.log_text()
            .lines()
            .any(|l| l.contains("port STP state") && l.contains("forwarding=true"))
            .then_some(())
    })
    .with_context(|| d.log_text())?;
    a.join(IpAddr::V4(g2))?;
    poll_until(WAIT, Duration::from_millis(50), || {
        (v3_reports_for(&cap, g2) > 0).then_some(())
    })
    .context("forwarding again once the port forwards")?;
    Ok(())
}

#[test]
fn sigkill_and_restart_lose_nothing_and_leave_nothing_stale() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["s", "a", "b"])
        .build()?;
    let d = snoop(&lab, &["--querier"])?;
    let (ga, gb) = (ip("239.50.0.1"), ip("239.50.0.2"));
    let mut a = member(&lab, "a")?;
    let mut b = member(&lab, "b")?;
    a.join(ga)?;
    b.join(gb)?;
    wait_entry(&lab, "a", ga, true, WAIT)?;
    wait_entry(&lab, "b", gb, true, WAIT)?;
    d.kill()?;
    // While igmpd is down, b goes away without a leave (its host crashed).
    drop(b);
    ensure!(igmpd_entry(&lab, "a", ga)?.is_some() && igmpd_entry(&lab, "b", gb)?.is_some());
    let d = snoop(&lab, &["--querier"])?;
    d.wait_status(WAIT, |st| {
        (st["bridges"][0]["counters"]["adopted"].as_u64()? >= 2).then_some(())
    })?;
    // a keeps answering: its entry never disappears; b's goes within one GMI (5 s).
    let t0 = Instant::now();
    let mut s = member(&lab, "s")?;
    while t0.elapsed() < Duration::from_secs(8) {
        ensure!(
            igmpd_entry(&lab, "a", ga)?.is_some(),
            "a's entry vanished after restart"
        );
        if igmpd_entry(&lab, "b", gb)?.is_none() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_entry(&lab, "b", gb, false, Duration::from_secs(3))?;
    expect_receivers(&lab, &mut s, "s", ga, &["a"])?;
    Ok(())
}

#[test]
fn sigterm_hands_the_bridge_back_to_the_kernel() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["s", "a"])
        .build()?;
    let d = snoop(&lab, &["--querier"])?;
    let g = ip("239.60.0.1");
    let mut a = member(&lab, "a")?;
    a.join(g)?;
    wait_entry(&lab, "a", g, true, WAIT)?;
    d.stop()?;
    let e = igmpd_entry(&lab, "a", g)?.context("entry kept")?;
    ensure!(
        e.state == MdbState::Temp,
        "entry should be temporary now: {e:?}"
    );
    ensure!(!nft_tables(&lab)?.contains("igmpd_snoop"), "table removed");
    let mut s = member(&lab, "s")?;
    ensure!(receivers(&lab, &mut s, "s", g)?.contains("a"));
    // The kernel learns again: a new join becomes a kernel entry.
    let g2 = ip("239.60.0.2");
    a.join(g2)?;
    poll_until(WAIT, Duration::from_millis(50), || {
        lab.mdb()
            .ok()?
            .iter()
            .any(|e| e.is_star_g("p2", g2))
            .then_some(())
    })?;
    Ok(())
}

#[test]
fn bridge_down_up_and_port_churn_are_followed() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["s", "a", "b"])
        .build()?;
    let d = snoop(&lab, &["--querier"])?;
    let g = ip("239.70.0.1");
    let mut a = member(&lab, "a")?;
    let mut b = member(&lab, "b")?;
    a.join(g)?;
    b.join(g)?;
    wait_entry(&lab, "a", g, true, WAIT)?;
    wait_entry(&lab, "b", g, true, WAIT)?;
    let sw = lab.switch().netns();
    // Port b leaves the bridge and comes back: its state goes and is learned again.
    sw.ip(&["link", "set", "p3", "nomaster"])?;
    d.wait_status(WAIT, |st| {
        (!port_groups(st, "p3").contains(&g.to_string())).then_some(())
    })?;
    sw.ip(&["link", "set", "p3", "master", "br0"])?;
    wait_entry(&lab, "b", g, true, WAIT)?;
    // Bridge down and up: startup queries make the hosts report again.
    sw.ip(&["link", "set", "br0", "down"])?;
    d.wait_status(WAIT, |st| {
        (st["bridges"][0]["active"] == false).then_some(())
    })?;
    sw.ip(&["link", "set", "br0", "up"])?;
    d.wait_status(WAIT, |st| {
        (st["bridges"][0]["active"] == true).then_some(())
    })?;
    wait_entry(&lab, "a", g, true, WAIT)?;
    wait_entry(&lab, "b", g, true, WAIT)?;
    d.wait_status(WAIT, |st| {
        port_groups(st, "p2").contains(&g.to_string()).then_some(())
    })?;
    let mut s = member(&lab, "s")?;
    expect_receivers(&lab, &mut s, "s", g, &["a", "b"])?;
    Ok(())
}

#[test]
fn on_a_vlan_filtering_bridge_memberships_follow_the_ports_vlans() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["s", "a", "b", "c"])
        .build()?;
    let sw = lab.switch().netns();
    let filtering = sw.ip(&[
        "link",
        "set",
        "br0",
        "type",
        "bridge",
        "vlan_filtering",
        "1",
    ]);
    if filtering.is_err() {
        eprintln!(
            "SKIP on_a_vlan_filtering_bridge_memberships_follow_the_ports_vlans: this kernel lacks bridge VLAN filtering (scripts/vm-test.sh runs it on Debian's kernels; the core's VLAN rules are unit-tested)"
        );
        return Ok(());
    }
    let port = |h: &str| lab.host(h).port().to_owned();
    // s, a and c untagged in VLAN 10, b in VLAN 20; VLAN 1 off the host ports.
    for (h, vid) in [("s", "10"), ("a", "10"), ("c", "10"), ("b", "20")] {
        let p = port(h);
        sw.exec_ok(&[
            "bridge", "vlan", "add", "dev", &p, "vid", vid, "pvid", "untagged",
        ])?;
        sw.exec_ok(&["bridge", "vlan", "del", "dev", &p, "vid", "1"])?;
    }
    // Default timers: no query reaches VLANs 10 and 20 (igmpd's go out untagged, VLAN 1),
    // the joins' own reports hold for a membership interval.
    let d = Igmpd::spawn(sw, BIN, &["snoop", "br0", "--querier"])?;
    let g = ip("239.80.0.1");
    let entry = |lab: &Lab, host: &str, vid: u16| -> bool {
        let p = port(host);
        lab.mdb().is_ok_and(|m| {
            m.iter()
                .any(|e| e.port == p && e.group == g && e.vid == Some(vid))
        })
    };
    let mut a = member(&lab, "a")?;
    let mut b = member(&lab, "b")?;
    a.join(g)?;
    b.join(g)?;
    poll_until(WAIT, Duration::from_millis(50), || {
        (entry(&lab, "a", 10) && entry(&lab, "b", 20)).then_some(())
    })
    .with_context(|| format!("entries per VLAN: {:?}", lab.mdb()))?;
    ensure!(
        !entry(&lab, "a", 20) && !entry(&lab, "b", 10) && !entry(&lab, "a", 0),
        "an entry in a VLAN the host is not in: {:?}",
        lab.mdb()
    );
    // Data from s (VLAN 10): a, not c (not joined), not b (VLAN 20).
    let mut sender = member(&lab, "s")?;
    expect_receivers(&lab, &mut sender, "s", g, &["a"])?;
    // VLAN 10 leaves a's port at runtime: its membership there goes.
    sw.exec_ok(&["bridge", "vlan", "del", "dev", &port("a"), "vid", "10"])?;
    poll_until(WAIT, Duration::from_millis(50), || {
        (!entry(&lab, "a", 10)).then_some(())
    })
    .with_context(|| format!("a's VLAN 10 entry after the VLAN left: {:?}", lab.mdb()))?;
    // Without a PVID, a's untagged reports belong to no VLAN: dropped and counted.
    a.leave(g)?;
    a.join(g)?;
    d.wait_status(WAIT, |st| {
        (st["bridges"][0]["counters"]["vlan_drops"].as_u64()? > 0).then_some(())
    })?;
    // A new PVID: a's next report is VLAN 20's.
    sw.exec_ok(&[
        "bridge",
        "vlan",
        "add",
        "dev",
        &port("a"),
        "vid",
        "20",
        "pvid",
        "untagged",
    ])?;
    a.leave(g)?;
    a.join(g)?;
    poll_until(WAIT, Duration::from_millis(50), || {
        entry(&lab, "a", 20).then_some(())
    })
    .with_context(|| format!("a's entry in its new PVID: {:?}", lab.mdb()))?;
    Ok(())
}

/// One scenario of host actions, run against the kernel's own snooping (querier on) and
/// against igmpd (the kernel's querier off, igmpd's on, same timers): who receives what
/// must be the same.
fn differential_run(with_igmpd: bool) -> Result<Vec<(String, BTreeSet<String>)>> {
    let bridge = if with_igmpd {
        v3_bridge()
    } else {
        BridgeConfig::fast_querier().last_member_interval(Duration::from_millis(500))
    };
    let lab: Lab = LabBuilder::clone(
        &Lab::builder()
            .bridge(bridge)
            .hosts(&["s", "a", "b"])
            .host_spec(HostSpec::new("v2").force_igmp_version(2))
            .host("m"),
    )
    .build()?;
    let _d = if with_igmpd {
        Some(snoop(&lab, &["--querier"])?)
    } else {
        None
    };
    let (g1, g2, g3, g6) = (
        ip("239.80.0.1"),
        ip("239.80.0.2"),
        ip("232.80.0.3"),
        ip("ff0e::80:1"),
    );
    let sip = IpAddr::V4(lab.host("s").ipv4());
    let mut a = member(&lab, "a")?;
    let mut b = member(&lab, "b")?;
    let mut v2 = member(&lab, "v2")?;
    let mut m = member(&lab, "m")?;
    let mut s = member(&lab, "s")?;
    a.join(g1)?;
    b.join(g1)?;
    v2.join(g2)?;
    b.join_source(g3, sip)?;
    m.join(g6)?;
    for (h, g) in [("a", g1), ("b", g1), ("v2", g2), ("b", g3), ("m", g6)] {
        wait_entry_any(&lab, h, g)?;
    }
    // Forwarding by the MDB has started (one Max Response Time after a querier was seen;
    // both flood until then): m, a member of the IPv6 group only, stops getting g1.
    let deadline = Instant::now() + Duration::from_secs(12);
    while receivers(&lab, &mut s, "s", g1)?.contains("m") {
        ensure!(
            Instant::now() < deadline,
            "g1 still flooded (with igmpd: {with_igmpd})"
        );
    }
    let mut out = Vec::new();
    for g in [g1, g2, g3, g6] {
        out.push((g.to_string(), receivers(&lab, &mut s, "s", g)?));
    }
    // b leaves g1 (last-member queries), v2 leaves g2: a keeps g1, g2 has nobody left
    // (unregistered: flooded by both).
    b.leave(g1)?;
    v2.leave(g2)?;
    poll_until(Duration::from_secs(8), Duration::from_millis(50), || {
        let e = lab.mdb().ok()?;
        (!e.iter().any(|x| x.is_star_g("p3", g1)) && !e.iter().any(|x| x.is_star_g("p4", g2)))
            .then_some(())
    })
    .context("leaves")?;
    for g in [g1, g2] {
        out.push((
            format!("{g} after leaves"),
            receivers(&lab, &mut s, "s", g)?,
        ));
    }
    Ok(out)
}

/// Any entry of `g` on `host`'s port: (*,G), or (S,G) (an INCLUDE join where the kernel
/// takes no source list).
fn wait_entry_any(lab: &Lab, host: &str, g: IpAddr) -> Result<()> {
    let port = lab.host(host).port().to_owned();
    poll_until(WAIT, Duration::from_millis(25), || {
        lab.mdb()
            .ok()?
            .iter()
            .any(|e| e.port == port && e.group == g)
            .then_some(())
    })
    .with_context(|| format!("{g} on {host}"))?;
    Ok(())
}

#[test]
fn differential_kernel_alone_and_igmpd_forward_the_same() -> Result<()> {
    let kernel = differential_run(false)?;
    let igmpd = differential_run(true)?;
    eprintln!("forwarding (kernel alone = igmpd): {kernel:?}");
    ensure!(kernel == igmpd, "kernel: {kernel:?}\nigmpd: {igmpd:?}");
    Ok(())
}

/// The member-silent finding naming `host` in a status document, if there is one.
fn router_port_names(st: &Value) -> Vec<String> {
    st["bridges"][0]["router_ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect()
}

/// Issue 6's story with igmpd snoop as the switch: R queries (igmpd query, 2 s / 1 s), the
/// bridge has no querier of its own, B's firewall lets only its application's UDP port in.
/// B drops out after the membership interval; the snooper and R both name B; B's fix
/// clears both and B receives again.
#[test]
fn a_host_whose_firewall_drops_igmp_is_named_by_the_snooper_and_the_querier() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["r", "a", "b"])
        .build()?;
    let b_addr = lab.host("b").ipv4().to_string();
    let r = common::fast_querier(lab.host("r"))?;
    let d = snoop(&lab, &[])?;
    // R's queries made p1 a router port: the hosts' reports reach R from now on.
    d.wait_status(WAIT, |st| {
        router_port_names(st)
            .contains(&"p1".to_owned())
            .then_some(())
    })?;
    lab.host("b").nft(&common::hostfw(""))?;
    let g = ip("239.20.0.1");
    let common::Story {
        mut s,
        mut a,
        mut b,
    } = common::Story::join(&lab, "r", g)?;
    // B's unsolicited reports register it; it never answers a query, so its entry goes
    // after one membership interval (2 x 2 s + 1 s) while A's stays.
    wait_entry(&lab, "b", g, true, WAIT)?;
    wait_entry(&lab, "b", g, false, WAIT).context("B's entry should expire")?;
    ensure!(igmpd_entry(&lab, "a", g)?.is_some(), "A's entry");
    let b_before = b.count(PORT)?;
    let a_before = a.count(PORT)?;
    s.send(g, PORT, 10)?;
    a.wait_count(PORT, a_before + 10, Duration::from_secs(5))
        .context("A keeps receiving")?;
    // Sent in the same burst: had the bridge forwarded them to B, they would be there too.
    b.stays_at(PORT, b_before, Duration::from_millis(300))
        .context("B should be cut off")?;

    // The snooper names B, with the rule to add; so does the querier on R.
    let f = d.wait_status(WAIT, |st| member_silent(st, &b_addr))?;
    ensure!(
        f["group"] == g.to_string().as_str() && f["iface"] == "br0",
        "{f:#}"
    );
    ensure!(
        f["hint"]
            .as_str()
            .unwrap_or("")
            .contains("ip protocol igmp accept"),
        "{f:#}"
    );
    r.wait_status(WAIT, |st| member_silent(st, &b_addr))?;
    // A answers: never named.
    let a_addr = lab.host("a").ipv4().to_string();
    ensure!(
        member_silent(&d.status()?, &a_addr).is_none(),
        "{:#}",
        d.status()?
    );
    // The log line comes with the next evaluation (at most a second after status shows it).
    poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        d.log_text().contains("member-silent").then_some(())
    })
    .map_err(|_| anyhow::anyhow!("the snooper logs the finding: {}", d.log_text()))?;

    // The fix: B answers again, the findings clear, B receives.
    lab.host("b")
        .nft("add rule inet hostfw input ip protocol igmp accept")?;
    wait_entry(&lab, "b", g, true, WAIT)?;
    d.wait_status(WAIT, |st| {
        member_silent(st, &b_addr).is_none().then_some(())
    })?;
    r.wait_status(WAIT, |st| {
        member_silent(st, &b_addr).is_none().then_some(())
    })?;
    s.send(g, PORT, 10)?;
    b.wait_count(PORT, b_before + 10, Duration::from_secs(5))
        .context("B receives again")?;
    poll_until(Duration::from_secs(5), Duration::from_millis(100), || {
        d.log_text().contains("cleared").then_some(())
    })
    .with_context(|| format!("the snooper logs the clearing: {}", d.log_text()))?;
    Ok(())
}

/// A bridge that snoops with no querier anywhere: `igmpd snoop` without --querier says so
/// (the code `igmpd doctor` uses too); with --querier it does not.
#[test]
fn snooping_without_a_querier_is_reported_and_not_with_querier() -> Result<()> {
    let lab = Lab::builder().bridge(v3_bridge()).hosts(&["a"]).build()?;
    let d = snoop(&lab, &["--no-mld"])?;
    let f = d.wait_status(WAIT, |st| {
        st["findings"]
            .as_array()?
            .iter()
            .find(|f| f["code"] == "snooping-without-querier")
            .cloned()
    })?;
    ensure!(
        f["severity"] == "error"
            && f["iface"] == "br0"
            && f["hint"].as_str().unwrap_or("").contains("--querier"),
        "{f:#}"
    );
    d.stop()?;
    let d = snoop(&lab, &["--no-mld", "--querier"])?;
    // Through more than the Other Querier Present Interval (4.5 s): nothing to say.
    igmpd_netns_tests::holds_for(
        Duration::from_millis(5500),
        Duration::from_millis(250),
        || {
            let st = d.status().ok()?;
            (!st["findings"].as_array().is_some_and(|f| f.is_empty())).then_some(st)
        },
    )
    .map_err(|st| anyhow::anyhow!("unexpected findings: {st:#}"))?;
    Ok(())
}

/// The kernel's `mcast_router` setting of a bridge port (`ip -d -j link show`).
fn port_mcast_router(lab: &Lab, port: &str) -> Result<u64> {
    let out = lab
        .switch()
        .netns()
        .exec_ok(&["ip", "-d", "-j", "link", "show", "dev", port])?;
    let v: Value = serde_json::from_str(&out)?;
    v[0]["linkinfo"]["info_slave_data"]["multicast_router"]
        .as_u64()
        .with_context(|| format!("no multicast_router for {port}: {out}"))
}

/// The reasons igmpd gives for `port` being a router port, if it is one.
fn router_reasons(st: &Value, port: &str) -> Option<Vec<String>> {
    let r = st["bridges"][0]["router_ports"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == port)?;
    Some(
        r["reasons"]
            .as_array()?
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
    )
}

/// RFC 4541 §2.1.1 / RFC 7761: a PIM router (FRR pimd with `ip pim`) makes its port a
/// router port, in igmpd's status and in the kernel, and gets the reports. Its IGMP queries
/// are dropped on its way out, so PIM hellos are the only sign of it.
#[test]
fn a_pim_router_is_a_router_port_and_gets_the_reports() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["pim", "a"])
        .build()?;
    let pim = lab.host("pim");
    pim.nft(
        "table inet noquery {
            chain out {
                type filter hook output priority filter; policy accept;
                ip protocol igmp drop
            }
        }",
    )?;
    let cap = Capture::start(pim.netns(), "eth0", "igmp")?;
    let d = snoop(&lab, &["--no-mld"])?;
    let frr = igmpd_netns_tests::FrrPimd::spawn(
        pim.netns(),
        "eth0",
        &igmpd_netns_tests::FrrIgmp {
            pim_hello_s: Some(1),
            ..Default::default()
        },
    )?;
    let reasons = d
        .wait_status(WAIT, |st| router_reasons(st, "p1"))
        .with_context(|| format!("FRR log:\n{}", frr.log_text()))?;
    ensure!(reasons == ["pim"], "reasons: {reasons:?}");
    poll_until(WAIT, Duration::from_millis(50), || {
        (port_mcast_router(&lab, "p1").ok()? == 2).then_some(())
    })
    .context("kernel mcast_router of p1")?;
    ensure!(
        lab.switch().router_ports()?.iter().any(|r| r.port == "p1"),
        "kernel router ports: {:?}",
        lab.switch().router_ports()
    );
    let g: std::net::Ipv4Addr = "239.90.0.1".parse()?;
    let mut a = member(&lab, "a")?;
    a.join(IpAddr::V4(g))?;
    poll_until(WAIT, Duration::from_millis(50), || {
        saw_v3_report(&cap, g).then_some(())
    })
    .context("the PIM router should get a's report")?;
    d.stop()?;
    ensure!(port_mcast_router(&lab, "p1")? == 1, "mcast_router restored");
    Ok(())
}

/// RFC 4286: one Multicast Router Advertisement makes the port a router port (status and
/// kernel) for three advertisement intervals, reports go there meanwhile, then it expires.
#[test]
fn an_mrd_advertisement_makes_a_router_port_that_expires() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["m", "a"])
        .build()?;
    let cap = Capture::start(lab.host("m").netns(), "eth0", "igmp")?;
    let d = snoop(&lab, &["--no-mld"])?;
    let mut m = member(&lab, "m")?;
    // Advertisement interval 2 s: a router port for 6 s.
    m.mrd_advertise(lab.host("m").ipv4(), 2)?;
    let t0 = Instant::now();
    let reasons = d.wait_status(WAIT, |st| router_reasons(st, "p1"))?;
    ensure!(reasons == ["mrd"], "reasons: {reasons:?}");
    poll_until(WAIT, Duration::from_millis(50), || {
        (port_mcast_router(&lab, "p1").ok()? == 2).then_some(())
    })
    .context("kernel mcast_router of p1")?;
    let g: std::net::Ipv4Addr = "239.91.0.1".parse()?;
    let mut a = member(&lab, "a")?;
    a.join(IpAddr::V4(g))?;
    poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        saw_v3_report(&cap, g).then_some(())
    })
    .context("the advertising router should get a's report")?;
    d.wait_status(WAIT, |st| router_reasons(st, "p1").is_none().then_some(()))?;
    let took = t0.elapsed();
    ensure!(
        took >= Duration::from_secs(5),
        "expired after {took:?}, expected 6 s"
    );
    poll_until(WAIT, Duration::from_millis(50), || {
        (port_mcast_router(&lab, "p1").ok()? == 1).then_some(())
    })
    .context("kernel mcast_router back to learning")?;
    Ok(())
}

fn port_names(st: &Value) -> Vec<String> {
    st["bridges"][0]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}

fn nft_ports(lab: &Lab) -> Result<String> {
    lab.switch()
        .netns()
        .exec_ok(&["nft", "list", "set", "bridge", "igmpd_snoop_br0", "ports"])
}

/// A brand-new veth enslaved while igmpd runs: igmpd captures it in its ring, stops the
/// kernel learning there, learns its host's joins and forwards to it; deleted, it is
/// forgotten.
#[test]
fn a_port_added_at_runtime_is_snooped_and_a_deleted_one_forgotten() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["s", "a"])
        .build()?;
    let d = snoop(&lab, &["--querier"])?;
    let sw = lab.switch().netns();
    // The new host, wired up the way the lab wires its own.
    let ns = igmpd_netns_tests::Netns::new()?;
    ns.disable_dad()?;
    sw.ip(&[
        "link",
        "add",
        "p9",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ns.name(),
    ])?;
    sw.sysctl("net.ipv6.conf.p9.disable_ipv6", "1")?;
    sw.ip(&["link", "set", "p9", "master", "br0"])?;
    sw.ip(&["link", "set", "p9", "up"])?;
    let (net, _) = lab.subnet_v4();
    let o = net.octets();
    let addr = format!("{}.{}.{}.99/24", o[0], o[1], o[2]);
    ns.ip(&["addr", "add", &addr, "dev", "eth0"])?;
    ns.ip(&["link", "set", "eth0", "up"])?;
    d.wait_status(WAIT, |st| {
        port_names(st).contains(&"p9".to_owned()).then_some(())
    })?;
    poll_until(WAIT, Duration::from_millis(50), || {
        nft_ports(&lab).ok()?.contains("\"p9\"").then_some(())
    })
    .context("p9 in the nft table's port set")?;
    let g = ip("239.92.0.1");
    let mut n = Member::spawn_in(&ns, "eth0", Member::locate_binary()?)?;
    n.listen(PORT)?;
    n.join(g)?;
    poll_until(WAIT, Duration::from_millis(25), || {
        lab.mdb()
            .ok()?
            .iter()
            .any(|e| e.is_star_g("p9", g) && e.protocol.as_deref() == Some(igmpd_protocol()))
            .then_some(())
    })
    .with_context(|| format!("igmpd's entry on p9: {:?}", lab.mdb()))?;
    d.wait_status(WAIT, |st| {
        port_groups(st, "p9").contains(&g.to_string()).then_some(())
    })?;
    // Only igmpd learned it: no kernel entry.
    ensure!(lab
        .mdb()?
        .iter()
        .filter(|e| e.group == g)
        .all(|e| e.protocol.as_deref() == Some(igmpd_protocol())));
    let mut s = member(&lab, "s")?;
    let before = n.count(PORT)?;
    s.send(g, PORT, 5)?;
    n.wait_count(PORT, before + 5, Duration::from_secs(5))
        .context("the new host receives its group")?;
    // Deleted while igmpd runs.
    sw.ip(&["link", "del", "p9"])?;
    d.wait_status(WAIT, |st| {
        (!port_names(st).contains(&"p9".to_owned())).then_some(())
    })?;
    poll_until(WAIT, Duration::from_millis(50), || {
        (!nft_ports(&lab).ok()?.contains("\"p9\"")).then_some(())
    })
    .context("p9 left the nft table's port set")?;
    ensure!(!lab.mdb()?.iter().any(|e| e.group == g), "{:?}", lab.mdb());
    drop(n);
    d.stop()?;
    Ok(())
}

/// `ip link del br0` and a new br0 while igmpd runs: igmpd follows the new bridge (nft
/// table, port sockets, MDB programming, queries) without a restart.
#[test]
fn the_bridge_deleted_and_recreated_is_snooped_again_without_a_restart() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["s", "a", "b"])
        .build()?;
    let d = snoop(&lab, &["--querier"])?;
    let g = ip("239.93.0.1");
    let mut a = member(&lab, "a")?;
    a.join(g)?;
    wait_entry(&lab, "a", g, true, WAIT)?;
    let old = d.status()?["bridges"][0]["ifindex"].as_u64();
    let sw = lab.switch().netns();
    sw.ip(&["link", "del", "br0"])?;
    d.wait_status(WAIT, |st| {
        (st["bridges"][0]["active"] == false).then_some(())
    })?;
    let mut add = vec!["link", "add", "br0", "type", "bridge"];
    let args = v3_bridge().ip_link_args();
    add.extend(args.iter().map(String::as_str));
    sw.ip(&add)?;
    for p in ["p1", "p2", "p3"] {
        sw.ip(&["link", "set", p, "master", "br0"])?;
    }
    let addr = format!("{}/24", lab.switch().ipv4().context("bridge address")?);
    sw.ip(&["addr", "add", &addr, "dev", "br0"])?;
    sw.ip(&["link", "set", "br0", "up"])?;
    d.wait_status(WAIT, |st| {
        let b = &st["bridges"][0];
        (b["active"] == true && b["ifindex"].as_u64() != old && port_names(st).len() == 3)
            .then_some(())
    })?;
    poll_until(WAIT, Duration::from_millis(50), || {
        let s = nft_ports(&lab).ok()?;
        ["p1", "p2", "p3"]
            .iter()
            .all(|p| s.contains(&format!("\"{p}\"")))
            .then_some(())
    })
    .context("nft table for the new bridge")?;
    // igmpd's startup queries make a report again; the entry is igmpd's, and the kernel
    // learned nothing meanwhile (its table kept the ports' names while br0 was away).
    poll_until(WAIT, Duration::from_millis(25), || {
        lab.mdb()
            .ok()?
            .iter()
            .any(|e| e.is_star_g("p2", g) && e.protocol.as_deref() == Some(igmpd_protocol()))
            .then_some(())
    })
    .with_context(|| format!("igmpd's entry for a: {:?}", lab.mdb()))?;
    ensure!(
        lab.mdb()?
            .iter()
            .filter(|e| e.group == g)
            .all(|e| e.protocol.as_deref() == Some(igmpd_protocol())),
        "{:?}\n{}\n{}",
        lab.mdb(),
        nft_tables(&lab)?,
        d.log_text()
    );
    let mut s = member(&lab, "s")?;
    expect_receivers(&lab, &mut s, "s", g, &["a"])?;
    // A new join on the new bridge is learned too.
    let g2 = ip("239.93.0.2");
    let mut b = member(&lab, "b")?;
    b.join(g2)?;
    wait_entry(&lab, "b", g2, true, WAIT)?;
    d.stop()?;
    ensure!(
        !nft_tables(&lab)?.contains("igmpd_snoop_br0"),
        "nft table left behind"
    );
    Ok(())
}

/// igmpd makes a port a router port (`mcast_router 2`), is SIGKILLed, and a new igmpd
/// restores the setting from before the first one at its SIGTERM (here a non-default 0),
/// whether the port is still a router port for it or not.
#[test]
fn mcast_router_from_before_igmpd_is_restored_after_sigkill_and_restart() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["r", "a"])
        .build()?;
    let sw = lab.switch().netns();
    sw.ip(&[
        "link",
        "set",
        "dev",
        "p1",
        "type",
        "bridge_slave",
        "mcast_router",
        "0",
    ])?;
    let wait_mode = |want: u64| {
        poll_until(WAIT, Duration::from_millis(50), || {
            (port_mcast_router(&lab, "p1").ok()? == want).then_some(())
        })
        .with_context(|| format!("p1 mcast_router should be {want}"))
    };
    for still_router in [false, true] {
        let d = snoop(&lab, &["--querier", "--router-port", "p1"])?;
        wait_mode(2)?;
        d.kill()?;
        ensure!(
            port_mcast_router(&lab, "p1")? == 2,
            "left at 2 by the crash"
        );
        let extra: &[&str] = if still_router {
            &["--querier", "--router-port", "p1"]
        } else {
            &["--querier"]
        };
        let d = snoop(&lab, extra)?;
        d.wait_status(WAIT, |st| {
            (st["bridges"][0]["active"] == true).then_some(())
        })?;
        if still_router {
            wait_mode(2)?;
        }
        d.stop()?;
        ensure!(
            port_mcast_router(&lab, "p1")? == 0,
            "restored to the value before igmpd (port still a router: {still_router})"
        );
    }
    Ok(())
}

/// Reports longer than a capture slot (126 bytes of frame) reach igmpd whole through the
/// socket's queue, in order with the rest: a host in 24 groups answers igmpd's startup
/// queries with one IGMPv3 report of 24 records (230 bytes).
#[test]
fn a_report_longer_than_a_capture_slot_is_read_whole() -> Result<()> {
    let lab = Lab::builder().bridge(v3_bridge()).hosts(&["a"]).build()?;
    let port = lab.host("a").port().to_owned();
    let groups: Vec<IpAddr> = (1..=24).map(|i| ip(&format!("239.7.0.{i}"))).collect();
    let mut m = member(&lab, "a")?;
    for g in &groups {
        m.join(*g)?;
    }
    // The joins' own (short) reports went out before igmpd ran; only the answer to its
    // general queries can teach igmpd the groups.
    let d = snoop(&lab, &["--querier"])?;
    let want: BTreeSet<String> = groups.iter().map(ToString::to_string).collect();
    poll_until(WAIT, Duration::from_millis(50), || {
        let st = d.status().ok()?;
        let have: BTreeSet<String> = port_groups(&st, &port).into_iter().collect();
        want.is_subset(&have).then_some(())
    })
    .with_context(|| {
        format!(
            "groups on {port}: {:?}",
            d.status().map(|s| port_groups(&s, &port))
        )
    })?;
    let st = d.status()?;
    ensure!(
        st["bridges"][0]["counters"]["decode_drops"] == 0,
        "{:#}",
        st["bridges"][0]["counters"]
    );
    Ok(())
}
