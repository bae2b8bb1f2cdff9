//! The problem igmpd exists for, reproduced with the kernel alone.
//!
//! A host whose firewall drops IGMP (input policy drop, only the application's UDP port
//! accepted) joins a group: its unsolicited reports go out (output is not filtered), the
//! snooping switch learns the port and the host receives the stream. The switch's querier
//! then asks every query interval, the host never hears the question, and one membership
//! interval after its last report the switch forgets the port: the stream stops. With the
//! kernel bridge's defaults that is 260 s, the "it works for about five minutes" report;
//! here the timers are short (query 2 s, response 1 s, membership 5 s).
//!
//! Versions: the bridge queries IGMPv3 (`mcast_igmp_version 3`) and the hosts run their
//! kernel default, IGMPv3.
//!
//! Topology: S sends, A and B are members. A must keep its entry: with the group still
//! registered the bridge forwards it only to MDB ports; were the group unregistered, the
//! port default `mcast_flood on` would flood it to B again and hide the failure. (The
//! kernel also floods everything during the first Max Response Delay after the querier
//! appears; see `BridgeConfig`: about 1 s here, long before B's entry ages out.)

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::{member_bin, BridgeConfig, Lab, Member};

const PORT: u16 = 5001;
const BURST: u32 = 20;

#[test]
fn host_firewall_dropping_igmp_loses_the_stream_after_one_membership_interval() -> Result<()> {
    let config = BridgeConfig::fast_querier();
    let membership = config.membership_interval.context("set by fast_querier")?;
    let query = config.query_interval.context("set by fast_querier")?;
    let response = config
        .query_response_interval
        .context("set by fast_querier")?;
    let lab = Lab::builder()
        .bridge(config)
        .hosts(&["s", "a", "b"])
        .build()?;
    let group: IpAddr = "239.20.0.1".parse()?;

    // B: the application's port and nothing else comes in; output is not filtered.
    lab.host("b").nft(&format!(
        "table inet hostfw {{
            chain input {{
                type filter hook input priority filter; policy drop;
                iif lo accept
                udp dport {PORT} accept
            }}
        }}"
    ))?;

    let mut s = Member::spawn(lab.host("s"), member_bin!())?;
    let mut a = Member::spawn(lab.host("a"), member_bin!())?;
    let mut b = Member::spawn(lab.host("b"), member_bin!())?;
    a.listen(PORT)?;
    b.listen(PORT)?;
    a.join(group)?;
    b.join(group)?;
    let joined = Instant::now();

    // 1. Both learned from the unsolicited reports; both receive.
    lab.wait_membership("a", group, true, Duration::from_secs(5))?;
    lab.wait_membership("b", group, true, Duration::from_secs(5))?;
    s.send(group, PORT, BURST)?;
    a.wait_count(PORT, u64::from(BURST), Duration::from_secs(5))?;
    b.wait_count(PORT, u64::from(BURST), Duration::from_secs(5))?;

    // 2. B never hears the queries: its entry ages out after the membership interval,
    //    while A, answering every query, keeps its own.
    lab.wait_membership("b", group, false, membership + Duration::from_secs(10))
        .context("B's entry should age out")?;
    eprintln!(
        "B's entry expired {:.1?} after the join (membership interval {membership:?})",
        joined.elapsed()
    );
    ensure!(
        joined.elapsed() >= membership,
        "B's entry went away before a membership interval passed"
    );
    ensure!(lab.has_membership("a", group)?, "A must stay registered");

    // 3. A fresh burst reaches A but not B. The bridge forwards to both ports in the same
    //    pass, so once A has it all, B has whatever it will get.
    s.send(group, PORT, BURST)?;
    a.wait_count(PORT, 2 * u64::from(BURST), Duration::from_secs(5))?;
    b.stays_at(PORT, u64::from(BURST), Duration::from_millis(500))
        .context("B must not receive the group once its entry is gone")?;
    ensure!(
        lab.has_membership("a", group)?,
        "A must still be registered"
    );

    // 4. Letting IGMP in: B answers the next query and is registered again.
    lab.host("b")
        .nft("add rule inet hostfw input ip protocol igmp accept")?;
    let fixed = Instant::now();
    lab.wait_membership(
        "b",
        group,
        true,
        2 * query + response + Duration::from_secs(5),
    )
    .context("B should be registered again after the next query")?;
    eprintln!(
        "B registered again {:.1?} after accepting IGMP",
        fixed.elapsed()
    );
    s.send(group, PORT, BURST)?;
    a.wait_count(PORT, 3 * u64::from(BURST), Duration::from_secs(5))?;
    b.wait_count(PORT, 2 * u64::from(BURST), Duration::from_secs(5))?;
    Ok(())
}
