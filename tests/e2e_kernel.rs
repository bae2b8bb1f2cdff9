//! `igmpd snoop` and the kernel it runs on: the features it probes (status `kernel`), the
//! bridge's source filtering it turns on for IGMPv3/MLDv2 and hands back, and the way of
//! writing entries for kernels that take no protocol, source list or replace (before 6.3:
//! Debian 12's 6.1). On a new kernel the old one's path runs with `IGMPD_KERNEL_WITHOUT`;
//! scripts/vm-test.sh runs these tests on Debian's 6.1 and 6.12 kernels themselves.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::mdb::MdbState;
use igmpd_netns_tests::{poll_until, BridgeConfig, HostSpec, Igmpd, Lab};
use serde_json::Value;

mod common;
use common::{expect_receivers, member, BIN, FAST, WAIT};

/// What a kernel before 6.3 lacks.
const OLD_KERNEL: &str = "IGMPD_KERNEL_WITHOUT=mdb_protocol,mdb_source_list,mdb_replace";

fn snoop(lab: &Lab, env: &[&str]) -> Result<Igmpd> {
    let mut a = vec!["snoop", "br0", "--querier"];
    a.extend_from_slice(FAST);
    Igmpd::spawn_env(lab.switch().netns(), BIN, env, &a)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

/// The bridge's `(mcast_igmp_version, mcast_mld_version)`.
fn versions(lab: &Lab) -> Result<(u64, u64)> {
    let out = lab
        .switch()
        .netns()
        .exec_ok(&["ip", "-d", "-j", "link", "show", "br0"])?;
    let v: Value = serde_json::from_str(&out)?;
    let info = &v[0]["linkinfo"]["info_data"];
    Ok((
        info["mcast_igmp_version"]
            .as_u64()
            .context("igmp version")?,
        info["mcast_mld_version"].as_u64().context("mld version")?,
    ))
}

fn features(st: &Value) -> Vec<String> {
    st["kernel"]["features"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect()
}

fn has_finding(st: &Value, code: &str) -> bool {
    st["findings"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f["code"] == code))
}

#[test]
fn a_default_bridge_filters_sources_while_igmpd_runs_and_gets_its_versions_back() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .hosts(&["s1", "s2", "inc"])
        .build()?;
    ensure!(versions(&lab)? == (2, 1), "the kernel's defaults");
    let d = snoop(&lab, &[])?;
    let st = d.wait_status(WAIT, |st| {
        (st["bridges"][0]["source_filtering"] == true).then(|| st.clone())
    })?;
    ensure!(versions(&lab)? == (3, 2), "raised for IGMPv3/MLDv2");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")?;
    ensure!(
        st["kernel"]["release"] == release.trim(),
        "{:#}",
        st["kernel"]
    );
    ensure!(features(&st).iter().any(|f| f == "mdb_sg"), "{st:#}");
    let g = ip("232.1.1.1");
    let s1 = lab.host("s1").ipv4();
    let mut inc = member(&lab, "inc")?;
    inc.join_source(g, s1.into())?;
    let mut m1 = member(&lab, "s1")?;
    let mut m2 = member(&lab, "s2")?;
    expect_receivers(&lab, &mut m1, "s1", g, &["inc"])?;
    expect_receivers(&lab, &mut m2, "s2", g, &[])?;
    // An admin lowers the version: igmpd does not fight it, says why, and writes (*,G).
    lab.switch().netns().exec_ok(&[
        "ip",
        "link",
        "set",
        "br0",
        "type",
        "bridge",
        "mcast_igmp_version",
        "2",
    ])?;
    d.wait_status(WAIT, |st| {
        (st["bridges"][0]["source_filtering"] == false && has_finding(st, "source-filtering-off"))
            .then_some(())
    })?;
    expect_receivers(&lab, &mut m2, "s2", g, &["inc"])?;
    d.stop()?;
    ensure!(versions(&lab)? == (2, 1), "restored at exit");
    Ok(())
}

#[test]
fn without_source_lists_include_joins_are_per_source_entries_and_survive_sigkill() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .hosts(&["s1", "s2", "inc"])
        .host_spec(HostSpec::new("v2").force_igmp_version(2))
        .build()?;
    let d = snoop(&lab, &[OLD_KERNEL])?;
    let st = d.wait_status(WAIT, |st| {
        (st["bridges"][0]["source_filtering"] == true).then(|| st.clone())
    })?;
    let f = features(&st);
    ensure!(
        !f.iter()
            .any(|f| f.starts_with("mdb_p") || f == "mdb_source_list"),
        "{f:?}"
    );
    let (g, g2) = (ip("232.1.1.1"), ip("239.70.0.1"));
    let s1 = IpAddr::V4(lab.host("s1").ipv4());
    let mut inc = member(&lab, "inc")?;
    let mut v2 = member(&lab, "v2")?;
    inc.join_source(g, s1)?;
    v2.join(g2)?;
    let (pi, pv) = (
        lab.host("inc").port().to_owned(),
        lab.host("v2").port().to_owned(),
    );
    // igmpd's entries are the permanent ones: while igmpd is down (SIGKILL) the kernel's
    // own snooping learns again (its nftables table went with it) and adds temporary ones.
    let entries_ok = |lab: &Lab| -> Option<()> {
        let m: Vec<_> = lab
            .mdb()
            .ok()?
            .into_iter()
            .filter(|e| e.state == MdbState::Permanent)
            .collect();
        let sg = m
            .iter()
            .any(|e| e.port == pi && e.group == g && e.source == Some(s1));
        let star_inc = m
            .iter()
            .any(|e| e.port == pi && e.group == g && e.source.is_none());
        let star_v2 = m.iter().any(|e| e.is_star_g(&pv, g2));
        // Nothing carries igmpd's protocol value on such a kernel.
        let proto = m.iter().any(|e| e.protocol.as_deref() == Some("73"));
        (sg && !star_inc && star_v2 && !proto).then_some(())
    };
    poll_until(WAIT, Duration::from_millis(50), || entries_ok(&lab))
        .with_context(|| format!("MDB {:?}", lab.mdb()))?;
    let mut m1 = member(&lab, "s1")?;
    let mut m2 = member(&lab, "s2")?;
    expect_receivers(&lab, &mut m1, "s1", g, &["inc"])?;
    expect_receivers(&lab, &mut m2, "s2", g, &[])?;
    // SIGKILL and a restart: the state file names igmpd's entries, they are adopted.
    d.kill()?;
    ensure!(
        entries_ok(&lab).is_some(),
        "entries kept while igmpd is down"
    );
    let d = snoop(&lab, &[OLD_KERNEL])?;
    d.wait_status(WAIT, |st| {
        (st["bridges"][0]["counters"]["adopted"].as_u64()? >= 2).then_some(())
    })?;
    ensure!(entries_ok(&lab).is_some(), "adopted, not rewritten");
    expect_receivers(&lab, &mut m1, "s1", g, &["inc"])?;
    // A clean exit hands them to the kernel as temporary entries.
    d.stop()?;
    let m = lab.mdb()?;
    let sg = m
        .iter()
        .find(|e| e.port == pi && e.source == Some(s1))
        .context("(S,G) kept")?;
    ensure!(sg.state == MdbState::Temp, "{sg:?}");
    // The versions the killed igmpd raised are those from before it (its state file).
    ensure!(
        versions(&lab)? == (2, 1),
        "restored after SIGKILL and restart"
    );
    // The state file keeps the temporary entries for the next igmpd; this test's goes.
    let file = common::state_file(&lab)?;
    let text = std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
    std::fs::remove_file(&file)?;
    ensure!(text.contains(&s1.to_string()), "{text}");
    Ok(())
}
