//! `igmpd snoop` on a VLAN-aware bridge with per-VLAN snooping (`vlan_filtering 1`,
//! `mcast_vlan_snooping 1`): the kernel's own per-VLAN snooping as the reference for the
//! same host actions, a trunk host in two VLANs (802.1Q interfaces), per-VLAN queriers
//! decoded by tshark, an election against a second igmpd in one VLAN.
//!
//! This machine's kernel has neither 802.1Q nor bridge VLAN filtering: every test probes
//! for them and skips with the reason; `scripts/vm-test.sh` runs them on Debian's kernels.
//!
//! The topology: s and a untagged in VLAN 10, u and b untagged in VLAN 20, t a trunk
//! (tagged 10, 20 and 30) with `eth0.10`, `eth0.20` (IGMPv2 / MLDv1) and `eth0.30`. The
//! bridge itself is in 10 (with `br0.10`, 10.10.0.254) and 20 (no address), not in 30.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::capture::Capture;
use igmpd_netns_tests::mdb::igmpd_protocol;
use igmpd_netns_tests::{poll_until, BridgeConfig, Igmpd, Lab, Member, Netns};
use serde_json::Value;

mod common;

/// The bound of waits that run tshark each round (seconds per run under TCG).
const SLOW: Duration = Duration::from_secs(90);
use common::{expect_receivers_at, tshark_capture, End, BIN, FAST, WAIT};

/// The lab, or None (with the reason printed) on a kernel without VLAN filtering.
fn vlan_lab(test: &str) -> Result<Option<Lab>> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .hosts(&["s", "a", "u", "b", "t"])
        .build()?;
    let sw = lab.switch().netns();
    sw.disable_dad()?;
    let on = sw.ip(&[
        "link",
        "set",
        "br0",
        "type",
        "bridge",
        "vlan_filtering",
        "1",
        "mcast_vlan_snooping",
        "1",
    ]);
    let upper = sw.ip(&[
        "link", "add", "link", "br0", "name", "br0.10", "type", "vlan", "id", "10",
    ]);
    if on.is_err() || upper.is_err() {
        eprintln!(
            "SKIP {test}: this kernel lacks bridge VLAN filtering, mcast_vlan_snooping or 802.1Q ({:?} {:?}); scripts/vm-test.sh runs it on Debian's kernels",
            on.err(),
            upper.err()
        );
        return Ok(None);
    }
    let port = |h: &str| lab.host(h).port().to_owned();
    for (h, vid) in [("s", "10"), ("a", "10"), ("u", "20"), ("b", "20")] {
        let p = port(h);
        sw.exec_ok(&[
            "bridge", "vlan", "add", "dev", &p, "vid", vid, "pvid", "untagged",
        ])?;
        sw.exec_ok(&["bridge", "vlan", "del", "dev", &p, "vid", "1"])?;
    }
    let pt = port("t");
    for vid in ["10", "20", "30"] {
        sw.exec_ok(&["bridge", "vlan", "add", "dev", &pt, "vid", vid])?;
    }
    sw.exec_ok(&["bridge", "vlan", "del", "dev", &pt, "vid", "1"])?;
    for vid in ["10", "20"] {
        sw.exec_ok(&["bridge", "vlan", "add", "dev", "br0", "vid", vid, "self"])?;
    }
    sw.ip(&["addr", "add", "10.10.0.254/24", "dev", "br0.10"])?;
    sw.ip(&["link", "set", "br0.10", "up"])?;
    let t = lab.host("t").netns();
    t.disable_dad()?;
    for (vid, addr) in [
        ("10", "10.10.0.3/24"),
        ("20", "10.20.0.3/24"),
        ("30", "10.30.0.3/24"),
    ] {
        let name = format!("eth0.{vid}");
        t.ip(&[
            "link", "add", "link", "eth0", "name", &name, "type", "vlan", "id", vid,
        ])?;
        t.ip(&["addr", "add", addr, "dev", &name])?;
        t.ip(&["link", "set", &name, "up"])?;
    }
    t.exec_ok(&[
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.conf.eth0/20.force_igmp_version=2",
        "net.ipv6.conf.eth0/20.force_mld_version=1",
    ])?;
    Ok(Some(lab))
}

fn member_on(lab: &Lab, host: &str, ifname: &str) -> Result<Member> {
    Member::spawn_in(lab.host(host).netns(), ifname, Member::locate_binary()?)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

fn ends(lab: &Lab) -> Vec<End<'_>> {
    let end = |l: &str, h: &str, i: &str| (l.to_owned(), lab.host(h).netns(), i.to_owned());
    vec![
        end("s", "s", "eth0"),
        end("a", "a", "eth0"),
        end("u", "u", "eth0"),
        end("b", "b", "eth0"),
        end("t10", "t", "eth0.10"),
        end("t20", "t", "eth0.20"),
    ]
}

/// `igmpd snoop br0 --querier` with the short timers, in the switch.
fn snoop(lab: &Lab) -> Result<Igmpd> {
    let mut args = vec!["snoop", "br0", "--querier"];
    args.extend_from_slice(FAST);
    Igmpd::spawn(lab.switch().netns(), BIN, &args)
}

/// VLAN `vid` of the bridge in a status document.
fn vlan(st: &Value, vid: u64) -> Option<&Value> {
    st["bridges"][0]["vlans"]
        .as_array()?
        .iter()
        .find(|v| v["vid"] == vid)
}

/// The `role` of VLAN `vid`'s `fam` ("igmp", "mld") querier.
fn role(st: &Value, vid: u64, fam: &str) -> Option<String> {
    vlan(st, vid)?[fam]["role"].as_str().map(str::to_owned)
}

/// One scenario per VLAN: v3 EXCLUDE and v2 joins of one group in two VLANs, an SSM
/// INCLUDE join (only the listed source arrives), MLDv2 and MLDv1 joins, a leave.
fn scenario(lab: &Lab) -> Result<()> {
    let e = ends(lab);
    let (g1, g2, g6) = (ip("239.90.0.1"), ip("232.90.0.2"), ip("ff0e::90:1"));
    let s_ip = IpAddr::V4(lab.host("s").ipv4());
    let mut s = member_on(lab, "s", "eth0")?;
    let mut a = member_on(lab, "a", "eth0")?;
    let mut u = member_on(lab, "u", "eth0")?;
    let mut b = member_on(lab, "b", "eth0")?;
    let mut t10 = member_on(lab, "t", "eth0.10")?;
    let mut t20 = member_on(lab, "t", "eth0.20")?;
    a.join(g1)?;
    t20.join(g1)?;
    t10.join_source(g2, s_ip)?;
    b.join(g6)?;
    t20.join(g6)?;
    // One host (t) in two VLANs; the same group in VLANs 10 and 20 stays apart.
    expect_receivers_at(lab, &e, &mut s, "s", g1, &["a"])?;
    expect_receivers_at(lab, &e, &mut u, "u", g1, &["t20"])?;
    expect_receivers_at(lab, &e, &mut s, "s", g2, &["t10"])?;
    // a is not the listed source: nobody gets its datagrams to the SSM group.
    expect_receivers_at(lab, &e, &mut a, "a", g2, &[])?;
    expect_receivers_at(lab, &e, &mut u, "u", g6, &["b", "t20"])?;
    a.leave(g1)?;
    t20.leave(g6)?;
    expect_receivers_at(lab, &e, &mut s, "s", g1, &[])?;
    expect_receivers_at(lab, &e, &mut u, "u", g6, &["b"])?;
    Ok(())
}

/// `bridge -j vlan global show dev br0`: VID -> the VLAN's options.
fn vlan_globals(sw: &Netns) -> Result<BTreeMap<u64, Value>> {
    let out = sw.exec_ok(&["bridge", "-j", "vlan", "global", "show", "dev", "br0"])?;
    let v: Value = serde_json::from_str(&out).context("bridge -j vlan global show")?;
    let mut map = BTreeMap::new();
    for dev in v.as_array().into_iter().flatten() {
        for e in dev["vlans"].as_array().into_iter().flatten() {
            let first = e["vlan"].as_u64().unwrap_or(0);
            let last = e["vlanEnd"].as_u64().unwrap_or(first);
            for vid in first..=last {
                map.insert(vid, e.clone());
            }
        }
    }
    Ok(map)
}

/// The `mcast_router` of `port` in `vid` (`bridge -d -j vlan show`).
fn port_vlan_router(sw: &Netns, port: &str, vid: u64) -> Result<Option<u64>> {
    let out = sw.exec_ok(&["bridge", "-d", "-j", "vlan", "show", "dev", port])?;
    let v: Value = serde_json::from_str(&out).context("bridge -d -j vlan show")?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["vlans"].as_array().cloned().unwrap_or_default())
        .find(|e| {
            let first = e["vlan"].as_u64().unwrap_or(0);
            (first..=e["vlanEnd"].as_u64().unwrap_or(first)).contains(&vid)
        })
        .and_then(|e| e["mcast_router"].as_u64()))
}

/// The same host actions give the same receivers per VLAN with the kernel's own per-VLAN
/// snooping (its per-VLAN queriers, IGMPv3/MLDv2) and with igmpd, which starts from the
/// kernel's default versions, raises each VLAN's to 3 / 2 and puts them back at exit.
#[test]
fn per_vlan_receivers_match_the_kernels_per_vlan_snooping() -> Result<()> {
    let name = "per_vlan_receivers_match_the_kernels_per_vlan_snooping";
    {
        let Some(lab) = vlan_lab(name)? else {
            return Ok(());
        };
        let sw = lab.switch().netns();
        for vid in ["10", "20"] {
            sw.exec_ok(&[
                "bridge",
                "vlan",
                "global",
                "set",
                "dev",
                "br0",
                "vid",
                vid,
                "mcast_querier",
                "1",
                "mcast_igmp_version",
                "3",
                "mcast_mld_version",
                "2",
                "mcast_query_interval",
                "200",
                "mcast_query_response_interval",
                "100",
                "mcast_last_member_interval",
                "50",
                "mcast_startup_query_interval",
                "50",
            ])?;
        }
        scenario(&lab).context("with the kernel's own per-VLAN snooping")?;
    }
    let Some(lab) = vlan_lab(name)? else {
        return Ok(());
    };
    let sw = lab.switch().netns();
    let before = vlan_globals(sw)?;
    ensure!(
        before[&10]["mcast_igmp_version"] == 2 && before[&10]["mcast_mld_version"] == 1,
        "the kernel's defaults: {:?}",
        before[&10]
    );
    let d = snoop(&lab)?;
    d.wait_status(WAIT, |st| {
        let vlans = st["bridges"][0]["vlans"].as_array()?;
        let sf = |vid: u64| {
            vlans
                .iter()
                .any(|v| v["vid"] == vid && v["source_filtering"] == true)
        };
        (sf(10) && sf(20)).then_some(())
    })
    .context("each VLAN filters sources")?;
    let during = vlan_globals(sw)?;
    ensure!(
        during[&10]["mcast_igmp_version"] == 3 && during[&20]["mcast_mld_version"] == 2,
        "versions raised per VLAN: {during:?}"
    );
    scenario(&lab).context("with igmpd")?;
    // Entries per VLAN, with their VID.
    let mdb = lab.mdb()?;
    ensure!(
        mdb.iter()
            .filter(|e| e.protocol.as_deref() == Some(igmpd_protocol()))
            .all(|e| e.vid.is_some()),
        "an igmpd entry without a VLAN on a VLAN-filtering bridge: {mdb:?}"
    );
    // An admin lowers VLAN 10's version: igmpd notices, and says so.
    sw.exec_ok(&[
        "bridge",
        "vlan",
        "global",
        "set",
        "dev",
        "br0",
        "vid",
        "10",
        "mcast_igmp_version",
        "2",
    ])?;
    d.wait_status(WAIT, |st| {
        let v10 = vlan(st, 10)?;
        let finding = st["findings"]
            .as_array()?
            .iter()
            .any(|f| f["code"] == "source-filtering-off");
        (v10["source_filtering"] == false && finding).then_some(())
    })
    .context("source-filtering-off for VLAN 10")?;
    d.stop()?;
    let after = vlan_globals(sw)?;
    ensure!(
        after[&10]["mcast_igmp_version"] == 2 && after[&20]["mcast_mld_version"] == 1,
        "versions back after exit: {after:?}"
    );
    Ok(())
}

/// A querier per VLAN: VLAN 10's from br0.10's addresses (IPv4 and link-local), VLAN 20's
/// from 0.0.0.0 and (MLD) the bridge's own link-local address, as the kernel's; VLAN 30's
/// (the bridge is not in it) out of the trunk port directly; tagged as the ports' egress
/// says (untagged to the access port a, tagged on the trunk), every one decoded by tshark. A second igmpd with a lower
/// address in VLAN 10 wins VLAN 10 only; its port becomes a router port in VLAN 10 (the
/// port-VLAN mcast_router, restored at exit) and gets VLAN 10's reports, tagged 10.
#[test]
fn per_vlan_queriers_are_tagged_sourced_and_elected_per_vlan() -> Result<()> {
    let Some(lab) = vlan_lab("per_vlan_queriers_are_tagged_sourced_and_elected_per_vlan")? else {
        return Ok(());
    };
    let sw = lab.switch().netns();
    let link_local = |dev: &str| -> Result<String> {
        sw.exec_ok(&[
            "ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link",
        ])?
        .split_whitespace()
        .nth(3)
        .and_then(|a| a.split('/').next())
        .map(str::to_owned)
        .with_context(|| format!("{dev} has a link-local address"))
    };
    let (br_ll, bridge_ll) = (link_local("br0.10")?, link_local("br0")?);
    let trunk = Capture::start(lab.host("t").netns(), "eth0", "vlan")?;
    let access = Capture::start(lab.host("a").netns(), "eth0", "igmp")?;
    let d = snoop(&lab)?;
    d.wait_status(WAIT, |st| {
        (role(st, 10, "igmp")? == "querier"
            && role(st, 10, "mld")? == "querier"
            && role(st, 20, "igmp")? == "proxy"
            && role(st, 20, "mld")? == "querier"
            && role(st, 30, "igmp")? == "proxy")
            .then_some(())
    })
    .context("the VLANs' querier roles")?;
    // Startup queries of every VLAN reach the trunk, tagged.
    let fields = [
        "vlan.id",
        "ip.src",
        "ipv6.src",
        "igmp.type",
        "igmp.version",
        "igmp.maddr",
        "igmp.max_resp",
        "igmp.qrv",
        "igmp.qqic",
        "igmp.checksum.status",
        "ip.ttl",
        "ip.opt.ra",
        "icmpv6.type",
        "ipv6.hlim",
        "_ws.malformed",
    ];
    let rows = poll_until(SLOW, Duration::from_millis(200), || {
        let rows = tshark_capture(&trunk, &fields).ok()?;
        let q = |vid: &str, igmp: bool| {
            rows.iter().any(|r| {
                r["vlan.id"] == vid
                    && if igmp {
                        r["igmp.type"] == "0x11"
                    } else {
                        r["icmpv6.type"] == "130"
                    }
            })
        };
        (q("10", true) && q("10", false) && q("20", true) && q("20", false) && q("30", true))
            .then_some(rows)
    })
    .context("tagged queries of VLANs 10, 20 and 30 on the trunk")?;
    for r in rows
        .iter()
        .filter(|r| r["igmp.type"] == "0x11" || r["icmpv6.type"] == "130")
    {
        ensure!(r["_ws.malformed"].is_empty(), "malformed: {r:?}");
        let (vid, v4, v6) = (&r["vlan.id"], &r["ip.src"], &r["ipv6.src"]);
        match vid.as_str() {
            "10" => ensure!(
                v4 == "10.10.0.254" || *v6 == br_ll,
                "VLAN 10's query from {v4}{v6}: {r:?}"
            ),
            "20" | "30" => ensure!(
                v4 == "0.0.0.0" || *v6 == bridge_ll,
                "VLAN {vid}: IGMP from 0.0.0.0, MLD from the bridge's link-local: {r:?}"
            ),
            _ => anyhow::bail!("a query in a VLAN igmpd should not query: {r:?}"),
        }
        if !r["igmp.type"].is_empty() {
            // IGMPv3 (RFC 9776 §4.1) with the configured timers: QRV 2, QQIC 2 s, Max
            // Resp 1 s (10 tenths) in general queries; TTL 1 and Router Alert.
            ensure!(
                r["igmp.version"] == "3"
                    && r["ip.ttl"] == "1"
                    && r["ip.opt.ra"] == "0"
                    && r["igmp.qrv"] == "2"
                    && r["igmp.qqic"] == "2"
                    && r["igmp.checksum.status"] == "1",
                "VLAN {vid}'s IGMP query: {r:?}"
            );
            if r["igmp.maddr"].starts_with("0.0.0.0") {
                ensure!(r["igmp.max_resp"] == "10", "general query: {r:?}");
            }
        } else {
            ensure!(r["ipv6.hlim"] == "1", "VLAN {vid}'s MLD query: {r:?}");
        }
    }
    // The access port gets VLAN 10's queries untagged.
    let untagged = poll_until(SLOW, Duration::from_millis(200), || {
        let rows = tshark_capture(&access, &["vlan.id", "ip.src", "igmp.type"]).ok()?;
        rows.iter()
            .any(|r| r["igmp.type"] == "0x11" && r["ip.src"] == "10.10.0.254")
            .then_some(rows)
    })
    .context("VLAN 10's queries at the access port")?;
    ensure!(
        untagged.iter().all(|r| r["vlan.id"].is_empty()),
        "tagged frames at an untagged access port: {untagged:?}"
    );
    drop((trunk, access));
    // A second igmpd on the trunk's VLAN 10 interface, 10.10.0.3 < 10.10.0.254.
    let mut qargs = vec!["query", "eth0.10", "--no-mld"];
    qargs.extend_from_slice(FAST);
    let q = Igmpd::spawn(lab.host("t").netns(), BIN, &qargs)?;
    d.wait_status(WAIT, |st| {
        let v10 = vlan(st, 10)?;
        (role(st, 10, "igmp")? == "non-querier"
            && v10["igmp"]["querier_address"] == "10.10.0.3"
            && role(st, 20, "igmp")? == "proxy")
            .then_some(())
    })
    .context("VLAN 10 elects the lower address, VLAN 20 keeps its querier")?;
    let pt = lab.host("t").port().to_owned();
    poll_until(WAIT, Duration::from_millis(100), || {
        (port_vlan_router(sw, &pt, 10).ok()?? == 2).then_some(())
    })
    .with_context(|| {
        format!(
            "{pt} a router port in VLAN 10: {:?}",
            port_vlan_router(sw, &pt, 10)
        )
    })?;
    ensure!(
        port_vlan_router(sw, &pt, 20)? != Some(2),
        "the trunk is a router in VLAN 10 only"
    );
    // a's report in VLAN 10 reaches the router port, tagged 10: the second igmpd hears it.
    let mut a = member_on(&lab, "a", "eth0")?;
    let g = ip("239.91.0.1");
    a.join(g)?;
    q.wait_status(WAIT, |st| {
        st["interfaces"][0]["igmp"]["groups"]
            .as_array()?
            .iter()
            .any(|x| x["group"] == "239.91.0.1")
            .then_some(())
    })
    .context("the report forwarded to the router port in VLAN 10")?;
    q.stop()?;
    // A VLAN added at runtime gets its querier; removed, it goes.
    let has_vlan = |st: &Value, vid: u64| vlan(st, vid).is_some();
    sw.exec_ok(&["bridge", "vlan", "add", "dev", &pt, "vid", "40"])?;
    d.wait_status(WAIT, |st| {
        (has_vlan(st, 40) && role(st, 40, "igmp")? == "proxy").then_some(())
    })
    .context("VLAN 40's querier after the VLAN was added")?;
    sw.exec_ok(&["bridge", "vlan", "del", "dev", &pt, "vid", "40"])?;
    d.wait_status(WAIT, |st| (!has_vlan(st, 40)).then_some(()))
        .context("VLAN 40 gone after it was removed")?;
    // A report tagged 40 on the trunk, which is no longer in VLAN 40: dropped, counted,
    // learned nowhere.
    let drops = |st: &Value| st["bridges"][0]["counters"]["vlan_drops"].as_u64();
    let before = drops(&d.status()?).context("vlan_drops")?;
    let t = lab.host("t").netns();
    t.ip(&[
        "link", "add", "link", "eth0", "name", "eth0.40", "type", "vlan", "id", "40",
    ])?;
    t.ip(&["link", "set", "eth0.40", "up"])?;
    let mut t40 = member_on(&lab, "t", "eth0.40")?;
    t40.join(ip("239.91.0.40"))?;
    d.wait_status(WAIT, |st| (drops(st)? > before).then_some(()))
        .context("a frame tagged with a VLAN its port is not in is counted")?;
    ensure!(
        !lab.mdb()?.iter().any(|e| e.group == ip("239.91.0.40")),
        "learned in a VLAN the port is not in: {:?}",
        lab.mdb()
    );
    d.stop()?;
    ensure!(
        port_vlan_router(sw, &pt, 10)? != Some(2),
        "the port VLAN's mcast_router restored at exit"
    );
    Ok(())
}

/// The election in one VLAN against the kernel's own per-VLAN querier: host t becomes a
/// VLAN-aware bridge `tb` whose VLAN 10 querier (`mcast_querier 1` for VID 10) queries
/// from tb's 10.10.0.2 (`mcast_query_use_ifaddr 1`), tagged 10 on its uplink. igmpd's
/// VLAN 10 querier (10.10.0.254) yields to it; VLAN 20's is untouched.
#[test]
fn per_vlan_election_against_the_kernels_per_vlan_querier() -> Result<()> {
    let Some(lab) = vlan_lab("per_vlan_election_against_the_kernels_per_vlan_querier")? else {
        return Ok(());
    };
    let t = lab.host("t").netns();
    for vid in ["10", "20", "30"] {
        t.ip(&["link", "del", &format!("eth0.{vid}")])?;
    }
    t.ip(&[
        "link",
        "add",
        "tb",
        "type",
        "bridge",
        "vlan_filtering",
        "1",
        "mcast_vlan_snooping",
        "1",
        "mcast_query_use_ifaddr",
        "1",
    ])?;
    t.ip(&["link", "set", "eth0", "master", "tb"])?;
    t.exec_ok(&["bridge", "vlan", "add", "dev", "eth0", "vid", "10"])?;
    t.exec_ok(&["bridge", "vlan", "del", "dev", "eth0", "vid", "1"])?;
    t.exec_ok(&[
        "bridge", "vlan", "add", "dev", "tb", "vid", "10", "pvid", "untagged", "self",
    ])?;
    t.ip(&["addr", "add", "10.10.0.2/24", "dev", "tb"])?;
    t.ip(&["link", "set", "tb", "up"])?;
    t.exec_ok(&[
        "bridge",
        "vlan",
        "global",
        "set",
        "dev",
        "tb",
        "vid",
        "10",
        "mcast_querier",
        "1",
        "mcast_query_interval",
        "200",
        "mcast_query_response_interval",
        "100",
        "mcast_startup_query_interval",
        "50",
    ])?;
    let d = snoop(&lab)?;
    let igmp = |st: &Value, vid: u64| vlan(st, vid).map(|v| v["igmp"].clone());
    d.wait_status(WAIT, |st| {
        let (v10, v20) = (igmp(st, 10)?, igmp(st, 20)?);
        (v10["role"] == "non-querier"
            && v10["querier_address"] == "10.10.0.2"
            && v20["role"] == "proxy")
            .then_some(())
    })
    .context("igmpd's VLAN 10 querier yields to the kernel's, VLAN 20's stays")?;
    // The kernel's querier still queries (it never heard a lower address): igmpd stays
    // out of VLAN 10 while it does.
    let q = Capture::start(lab.host("a").netns(), "eth0", "igmp")?;
    // Counted with igmpd's own decoder (cheap: tshark takes seconds under TCG), then every
    // frame decoded once by tshark.
    let kernel_query = |p: &igmpd_netns_tests::capture::Packet| {
        p.igmp_type() == Some(0x11) && p.data.get(26..30) == Some(&[10, 10, 0, 2][..])
    };
    poll_until(SLOW, Duration::from_millis(200), || {
        let n = q.packets().ok()?.iter().filter(|p| kernel_query(p)).count();
        (n >= 2).then_some(())
    })
    .context("the kernel's VLAN 10 queries reach VLAN 10's hosts")?;
    let rows = tshark_capture(&q, &["ip.src", "igmp.type"])?;
    ensure!(
        rows.iter()
            .all(|r| r["igmp.type"] != "0x11" || r["ip.src"] == "10.10.0.2"),
        "igmpd queried VLAN 10 after it lost the election: {rows:?}"
    );
    d.stop()?;
    Ok(())
}
