//! The story igmpd exists for, as a test: R queries with short timers, the Linux bridge
//! snoops, A and B join, B's firewall drops IGMP (and MLD). B stops receiving; igmpd names
//! B from the querier (member-silent), from A (doctor --probe: host-silent) and on B itself
//! (doctor: igmp-blocked-locally citing the chain); B lets IGMP in and everything clears.
//! Plus the querier pathologies: no querier, only a 0.0.0.0 querier, two queriers fighting.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::{poll_until, BridgeConfig, Igmpd, Lab, Netns};
use serde_json::Value;

mod common;
use common::{fast_querier, finding, hostfw, member_silent, Story, BIN, PORT};

const WAIT: Duration = Duration::from_secs(30);

/// Runs `igmpd doctor` in `ns`; returns (exit code, JSON).
fn doctor(ns: &Netns, args: &[&str]) -> Result<(i32, Value)> {
    let mut argv = vec![BIN, "doctor", "eth0", "--json"];
    argv.extend_from_slice(args);
    let out = ns.exec(&argv)?;
    let code = out.status.code().unwrap_or(-1);
    let doc: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "doctor printed no JSON (exit {code}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok((code, doc))
}

/// The bridge snoops but does not query (igmpd on R does); membership interval matches R's
/// timers: 2 x 2 s + 1 s.
fn snooping_switch() -> BridgeConfig {
    BridgeConfig::snooping()
        .membership_interval(Duration::from_secs(5))
        .igmp_version(igmpd_netns_tests::IgmpVersion::V3)
}

#[test]
fn the_silent_host_is_named_from_every_vantage_point_and_the_fix_clears_it() -> Result<()> {
    let lab = Lab::builder()
        .bridge(snooping_switch())
        .hosts(&["r", "a", "b"])
        .build()?;
    let (a_addr, b_addr) = (lab.host("a").ipv4(), lab.host("b").ipv4());
    let r = fast_querier(lab.host("r"))?;
    lab.host("b").nft(&hostfw(""))?;
    let group: IpAddr = "239.20.0.1".parse()?;
    let Story {
        mut s,
        mut a,
        mut b,
    } = Story::join(&lab, "r", group)?;
    // B's entry ages out: it never answers R's queries.
    lab.wait_membership("b", group, true, Duration::from_secs(5))?;
    lab.wait_membership("b", group, false, WAIT)
        .context("B's membership should expire")?;
    ensure!(lab.has_membership("a", group)?);
    s.send(group, PORT, 10)?;
    a.wait_count(PORT, 10, Duration::from_secs(5))?;
    let b_before = b.count(PORT)?;

    // 1. R's status names B.
    let silent = r.wait_status(WAIT, |st| member_silent(st, &b_addr.to_string()))?;
    ensure!(silent["group"] == group.to_string().as_str(), "{silent:#}");
    ensure!(
        silent["hint"]
            .as_str()
            .unwrap_or("")
            .contains("ip protocol igmp accept"),
        "{silent:#}"
    );

    // 2. The doctor on A, probing, exits 1 and names B.
    let (code, doc) = doctor(lab.host("a").netns(), &["--probe", "--duration", "6s"])?;
    ensure!(code == 1, "exit {code}: {doc:#}");
    let hs = finding(&doc, "host-silent").with_context(|| format!("{doc:#}"))?;
    ensure!(hs["host"] == b_addr.to_string().as_str(), "{doc:#}");
    ensure!(
        doc["probe"]["sent"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
            && doc["probe"]["leaves_behind"].is_string(),
        "{doc:#}"
    );
    ensure!(
        !doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["host"] == a_addr.to_string().as_str()),
        "A itself answers: {doc:#}"
    );

    // 3. The doctor on B names its own firewall chain.
    let (code, doc) = doctor(lab.host("b").netns(), &["--duration", "5s"])?;
    ensure!(code == 1, "exit {code}: {doc:#}");
    let bl = finding(&doc, "igmp-blocked-locally").with_context(|| format!("{doc:#}"))?;
    let msg = bl["message"].as_str().unwrap_or("");
    ensure!(
        msg.contains("inet hostfw input") && msg.contains("policy drop"),
        "{bl:#}"
    );
    ensure!(
        bl["hint"] == "nft add rule inet hostfw input ip protocol igmp accept",
        "{bl:#}"
    );
    ensure!(
        finding(&doc, "mld-blocked-locally").is_some(),
        "B drops MLD queries too: {doc:#}"
    );

    // 4. The fix: the findings clear and B receives again.
    lab.host("b")
        .nft("add rule inet hostfw input ip protocol igmp accept")?;
    lab.host("b")
        .nft("add rule inet hostfw input icmpv6 type mld-listener-query accept")?;
    lab.wait_membership("b", group, true, WAIT)?;
    r.wait_status(WAIT, |st| {
        (!st["findings"]
            .as_array()?
            .iter()
            .any(|f| f["code"] == "member-silent"))
        .then_some(())
    })?;
    let (code, doc) = doctor(lab.host("b").netns(), &["--duration", "5s"])?;
    ensure!(
        code == 0 && finding(&doc, "igmp-blocked-locally").is_none(),
        "exit {code}: {doc:#}"
    );
    s.send(group, PORT, 10)?;
    b.wait_count(PORT, b_before + 10, Duration::from_secs(5))
        .context("B receives again")?;
    Ok(())
}

#[test]
fn no_querier_and_zero_source_querier_and_fighting_queriers() -> Result<()> {
    // No querier at all on a snooping bridge.
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .hosts(&["a", "q1", "q2"])
        .build()?;
    let (code, doc) = doctor(lab.host("a").netns(), &["--duration", "2s"])?;
    ensure!(
        code == 1 && finding(&doc, "no-querier").is_some(),
        "exit {code}: {doc:#}"
    );
    // Could not run: exit status 2 and one clear line.
    let out = lab.host("a").netns().exec(&[BIN, "doctor", "nope0"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(2) && err.trim() == "igmpd: no such interface: nope0",
        "{:?} {err}",
        out.status
    );

    // Only the kernel bridge querier without an address: queries from 0.0.0.0.
    let mut sw = lab.switch().config().clone();
    sw.querier = Some(true);
    sw.query_use_ifaddr = Some(false);
    sw.query_interval = Some(Duration::from_secs(1));
    sw.query_response_interval = Some(Duration::from_millis(500));
    sw.startup_query_interval = Some(Duration::from_millis(500));
    let mut lab = lab;
    lab.switch_mut().set_bridge(&sw)?;
    let (code, doc) = doctor(lab.host("a").netns(), &["--duration", "3s"])?;
    ensure!(
        code == 1 && finding(&doc, "querier-zero-source").is_some(),
        "exit {code}: {doc:#}"
    );
    sw.querier = Some(false);
    lab.switch_mut().set_bridge(&sw)?;

    // Two queriers fighting: q1's queries never reach q2 (the switch drops them on the
    // way, as an ACL or a VLAN mistake would), so q2 never yields to the lower address.
    let (p1, p2) = (
        lab.host("q1").port().to_string(),
        lab.host("q2").port().to_string(),
    );
    lab.switch().netns().nft(&format!(
        "table bridge deaf {{\n chain forward {{\n type filter hook forward priority 0; policy accept;\n iifname \"{p1}\" oifname \"{p2}\" ip protocol igmp drop\n }}\n}}"
    ))?;
    let _q1 = Igmpd::spawn(
        lab.host("q1").netns(),
        BIN,
        &[
            "query",
            "eth0",
            "--no-mld",
            "--query-interval",
            "1s",
            "--query-response-interval",
            "500ms",
        ],
    )?;
    let _q2 = Igmpd::spawn(
        lab.host("q2").netns(),
        BIN,
        &[
            "query",
            "eth0",
            "--no-mld",
            "--query-interval",
            "1s",
            "--query-response-interval",
            "500ms",
        ],
    )?;
    let found = poll_until(WAIT, Duration::from_millis(200), || {
        let (code, doc) = doctor(lab.host("a").netns(), &["--duration", "3s"]).ok()?;
        (code == 1 && finding(&doc, "multiple-queriers").is_some()).then_some(doc)
    });
    ensure!(found.is_ok(), "multiple-queriers expected");
    Ok(())
}

/// The same story over IPv6: B lets IGMP in but drops MLD queries.
#[test]
fn the_mld_silent_host_is_named_and_the_fix_clears_it() -> Result<()> {
    let bridge = BridgeConfig::snooping()
        .membership_interval(Duration::from_secs(5))
        .mld_version(igmpd_netns_tests::MldVersion::V2);
    let lab = Lab::builder()
        .bridge(bridge)
        .hosts(&["r", "a", "b"])
        .build()?;
    let b_ll = lab.host("b").ipv6_ll().to_string();
    let r = fast_querier(lab.host("r"))?;
    lab.host("b").nft(&hostfw("ip protocol igmp accept"))?;
    let group: IpAddr = "ff0e::20:1".parse()?;
    let Story {
        mut s,
        a: _a,
        mut b,
    } = Story::join(&lab, "r", group)?;
    lab.wait_membership("b", group, true, Duration::from_secs(5))?;
    lab.wait_membership("b", group, false, WAIT)
        .context("B's MLD membership should expire")?;
    ensure!(lab.has_membership("a", group)?);
    let silent = r.wait_status(WAIT, |st| {
        // B's solicited-node groups are named too, so the group is in the message.
        st["findings"]
            .as_array()?
            .iter()
            .find(|f| {
                f["code"] == "member-silent"
                    && f["host"] == b_ll.as_str()
                    && f["message"]
                        .as_str()
                        .unwrap_or("")
                        .contains(&group.to_string())
            })
            .cloned()
    })?;
    ensure!(
        silent["hint"]
            .as_str()
            .unwrap_or("")
            .contains("mld-listener-query"),
        "{silent:#}"
    );
    // Without --duration the doctor listens until it has seen a general query of each
    // family answered or not (a few seconds with 2 s queries), not for the 130 s cap.
    let started = std::time::Instant::now();
    let (code, doc) = doctor(lab.host("b").netns(), &[])?;
    ensure!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    ensure!(code == 1, "exit {code}: {doc:#}");
    let bl = finding(&doc, "mld-blocked-locally").with_context(|| format!("{doc:#}"))?;
    ensure!(
        bl["hint"] == "nft add rule inet hostfw input icmpv6 type mld-listener-query accept",
        "{bl:#}"
    );
    ensure!(
        finding(&doc, "igmp-blocked-locally").is_none(),
        "IGMP is accepted: {doc:#}"
    );
    lab.host("b")
        .nft("add rule inet hostfw input icmpv6 type mld-listener-query accept")?;
    lab.wait_membership("b", group, true, WAIT)?;
    r.wait_status(WAIT, |st| {
        (!st["findings"]
            .as_array()?
            .iter()
            .any(|f| f["code"] == "member-silent" && f["host"] == b_ll.as_str()))
        .then_some(())
    })?;
    let before = b.count(PORT)?;
    s.send(group, PORT, 10)?;
    b.wait_count(PORT, before + 10, Duration::from_secs(5))
        .context("B receives again over IPv6")?;
    Ok(())
}
