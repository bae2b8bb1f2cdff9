//! The per-report CPU cost of the snooping core, without I/O: what `igmpd snoop` spends on
//! each captured IGMPv2 re-join after the receive system call (parse, per-port membership,
//! the bridge querier's own table, router-port forwarding, output drain). The sustained
//! scenario of `scripts/bench.sh` is this loop plus the packet socket.
//!
//! `cargo run --release -p igmpd-snooping --example hotpath [groups] [reports]`

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use igmpd_querier::core::{Config, Instant, Proto};
use igmpd_snooping::core::{SnoopConfig, Snooper};
use igmpd_wire::{Frame, IgmpRepr, Ipv4Header};

fn main() {
    let mut args = std::env::args().skip(1);
    let groups: u32 = args.next().map_or(1000, |s| s.parse().expect("groups"));
    let reports: u64 = args
        .next()
        .map_or(2_000_000, |s| s.parse().expect("reports"));
    let cfg = SnoopConfig {
        igmp: Some(Config::new(Proto::Igmp)),
        mld: Some(Config::new(Proto::Mld)),
        querier: true,
        router_ports: BTreeSet::new(),
        source_filtering_v4: true,
        source_filtering_v6: true,
        entry_limit: 100_000,
        vlans: BTreeMap::new(),
        vlan_filtering: true,
        vlan_snooping: false,
        policy: Default::default(),
        flood_groups: Vec::new(),
    };
    let (port, other) = (11, 12);
    let mut s = Snooper::new(cfg);
    s.set_addresses(
        Instant::from_millis(0),
        Some(Ipv4Addr::new(10, 0, 0, 254)),
        None,
    );
    s.bridge_up(Instant::from_millis(0));
    s.port_up(port);
    s.port_up(other);
    let host = Ipv4Addr::new(10, 0, 0, 1);
    let frames: Vec<Vec<u8>> = (0..groups)
        .map(|i| {
            let g = Ipv4Addr::from(u32::from(Ipv4Addr::new(239, 10, 0, 1)) + i);
            Frame::igmp(
                [2, 0, 0, 0, 0, 1],
                None,
                Ipv4Header::igmp(host, g),
                IgmpRepr::V2Report { group: g },
            )
            .to_bytes()
        })
        .collect();
    let mut forward = Vec::new();
    let mut feed = |s: &mut Snooper, now: Instant, bytes: &[u8]| {
        let f = igmpd_wire::parse_ethernet(bytes).expect("own frame");
        forward.clear();
        s.receive(now, port, 0, &f.packet, &mut forward);
    };
    for f in &frames {
        feed(&mut s, Instant::from_millis(1), f);
    }
    s.drain().for_each(drop);
    // Re-joins as they arrive at ~300k/s: 300 per virtual millisecond, outputs drained per
    // batch of 256 like the daemon does.
    let start = std::time::Instant::now();
    let mut now = Instant::from_millis(2);
    for i in 0..reports {
        if i % 300 == 0 {
            now = now + Duration::from_millis(1);
        }
        feed(&mut s, now, &frames[(i % u64::from(groups)) as usize]);
        if i % 256 == 255 {
            s.drain().for_each(drop);
        }
    }
    let took = start.elapsed();
    println!(
        "{groups} groups, {reports} re-joins: {:.0} ns per report ({:.0} k reports/s on one core)",
        took.as_nanos() as f64 / reports as f64,
        reports as f64 / took.as_secs_f64() / 1e3
    );
}
