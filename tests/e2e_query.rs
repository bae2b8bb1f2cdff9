//! `igmpd query` end to end: the real binary in network namespaces, real Linux hosts (their
//! own kernel answers the queries), the Linux bridge as the switch and as an independent
//! querier, tshark as a second decoder of what igmpd sends.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::capture::Capture;
use igmpd_netns_tests::{poll_until, BridgeConfig, HostSpec, Igmpd, Lab};
use serde_json::Value;

mod common;
use common::{member, tshark, FAST, WAIT};

const BIN: &str = env!("CARGO_BIN_EXE_igmpd");

fn args<'a>(iface: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["query", iface];
    v.extend_from_slice(FAST);
    v.extend_from_slice(extra);
    v
}

/// The group entry of `group` in the `proto` section of the first interface.
fn group<'a>(s: &'a Value, proto: &str, group: &str) -> Option<&'a Value> {
    s["interfaces"][0][proto]["groups"]
        .as_array()?
        .iter()
        .find(|g| g["group"] == group)
}

#[test]
fn hosts_of_every_version_answer_and_show_their_compat_version() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .host("r")
        .host_spec(HostSpec::new("v1").force_igmp_version(1))
        .host_spec(HostSpec::new("v2").force_igmp_version(2))
        .host_spec(HostSpec::new("v3").force_mld_version(1))
        .host_spec(HostSpec::new("m2").force_mld_version(2))
        .build()?;
    let d = Igmpd::spawn(lab.host("r").netns(), BIN, &args("eth0", &[]))?;
    let cases: [(&str, &str, &str, u64); 5] = [
        ("v1", "igmp", "239.1.0.1", 1),
        ("v2", "igmp", "239.1.0.2", 2),
        // Host v3 is IGMPv3 by default (and MLDv1 forced).
        ("v3", "igmp", "239.1.0.3", 3),
        ("v3", "mld", "ff0e::1:3", 1),
        ("m2", "mld", "ff0e::1:4", 2),
    ];
    let mut members = Vec::new();
    for (host, _, g, _) in &cases {
        let mut m = member(&lab, host)?;
        m.join(g.parse()?)?;
        members.push(m);
    }
    for (host, proto, g, ver) in cases {
        let h = lab.host(host);
        let reporter = if proto == "igmp" {
            h.ipv4().to_string()
        } else {
            h.ipv6_ll().to_string()
        };
        d.wait_status(WAIT, |s| {
            let e = group(s, proto, g)?;
            (e["last_reporter"] == reporter.as_str() && e["compat_version"] == ver).then_some(())
        })
        .with_context(|| {
            format!("{host} {proto} {g} should show reporter {reporter}, compat v{ver}")
        })?;
    }
    let s = d.status()?;
    ensure!(s["interfaces"][0]["igmp"]["role"] == "querier", "{s:#}");
    ensure!(s["interfaces"][0]["mld"]["role"] == "querier", "{s:#}");
    Ok(())
}

#[test]
fn a_leaving_host_disappears_after_the_last_member_queries() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .host("r")
        .host_spec(HostSpec::new("a").force_igmp_version(2))
        .host("b")
        .build()?;
    let d = Igmpd::spawn(lab.host("r").netns(), BIN, &args("eth0", &[]))?;
    let cap = Capture::start(lab.host("a").netns(), "eth0", "igmp")?;
    let mut a = member(&lab, "a")?;
    let mut b = member(&lab, "b")?;
    let (ga, gb): (IpAddr, IpAddr) = ("239.2.0.1".parse()?, "239.2.0.2".parse()?);
    a.join(ga)?;
    b.join(gb)?;
    d.wait_status(WAIT, |s| {
        (group(s, "igmp", "239.2.0.1").is_some() && group(s, "igmp", "239.2.0.2").is_some())
            .then_some(())
    })?;
    // IGMPv2 leave and IGMPv3 TO_IN({}): both end in group-specific queries, then removal.
    a.leave(ga)?;
    b.leave(gb)?;
    d.wait_status(Duration::from_secs(10), |s| {
        (group(s, "igmp", "239.2.0.1").is_none() && group(s, "igmp", "239.2.0.2").is_none())
            .then_some(())
    })?;
    let ga4: std::net::Ipv4Addr = "239.2.0.1".parse()?;
    let specific = poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        let n = cap
            .packets()
            .ok()?
            .iter()
            .filter(|p| {
                matches!(p.decode(), Ok(f) if matches!(&f.packet,
                    igmpd_wire::Packet::Igmp { igmp: igmpd_wire::IgmpRepr::Query(q), .. } if q.group == ga4))
            })
            .count();
        (n >= 2).then_some(n)
    });
    ensure!(
        specific.is_ok(),
        "two group-specific queries (last member query count = robustness 2) expected"
    );
    Ok(())
}

#[test]
fn two_igmpd_elect_the_lower_address_and_the_survivor_takes_over() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .hosts(&["r1", "r2"])
        .build()?;
    let (low, high) = (lab.host("r1").ipv4(), lab.host("r2").ipv4());
    ensure!(low < high);
    let d1 = Igmpd::spawn(lab.host("r1").netns(), BIN, &args("eth0", &["--no-mld"]))?;
    let d2 = Igmpd::spawn(lab.host("r2").netns(), BIN, &args("eth0", &["--no-mld"]))?;
    d2.wait_status(WAIT, |s| {
        let i = &s["interfaces"][0]["igmp"];
        (i["role"] == "non-querier" && i["querier_address"] == low.to_string().as_str())
            .then_some(())
    })?;
    ensure!(d1.status()?["interfaces"][0]["igmp"]["role"] == "querier");
    // The querier dies without a goodbye: after the Other Querier Present Interval
    // (2 x 2 s + 0.5 s) the survivor takes over.
    d1.kill()?;
    d2.wait_status(WAIT, |s| {
        let i = &s["interfaces"][0]["igmp"];
        (i["role"] == "querier" && i["querier_address"] == high.to_string().as_str()).then_some(())
    })?;
    Ok(())
}

/// The kernel bridge's own querier (from its address, mcast_query_use_ifaddr) and igmpd
/// agree on the winner in both directions.
#[test]
fn election_agrees_with_the_kernel_bridge_querier_both_ways() -> Result<()> {
    let bridge = BridgeConfig::fast_querier();
    let lab = Lab::builder()
        .bridge(bridge)
        .hosts(&["low", "high"])
        .build()?;
    let bridge_addr = lab.switch().ipv4().context("bridge has an address")?;
    // "low" keeps its address below the bridge's; "high" moves above it.
    let high = lab.host("high");
    let high_addr = {
        let o = bridge_addr.octets();
        std::net::Ipv4Addr::new(o[0], o[1], o[2] + 1, 1)
    };
    high.netns()
        .ip(&["addr", "flush", "dev", "eth0", "scope", "global"])?;
    high.netns()
        .ip(&["addr", "add", &format!("{high_addr}/16"), "dev", "eth0"])?;

    // igmpd above the bridge: the bridge stays querier, igmpd follows it.
    let d = Igmpd::spawn(high.netns(), BIN, &args("eth0", &["--no-mld"]))?;
    d.wait_status(WAIT, |s| {
        let i = &s["interfaces"][0]["igmp"];
        (i["role"] == "non-querier" && i["querier_address"] == bridge_addr.to_string().as_str())
            .then_some(())
    })?;
    drop(d);

    // igmpd below the bridge: igmpd is querier and the kernel records it as the querier.
    let low_addr = lab.host("low").ipv4();
    let d = Igmpd::spawn(lab.host("low").netns(), BIN, &args("eth0", &["--no-mld"]))?;
    d.wait_status(WAIT, |s| {
        (s["interfaces"][0]["igmp"]["role"] == "querier").then_some(())
    })?;
    poll_until(WAIT, Duration::from_millis(100), || {
        let info = lab.switch().bridge_info().ok()?;
        (info
            .get("mcast_querier_state_ipv4")?
            .get("mcast_querier_ipv4_addr")?
            .as_str()?
            == low_addr.to_string())
        .then_some(())
    })
    .map_err(|_| {
        anyhow::anyhow!(
            "the kernel bridge should record {low_addr} as querier: {:?}",
            lab.switch().bridge_info()
        )
    })?;
    // And igmpd stays querier while the bridge keeps hearing it.
    igmpd_netns_tests::holds_for(Duration::from_secs(3), Duration::from_millis(100), || {
        let role = d.status().ok()?["interfaces"][0]["igmp"]["role"].clone();
        (role != "querier").then_some(role)
    })
    .map_err(|role| anyhow::anyhow!("igmpd lost the querier role: {role}"))?;
    Ok(())
}

/// Every query igmpd sends decodes in tshark without warnings and carries the configured
/// values, float-encoded ones included (a 300 s interval, a 25 s response time).
#[test]
fn every_query_decodes_in_tshark_with_the_configured_values() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .host("r")
        .host("h3")
        .host_spec(HostSpec::new("h2").force_igmp_version(2))
        .build()?;
    let r = lab.host("r");
    let cap = Capture::start(
        lab.host("h3").netns(),
        "eth0",
        "igmp or (ip6 and ip6[6] == 0)",
    )?;
    let d = Igmpd::spawn(
        r.netns(),
        BIN,
        &[
            "query",
            "eth0",
            "--query-interval",
            "300s",
            "--query-response-interval",
            "25s",
            "--robustness",
            "3",
            "--last-member-query-interval",
            "700ms",
            "--startup-query-count",
            "1",
        ],
    )?;
    let mut h3 = member(&lab, "h3")?;
    let mut h2 = member(&lab, "h2")?;
    let (g3, g2): (IpAddr, IpAddr) = ("232.3.3.3".parse()?, "239.3.3.2".parse()?);
    let src: IpAddr = "10.99.0.1".parse()?;
    h3.join_source(g3, src)?;
    h2.join(g2)?;
    d.wait_status(WAIT, |s| {
        (group(s, "igmp", "232.3.3.3").is_some() && group(s, "igmp", "239.3.3.2").is_some())
            .then_some(())
    })?;
    // Source leave -> group-and-source-specific queries; v2 leave -> group-specific ones.
    h3.leave_source(g3, src)?;
    h2.leave(g2)?;
    d.wait_status(WAIT, |s| {
        (group(s, "igmp", "232.3.3.3").is_none() && group(s, "igmp", "239.3.3.2").is_none())
            .then_some(())
    })?;
    let r_mac = r.mac().to_string();
    let frames: Vec<Vec<u8>> = cap
        .stop()?
        .into_iter()
        .filter(|p| {
            let mac: Vec<String> = p.data[6..12].iter().map(|b| format!("{b:02x}")).collect();
            mac.join(":") == r_mac
        })
        .map(|p| p.data)
        .collect();
    let fields = [
        "_ws.malformed",
        "_ws.expert.severity",
        "_ws.expert.message",
        "ip.ttl",
        "ip.dsfield",
        "ip.opt.ra",
        "igmp.version",
        "igmp.max_resp",
        "igmp.qrv",
        "igmp.qqic",
        "igmp.s",
        "igmp.maddr",
        "igmp.num_src",
        "igmp.checksum.status",
        "ipv6.hlim",
        "icmpv6.type",
        "icmpv6.mld.maximum_response_code",
        "icmpv6.mld.flag.qrv",
        "icmpv6.mld.qqi",
        "icmpv6.checksum.status",
    ];
    let rows = tshark(&frames, &fields)?;
    let qqic = igmpd_wire::float::encode_code8(300).to_string();
    let (mut general4, mut specific4, mut source4, mut general6) = (0, 0, 0, 0);
    for (i, row) in rows.iter().enumerate() {
        ensure!(
            row["_ws.malformed"].is_empty(),
            "frame {i}: malformed: {row:?}"
        );
        for sev in row["_ws.expert.severity"]
            .split(',')
            .filter(|s| !s.is_empty())
        {
            ensure!(
                sev.parse::<u32>()? < 0x0080_0000,
                "frame {i}: expert warning {}",
                row["_ws.expert.message"]
            );
        }
        if !row["igmp.version"].is_empty() {
            ensure!(
                row["igmp.version"] == "3"
                    && row["ip.ttl"] == "1"
                    && row["ip.dsfield"] == "0xc0"
                    && row["ip.opt.ra"] == "0",
                "frame {i}: {row:?}"
            );
            ensure!(
                row["igmp.qrv"] == "3"
                    && row["igmp.qqic"] == qqic
                    && row["igmp.checksum.status"] == "1",
                "frame {i}: {row:?}"
            );
            if row["igmp.maddr"].starts_with("0.0.0.0") {
                // 25 s = 250 tenths -> the largest representable value not above: 248.
                ensure!(
                    row["igmp.max_resp"] == "248" && row["igmp.s"] == "0",
                    "frame {i}: {row:?}"
                );
                general4 += 1;
            } else {
                ensure!(
                    row["igmp.max_resp"] == "7",
                    "LMQI 700 ms: frame {i}: {row:?}"
                );
                if row["igmp.num_src"] == "0" {
                    specific4 += 1
                } else {
                    source4 += 1
                }
            }
        } else if row["icmpv6.type"] == "130" {
            ensure!(
                row["ipv6.hlim"] == "1" && row["icmpv6.checksum.status"] == "1",
                "frame {i}: {row:?}"
            );
            ensure!(
                row["icmpv6.mld.flag.qrv"] == "3" && row["icmpv6.mld.qqi"] == "288",
                "frame {i}: {row:?}"
            );
            ensure!(
                row["icmpv6.mld.maximum_response_code"] == "25000",
                "frame {i}: {row:?}"
            );
            general6 += 1;
        }
    }
    ensure!(
        general4 >= 1 && general6 >= 1,
        "general queries seen: igmp {general4}, mld {general6}"
    );
    // Last member query count = robustness 3.
    ensure!(
        specific4 >= 3 && source4 >= 3,
        "specific queries seen: group {specific4}, group-and-source {source4}"
    );
    Ok(())
}

#[test]
fn older_query_versions_decode_in_tshark() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .hosts(&["r", "h"])
        .build()?;
    let mut seen = Vec::new();
    for (flags, expect) in [
        (vec!["--igmp-version", "1", "--mld-version", "1"], ("1", "")),
        (
            vec!["--igmp-version", "2", "--mld-version", "1"],
            ("2", "100"),
        ),
    ] {
        let cap = Capture::start(
            lab.host("h").netns(),
            "eth0",
            "igmp or (ip6 and ip6[6] == 0)",
        )?;
        let mut a = vec!["query", "eth0", "--query-response-interval", "10s"];
        a.extend_from_slice(&flags);
        let d = Igmpd::spawn(lab.host("r").netns(), BIN, &a)?;
        let frames = poll_until(WAIT, Duration::from_millis(100), || {
            let p = cap.packets().ok()?;
            let q: Vec<Vec<u8>> = p
                .into_iter()
                .filter(|p| p.igmp_type() == Some(0x11) || p.data.len() > 62 && p.data[62] == 130)
                .map(|p| p.data)
                .collect();
            (q.len() >= 2).then_some(q)
        })?;
        drop(d);
        let rows = tshark(
            &frames,
            &[
                "_ws.malformed",
                "_ws.expert.severity",
                "igmp.version",
                "igmp.max_resp",
                "icmpv6.mld.maximum_response_delay",
            ],
        )?;
        for row in rows {
            ensure!(
                row["_ws.malformed"].is_empty() && row["_ws.expert.severity"].is_empty(),
                "{row:?}"
            );
            if !row["igmp.version"].is_empty() {
                ensure!(
                    row["igmp.version"] == expect.0 && row["igmp.max_resp"] == expect.1,
                    "{flags:?}: {row:?}"
                );
                seen.push(expect.0);
            } else {
                ensure!(
                    row["icmpv6.mld.maximum_response_delay"] == "10000",
                    "{row:?}"
                );
            }
        }
    }
    ensure!(seen.contains(&"1") && seen.contains(&"2"), "{seen:?}");
    Ok(())
}

#[test]
fn without_an_ipv4_address_igmpd_is_a_proxy_querier_from_zero() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .hosts(&["r", "h"])
        .build()?;
    lab.host("r")
        .netns()
        .ip(&["-4", "addr", "flush", "dev", "eth0"])?;
    let cap = Capture::start(lab.host("h").netns(), "eth0", "igmp")?;
    let d = Igmpd::spawn(lab.host("r").netns(), BIN, &args("eth0", &["--no-mld"]))?;
    d.wait_status(WAIT, |s| {
        (s["interfaces"][0]["igmp"]["role"] == "proxy").then_some(())
    })?;
    cap.wait_for(WAIT, |p| {
        p.decode()
            .is_ok_and(|f| f.packet.src() == IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    })?;
    // Given an address it becomes a real querier at once.
    lab.host("r")
        .netns()
        .ip(&["addr", "add", "10.250.0.9/24", "dev", "eth0"])?;
    d.wait_status(WAIT, |s| {
        let i = &s["interfaces"][0]["igmp"];
        (i["role"] == "querier" && i["address"] == "10.250.0.9").then_some(())
    })?;
    Ok(())
}

/// Address changes, link down/up, and the interface deleted and created again: igmpd
/// follows without a restart.
#[test]
fn follows_addresses_links_and_interface_recreation() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .hosts(&["r1", "r2"])
        .build()?;
    let r2 = lab.host("r2");
    let d1 = Igmpd::spawn(lab.host("r1").netns(), BIN, &args("eth0", &["--no-mld"]))?;
    let d2 = Igmpd::spawn(r2.netns(), BIN, &args("eth0", &["--no-mld"]))?;
    d2.wait_status(WAIT, |s| {
        (s["interfaces"][0]["igmp"]["role"] == "non-querier").then_some(())
    })?;
    // r2 gets an address below r1's: it wins at once, and r1 yields.
    let o = lab.host("r1").ipv4().octets();
    // The lab subnet is 10.<100..199>.<n>.0/24: one below in the second octet is lower.
    let lower_host = format!("{}.{}.{}.200", o[0], o[1] - 1, o[2]);
    r2.netns()
        .ip(&["addr", "add", &format!("{lower_host}/16"), "dev", "eth0"])?;
    d2.wait_status(WAIT, |s| {
        let i = &s["interfaces"][0]["igmp"];
        (i["role"] == "querier" && i["address"] == lower_host.as_str()).then_some(())
    })?;
    d1.wait_status(WAIT, |s| {
        (s["interfaces"][0]["igmp"]["querier_address"] == lower_host.as_str()).then_some(())
    })?;
    // Link down: inactive; up again: querier again.
    r2.netns().ip(&["link", "set", "eth0", "down"])?;
    d2.wait_status(WAIT, |s| {
        (s["interfaces"][0]["igmp"]["role"] == "inactive").then_some(())
    })?;
    r2.netns().ip(&["link", "set", "eth0", "up"])?;
    d2.wait_status(WAIT, |s| {
        (s["interfaces"][0]["igmp"]["role"] == "querier").then_some(())
    })?;
    // Deleted and created again (a new ifindex): igmpd opens a new socket and queries.
    let sw = lab.switch().netns();
    let port = r2.port().to_string();
    sw.ip(&["link", "del", &port])?;
    d2.wait_status(WAIT, |s| {
        (s["interfaces"][0]["igmp"]["role"] == "inactive"
            && s["interfaces"][0]["ifindex"].is_null())
        .then_some(())
    })?;
    sw.ip(&[
        "link",
        "add",
        &port,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        r2.ns_name(),
    ])?;
    sw.ip(&["link", "set", &port, "master", lab.switch().bridge(), "up"])?;
    r2.netns()
        .ip(&["addr", "add", &format!("{lower_host}/16"), "dev", "eth0"])?;
    r2.netns().ip(&["link", "set", "eth0", "up"])?;
    let cap = Capture::start(lab.host("r1").netns(), "eth0", "igmp")?;
    d2.wait_status(WAIT, |s| {
        (s["interfaces"][0]["igmp"]["role"] == "querier"
            && !s["interfaces"][0]["ifindex"].is_null())
        .then_some(())
    })?;
    let lh: std::net::Ipv4Addr = lower_host.parse()?;
    cap.wait_for(WAIT, |p| {
        p.decode().is_ok_and(|f| f.packet.src() == IpAddr::V4(lh))
    })
    .context("queries from the recreated interface reach the LAN")?;
    Ok(())
}

fn run_igmpd(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .output()
        .expect("run igmpd")
}

#[test]
fn clear_errors_for_unknown_interfaces_bad_settings_busy_socket_and_missing_capability(
) -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .hosts(&["r"])
        .build()?;
    let ns = lab.host("r").netns();
    let out = ns.exec(&[
        BIN,
        "query",
        "nope0",
        "--control-socket",
        "/tmp/igmpd-e2e-nope.sock",
    ])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.trim() == "igmpd: no such interface: nope0",
        "{err}"
    );
    let out = run_igmpd(&[
        "query",
        "eth0",
        "--query-interval",
        "5s",
        "--query-response-interval",
        "10s",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success()
            && err.contains("must be shorter than the query interval")
            && err.lines().count() == 1,
        "{err}"
    );
    let out = run_igmpd(&["query", "eth0", "--robustness", "0"]);
    ensure!(String::from_utf8_lossy(&out.stderr).contains("robustness must be at least 1"));
    let d = Igmpd::spawn(ns, BIN, &["query", "eth0"])?;
    let sock = d.control_socket().to_str().context("utf-8")?.to_string();
    let out = ns.exec(&[BIN, "query", "eth0", "--control-socket", &sock])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("is busy") && err.lines().count() == 1,
        "{err}"
    );
    // As an unprivileged user the packet socket is refused: say which capability.
    let out = ns.exec(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        BIN,
        "query",
        "eth0",
        "--control-socket",
        "/tmp/igmpd-e2e-unpriv.sock",
    ])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("CAP_NET_RAW") && err.lines().count() == 1,
        "{err}"
    );
    ensure!(
        !err.contains("backtrace") && !err.contains("panicked"),
        "{err}"
    );
    Ok(())
}

/// On the bridge device itself (the Linux box is the switch and the querier): queries go
/// out of every port and the hosts' reports reach igmpd.
#[test]
fn querier_on_a_bridge_interface() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .hosts(&["a"])
        .build()?;
    let br = lab.switch().bridge().to_string();
    let bridge_addr = lab
        .switch()
        .ipv4()
        .context("bridge has an address")?
        .to_string();
    let d = Igmpd::spawn(lab.switch().netns(), BIN, &args(&br, &[]))?;
    let mut a = member(&lab, "a")?;
    a.join("239.7.7.7".parse()?)?;
    let a_addr = lab.host("a").ipv4().to_string();
    d.wait_status(WAIT, |s| {
        let i = &s["interfaces"][0]["igmp"];
        (i["role"] == "querier"
            && i["address"] == bridge_addr.as_str()
            && group(s, "igmp", "239.7.7.7")?["last_reporter"] == a_addr.as_str())
        .then_some(())
    })?;
    Ok(())
}
