//! Tests of the test library itself: topology, real hosts joining, MDB observation,
//! captures decoded by igmpd_wire, data-plane counting.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use igmpd_netns_tests::capture::{Capture, IGMP_MLD_FILTER};
use igmpd_netns_tests::mdb::{self, FilterMode, MdbEntry};
use igmpd_netns_tests::{member_bin, poll_until, BridgeConfig, HostSpec, Lab, Member};

const WAIT: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_millis(25);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Polls the MDB until `pred` holds for some entry; returns that entry.
fn wait_entry(lab: &Lab, mut pred: impl FnMut(&MdbEntry) -> bool) -> Result<MdbEntry> {
    let mut last = Vec::new();
    poll_until(WAIT, TICK, || {
        last = lab.mdb().ok()?;
        last.iter().find(|e| pred(e)).cloned()
    })
    .map_err(|e| anyhow::anyhow!("{e}; last MDB: {last:#?}"))
}

#[test]
fn topology_comes_up_with_addresses_and_bridge_settings() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::fast_querier())
        .hosts(&["a", "b"])
        .build()?;
    let listed = igmpd_netns_tests::exec_ok(lab.switch().ns_name(), &["true"]);
    assert!(listed.is_ok());
    let all = std::fs::read_dir("/run/netns")?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    for ns in lab.namespaces() {
        assert!(ns.len() <= 15, "{ns}");
        assert!(all.contains(&ns), "{ns} not in {all:?}");
    }
    let info = lab.switch().bridge_info()?;
    assert_eq!(info["mcast_snooping"], 1);
    assert_eq!(info["mcast_querier"], 1);
    assert_eq!(info["mcast_query_intvl"], 200);
    assert_eq!(info["mcast_query_response_intvl"], 100);
    assert_eq!(info["mcast_membership_intvl"], 500);
    assert_eq!(info["mcast_igmp_version"], 3);
    assert_eq!(info["mcast_mld_version"], 2);
    // The bridge elects itself querier, from its own address.
    let bridge_ip = lab.switch().ipv4().unwrap().to_string();
    poll_until(WAIT, TICK, || {
        let info = lab.switch().bridge_info().ok()?;
        (info
            .get("mcast_querier_state_ipv4")?
            .get("mcast_querier_ipv4_addr")?
            == bridge_ip.as_str())
        .then_some(())
    })?;
    let a = lab.host("a");
    let b = lab.host("b");
    assert_ne!(a.ipv4(), b.ipv4());
    assert!(a.ipv6_ll().segments()[0] == 0xfe80);
    assert_eq!(a.netns().ifindex("eth0")?, a.ifindex());
    assert_eq!(lab.switch().netns().ifindex(a.port())?, a.port_ifindex());
    assert_eq!(a.netns().sysctl_get("net.ipv6.conf.eth0.accept_dad")?, "0");
    // The switch namespace must not pass bridged frames to netfilter.
    let nf = lab
        .switch()
        .netns()
        .exec(&["sysctl", "-n", "net.bridge.bridge-nf-call-iptables"])?;
    if nf.status.success() {
        assert_eq!(String::from_utf8_lossy(&nf.stdout).trim(), "0");
    }
    Ok(())
}

#[test]
fn igmpv2_host_join_is_learned_and_leave_removes_it() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::fast_querier())
        .host_spec(HostSpec::new("a").force_igmp_version(2))
        .build()?;
    let a = lab.host("a");
    let g = ip("239.10.0.1");
    let mut m = Member::spawn(a, member_bin!())?;
    m.join(g)?;
    let e = wait_entry(&lab, |e| e.is_star_g(a.port(), g))?;
    assert_eq!(e.state, mdb::MdbState::Temp);
    assert_eq!(e.protocol.as_deref(), Some("kernel"));
    m.leave(g)?;
    // IGMPv2 leave -> group-specific queries -> entry gone after last member time.
    poll_until(WAIT, TICK, || {
        let mdb = lab.mdb().ok()?;
        (!mdb.iter().any(|e| e.is_star_g(a.port(), g))).then_some(())
    })?;
    Ok(())
}

#[test]
fn igmpv3_ssm_and_exclude_joins_show_sources() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::fast_querier())
        .hosts(&["a", "s"])
        .build()?;
    let a = lab.host("a");
    let src = IpAddr::V4(lab.host("s").ipv4());
    let other = ip("10.255.0.9");
    let ssm = ip("232.10.0.1");
    let asm = ip("239.10.0.2");
    let mut m = Member::spawn(a, member_bin!())?;
    m.join_source(ssm, src)?;
    m.join(asm)?;
    m.block(asm, other)?;
    let inc = wait_entry(&lab, |e| {
        e.is_star_g(a.port(), ssm) && e.source_list.iter().any(|s| s.address == src)
    })?;
    assert_eq!(inc.filter_mode, Some(FilterMode::Include));
    // The kernel also installs the (S,G) entry.
    wait_entry(&lab, |e| {
        e.port == a.port() && e.group == ssm && e.source == Some(src)
    })?;
    let exc = wait_entry(&lab, |e| {
        e.is_star_g(a.port(), asm) && e.source_list.iter().any(|s| s.address == other)
    })?;
    assert_eq!(exc.filter_mode, Some(FilterMode::Exclude));
    Ok(())
}

#[test]
fn mldv2_host_join_is_learned() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::fast_querier())
        .hosts(&["a", "s"])
        .build()?;
    let a = lab.host("a");
    let g = ip("ff3e::8000:10");
    let asm = ip("ff15::10");
    let src = IpAddr::V6(lab.host("s").ipv6());
    let mut m = Member::spawn(a, member_bin!())?;
    m.join(asm)?;
    m.join_source(g, src)?;
    wait_entry(&lab, |e| e.is_star_g(a.port(), asm))?;
    let e = wait_entry(&lab, |e| {
        e.is_star_g(a.port(), g) && e.source_list.iter().any(|s| s.address == src)
    })?;
    assert_eq!(e.filter_mode, Some(FilterMode::Include));
    Ok(())
}

#[test]
fn capture_sees_reports_and_queries_and_igmpd_wire_decodes_them() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::fast_querier())
        .host("a")
        .build()?;
    let a = lab.host("a");
    let cap = Capture::start(a.netns(), a.ifname(), IGMP_MLD_FILTER)?;
    let mut m = Member::spawn(a, member_bin!())?;
    m.join(ip("239.10.0.3"))?;
    m.join(ip("ff3e::8000:3"))?;
    cap.wait_for(WAIT, |p| p.igmp_type() == Some(0x22))
        .context("IGMPv3 report")?;
    cap.wait_for(WAIT, |p| p.icmpv6_type() == Some(143))
        .context("MLDv2 report")?;
    // The bridge's queries arrive too (general query every 2 s).
    cap.wait_for(WAIT, |p| p.igmp_type() == Some(0x11))
        .context("IGMP query")?;
    cap.wait_for(WAIT, |p| p.icmpv6_type() == Some(130))
        .context("MLD query")?;
    let packets = cap.stop()?;
    let mut decoded = 0;
    for p in &packets {
        let mld = matches!(p.icmpv6_type(), Some(130..=132 | 143));
        if p.igmp_type().is_some() || mld {
            let frame = p
                .decode()
                .map_err(|e| anyhow::anyhow!("decode {:02x?}: {e}", p.data))?;
            eprintln!("{frame:?}");
            decoded += 1;
        }
    }
    assert!(decoded >= 4, "decoded only {decoded} of {}", packets.len());
    Ok(())
}

#[test]
fn data_reaches_members_and_sources_are_filtered() -> Result<()> {
    const PORT: u16 = 6000;
    const N: u32 = 10;
    let lab = Lab::builder()
        .bridge(BridgeConfig::fast_querier())
        .hosts(&["s1", "s2", "a", "b", "c"])
        .build()?;
    let g4 = ip("239.10.0.4");
    let g6 = ip("ff3e::8000:4");
    let s2_v4 = IpAddr::V4(lab.host("s2").ipv4());
    let s1_v6 = IpAddr::V6(lab.host("s1").ipv6());
    let mut s1 = Member::spawn(lab.host("s1"), member_bin!())?;
    let mut s2 = Member::spawn(lab.host("s2"), member_bin!())?;
    let mut a = Member::spawn(lab.host("a"), member_bin!())?;
    let mut b = Member::spawn(lab.host("b"), member_bin!())?;
    let mut c = Member::spawn(lab.host("c"), member_bin!())?;
    for m in [&mut a, &mut b, &mut c] {
        m.listen(PORT)?;
    }
    a.join(g4)?;
    a.join(g6)?;
    b.join(g4)?;
    b.block(g4, s2_v4)?;
    b.join_source(g6, s1_v6)?;
    lab.wait_membership("b", g6, true, WAIT)?;

    s1.send(g4, PORT, N)?;
    a.wait_count(PORT, u64::from(N), WAIT)?;
    b.wait_count(PORT, u64::from(N), WAIT)?;
    // s2 is blocked at b: a gets it, b does not.
    s2.send(g4, PORT, N)?;
    a.wait_count(PORT, 2 * u64::from(N), WAIT)?;
    // IPv6 SSM at b: from s1 accepted, from s2 not (a, ASM, takes both).
    s1.send(g6, PORT, N)?;
    b.wait_count(PORT, 2 * u64::from(N), WAIT)?;
    s2.send(g6, PORT, N)?;
    a.wait_count(PORT, 4 * u64::from(N), WAIT)?;
    // A marker b does accept, sent after everything else: once it is in, all of the
    // above has been delivered to b or dropped.
    s1.send(g4, PORT, 1)?;
    let b_total = b.wait_count(PORT, 2 * u64::from(N) + 1, WAIT)?;
    assert_eq!(
        b_total,
        2 * u64::from(N) + 1,
        "b accepted a filtered source"
    );
    assert_eq!(c.count(PORT)?, 0, "c joined nothing");
    Ok(())
}
