//! The demo behind `scripts/demo.sh`: the failure igmpd exists for and how igmpd finds it,
//! told step by step in network namespaces (nothing touches this machine's own interfaces).
//!
//! R runs `igmpd query` (short timers), a Linux bridge snoops IGMP, hosts A and B join a
//! group that R sends to. B's firewall drops IGMP: B keeps receiving only until the switch
//! forgets it one membership interval later (260 s with default timers, "about five
//! minutes"; 5 s here). igmpd names B from the querier and from any host, shows B's own
//! firewall rule on B, and the fix brings the stream back.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use igmpd_netns_tests::{BridgeConfig, IgmpVersion, Igmpd, Lab, Member, Netns};
use serde_json::Value;

const PORT: u16 = 5001;
const BURST: u32 = 20;
const STEPS: u32 = 7;

fn step(n: u32, text: &str) {
    println!("\n[{n}/{STEPS}] {text}");
}

fn mdb_ports(lab: &Lab, group: IpAddr) -> Result<String> {
    let mut ports: Vec<String> = lab
        .mdb()?
        .into_iter()
        .filter(|e| e.group == group)
        .map(|e| {
            let who = lab
                .hosts()
                .iter()
                .find(|h| h.port() == e.port)
                .map_or("?", |h| h.name());
            format!("{} (host {who})", e.port)
        })
        .collect();
    ports.sort();
    Ok(if ports.is_empty() {
        "none".into()
    } else {
        ports.join(", ")
    })
}

fn burst(s: &mut Member, a: &mut Member, b: &mut Member, group: IpAddr) -> Result<(u64, u64)> {
    let (a0, b0) = (a.count(PORT)?, b.count(PORT)?);
    s.send(group, PORT, BURST)?;
    // A is always registered: once A has the whole burst, B has whatever it will get.
    a.wait_count(PORT, a0 + u64::from(BURST), Duration::from_secs(5))?;
    let _ = b.wait_count(PORT, b0 + u64::from(BURST), Duration::from_millis(300));
    Ok((a.count(PORT)? - a0, b.count(PORT)? - b0))
}

/// Runs `igmpd ARGS` in `ns` and prints its output indented; returns the exit code.
fn show(ns: &Netns, bin: &str, args: &[&str]) -> Result<i32> {
    let mut argv = vec![bin];
    argv.extend_from_slice(args);
    println!("  $ igmpd {}", args.join(" "));
    let out = ns.exec(&argv)?;
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
    {
        println!("    {line}");
    }
    Ok(out.status.code().unwrap_or(-1))
}

fn findings(st: &Value) -> Vec<String> {
    st["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["code"] == "member-silent")
        .map(|f| {
            format!(
                "{} {}: {}",
                f["severity"].as_str().unwrap_or(""),
                f["code"].as_str().unwrap_or(""),
                f["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn main() -> Result<()> {
    println!("igmpd demo: a host whose firewall drops IGMP hears its multicast stream for one");
    println!(
        "membership interval after it joins, then nothing; igmpd finds the host and the rule."
    );
    println!("Everything runs in network namespaces created for this demo and deleted at the end.");
    let igmpd = Igmpd::locate_binary()?;
    let bin = igmpd
        .to_str()
        .context("binary path is not UTF-8")?
        .to_string();

    step(1, "Setting up the LAN");
    let config = BridgeConfig::snooping()
        .membership_interval(Duration::from_secs(5))
        .igmp_version(IgmpVersion::V3);
    let lab = Lab::builder()
        .bridge(config)
        .hosts(&["r", "a", "b"])
        .build()?;
    println!(
        "  switch : Linux bridge {} with IGMP snooping, membership interval 5 s (default 260 s)",
        lab.switch().bridge()
    );
    for h in lab.hosts() {
        println!(
            "  host {} : {} on bridge port {}",
            h.name(),
            h.ipv4(),
            h.port()
        );
    }
    let r = Igmpd::spawn(
        lab.host("r").netns(),
        &igmpd,
        &[
            "query",
            "eth0",
            "--query-interval",
            "2s",
            "--query-response-interval",
            "1s",
        ],
    )?;
    println!("  R runs: igmpd query eth0 --query-interval 2s --query-response-interval 1s");
    let member = Member::locate_binary()?;
    let mut s = Member::spawn(lab.host("r"), &member)?;
    let mut a = Member::spawn(lab.host("a"), &member)?;
    let mut b = Member::spawn(lab.host("b"), &member)?;
    let group: IpAddr = "239.20.0.1".parse()?;

    step(2, "A and B join the group; R sends to it");
    a.listen(PORT)?;
    b.listen(PORT)?;
    a.join(group)?;
    b.join(group)?;
    lab.wait_membership("a", group, true, Duration::from_secs(5))?;
    lab.wait_membership("b", group, true, Duration::from_secs(5))?;
    println!("  switch MDB for {group}: {}", mdb_ports(&lab, group)?);
    let (ra, rb) = burst(&mut s, &mut a, &mut b, group)?;
    println!("  R sends {BURST} packets: A receives {ra}, B receives {rb}");

    step(
        3,
        "B gets a firewall: input policy drop, only its application's UDP port 5001 open",
    );
    lab.host("b").nft(&format!(
        "table inet hostfw {{
            chain input {{
                type filter hook input priority filter; policy drop;
                iif lo accept
                udp dport {PORT} accept
            }}
        }}"
    ))?;
    let broke = Instant::now();
    lab.wait_membership("b", group, false, Duration::from_secs(30))?;
    println!(
        "  B no longer answers the queries: the switch forgot it {:.1?} later",
        broke.elapsed()
    );
    println!("  switch MDB for {group}: {}", mdb_ports(&lab, group)?);
    let (ra, rb) = burst(&mut s, &mut a, &mut b, group)?;
    println!("  R sends {BURST} packets: A receives {ra}, B receives {rb}   <- B is cut off; its application still listens");

    step(4, "The querier noticed: R's igmpd names the silent member");
    let st = r.wait_status(Duration::from_secs(30), |st| {
        let f = findings(st);
        (!f.is_empty()).then_some(f)
    })?;
    for f in st {
        println!("  R status: {f}");
    }

    step(5, "From any host: igmpd doctor --probe on A names B");
    show(
        lab.host("a").netns(),
        &bin,
        &["doctor", "eth0", "--probe", "--duration", "5s"],
    )?;

    step(6, "On B itself: igmpd doctor names the rule");
    show(
        lab.host("b").netns(),
        &bin,
        &["doctor", "eth0", "--duration", "4s"],
    )?;

    step(
        7,
        "The fixes the doctor printed: let IGMP and MLD queries in on B",
    );
    for fix in [
        "add rule inet hostfw input ip protocol igmp accept",
        "add rule inet hostfw input icmpv6 type mld-listener-query accept",
    ] {
        println!("  $ nft {fix}");
        lab.host("b").nft(fix)?;
    }
    let fixed = Instant::now();
    lab.wait_membership("b", group, true, Duration::from_secs(30))?;
    println!(
        "  B answered the next query: registered again after {:.1?}",
        fixed.elapsed()
    );
    r.wait_status(Duration::from_secs(30), |st| {
        findings(st).is_empty().then_some(())
    })?;
    println!("  R status: no findings");
    let (ra, rb) = burst(&mut s, &mut a, &mut b, group)?;
    println!("  R sends {BURST} packets: A receives {ra}, B receives {rb}");

    println!("\nCleaning up (namespaces and processes are removed)");
    drop((s, a, b, r));
    drop(lab);
    println!("done");
    Ok(())
}
