//! The demo behind `scripts/demo.sh`: the failure igmpd exists for, told step by step in
//! network namespaces (nothing touches this machine's own interfaces).
//!
//! A Linux bridge snoops IGMP and is its own querier (short timers). Hosts A and B join a
//! group that S sends to. B's firewall drops IGMP: it keeps receiving only until the switch
//! forgets it one membership interval later (260 s with default timers, "about five
//! minutes"; 5 s here). Accepting IGMP brings the stream back.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use igmpd_netns_tests::{BridgeConfig, Lab, Member};

const PORT: u16 = 5001;
const BURST: u32 = 20;

fn step(n: u32, text: &str) {
    println!("\n[{n}/5] {text}");
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
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        if b.count(PORT)? >= b0 + u64::from(BURST) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((a.count(PORT)? - a0, b.count(PORT)? - b0))
}

fn main() -> Result<()> {
    let config = BridgeConfig::fast_querier();
    let membership = config.membership_interval.context("fast_querier sets it")?;
    let query = config.query_interval.context("fast_querier sets it")?;
    println!("igmpd demo: a host whose firewall drops IGMP hears its multicast stream for one");
    println!("membership interval after it joins, then nothing. Everything below runs in");
    println!("network namespaces created for this demo and deleted at the end.");

    step(1, "Setting up the LAN");
    let lab = Lab::builder()
        .bridge(config)
        .hosts(&["s", "a", "b"])
        .build()?;
    println!(
        "  switch : Linux bridge {} with IGMP snooping, its own querier at {}",
        lab.switch().bridge(),
        lab.switch().ipv4().map_or("-".into(), |a| a.to_string())
    );
    println!("           query interval {query:?}, membership interval {membership:?} (defaults: 125 s, 260 s)");
    for h in lab.hosts() {
        println!(
            "  host {} : {} on bridge port {}",
            h.name(),
            h.ipv4(),
            h.port()
        );
    }
    let member = Member::locate_binary()?;
    let mut s = Member::spawn(lab.host("s"), &member)?;
    let mut a = Member::spawn(lab.host("a"), &member)?;
    let mut b = Member::spawn(lab.host("b"), &member)?;
    let group: IpAddr = "239.20.0.1".parse()?;

    step(2, "A and B join the group; S sends to it");
    lab.host("b").nft(&format!(
        "table inet hostfw {{
            chain input {{
                type filter hook input priority filter; policy drop;
                iif lo accept
                udp dport {PORT} accept
            }}
        }}"
    ))?;
    println!("  B's firewall: input policy drop, only UDP port {PORT} (its application) accepted");
    a.listen(PORT)?;
    b.listen(PORT)?;
    a.join(group)?;
    b.join(group)?;
    let joined = Instant::now();
    lab.wait_membership("a", group, true, Duration::from_secs(5))?;
    lab.wait_membership("b", group, true, Duration::from_secs(5))?;
    println!("  switch MDB for {group}: {}", mdb_ports(&lab, group)?);
    let (ra, rb) = burst(&mut s, &mut a, &mut b, group)?;
    println!(
        "  S sends {BURST} packets: A receives {ra}, B receives {rb}   (B's join reports went out)"
    );

    step(
        3,
        "The querier asks; B's firewall drops the question; the switch forgets B",
    );
    lab.wait_membership("b", group, false, membership + Duration::from_secs(10))?;
    println!(
        "  B's entry expired {:.1?} after the join",
        joined.elapsed()
    );
    println!("  switch MDB for {group}: {}", mdb_ports(&lab, group)?);
    let (ra, rb) = burst(&mut s, &mut a, &mut b, group)?;
    println!("  S sends {BURST} packets: A receives {ra}, B receives {rb}   <- B is cut off; its application still listens");

    step(4, "The fix: let IGMP in on B");
    println!("  nft add rule inet hostfw input ip protocol igmp accept");
    lab.host("b")
        .nft("add rule inet hostfw input ip protocol igmp accept")?;
    let fixed = Instant::now();
    lab.wait_membership("b", group, true, 2 * query + Duration::from_secs(5))?;
    println!(
        "  B answered the next query: registered again after {:.1?}",
        fixed.elapsed()
    );
    let (ra, rb) = burst(&mut s, &mut a, &mut b, group)?;
    println!("  S sends {BURST} packets: A receives {ra}, B receives {rb}");

    step(
        5,
        "Cleaning up (namespaces and helper processes are removed)",
    );
    drop((s, a, b));
    drop(lab);
    println!("  done");
    Ok(())
}
