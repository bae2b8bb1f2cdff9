//! Host joins end to end (`igmpd query --join`, `[interface.I] join` in `igmpd run`): the
//! box's own kernel becomes the member, answers another querier's queries for it (seen in
//! the winner's membership and decoded by tshark), and joins again after its link flaps
//! or its interface is re-created; while igmpd is the querier itself its own view keeps
//! the box's groups without a query to the kernel (which never hears igmpd's queries).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::capture::Capture;
use igmpd_netns_tests::{BridgeConfig, Igmpd, Lab};
use serde_json::Value;

mod common;
use common::{tshark_capture, BIN, FAST, WAIT};

/// The group entry of `group` in the `proto` section of the first interface.
fn group<'a>(s: &'a Value, proto: &str, group: &str) -> Option<&'a Value> {
    s["interfaces"][0][proto]["groups"]
        .as_array()?
        .iter()
        .find(|g| g["group"] == group)
}

/// Whether the group entry lists `source` among its sources.
fn has_source(g: &Value, source: &str) -> bool {
    g["sources"]
        .as_array()
        .is_some_and(|v| v.iter().any(|s| s["address"] == source))
}

/// The joins of the first interface as (join, state).
fn joins(s: &Value) -> BTreeMap<String, String> {
    s["interfaces"][0]["joins"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|j| {
                    let g = j["group"].as_str().unwrap_or_default();
                    let name = match j["source"].as_str() {
                        Some(src) => format!("{src}/{g}"),
                        None => g.to_owned(),
                    };
                    (name, j["state"].as_str().unwrap_or_default().to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

fn all_joined(s: &Value, n: usize) -> bool {
    let j = joins(s);
    j.len() == n && j.values().all(|st| st == "joined")
}

/// Group records of the reports from `src` that tshark decoded: (record type, group,
/// the frame's source addresses), IGMPv3 and MLDv2 alike.
fn records(cap: &Capture, src: &str) -> Result<Vec<(String, String, String)>> {
    let frames = tshark_capture(
        cap,
        &[
            "ip.src",
            "igmp.record_type",
            "igmp.maddr",
            "igmp.saddr",
            "ipv6.src",
            "icmpv6.mldr.mar.record_type",
            "icmpv6.mldr.mar.multicast_address",
            "icmpv6.mldr.mar.source_address",
        ],
    )?;
    let mut out = Vec::new();
    for f in frames {
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        let (types, groups, sources) = if get("ip.src") == src {
            (
                get("igmp.record_type"),
                get("igmp.maddr"),
                get("igmp.saddr"),
            )
        } else if get("ipv6.src") == src {
            (
                get("icmpv6.mldr.mar.record_type"),
                get("icmpv6.mldr.mar.multicast_address"),
                get("icmpv6.mldr.mar.source_address"),
            )
        } else {
            continue;
        };
        for (t, g) in types.split(',').zip(groups.split(',')) {
            if !t.is_empty() {
                out.push((t.to_owned(), g.to_owned(), sources.clone()));
            }
        }
    }
    Ok(out)
}

/// MODE_IS_INCLUDE and MODE_IS_EXCLUDE (RFC 9776 §4.2.12): sent only in answer to a query.
const IS_IN: &str = "1";
const IS_EX: &str = "2";

#[test]
fn a_box_that_lost_the_election_is_answered_for_by_its_own_kernel() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .hosts(&["winner", "joiner"])
        .build()?;
    let (w, j) = (lab.host("winner"), lab.host("joiner"));
    ensure!(w.ipv4() < j.ipv4(), "the lab numbers hosts in order");
    let cap = Capture::start(w.netns(), "eth0", "igmp or (ip6 and ip6[6] == 0)")?;
    let mut wargs = vec!["query", "eth0"];
    wargs.extend_from_slice(FAST);
    let winner = Igmpd::spawn(w.netns(), BIN, &wargs)?;
    // The joiner runs no MLD: the winner is the only MLD querier; its IGMP loses the
    // election by address.
    let mut jargs = vec!["query", "eth0", "--no-mld"];
    jargs.extend_from_slice(FAST);
    jargs.extend_from_slice(&[
        "--join",
        "239.1.1.1",
        "--join",
        "10.0.0.5/232.1.1.1",
        "--join",
        "ff3e::1234",
        "--join",
        "2001:db8::5/ff3e::1:5",
    ]);
    let joiner = Igmpd::spawn(j.netns(), BIN, &jargs)?;
    joiner
        .wait_status(WAIT, |s| {
            (s["interfaces"][0]["igmp"]["role"] == "non-querier" && all_joined(s, 4)).then_some(())
        })
        .with_context(|| format!("joiner: {}", joiner.log_text()))?;
    let (j4, j6) = (j.ipv4().to_string(), j.ipv6_ll().to_string());
    // The winner holds every group with the joiner's kernel as its reporter, and keeps them
    // over three Group Membership Intervals (5 s each): the kernel answers its queries.
    let seen = |s: &Value| -> bool {
        let by = |proto: &str, g: &str, reporter: &str| {
            group(s, proto, g).is_some_and(|e| e["last_reporter"] == reporter)
        };
        by("igmp", "239.1.1.1", &j4)
            && by("igmp", "232.1.1.1", &j4)
            && group(s, "igmp", "232.1.1.1").is_some_and(|e| has_source(e, "10.0.0.5"))
            && by("mld", "ff3e::1234", &j6)
            && by("mld", "ff3e::1:5", &j6)
            && group(s, "mld", "ff3e::1:5").is_some_and(|e| has_source(e, "2001:db8::5"))
    };
    winner.wait_status(WAIT, |s| seen(s).then_some(()))?;
    let sent = winner.status()?["interfaces"][0]["igmp"]["queries_sent"]
        .as_u64()
        .unwrap_or(0);
    winner.wait_status(Duration::from_secs(30), |s| {
        let now = s["interfaces"][0]["igmp"]["queries_sent"].as_u64()?;
        (now >= sent + 8).then_some(())
    })?;
    let s = winner.status()?;
    ensure!(seen(&s), "the winner lost the joiner's groups: {s:#}");
    // tshark decodes the kernel's answers to the winner's general queries: current-state
    // records (never sent unsolicited), ASM as IS_EX {}, SSM as IS_IN {source}.
    let recs = records(&cap, &j4)?;
    let any = |t: &str, g: &str, src: Option<&str>| {
        recs.iter()
            .any(|(rt, rg, rs)| rt == t && rg == g && src.is_none_or(|x| rs.contains(x)))
    };
    ensure!(any(IS_EX, "239.1.1.1", None), "IGMPv3 IS_EX: {recs:?}");
    ensure!(
        any(IS_IN, "232.1.1.1", Some("10.0.0.5")),
        "IGMPv3 IS_IN with the source: {recs:?}"
    );
    let recs6 = records(&cap, &j6)?;
    let any6 = |t: &str, g: &str, src: Option<&str>| {
        recs6
            .iter()
            .any(|(rt, rg, rs)| rt == t && rg == g && src.is_none_or(|x| rs.contains(x)))
    };
    ensure!(any6(IS_EX, "ff3e::1234", None), "MLDv2 IS_EX: {recs6:?}");
    ensure!(
        any6(IS_IN, "ff3e::1:5", Some("2001:db8::5")),
        "MLDv2 IS_IN with the source: {recs6:?}"
    );
    // The joiner's own view (a non-querier's) has its IPv4 groups too.
    let s = joiner.status()?;
    ensure!(
        group(&s, "igmp", "239.1.1.1").is_some() && group(&s, "igmp", "232.1.1.1").is_some(),
        "{s:#}"
    );
    Ok(())
}

#[test]
fn as_the_querier_igmpd_keeps_the_boxs_groups_without_needless_queries() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .hosts(&["box", "h"])
        .build()?;
    let (b, h) = (lab.host("box"), lab.host("h"));
    let cap = Capture::start(h.netns(), "eth0", "igmp or (ip6 and ip6[6] == 0)")?;
    let mut args = vec!["query", "eth0"];
    args.extend_from_slice(FAST);
    args.extend_from_slice(&[
        "--join",
        "239.1.1.1",
        "--join",
        "10.0.0.5/232.1.1.1",
        "--join",
        "2001:db8::5/ff3e::1:5",
    ]);
    let d = Igmpd::spawn(b.netns(), BIN, &args)?;
    let (b4, b6) = (b.ipv4().to_string(), b.ipv6_ll().to_string());
    let kept = |s: &Value| -> bool {
        s["interfaces"][0]["igmp"]["role"] == "querier"
            && s["interfaces"][0]["mld"]["role"] == "querier"
            && group(s, "igmp", "239.1.1.1").is_some_and(|e| e["last_reporter"] == b4.as_str())
            && group(s, "igmp", "232.1.1.1").is_some_and(|e| has_source(e, "10.0.0.5"))
            && group(s, "mld", "ff3e::1:5")
                .is_some_and(|e| e["last_reporter"] == b6.as_str() && has_source(e, "2001:db8::5"))
    };
    d.wait_status(WAIT, |s| (kept(s) && all_joined(s, 3)).then_some(()))?;
    // The kernel's unsolicited reports made the switch forward the group to the box.
    lab.wait_membership("box", "239.1.1.1".parse()?, true, WAIT)?;
    // Eight general queries later (over three Group Membership Intervals), still kept.
    let sent = d.status()?["interfaces"][0]["igmp"]["queries_sent"]
        .as_u64()
        .unwrap_or(0);
    d.wait_status(Duration::from_secs(30), |s| {
        let now = s["interfaces"][0]["igmp"]["queries_sent"].as_u64()?;
        (now >= sent + 8).then_some(())
    })?;
    let s = d.status()?;
    ensure!(kept(&s), "igmpd lost the box's own groups: {s:#}");
    // No group-specific query: nothing ever looked like a leave.
    let specific = cap
        .packets()?
        .iter()
        .filter(|p| {
            p.decode().is_ok_and(|f| match &f.packet {
                igmpd_wire::Packet::Igmp {
                    igmp: igmpd_wire::IgmpRepr::Query(q),
                    ..
                } => !q.group.is_unspecified(),
                igmpd_wire::Packet::Mld {
                    mld: igmpd_wire::MldRepr::Query(q),
                    ..
                } => !q.group.is_unspecified(),
                _ => false,
            })
        })
        .count();
    ensure!(specific == 0, "{specific} group-specific queries");
    // Why igmpd answers for the box: its queries leave through AF_PACKET and the box's
    // kernel never hears them, so it sends no current-state record (only its unsolicited
    // state-change reports at the join).
    let recs = records(&cap, &b4)?;
    ensure!(
        !recs.iter().any(|(t, _, _)| t == IS_EX || t == IS_IN),
        "the box's kernel answered igmpd's own queries: {recs:?}"
    );
    ensure!(!recs.is_empty(), "the box's kernel sent its join reports");
    Ok(())
}

#[test]
fn run_config_joins_come_back_after_link_flap_and_recreation() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .hosts(&["box", "h"])
        .build()?;
    let b = lab.host("box");
    let dir = TempDir::new()?;
    let config = dir.0.join("igmpd.toml");
    std::fs::write(
        &config,
        "[defaults]\nquery_interval = \"2s\"\nquery_response_interval = \"1s\"\n\
         last_member_query_interval = \"500ms\"\n\
         [interface.eth0]\njoin = [\"239.3.3.3\", \"10.0.0.5/232.3.3.3\", \"ff3e::3\"]\n",
    )?;
    let config_s = config.to_str().context("UTF-8 path")?.to_owned();
    let check = std::process::Command::new(BIN)
        .args(["check-config", &config_s])
        .output()?;
    ensure!(check.status.success(), "{check:?}");
    let d = Igmpd::spawn(b.netns(), BIN, &["run", "--config", &config_s])?;
    flap_recreate_and_reload(&lab, &d, &config)
}

/// A directory of this test's own, removed when dropped (also when the test fails).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let p = std::env::temp_dir().join(format!("igmpd-e2e-join-{}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn flap_recreate_and_reload(lab: &Lab, d: &Igmpd, config: &std::path::Path) -> Result<()> {
    let b = lab.host("box");
    let g: IpAddr = "239.3.3.3".parse()?;
    let g6: IpAddr = "ff3e::3".parse()?;
    let own = |s: &Value| {
        all_joined(s, 3)
            && group(s, "igmp", "239.3.3.3").is_some()
            && group(s, "igmp", "232.3.3.3").is_some()
            && group(s, "mld", "ff3e::3").is_some()
    };
    d.wait_status(WAIT, |s| own(s).then_some(()))?;
    lab.wait_membership("box", g, true, WAIT)?;
    lab.wait_membership("box", g6, true, WAIT)?;
    // Down: the switch port goes down with it and forgets the box's groups.
    b.netns().ip(&["link", "set", "eth0", "down"])?;
    lab.wait_membership("box", g, false, WAIT)?;
    b.netns().ip(&["link", "set", "eth0", "up"])?;
    // Up: the kernel kept the memberships and reports them again.
    lab.wait_membership("box", g, true, WAIT)?;
    lab.wait_membership("box", g6, true, WAIT)?;
    d.wait_status(WAIT, |s| own(s).then_some(()))?;
    // Deleted and created again (a new ifindex): left on the old index, joined on the new.
    let sw = lab.switch().netns();
    let port = b.port().to_string();
    sw.ip(&["link", "del", &port])?;
    d.wait_status(WAIT, |s| {
        let j = joins(s);
        (s["interfaces"][0]["ifindex"].is_null()
            && j.values().all(|st| st == "waiting for the interface"))
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
        b.ns_name(),
    ])?;
    sw.ip(&["link", "set", &port, "master", lab.switch().bridge(), "up"])?;
    b.netns().ip(&[
        "addr",
        "add",
        &format!("{}/{}", b.ipv4(), lab.subnet_v4().1),
        "dev",
        "eth0",
    ])?;
    b.netns().ip(&["link", "set", "eth0", "up"])?;
    d.wait_status(WAIT, |s| {
        (!s["interfaces"][0]["ifindex"].is_null() && own(s)).then_some(())
    })?;
    lab.wait_membership("box", g, true, WAIT)?;
    lab.wait_membership("box", g6, true, WAIT)?;
    // Reload without 239.3.3.3: the kernel leaves it, and igmpd's own view lets it go
    // after the last member queries (the box's member part answers them no more).
    let src = std::fs::read_to_string(config)?;
    std::fs::write(config, src.replace("\"239.3.3.3\", ", ""))?;
    let socket = d
        .control_socket()
        .to_str()
        .context("UTF-8 path")?
        .to_owned();
    let reload = std::process::Command::new(BIN)
        .args(["reload", "--control-socket", &socket])
        .output()?;
    ensure!(reload.status.success(), "{reload:?}");
    d.wait_status(WAIT, |s| {
        (all_joined(s, 2)
            && group(s, "igmp", "239.3.3.3").is_none()
            && group(s, "igmp", "232.3.3.3").is_some())
        .then_some(())
    })?;
    Ok(())
}

#[test]
fn a_join_the_kernel_refuses_is_logged_and_shown_with_its_reason() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .host("box")
        .build()?;
    let b = lab.host("box");
    // The box's namespace only (the sysctl is per network namespace).
    b.netns().sysctl("net.ipv4.igmp_max_memberships", "1")?;
    let mut args = vec!["query", "eth0", "--no-mld"];
    args.extend_from_slice(FAST);
    args.extend_from_slice(&["--join", "239.4.4.1", "--join", "239.4.4.2"]);
    let d = Igmpd::spawn(b.netns(), BIN, &args)?;
    let s = d.wait_status(WAIT, |s| {
        let j = joins(s);
        (j.get("239.4.4.1")? == "joined" && j.get("239.4.4.2")? != "joined").then_some(j)
    })?;
    let why = &s["239.4.4.2"];
    ensure!(
        why.contains("No buffer space available") && why.contains("igmp_max_memberships"),
        "{why}"
    );
    ensure!(
        d.log_text().contains("host join failed"),
        "{}",
        d.log_text()
    );
    // The refused group is not the box's in igmpd's own view; the joined one is.
    let st = d.status()?;
    ensure!(group(&st, "igmp", "239.4.4.1").is_some(), "{st:#}");
    ensure!(group(&st, "igmp", "239.4.4.2").is_none(), "{st:#}");
    Ok(())
}
