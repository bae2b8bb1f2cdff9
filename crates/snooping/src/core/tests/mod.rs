//! Virtual-time tests of the snooping core: router ports, per-port state, query lowering,
//! report forwarding, MDB diffing, the hash limit, restart adoption and VLAN keys. The
//! RFC 9776 §6.4 rows themselves are covered by the querier crate's membership tests.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use igmpd_querier::core::{Config, Instant, Proto};
use igmpd_wire::frame::{Ipv4Header, Ipv6Header};
use igmpd_wire::pim::PimHello;
use igmpd_wire::{
    GroupRecord, IgmpQuery, IgmpRepr, IgmpVersion, MldRepr, MrdRepr, Packet, RecordType,
};

use super::*;

const P1: u32 = 11;
const P2: u32 = 12;
const P3: u32 = 13;

fn cfg(querier: bool) -> SnoopConfig {
    let mut igmp = Config::new(Proto::Igmp);
    igmp.query_interval = Duration::from_secs(2);
    igmp.query_response_interval = Duration::from_secs(1);
    igmp.last_member_query_interval = Duration::from_millis(500);
    let mut mld = Config::new(Proto::Mld);
    mld.query_interval = Duration::from_secs(2);
    mld.query_response_interval = Duration::from_secs(1);
    mld.last_member_query_interval = Duration::from_millis(500);
    SnoopConfig {
        igmp: Some(igmp),
        mld: Some(mld),
        querier,
        router_ports: BTreeSet::new(),
        source_filtering_v4: true,
        source_filtering_v6: true,
        entry_limit: 1000,
        vlans: BTreeMap::new(),
        vlan_filtering: true,
        vlan_snooping: false,
        policy: Default::default(),
        flood_groups: Vec::new(),
    }
}

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn a4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn snooper(c: SnoopConfig) -> Snooper {
    let mut s = Snooper::new(c);
    s.set_addresses(
        t(0),
        Some(a4("10.0.0.254")),
        Some("fe80::254".parse().unwrap()),
    );
    s.bridge_up(t(0));
    for p in [P1, P2, P3] {
        s.port_up(p);
    }
    s.drain().for_each(drop);
    s
}

/// An IGMP packet to the RFC's destination: reports to 224.0.0.22, general queries to
/// all-systems, specific ones to their group (RFC 9776 §4.1.12).
fn igmp(src: &str, igmp: IgmpRepr) -> Packet {
    let dst = match &igmp {
        IgmpRepr::Query(q) if q.group.is_unspecified() => a4("224.0.0.1"),
        IgmpRepr::Query(q) => q.group,
        _ => a4("224.0.0.22"),
    };
    Packet::Igmp {
        ip: Ipv4Header::igmp(a4(src), dst),
        igmp,
    }
}

fn v3(src: &str, t: RecordType, g: &str, sources: &[&str]) -> Packet {
    igmp(
        src,
        IgmpRepr::V3Report {
            records: vec![GroupRecord {
                record_type: t,
                group: a4(g),
                sources: sources.iter().map(|s| a4(s)).collect(),
                aux_data: Vec::new(),
            }],
        },
    )
}

fn join(src: &str, g: &str) -> Packet {
    v3(src, RecordType::ChangeToExclude, g, &[])
}

fn leave(src: &str, g: &str) -> Packet {
    v3(src, RecordType::ChangeToInclude, g, &[])
}

fn query(src: &str, group: Option<&str>) -> Packet {
    let mut q = IgmpQuery::general(IgmpVersion::V3, 1000, 2, 2);
    if let Some(g) = group {
        q.group = a4(g);
        q.max_resp_code = 5; // 500 ms
    }
    igmp(src, IgmpRepr::Query(q))
}

/// A PIM hello (RFC 7761 §4.9.2) from `src` with that Holdtime option, to ALL-PIM-ROUTERS
/// (no Router Alert: PIM does not use it).
fn pim_hello(src: &str, holdtime: Option<u16>) -> Packet {
    Packet::PimHelloV4 {
        ip: Ipv4Header {
            router_alert: false,
            ..Ipv4Header::igmp(a4(src), igmpd_wire::pim::ALL_PIM_ROUTERS_V4)
        },
        hello: PimHello { holdtime },
    }
}

fn rx(s: &mut Snooper, now: u64, port: u32, p: &Packet) -> Vec<u32> {
    let mut f = Vec::new();
    s.receive(t(now), port, 0, p, &mut f);
    f
}

fn ops(s: &mut Snooper) -> Vec<MdbOp> {
    s.drain()
        .filter_map(|o| match o {
            Output::Mdb(op) => Some(op),
            _ => None,
        })
        .collect()
}

fn key(port: u32, g: &str) -> EntryKey {
    EntryKey {
        port,
        vid: 0,
        group: g.parse().unwrap(),
    }
}

/// Runs every deadline up to `until`.
fn run_until(s: &mut Snooper, until: u64) {
    while let Some(d) = s.next_deadline() {
        if d > t(until) {
            break;
        }
        s.poll(d);
    }
}

#[test]
fn a_join_writes_one_permanent_entry_and_a_refresh_writes_nothing() {
    let mut s = snooper(cfg(false));
    rx(&mut s, 10, P1, &join("10.0.0.1", "239.1.1.1"));
    assert_eq!(
        ops(&mut s),
        [MdbOp::Set(key(P1, "239.1.1.1"), EntryFilter::Any)]
    );
    rx(
        &mut s,
        500,
        P1,
        &v3("10.0.0.1", RecordType::ModeIsExclude, "239.1.1.1", &[]),
    );
    assert_eq!(ops(&mut s), []);
}

#[test]
fn memberships_are_per_port() {
    let mut s = snooper(cfg(false));
    rx(&mut s, 10, P1, &join("10.0.0.1", "239.1.1.1"));
    rx(&mut s, 10, P2, &join("10.0.0.2", "239.1.1.1"));
    assert_eq!(
        ops(&mut s),
        [
            MdbOp::Set(key(P1, "239.1.1.1"), EntryFilter::Any),
            MdbOp::Set(key(P2, "239.1.1.1"), EntryFilter::Any)
        ]
    );
    // P1's host goes silent; P2's keeps reporting: only P1's entry ends, after GMI 5 s.
    for ms in (1000..6000).step_by(1000) {
        rx(
            &mut s,
            ms,
            P2,
            &v3("10.0.0.2", RecordType::ModeIsExclude, "239.1.1.1", &[]),
        );
        run_until(&mut s, ms);
    }
    run_until(&mut s, 6000);
    assert_eq!(ops(&mut s), [MdbOp::Delete(key(P1, "239.1.1.1"))]);
}

#[test]
fn without_querier_a_leave_waits_for_the_queriers_group_specific_query() {
    let mut s = snooper(cfg(false));
    rx(&mut s, 0, P1, &query("10.0.0.9", None));
    rx(&mut s, 10, P2, &join("10.0.0.1", "239.1.1.1"));
    rx(&mut s, 10, P3, &join("10.0.0.3", "239.1.1.1"));
    ops(&mut s);
    rx(&mut s, 100, P2, &leave("10.0.0.1", "239.1.1.1"));
    run_until(&mut s, 3000);
    assert_eq!(
        ops(&mut s),
        [],
        "RFC 4541: the snooper itself does not act on the leave"
    );
    // The querier's Q(G), Max Resp 500 ms, lowers every port to 2 x 500 ms (§6.6.1).
    rx(&mut s, 3000, P1, &query("10.0.0.9", Some("239.1.1.1")));
    // P3's host answers, P2's does not.
    rx(
        &mut s,
        3200,
        P3,
        &v3("10.0.0.3", RecordType::ModeIsExclude, "239.1.1.1", &[]),
    );
    run_until(&mut s, 3999);
    assert_eq!(ops(&mut s), []);
    run_until(&mut s, 4000);
    assert_eq!(ops(&mut s), [MdbOp::Delete(key(P2, "239.1.1.1"))]);
}

#[test]
fn with_querier_a_leave_sends_last_member_queries_that_lower_every_port() {
    let mut s = snooper(cfg(true));
    run_until(&mut s, 100);
    rx(&mut s, 200, P1, &join("10.0.0.1", "239.1.1.1"));
    s.drain().for_each(drop);
    rx(&mut s, 300, P1, &leave("10.0.0.1", "239.1.1.1"));
    let queries: Vec<_> = s
        .drain()
        .filter_map(|o| match o {
            Output::Query {
                query: AnyQuery::V4(q),
                ..
            } => Some(q),
            _ => None,
        })
        .collect();
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].group, Some(a4("239.1.1.1")));
    run_until(&mut s, 1299);
    assert!(!ops(&mut s).contains(&MdbOp::Delete(key(P1, "239.1.1.1"))));
    run_until(&mut s, 1300);
    assert!(ops(&mut s).contains(&MdbOp::Delete(key(P1, "239.1.1.1"))));
}

#[test]
fn reports_go_to_router_ports_of_their_family_never_back_or_elsewhere() {
    let mut s = snooper(cfg(false));
    assert_eq!(
        rx(&mut s, 0, P2, &join("10.0.0.1", "239.1.1.1")),
        Vec::<u32>::new()
    );
    rx(&mut s, 0, P1, &query("10.0.0.9", None));
    assert_eq!(rx(&mut s, 10, P2, &join("10.0.0.1", "239.1.1.1")), [P1]);
    // The router's own report is not sent back to it.
    assert_eq!(
        rx(&mut s, 10, P1, &join("10.0.0.9", "239.1.1.2")),
        Vec::<u32>::new()
    );
    // An IGMP querier does not make the port an MLD router port.
    let mld = Packet::Mld {
        ip: Ipv6Header::mld("fe80::1".parse().unwrap(), "ff02::16".parse().unwrap()),
        mld: MldRepr::V1Report {
            group: "ff0e::1".parse().unwrap(),
        },
    };
    assert_eq!(rx(&mut s, 20, P2, &mld), Vec::<u32>::new());
}

#[test]
fn proxy_queries_from_0_0_0_0_do_not_make_router_ports() {
    let mut s = snooper(cfg(false));
    rx(&mut s, 0, P1, &query("0.0.0.0", None));
    assert!(s.routers().reflected().is_empty());
}

#[test]
fn query_learned_router_ports_expire_after_the_other_querier_present_interval() {
    let mut s = snooper(cfg(false));
    rx(&mut s, 0, P1, &query("10.0.0.9", None));
    let outs: Vec<Output> = s.drain().collect();
    assert!(outs.contains(&Output::RouterPort {
        port: P1,
        vid: 0,
        router: true
    }));
    // OQPI = 2 x 2 s + 1 s / 2 = 4.5 s.
    run_until(&mut s, 4499);
    assert!(!s.drain().any(|o| matches!(o, Output::RouterPort { .. })));
    run_until(&mut s, 4500);
    assert!(s.drain().any(|o| o
        == Output::RouterPort {
            port: P1,
            vid: 0,
            router: false
        }));
}

#[test]
fn pim_hellos_and_mrd_advertisements_make_router_ports_for_their_holdtime() {
    let mut s = snooper(cfg(false));
    let pim = pim_hello("10.0.0.7", Some(3));
    assert_eq!(
        s.receive(t(0), P2, 0, &pim, &mut Vec::new()),
        Received::Router
    );
    assert_eq!(rx(&mut s, 10, P1, &join("10.0.0.1", "239.1.1.1")), [P2]);
    run_until(&mut s, 3000);
    assert_eq!(
        rx(&mut s, 3000, P1, &join("10.0.0.1", "239.1.1.1")),
        Vec::<u32>::new()
    );
    // MRD: 3 x advertisement interval; a termination ends it at once (RFC 4286 §7).
    let adv = igmp(
        "10.0.0.8",
        IgmpRepr::Mrd(MrdRepr::Advertisement {
            advertisement_interval: 20,
            query_interval: 0,
            robustness: 0,
        }),
    );
    rx(&mut s, 4000, P3, &adv);
    assert_eq!(rx(&mut s, 4010, P1, &join("10.0.0.1", "239.1.1.1")), [P3]);
    run_until(&mut s, 63_999);
    assert_eq!(rx(&mut s, 63_999, P1, &join("10.0.0.1", "239.1.1.1")), [P3]);
    rx(
        &mut s,
        64_000,
        P3,
        &igmp("10.0.0.8", IgmpRepr::Mrd(MrdRepr::Termination)),
    );
    assert_eq!(
        rx(&mut s, 64_001, P1, &join("10.0.0.1", "239.1.1.1")),
        Vec::<u32>::new()
    );
}

#[test]
fn configured_router_ports_are_always_targets() {
    let mut c = cfg(false);
    c.router_ports = [P3].into();
    let mut s = Snooper::new(c);
    s.bridge_up(t(0));
    for p in [P1, P2, P3] {
        s.port_up(p);
    }
    assert!(s.drain().any(|o| o
        == Output::RouterPort {
            port: P3,
            vid: 0,
            router: true
        }));
    assert_eq!(rx(&mut s, 10, P1, &join("10.0.0.1", "239.1.1.1")), [P3]);
}

#[test]
fn source_lists_follow_the_state_and_are_rewritten_only_on_change() {
    let mut s = snooper(cfg(false));
    let g = "232.1.1.1";
    rx(
        &mut s,
        0,
        P1,
        &v3("10.0.0.1", RecordType::AllowNew, g, &["10.9.0.1"]),
    );
    assert_eq!(
        ops(&mut s),
        [MdbOp::Set(
            key(P1, g),
            EntryFilter::Include(vec![ip("10.9.0.1")])
        )]
    );
    rx(
        &mut s,
        10,
        P1,
        &v3("10.0.0.1", RecordType::ModeIsInclude, g, &["10.9.0.1"]),
    );
    assert_eq!(ops(&mut s), []);
    rx(
        &mut s,
        20,
        P1,
        &v3("10.0.0.1", RecordType::AllowNew, g, &["10.9.0.2"]),
    );
    assert_eq!(
        ops(&mut s),
        [MdbOp::Set(
            key(P1, g),
            EntryFilter::Include(vec![ip("10.9.0.1"), ip("10.9.0.2")])
        )]
    );
    // EXCLUDE with a blocked source on another port.
    rx(
        &mut s,
        30,
        P2,
        &v3("10.0.0.2", RecordType::ChangeToExclude, g, &["10.9.0.1"]),
    );
    assert_eq!(
        ops(&mut s),
        [MdbOp::Set(
            key(P2, g),
            EntryFilter::Exclude(vec![ip("10.9.0.1")])
        )]
    );
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn bridges_without_source_lookup_get_plain_entries_and_big_lists_degrade() {
    let mut c = cfg(false);
    c.source_filtering_v4 = false;
    let mut s = snooper(c);
    rx(
        &mut s,
        0,
        P1,
        &v3("10.0.0.1", RecordType::AllowNew, "232.1.1.1", &["10.9.0.1"]),
    );
    assert_eq!(
        ops(&mut s),
        [MdbOp::Set(key(P1, "232.1.1.1"), EntryFilter::Any)]
    );
    let mut s = snooper(cfg(false));
    let many: Vec<String> = (1..=32).map(|i| format!("10.9.1.{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    rx(
        &mut s,
        0,
        P1,
        &v3("10.0.0.1", RecordType::AllowNew, "232.1.1.2", &many),
    );
    assert_eq!(
        ops(&mut s),
        [MdbOp::Set(key(P1, "232.1.1.2"), EntryFilter::Any)]
    );
    assert_eq!(s.mdb().degraded_total(), 1);
}

#[test]
fn new_groups_are_refused_at_the_hash_limit_and_written_when_room_frees() {
    let mut c = cfg(false);
    c.entry_limit = 2;
    let mut s = snooper(c);
    rx(&mut s, 0, P1, &join("10.0.0.1", "239.1.1.1"));
    rx(&mut s, 0, P1, &join("10.0.0.1", "239.1.1.2"));
    // The same group on another port uses no new kernel key.
    rx(&mut s, 0, P2, &join("10.0.0.2", "239.1.1.2"));
    assert_eq!(ops(&mut s).len(), 3);
    rx(&mut s, 0, P1, &join("10.0.0.1", "239.1.1.3"));
    let outs: Vec<Output> = s.drain().collect();
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Event(SnoopEvent::Refused { .. }))));
    assert!(!outs.iter().any(|o| matches!(o, Output::Mdb(_))));
    assert_eq!(s.mdb().refused_total(), 1);
    assert_eq!(s.mdb().keys_in_use(), 2);
    // A source list that does not fit is written as a plain (*,G).
    rx(
        &mut s,
        10,
        P2,
        &v3(
            "10.0.0.2",
            RecordType::ChangeToExclude,
            "239.1.1.2",
            &["10.9.0.1"],
        ),
    );
    assert_eq!(ops(&mut s), []);
    // 239.1.1.1 goes: the refused group gets its entry.
    rx(&mut s, 20, P1, &leave("10.0.0.1", "239.1.1.1"));
    run_until(&mut s, 6000);
    let o = ops(&mut s);
    assert!(o.contains(&MdbOp::Delete(key(P1, "239.1.1.1"))), "{o:?}");
    assert!(
        o.contains(&MdbOp::Set(key(P1, "239.1.1.3"), EntryFilter::Any)),
        "{o:?}"
    );
}

#[test]
fn adopted_entries_keep_forwarding_and_expire_unless_reported() {
    let mut s = snooper(cfg(true));
    s.adopt(t(0), key(P1, "239.1.1.1"), EntryFilter::Any, true);
    s.adopt(
        t(0),
        key(P2, "239.1.1.2"),
        EntryFilter::Include(vec![ip("10.9.0.1")]),
        true,
    );
    s.adopt(t(0), key(P3, "239.1.1.3"), EntryFilter::Any, false);
    // Unknown port: deleted at once.
    s.adopt(t(0), key(99, "239.1.1.4"), EntryFilter::Any, true);
    assert_eq!(
        ops(&mut s),
        [
            MdbOp::Set(key(P3, "239.1.1.3"), EntryFilter::Any),
            MdbOp::Delete(key(99, "239.1.1.4"))
        ],
        "only the temporary entry is rewritten (as permanent)"
    );
    // P1's host still reports; the others do not: they go after one GMI (5 s).
    for ms in (1000..=6000).step_by(1000) {
        rx(
            &mut s,
            ms,
            P1,
            &v3("10.0.0.1", RecordType::ModeIsExclude, "239.1.1.1", &[]),
        );
        run_until(&mut s, ms);
    }
    let o = ops(&mut s);
    assert!(o.contains(&MdbOp::Delete(key(P2, "239.1.1.2"))), "{o:?}");
    assert!(o.contains(&MdbOp::Delete(key(P3, "239.1.1.3"))), "{o:?}");
    assert!(!o.contains(&MdbOp::Delete(key(P1, "239.1.1.1"))), "{o:?}");
}

#[test]
fn without_vlan_filtering_a_tag_is_no_vlan_and_no_vid_is_written() {
    let mut c = cfg(true);
    c.vlan_filtering = false;
    let mut s = snooper(c);
    let mut f = Vec::new();
    s.receive(t(0), P1, 10, &join("10.0.0.1", "239.1.1.1"), &mut f);
    let o = ops(&mut s);
    assert_eq!(o, [MdbOp::Set(key(P1, "239.1.1.1"), EntryFilter::Any)]);
    assert_eq!(s.vids().collect::<Vec<_>>(), [0]);
    assert_eq!(s.counters().tagged_unfiltered, 1);
    // Turned on at runtime, tags name VLANs; turned off again, their state goes.
    s.set_vlan_filtering(true);
    s.add_vlan(t(10), 10);
    s.receive(t(10), P1, 10, &join("10.0.0.1", "239.1.1.2"), &mut f);
    assert_eq!(s.vids().collect::<Vec<_>>(), [0, 10]);
    ops(&mut s);
    s.set_vlan_filtering(false);
    assert_eq!(s.vids().collect::<Vec<_>>(), [0]);
    let o = ops(&mut s);
    assert!(
        o.iter()
            .all(|op| matches!(op, MdbOp::Delete(EntryKey { vid: 10, .. }))),
        "{o:?}"
    );
}

fn vlans(pvid: Option<u16>, vids: &[u16]) -> Option<PortVlans> {
    Some(PortVlans {
        pvid,
        vids: vids.iter().copied().collect(),
        untagged: pvid.into_iter().collect(),
    })
}

#[test]
fn on_a_vlan_filtering_bridge_frames_belong_to_the_ports_vlans() {
    let mut s = snooper(cfg(false));
    let mut f = Vec::new();
    s.set_port_vlans(t(0), P1, vlans(Some(10), &[10, 20]));
    s.set_port_vlans(t(0), P2, vlans(None, &[20]));
    // Untagged on P1: its PVID.
    s.receive(t(0), P1, 0, &join("10.0.0.1", "239.1.1.1"), &mut f);
    // Tagged 20 on P1: VLAN 20; tagged 30: not the port's, dropped.
    s.receive(t(0), P1, 20, &join("10.0.0.1", "239.1.1.2"), &mut f);
    s.receive(t(0), P1, 30, &join("10.0.0.1", "239.1.1.3"), &mut f);
    // Untagged on P2, which has no PVID: dropped.
    s.receive(t(0), P2, 0, &join("10.0.0.2", "239.1.1.4"), &mut f);
    s.receive(t(0), P2, 20, &join("10.0.0.2", "239.1.1.2"), &mut f);
    let sets: Vec<(u32, u16, String)> = ops(&mut s)
        .into_iter()
        .filter_map(|o| match o {
            MdbOp::Set(k, _) => Some((k.port, k.vid, k.group.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(
        sets,
        [
            (P1, 10, "239.1.1.1".to_string()),
            (P1, 20, "239.1.1.2".to_string()),
            (P2, 20, "239.1.1.2".to_string())
        ]
    );
    assert_eq!(s.counters().vlan_drops, 2);
    // VLAN 20 leaves P1: P1's entry there goes, P2's stays, and so does VLAN 20.
    s.set_port_vlans(t(0), P1, vlans(Some(10), &[10]));
    let o = ops(&mut s);
    assert_eq!(
        o,
        [MdbOp::Delete(EntryKey {
            port: P1,
            vid: 20,
            group: "239.1.1.2".parse().unwrap()
        })]
    );
    assert!(s.vids().any(|v| v == 20));
    // The last port leaves VLAN 20: it goes.
    s.set_port_vlans(t(0), P2, vlans(None, &[]));
    ops(&mut s);
    assert!(!s.vids().any(|v| v == 20));
    // A PVID change: untagged frames of P1 are VLAN 30's now.
    s.set_port_vlans(t(0), P1, vlans(Some(30), &[10, 30]));
    s.receive(t(10), P1, 0, &join("10.0.0.1", "239.1.1.9"), &mut f);
    assert!(ops(&mut s)
        .iter()
        .any(|o| matches!(o, MdbOp::Set(k, _) if k.vid == 30)));
}

#[test]
fn vlans_are_separate_keys_and_queriers() {
    let mut c = cfg(true);
    c.vlan_snooping = true;
    let mut s = snooper(c);
    // The bridge has these VLANs (the shell says so from its VLAN database).
    s.add_vlan(t(0), 10);
    s.add_vlan(t(0), 20);
    let mut f = Vec::new();
    s.receive(t(0), P1, 10, &join("10.0.0.1", "239.1.1.1"), &mut f);
    s.receive(t(0), P1, 20, &join("10.0.0.1", "239.1.1.1"), &mut f);
    let outs: Vec<Output> = s.drain().collect();
    let sets: Vec<u16> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Mdb(MdbOp::Set(k, _)) => Some(k.vid),
            _ => None,
        })
        .collect();
    assert_eq!(sets, [10, 20]);
    // Each VLAN's querier starts with its own general query, tagged.
    let vids: BTreeSet<u16> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Query { vid, .. } => Some(*vid),
            _ => None,
        })
        .collect();
    assert_eq!(vids, [10, 20].into());
    assert_eq!(s.vids().collect::<Vec<_>>(), [0, 10, 20]);
    s.remove_vlan(10);
    let o = ops(&mut s);
    assert_eq!(o.len(), 1);
    assert!(matches!(o[0], MdbOp::Delete(EntryKey { vid: 10, .. })));
}

#[test]
fn a_vlans_own_settings_override_the_bridges() {
    let mut c = cfg(true);
    let mut v10 = c.igmp.clone().unwrap();
    v10.query_interval = Duration::from_secs(30);
    c.vlans.insert(10, (Some(v10), None));
    c.vlan_snooping = true;
    let mut s = snooper(c);
    // The bridge has these VLANs (the shell says so from its VLAN database).
    s.add_vlan(t(0), 10);
    s.add_vlan(t(0), 20);
    let mut f = Vec::new();
    s.receive(t(0), P1, 10, &join("10.0.0.1", "239.1.1.1"), &mut f);
    s.receive(t(0), P1, 20, &join("10.0.0.1", "239.1.1.1"), &mut f);
    let qqi: BTreeMap<u16, Duration> = s
        .drain()
        .filter_map(|o| match o {
            Output::Query {
                vid,
                query: AnyQuery::V4(q),
                ..
            } => Some((vid, q.qqi)),
            _ => None,
        })
        .collect();
    assert_eq!(qqi.get(&10), Some(&Duration::from_secs(30)), "{qqi:?}");
    assert_eq!(qqi.get(&20), Some(&Duration::from_secs(2)), "{qqi:?}");
}

#[test]
fn link_local_groups_and_all_nodes_are_not_snooped() {
    let mut s = snooper(cfg(false));
    rx(&mut s, 0, P1, &join("10.0.0.1", "224.0.0.251"));
    let mld = Packet::Mld {
        ip: Ipv6Header::mld("fe80::1".parse().unwrap(), "ff02::1".parse().unwrap()),
        mld: MldRepr::V1Report {
            group: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
        },
    };
    rx(&mut s, 0, P1, &mld);
    assert_eq!(ops(&mut s), []);
}

#[test]
fn mld_from_a_global_source_is_dropped() {
    let mut s = snooper(cfg(false));
    let mld = Packet::Mld {
        ip: Ipv6Header::mld("fd00::1".parse().unwrap(), "ff0e::1".parse().unwrap()),
        mld: MldRepr::V1Report {
            group: "ff0e::1".parse().unwrap(),
        },
    };
    assert_eq!(
        s.receive(t(0), P1, 0, &mld, &mut Vec::new()),
        Received::Ignored
    );
    assert_eq!(s.counters().bad_source, 1);
}

#[test]
fn a_port_going_down_deletes_its_entries_and_router_state() {
    let mut s = snooper(cfg(false));
    rx(&mut s, 0, P1, &query("10.0.0.9", None));
    rx(&mut s, 0, P2, &join("10.0.0.1", "239.1.1.1"));
    s.drain().for_each(drop);
    s.port_down(P2);
    assert_eq!(ops(&mut s), [MdbOp::Delete(key(P2, "239.1.1.1"))]);
    s.port_down(P1);
    assert!(s.drain().any(|o| o
        == Output::RouterPort {
            port: P1,
            vid: 0,
            router: false
        }));
    // A frame from a port that is down is ignored.
    assert_eq!(
        s.receive(t(1), P2, 0, &join("10.0.0.1", "239.1.1.1"), &mut Vec::new()),
        Received::Ignored
    );
}

fn codes(s: &Snooper, now: u64) -> Vec<&'static str> {
    s.findings(t(now), "br0").iter().map(|f| f.code).collect()
}

/// The same for MLD (RFC 9777 §5.1.15).
fn mld_pkt(src: &str, mld: MldRepr) -> Packet {
    let src: Ipv6Addr = src.parse().unwrap();
    let dst = match &mld {
        MldRepr::Query(q) if q.group.is_unspecified() => "ff02::1".parse().unwrap(),
        MldRepr::Query(q) => q.group,
        _ => "ff02::16".parse().unwrap(),
    };
    Packet::Mld {
        ip: Ipv6Header::mld(src, dst),
        mld,
    }
}

fn mld_join(src: &str, g: &str) -> Packet {
    mld_pkt(
        src,
        MldRepr::V2Report {
            records: vec![GroupRecord {
                record_type: RecordType::ModeIsExclude,
                group: g.parse().unwrap(),
                sources: Vec::new(),
                aux_data: Vec::new(),
            }],
        },
    )
}

#[test]
fn a_member_that_stops_answering_the_other_querier_is_named_and_cleared_when_it_answers() {
    // The querier is a router behind P1 (2 s interval, 1 s response); hosts on P2 and P3.
    let mut c = cfg(false);
    c.mld = None;
    let mut s = snooper(c);
    let g = "239.20.0.1";
    rx(&mut s, 100, P2, &join("10.0.0.2", g));
    rx(&mut s, 100, P3, &join("10.0.0.3", g));
    for round in 0..4u64 {
        let q = 1000 + round * 2000;
        rx(&mut s, q, P1, &query("10.0.0.1", None));
        // Only .2 answers.
        rx(
            &mut s,
            q + 300,
            P2,
            &v3("10.0.0.2", RecordType::ModeIsExclude, g, &[]),
        );
        run_until(&mut s, q + 2000);
    }
    let f = s.findings(t(8600), "br0");
    assert_eq!(
        f.iter().map(|f| f.code).collect::<Vec<_>>(),
        ["member-silent"],
        "{f:#?}"
    );
    assert_eq!(f[0].iface, "br0");
    assert_eq!(f[0].host.as_deref(), Some("10.0.0.3"));
    assert_eq!(f[0].group.as_deref(), Some(g));
    // Meanwhile its port's membership expired (GMI 5 s): the finding explains why.
    assert!(s.igmp(0).unwrap().ports().all(|(p, _)| p != P3));
    // It answers again: cleared.
    rx(&mut s, 9000, P1, &query("10.0.0.1", None));
    rx(
        &mut s,
        9200,
        P3,
        &v3("10.0.0.3", RecordType::ModeIsExclude, g, &[]),
    );
    assert_eq!(codes(&s, 9300), Vec::<&str>::new());
}

#[test]
fn our_own_queries_count_as_rounds_for_member_silent() {
    let mut s = snooper(cfg(true));
    let g = "239.20.0.2";
    rx(&mut s, 100, P2, &join("10.0.0.2", g));
    rx(&mut s, 100, P3, &join("10.0.0.3", g));
    let mut answered = 0;
    let mut now = 100;
    while now < 12_000 {
        let Some(d) = s.next_deadline() else { break };
        now = d.as_millis();
        s.poll(d);
        // .2 answers every general query we send.
        let general = s.drain().any(
            |o| matches!(o, Output::Query { query: AnyQuery::V4(q), .. } if q.group.is_none()),
        );
        if general {
            answered += 1;
            rx(
                &mut s,
                now + 200,
                P2,
                &v3("10.0.0.2", RecordType::ModeIsExclude, g, &[]),
            );
        }
    }
    assert!(answered >= 3, "{answered} general queries");
    let f = s.findings(t(now + 1), "br0");
    assert!(
        f.iter()
            .any(|f| f.code == "member-silent" && f.host.as_deref() == Some("10.0.0.3")),
        "{f:#?}"
    );
    assert!(
        f.iter().all(|f| f.code != "snooping-without-querier"),
        "we query: {f:#?}"
    );
}

#[test]
fn mld_member_silent_names_the_link_local_address() {
    let mut s = snooper(cfg(false));
    let g = "ff0e::20:1";
    rx(&mut s, 100, P2, &mld_join("fe80::2", g));
    rx(&mut s, 100, P3, &mld_join("fe80::3", g));
    for round in 0..4u64 {
        let q = 1000 + round * 2000;
        let query = MldRepr::Query(igmpd_wire::MldQuery::general(
            igmpd_wire::MldVersion::V2,
            1000,
            2,
            2,
        ));
        rx(&mut s, q, P1, &mld_pkt("fe80::1", query));
        rx(&mut s, q + 300, P2, &mld_join("fe80::2", g));
        run_until(&mut s, q + 2000);
    }
    let f = s.findings(t(8600), "br0");
    let silent: Vec<_> = f.iter().filter(|f| f.code == "member-silent").collect();
    assert_eq!(silent.len(), 1, "{f:#?}");
    assert_eq!(silent[0].host.as_deref(), Some("fe80::3"));
    assert!(silent[0].hint.contains("mld-listener-query"));
    // IPv4 has no querier at all: that family says so.
    assert!(codes(&s, 8600).contains(&"snooping-without-querier"));
}

#[test]
fn snooping_without_a_querier_is_a_finding_after_the_other_querier_present_interval() {
    let mut igmp_only = cfg(false);
    igmp_only.mld = None;
    let mut s = snooper(igmp_only.clone());
    // Other Querier Present Interval: 2 x 2 s + 1 s / 2 = 4.5 s.
    assert_eq!(codes(&s, 4000), Vec::<&str>::new(), "too early to tell");
    let f = s.findings(t(4500), "br0");
    assert_eq!(
        f.iter().map(|f| f.code).collect::<Vec<_>>(),
        ["snooping-without-querier"]
    );
    assert_eq!(
        f[0].severity,
        igmpd_querier::core::observer::Severity::Error
    );
    assert!(f[0].message.contains("expire"), "{}", f[0].message);
    assert!(f[0].hint.contains("--querier"), "{}", f[0].hint);
    // A querier with an address appears: cleared; it goes silent: back.
    rx(&mut s, 5000, P1, &query("10.0.0.1", None));
    assert_eq!(codes(&s, 5100), Vec::<&str>::new());
    assert_eq!(codes(&s, 9500), ["snooping-without-querier"]);
    // Only 0.0.0.0 queries (a kernel bridge querier without an address): both said.
    rx(&mut s, 10_000, P1, &query("0.0.0.0", None));
    assert_eq!(
        codes(&s, 10_100),
        ["querier-zero-source", "snooping-without-querier"]
    );
    // With --querier igmpd is the querier: nothing to say.
    igmp_only.querier = true;
    let mut s = snooper(igmp_only);
    run_until(&mut s, 10_000);
    assert_eq!(codes(&s, 10_000), Vec::<&str>::new());
    // And none while the bridge is down.
    let mut s = snooper(cfg(false));
    s.bridge_down();
    assert!(s.findings(t(60_000), "br0").is_empty());
}

#[test]
fn with_per_vlan_snooping_every_vlan_of_a_port_has_its_own_querier() {
    let mut c = cfg(true);
    c.vlan_snooping = true;
    let mut s = snooper(c);
    s.set_port_vlans(t(0), P1, vlans(Some(10), &[10, 20]));
    s.set_port_vlans(t(0), P2, vlans(Some(20), &[20]));
    // VLAN 10 has an address of its own, VLAN 20 none.
    s.set_vlan_addresses(t(0), [(10, (Some(a4("10.0.10.1")), None))].into());
    let queries: Vec<(u16, Option<IpAddr>)> = s
        .drain()
        .filter_map(|o| match o {
            Output::Query {
                vid,
                query: AnyQuery::V4(q),
            } => Some((vid, q.src.map(IpAddr::from))),
            Output::Query { vid, .. } => Some((vid, None)),
            _ => None,
        })
        .collect();
    // No untagged queries (VLAN 0 is passive), startup queries in 10 and 20.
    assert!(
        queries.iter().all(|(vid, _)| *vid == 10 || *vid == 20),
        "{queries:?}"
    );
    assert!(queries.iter().any(|(vid, _)| *vid == 10));
    assert!(queries.iter().any(|(vid, _)| *vid == 20));
    let i10 = s.igmp(10).unwrap().instance();
    let i20 = s.igmp(20).unwrap().instance();
    assert_eq!(i10.querier_address(), Some(a4("10.0.10.1")));
    assert_eq!(i10.role().name(), "querier");
    // 0.0.0.0: a proxy querier, which yields to any querier with an address.
    assert_eq!(i20.role().name(), "proxy");
    // MLD without a link-local address of VLAN 20's own: the bridge's.
    let m20 = s.mld(20).unwrap().instance();
    assert_eq!(m20.role().name(), "querier");
    assert_eq!(m20.querier_address(), Some("fe80::254".parse().unwrap()));
    // A router's query in VLAN 20 on P2: the router port is P2 in VLAN 20 only.
    let mut f = Vec::new();
    s.receive(t(100), P2, 0, &query("10.0.20.9", None), &mut f);
    let routers: Vec<Output> = s
        .drain()
        .filter(|o| matches!(o, Output::RouterPort { .. }))
        .collect();
    assert_eq!(
        routers,
        [Output::RouterPort {
            port: P2,
            vid: 20,
            router: true
        }]
    );
    assert_eq!(s.igmp(20).unwrap().instance().role().name(), "non-querier");
    assert_eq!(s.igmp(10).unwrap().instance().role().name(), "querier");
    // A report in VLAN 10 goes to no router port (P2 is one in VLAN 20, and not in 10).
    assert_eq!(
        rx(&mut s, 200, P1, &join("10.0.10.5", "239.1.1.1")),
        Vec::<u32>::new()
    );
    // In VLAN 20 it goes to P2.
    s.receive(t(300), P1, 20, &join("10.0.20.5", "239.1.1.1"), &mut f);
    assert_eq!(f, [P2]);
    // Forwarded in the frame's VLAN: an untagged one in the ingress port's PVID.
    assert_eq!((s.egress_vlan(P1, 0), s.egress_vlan(P1, 20)), (10, 20));
}

#[test]
fn configured_router_ports_are_routers_in_each_of_their_vlans_only() {
    let mut c = cfg(false);
    c.vlan_snooping = true;
    c.router_ports = [P3].into();
    let mut s = snooper(c);
    s.set_port_vlans(t(0), P3, vlans(None, &[10, 30]));
    s.set_port_vlans(t(0), P1, vlans(Some(20), &[20]));
    let set: BTreeSet<(u16, u32)> = s.routers().reflected().clone();
    assert_eq!(set, [(10, P3), (30, P3)].into());
    // A report in VLAN 20 is not sent to P3, which is not in VLAN 20.
    assert_eq!(
        rx(&mut s, 0, P1, &join("10.0.20.5", "239.1.1.1")),
        Vec::<u32>::new()
    );
}

mod events;
mod flood;
mod operator;
mod policy;
mod retry;

/// The metrics' messages received: per port, VLAN and family; a v3 record changing to
/// INCLUDE with no sources is a leave, other records reports; a port that goes takes its
/// counts with it.
#[test]
fn messages_received_are_counted_per_port_as_reports_leaves_and_queries() {
    let mut s = snooper(cfg(false));
    rx(&mut s, 0, P1, &join("10.0.0.1", "239.1.1.1"));
    rx(&mut s, 10, P1, &join("10.0.0.1", "239.1.1.2"));
    rx(&mut s, 20, P1, &leave("10.0.0.1", "239.1.1.2"));
    rx(&mut s, 30, P2, &query("10.0.0.9", None));
    let counts = |s: &Snooper| -> Vec<(u32, igmpd_runtime::metrics::Traffic)> {
        s.igmp(0)
            .map(|d| d.traffic().map(|(p, t)| (p, *t)).collect())
            .unwrap_or_default()
    };
    use igmpd_runtime::metrics::Traffic;
    assert_eq!(
        counts(&s),
        [
            (
                P1,
                Traffic {
                    reports: 2,
                    leaves: 1,
                    queries: 0
                }
            ),
            (
                P2,
                Traffic {
                    reports: 0,
                    leaves: 0,
                    queries: 1
                }
            )
        ]
    );
    assert!(s.mld(0).is_none_or(|d| d.traffic().next().is_none()));
    s.port_down(P1);
    assert_eq!(counts(&s).len(), 1, "P1's counts went with it");
}
