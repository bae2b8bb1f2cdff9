//! Flooded groups (`flood_groups`, issue 19) end to end: real hosts in namespaces, a host
//! whose firewall drops MLD queries, IPv6 neighbour discovery and mDNS across the bridge;
//! the kernel's own snooping and querier as the reference that shows why.
//!
//! Timings are never asserted: every wait polls a state with a deadline.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::capture::Capture;
use igmpd_netns_tests::{poll_until, BridgeConfig, Igmpd, Lab, Member};
use serde_json::Value;

mod common;
use common::{member, saw_v3_report, set, snoop, v3_bridge, BIN, WAIT};

/// The membership interval of [`common::FAST`] and of the kernel reference: 2 x 2 s + 1 s.
const GMI: Duration = Duration::from_secs(5);
const MDNS: u16 = 5353;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

/// The solicited-node group of `a` (RFC 4291 §2.7.1): ff02::1:ff00:0/104 and its low 24
/// bits.
fn solicited_node(a: Ipv6Addr) -> IpAddr {
    let low = u128::from(a) & 0xff_ffff;
    IpAddr::V6(Ipv6Addr::from(
        u128::from("ff02::1:ff00:0".parse::<Ipv6Addr>().expect("literal")) | low,
    ))
}

/// `host`'s firewall drops every MLD query (RFC 9777 §5.1: ICMPv6 type 130): its kernel
/// never answers one, as a host behind a strict firewall or with a sleeping NIC.
fn drop_mld_queries(lab: &Lab, host: &str) -> Result<()> {
    lab.host(host).nft(
        "table inet mldq {
            chain input {
                type filter hook input priority filter; policy accept;
                icmpv6 type mld-listener-query drop
            }
        }",
    )
}

/// Deletes and re-adds `host`'s ULA: its kernel joins the address's solicited-node group
/// anew and sends the unsolicited report (RFC 4862 §5.4.2) that is all anyone hears of it.
fn readd_address(lab: &Lab, host: &str) -> Result<()> {
    let h = lab.host(host);
    let a = format!("{}/64", h.ipv6());
    h.netns()
        .exec_ok(&["ip", "-6", "addr", "del", &a, "dev", h.ifname()])?;
    h.netns()
        .exec_ok(&["ip", "-6", "addr", "add", &a, "dev", h.ifname(), "nodad"])?;
    Ok(())
}

/// Whether `group` has a (*,G) entry on `host`'s port.
fn has_entry(lab: &Lab, host: &str, group: IpAddr) -> Result<bool> {
    let port = lab.host(host).port().to_owned();
    Ok(lab.mdb()?.iter().any(|e| e.is_star_g(&port, group)))
}

fn wait_entry(lab: &Lab, host: &str, group: IpAddr, present: bool, t: Duration) -> Result<()> {
    poll_until(t, Duration::from_millis(50), || {
        (has_entry(lab, host, group).ok()? == present).then_some(())
    })
    .with_context(|| {
        format!(
            "{group} on {host}'s port should be {}",
            if present { "present" } else { "gone" }
        )
    })
}

/// Holds for `d` that `group` stays on `host`'s port, checking it every 250 ms.
fn entry_stays(lab: &Lab, host: &str, group: IpAddr, d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        ensure!(
            has_entry(lab, host, group)?,
            "{group} left {host}'s port after {:?}",
            d - (end - Instant::now())
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

/// `ping -6` from `from` to `to`'s ULA after `from`'s neighbour cache was flushed, so that
/// the ping needs neighbour discovery (a Neighbor Solicitation to `to`'s solicited-node
/// group, RFC 4861 §7.2.2). Tries for up to `within`.
fn ping_after_flush(lab: &Lab, from: &str, to: &str, within: Duration) -> Result<bool> {
    let (f, t) = (lab.host(from), lab.host(to));
    let dst = t.ipv6().to_string();
    let end = Instant::now() + within;
    loop {
        f.netns()
            .exec_ok(&["ip", "-6", "neigh", "flush", "dev", f.ifname()])?;
        let out = f
            .netns()
            .exec(&["ping", "-6", "-n", "-c", "1", "-W", "1", &dst])?;
        if out.status.success() {
            return Ok(true);
        }
        // ping says 1 when no reply came; anything else is no answer about the network.
        ensure!(
            out.status.code() == Some(1),
            "ping did not run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if Instant::now() >= end {
            return Ok(false);
        }
    }
}

/// The hosts other than `from` where UDP datagrams from `sender` to `group`:5353 arrive:
/// polled until they are `want` (the kernel forwards by the MDB only once it saw a
/// querier), each round positive evidence first, then half a second for stragglers.
fn expect_mdns(
    lab: &Lab,
    sender: &mut Member,
    from: &str,
    group: IpAddr,
    want: &[&str],
) -> Result<()> {
    let want = set(want);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let filter = format!("udp and dst port {MDNS} and dst host {group}");
        let caps: Vec<(String, Capture)> = lab
            .hosts()
            .iter()
            .filter(|h| h.name() != from)
            .map(|h| {
                Ok((
                    h.name().to_owned(),
                    Capture::start(h.netns(), h.ifname(), &filter)?,
                ))
            })
            .collect::<Result<_>>()?;
        sender.send(group, MDNS, 3)?;
        let got = |caps: &[(String, Capture)]| -> BTreeSet<String> {
            caps.iter()
                .filter(|(_, c)| c.packets().map(|p| !p.is_empty()).unwrap_or(false))
                .map(|(n, _)| n.clone())
                .collect()
        };
        let _ = poll_until(Duration::from_secs(3), Duration::from_millis(50), || {
            want.iter().all(|w| got(&caps).contains(w)).then_some(())
        });
        std::thread::sleep(Duration::from_millis(500));
        let seen = got(&caps);
        if seen == want {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{group}:{MDNS} from {from} reached {seen:?}, want {want:?}"
        );
    }
}

/// `igmpd`'s record of `group` on `port` with origin `origin`.
fn status_group<'a>(st: &'a Value, port: &str, group: IpAddr, origin: &str) -> Option<&'a Value> {
    st["bridges"][0]["ports"]
        .as_array()?
        .iter()
        .filter(|p| p["name"] == port)
        .flat_map(|p| p["groups"].as_array().into_iter().flatten())
        .find(|g| g["group"] == group.to_string() && g["origin"] == origin)
}

#[test]
fn a_host_that_answers_no_mld_query_stays_reachable_over_ipv6() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["a", "b"])
        .build()?;
    drop_mld_queries(&lab, "b")?;
    let d = snoop(&lab, &["--querier"])?;
    let sn = solicited_node(lab.host("b").ipv6());
    readd_address(&lab, "b")?;
    // B's one report puts its solicited-node group on every port.
    wait_entry(&lab, "a", sn, true, WAIT)?;
    wait_entry(&lab, "b", sn, true, WAIT)?;
    let (pa, pb) = (lab.host("a").port(), lab.host("b").port());
    d.wait_status(WAIT, |st| {
        let f = status_group(st, pa, sn, "flood")?;
        (f["flooded"] == true).then_some(())
    })?;
    // B's report is shown, flooded, until its membership expires: B answers no query.
    let learned = d.wait_status(WAIT, |st| status_group(st, pb, sn, "learned").cloned())?;
    ensure!(learned["flooded"] == true, "{learned}");
    d.wait_status(WAIT, |st| {
        status_group(st, pb, sn, "learned").is_none().then_some(())
    })?;
    // Three membership intervals on, the group is still on A's port, and NS reaches B.
    entry_stays(&lab, "a", sn, 3 * GMI)?;
    ensure!(
        ping_after_flush(&lab, "a", "b", Duration::from_secs(10))?,
        "ping -6 from a to b failed with the solicited-node group flooded"
    );
    d.stop()?;
    Ok(())
}

#[test]
fn reference_under_the_kernels_own_querier_the_same_host_becomes_unreachable() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::fast_querier())
        .hosts(&["a", "b"])
        .build()?;
    drop_mld_queries(&lab, "b")?;
    let sn = solicited_node(lab.host("b").ipv6());
    // The kernel learns B's report, then expires it after one membership interval.
    readd_address(&lab, "b")?;
    wait_entry(&lab, "b", sn, true, WAIT)?;
    wait_entry(&lab, "b", sn, false, WAIT + GMI)?;
    // A's NS to B's solicited-node group is unregistered IPv6 multicast with a querier
    // present: the bridge sends it to router ports only, so B never hears it.
    ensure!(
        !ping_after_flush(&lab, "a", "b", Duration::from_secs(3))?,
        "ping -6 from a to b worked: the kernel flooded the unregistered solicited-node group"
    );
    Ok(())
}

#[test]
fn mdns_reaches_hosts_that_never_report_it() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["a", "b", "c"])
        .build()?;
    let (v6, v4) = (ip("ff02::fb"), ip("224.0.0.251"));
    // The default flood list: A, an mDNS responder, joins ff02::fb; B and C never do.
    let d = snoop(&lab, &["--querier"])?;
    let mut a = member(&lab, "a")?;
    a.join(v6)?;
    wait_entry(&lab, "b", v6, true, WAIT)?;
    wait_entry(&lab, "c", v6, true, WAIT)?;
    expect_mdns(&lab, &mut a, "a", v6, &["b", "c"])?;
    expect_mdns(&lab, &mut a, "a", v4, &["b", "c"])?;
    d.stop()?;
    Ok(())
}

#[test]
fn with_an_empty_flood_list_mdns_no_longer_reaches_a_silent_host() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["a", "b", "c"])
        .build()?;
    let (v6, v4) = (ip("ff02::fb"), ip("224.0.0.251"));
    // `flood_groups = []`: ff02::fb is snooped; it reaches C, which joins, not silent B.
    let dir = std::env::temp_dir().join(format!("igt-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cfg = dir.join("igmpd.toml");
    std::fs::write(
        &cfg,
        "[defaults]\nquery_interval = \"2s\"\nquery_response_interval = \"1s\"\n\
         [bridge.br0]\nquerier = true\nflood_groups = []\n",
    )?;
    let cfg_s = cfg.to_str().context("utf8")?.to_owned();
    let r = (|| -> Result<()> {
        let d = Igmpd::spawn(lab.switch().netns(), BIN, &["run", "--config", &cfg_s])?;
        let mut a = member(&lab, "a")?;
        let mut c = member(&lab, "c")?;
        a.join(v6)?;
        c.join(v6)?;
        wait_entry(&lab, "c", v6, true, WAIT)?;
        expect_mdns(&lab, &mut a, "a", v6, &["c"])?;
        // 224.0.0.0/24 is flooded by the kernel whatever igmpd does (RFC 4541 §2.1.2).
        expect_mdns(&lab, &mut a, "a", v4, &["b", "c"])?;
        d.stop()?;
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// The kernel's `mcast_flood` of bridge port `port`; None where the kernel (or
/// iproute2) does not report it.
fn try_mcast_flood(lab: &Lab, port: &str) -> Result<Option<bool>> {
    let out = lab
        .switch()
        .netns()
        .exec_ok(&["ip", "-d", "-j", "link", "show", "dev", port])?;
    let v: Value = serde_json::from_str(&out)?;
    Ok(v[0]["linkinfo"]["info_slave_data"]["mcast_flood"].as_bool())
}

fn mcast_flood(lab: &Lab, port: &str) -> Result<bool> {
    try_mcast_flood(lab, port)?.with_context(|| format!("no mcast_flood on {port}"))
}

/// A config file for `igmpd run` with the tests' short timers and `bridge` as the
/// `[bridge.br0]` section's body plus what follows it; removed when dropped.
struct Config(std::path::PathBuf);

impl Config {
    fn write(tag: &str, bridge: &str) -> Result<Config> {
        let dir = std::env::temp_dir().join(format!("igt-flood-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let c = Config(dir);
        std::fs::write(
            c.path(),
            format!(
                "[defaults]\nquery_interval = \"2s\"\nquery_response_interval = \"1s\"\n\
                 [bridge.br0]\n{bridge}\n"
            ),
        )?;
        Ok(c)
    }

    fn path(&self) -> std::path::PathBuf {
        self.0.join("igmpd.toml")
    }

    fn run(&self, lab: &Lab) -> Result<Igmpd> {
        let p = self.path();
        let p = p.to_str().context("utf8")?;
        Igmpd::spawn(lab.switch().netns(), BIN, &["run", "--config", p])
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn flood_unregistered_false_keeps_unregistered_multicast_off_a_port_and_is_restored() -> Result<()>
{
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["s", "a", "b", "c"])
        .build()?;
    let pb = lab.host("b").port().to_owned();
    ensure!(
        mcast_flood(&lab, &pb)?,
        "mcast_flood starts on (the kernel's default)"
    );
    // No querier on the LAN: the bridge floods every group, unregistered ones included,
    // to the ports with mcast_flood (br_flood).
    let cfg = Config::write(
        "unreg",
        &format!("[bridge.br0.port.{pb}]\nflood_unregistered = false"),
    )?;
    let d = cfg.run(&lab)?;
    poll_until(WAIT, Duration::from_millis(50), || {
        (!mcast_flood(&lab, &pb).ok()?).then_some(())
    })
    .context("igmpd should turn b's port's mcast_flood off")?;
    let mut s = member(&lab, "s")?;
    common::expect_receivers(&lab, &mut s, "s", ip("239.19.0.1"), &["a", "c"])?;
    // SIGKILL: the port stays as igmpd set it; the next igmpd restores the value from
    // before the first one at its exit.
    d.kill()?;
    ensure!(!mcast_flood(&lab, &pb)?, "mcast_flood changed by SIGKILL");
    let d = cfg.run(&lab)?;
    d.wait_status(WAIT, |st| st["bridges"][0]["ports"].as_array().map(drop))?;
    d.stop()?;
    ensure!(
        mcast_flood(&lab, &pb)?,
        "mcast_flood not restored after SIGKILL + restart"
    );
    Ok(())
}

#[test]
fn a_flood_reports_port_receives_the_reports_igmpd_forwards() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["a", "b", "c"])
        .build()?;
    let pc = lab.host("c").port().to_owned();
    let cfg = Config::write(
        "reports",
        &format!("querier = true\n[bridge.br0.port.{pc}]\nflood_reports = true"),
    )?;
    let d = cfg.run(&lab)?;
    let g = "239.19.0.2".parse::<std::net::Ipv4Addr>()?;
    let (hb, hc) = (lab.host("b"), lab.host("c"));
    let cap_b = Capture::start(
        hb.netns(),
        hb.ifname(),
        igmpd_netns_tests::capture::IGMP_MLD_FILTER,
    )?;
    let cap_c = Capture::start(
        hc.netns(),
        hc.ifname(),
        igmpd_netns_tests::capture::IGMP_MLD_FILTER,
    )?;
    let mut a = member(&lab, "a")?;
    a.join(IpAddr::V4(g))?;
    // A's report reaches C (flood_reports), as it would a router port.
    poll_until(WAIT, Duration::from_millis(50), || {
        saw_v3_report(&cap_c, g).then_some(())
    })
    .context("c's port should get a's report")?;
    // B, neither router nor flood_reports, does not: asked after C had it, and again
    // after a's next answer to a query reached C.
    let before = cap_c.packets()?.len();
    poll_until(WAIT, Duration::from_millis(50), || {
        (cap_c.packets().ok()?.len() > before && saw_v3_report(&cap_c, g)).then_some(())
    })?;
    ensure!(!saw_v3_report(&cap_b, g), "b's port got a's report");
    d.stop()?;
    Ok(())
}

#[test]
fn without_solicited_node_flooding_a_host_that_answers_no_mld_query_is_nd_at_risk() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["a", "b"])
        .build()?;
    drop_mld_queries(&lab, "b")?;
    // Only mDNS flooded: solicited-node groups are snooped like any other.
    let d = snoop(&lab, &["--querier", "--flood-group", "ff02::fb"])?;
    readd_address(&lab, "b")?;
    let (pb, host) = (lab.host("b").port().to_owned(), lab.host("b").ipv6_ll());
    let f = d.wait_status(WAIT + 3 * GMI, |st| {
        st["findings"]
            .as_array()?
            .iter()
            .find(|f| f["code"] == "nd-at-risk")
            .cloned()
    })?;
    ensure!(f["host"] == host.to_string(), "{f}");
    let msg = f["message"].as_str().unwrap_or_default();
    ensure!(msg.contains(&format!("port {pb}")), "{f}");
    let hint = f["hint"].as_str().unwrap_or_default();
    ensure!(
        hint.contains("flood_groups") && hint.contains("mld-listener-query accept"),
        "{f}"
    );
    d.stop()?;
    Ok(())
}
