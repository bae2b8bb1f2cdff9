//! Virtual-time tests of untrusted ports: membership and source limits (deny and
//! replace), the ACL (order, default, what is forwarded), the router guard, the report
//! rate, Router Alert, the query checks, the PIM holdtime cap, QRV/QQI adoption bounds,
//! VLAN state from tags, and property tests that feed the core arbitrary packets.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use igmpd_querier::core::Proto;
use igmpd_wire::frame::Ipv4Header;
use igmpd_wire::pim::PimHello;
use igmpd_wire::{GroupRecord, IgmpQuery, IgmpRepr, IgmpVersion, MrdRepr, Packet, RecordType};
use proptest::prelude::*;

use super::super::policy::{AclAction, LimitAction, MAX_PIM_HOLD};
use super::*;

fn with_port(p: PortPolicy) -> Snooper {
    let mut s = snooper(cfg(true));
    s.set_port_policy(P1, Some(p));
    s
}

fn groups_of(s: &Snooper, port: u32) -> Vec<String> {
    let mut out: Vec<String> = s
        .mdb()
        .programmed()
        .filter(|(k, _, _)| k.port == port)
        .map(|(k, _, _)| k.group.to_string())
        .collect();
    out.sort();
    out
}

fn counters(s: &Snooper, port: u32) -> PortCounters {
    s.port_state(port)
        .map(|p| p.counters.clone())
        .unwrap_or_default()
}

fn finding_codes(s: &Snooper, now: u64) -> Vec<(&'static str, Option<String>)> {
    s.port_findings(t(now), "br0", |p| format!("p{}", p - 10))
        .into_iter()
        .map(|f| (f.code, f.host))
        .collect()
}

#[test]
fn at_max_groups_deny_refuses_new_memberships_and_names_the_host() {
    let mut s = with_port(PortPolicy {
        max_groups: Some(2),
        ..PortPolicy::default()
    });
    for (i, g) in ["239.1.1.1", "239.1.1.2", "239.1.1.3"].iter().enumerate() {
        rx(&mut s, 10 * i as u64, P1, &join("10.0.0.1", g));
    }
    assert_eq!(groups_of(&s, P1), ["239.1.1.1", "239.1.1.2"]);
    // A refresh of a held group, an IPv6 group (counted together) and a leave.
    rx(&mut s, 40, P1, &join("10.0.0.1", "239.1.1.1"));
    rx(&mut s, 50, P1, &mld_join("fe80::1", "ff0e::1"));
    assert_eq!(counters(&s, P1).refused, 2);
    assert_eq!(s.port_state(P1).unwrap().groups, 2);
    rx(&mut s, 60, P1, &leave("10.0.0.1", "239.1.1.2"));
    run_until(&mut s, 10_000);
    rx(&mut s, 10_000, P1, &join("10.0.0.1", "239.1.1.3"));
    assert!(groups_of(&s, P1).contains(&"239.1.1.3".to_string()));
    // Another port is not affected by P1's limit.
    for g in ["239.2.0.1", "239.2.0.2", "239.2.0.3"] {
        rx(&mut s, 10_010, P2, &join("10.0.0.2", g));
    }
    assert_eq!(groups_of(&s, P2).len(), 3);
    assert_eq!(
        finding_codes(&s, 10_020),
        [("port-group-limit", Some("fe80::1".to_string()))]
    );
    assert!(finding_codes(&s, 400_000).is_empty(), "it clears");
}

#[test]
fn at_max_groups_replace_drops_the_membership_heard_from_longest_ago() {
    let mut s = with_port(PortPolicy {
        max_groups: Some(2),
        limit_action: LimitAction::Replace,
        ..PortPolicy::default()
    });
    rx(&mut s, 0, P1, &join("10.0.0.1", "239.1.1.1"));
    rx(&mut s, 10, P1, &join("10.0.0.1", "239.1.1.2"));
    rx(&mut s, 20, P1, &join("10.0.0.1", "239.1.1.1"));
    ops(&mut s);
    rx(&mut s, 30, P1, &join("10.0.0.1", "239.1.1.3"));
    let o = ops(&mut s);
    assert!(o.contains(&MdbOp::Delete(key(P1, "239.1.1.2"))), "{o:?}");
    assert_eq!(groups_of(&s, P1), ["239.1.1.1", "239.1.1.3"]);
    assert_eq!(counters(&s, P1).replaced, 1);
    assert_eq!(counters(&s, P1).refused, 0);
    // Across families: the oldest is the IPv4 group 239.1.1.1 now.
    rx(&mut s, 40, P1, &mld_join("fe80::1", "ff0e::1"));
    assert_eq!(groups_of(&s, P1), ["239.1.1.3", "ff0e::1"]);
    assert_eq!(s.port_state(P1).unwrap().groups, 2);
}

#[test]
fn max_sources_keeps_the_held_sources_and_refuses_the_rest() {
    let mut s = with_port(PortPolicy {
        max_sources: Some(3),
        ..PortPolicy::default()
    });
    let srcs = ["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5"];
    rx(
        &mut s,
        0,
        P1,
        &v3("10.0.0.1", RecordType::ModeIsInclude, "232.1.1.1", &srcs),
    );
    let d = s.igmp(0).unwrap();
    let (_, m) = d.ports().find(|(p, _)| *p == P1).unwrap();
    let g = m.group(&a4("232.1.1.1")).unwrap();
    assert_eq!(g.sources.len(), 3);
    assert_eq!(counters(&s, P1).refused_sources, 2);
    // An ALLOW of held sources and one new one: the held ones are kept, the new refused.
    rx(
        &mut s,
        10,
        P1,
        &v3(
            "10.0.0.1",
            RecordType::AllowNew,
            "232.1.1.1",
            &["10.1.0.1", "10.1.0.9"],
        ),
    );
    assert_eq!(counters(&s, P1).refused_sources, 3);
}

fn acl_policy(default: AclAction) -> PortPolicy {
    super::super::policy::tests::example_acl(default)
}

#[test]
fn the_acl_denies_joins_first_match_first_and_forwards_what_is_left() {
    let mut s = with_port(acl_policy(AclAction::Deny));
    // A router on P3, to see what is forwarded.
    rx(&mut s, 0, P3, &query("10.0.0.9", None));
    assert_eq!(
        rx(&mut s, 10, P1, &join("10.0.0.1", "239.255.1.1")),
        Vec::<u32>::new()
    );
    assert!(s.take_rewritten().is_none());
    assert_eq!(rx(&mut s, 20, P1, &join("10.0.0.1", "239.1.1.1")), [P3]);
    assert!(
        s.take_rewritten().is_none(),
        "nothing taken out: the frame as is"
    );
    // One report, three records: the denied one goes, the SSM record keeps its permitted
    // source only, and what is left is what goes to the router.
    let report = igmp(
        "10.0.0.1",
        IgmpRepr::V3Report {
            records: vec![
                GroupRecord {
                    record_type: RecordType::ChangeToExclude,
                    group: a4("239.255.9.9"),
                    sources: vec![],
                    aux_data: vec![],
                },
                GroupRecord {
                    record_type: RecordType::AllowNew,
                    group: a4("232.1.1.1"),
                    sources: vec![a4("10.1.2.3"), a4("10.9.9.9")],
                    aux_data: vec![],
                },
                GroupRecord {
                    record_type: RecordType::ChangeToExclude,
                    group: a4("239.1.1.2"),
                    sources: vec![],
                    aux_data: vec![],
                },
            ],
        },
    );
    assert_eq!(rx(&mut s, 30, P1, &report), [P3]);
    let Some(Packet::Igmp {
        igmp: IgmpRepr::V3Report { records },
        ..
    }) = s.take_rewritten()
    else {
        panic!("a rewritten report")
    };
    let kept: Vec<(Ipv4Addr, Vec<Ipv4Addr>)> = records
        .iter()
        .map(|r| (r.group, r.sources.clone()))
        .collect();
    assert_eq!(
        kept,
        [
            (a4("232.1.1.1"), vec![a4("10.1.2.3")]),
            (a4("239.1.1.2"), vec![])
        ]
    );
    assert_eq!(groups_of(&s, P1), ["232.1.1.1", "239.1.1.1", "239.1.1.2"]);
    // Hits: rule 1 twice, rule 2 once, rule 3 twice, the default once (10.9.9.9).
    assert_eq!(s.port_state(P1).unwrap().acl_hits, [2, 1, 2, 1]);
    // A leave of a denied group passes (it takes nothing).
    assert_eq!(rx(&mut s, 40, P1, &leave("10.0.0.1", "239.255.1.1")), [P3]);
    // A host that keeps asking is named.
    rx(&mut s, 50, P1, &join("10.0.0.1", "239.255.1.1"));
    rx(&mut s, 60, P1, &join("10.0.0.1", "239.255.1.1"));
    let f = finding_codes(&s, 70);
    assert!(
        f.contains(&("denied-join", Some("10.0.0.1".to_string()))),
        "{f:?}"
    );
    // Other ports have the bridge's policy: everything is permitted there.
    rx(&mut s, 80, P2, &join("10.0.0.2", "239.255.1.1"));
    assert_eq!(groups_of(&s, P2), ["239.255.1.1"]);
}

#[test]
fn a_guarded_port_never_becomes_a_router_port_nor_the_querier() {
    let mut s = with_port(PortPolicy {
        router_guard: true,
        ..PortPolicy::default()
    });
    let elected = |s: &Snooper| s.igmp(0).unwrap().instance().role();
    let before = elected(&s);
    let q = query("10.0.0.1", None);
    assert_eq!(
        s.receive(t(0), P1, 0, &q, &mut Vec::new()),
        Received::Dropped
    );
    let pim = pim_hello("10.0.0.1", Some(0xffff));
    assert_eq!(
        s.receive(t(1), P1, 0, &pim, &mut Vec::new()),
        Received::Dropped
    );
    let mrd = igmp(
        "10.0.0.1",
        IgmpRepr::Mrd(MrdRepr::Advertisement {
            advertisement_interval: 20,
            query_interval: 0,
            robustness: 0,
        }),
    );
    assert_eq!(
        s.receive(t(2), P1, 0, &mrd, &mut Vec::new()),
        Received::Dropped
    );
    assert_eq!(elected(&s), before, "the election never saw the query");
    assert!(s.routers().reflected().is_empty());
    assert!(s.routers().learned().next().is_none());
    assert_eq!(counters(&s, P1).guard_drops, 3);
    let f = finding_codes(&s, 10);
    assert_eq!(
        f,
        [
            ("rogue-querier", Some("10.0.0.1".to_string())),
            ("rogue-router", Some("10.0.0.1".to_string()))
        ]
    );
    // Reports from the guarded port are learned as usual.
    rx(&mut s, 20, P1, &join("10.0.0.1", "239.1.1.1"));
    assert_eq!(groups_of(&s, P1), ["239.1.1.1"]);
    // The same query on an unguarded port is a router's.
    rx(&mut s, 30, P2, &query("10.0.0.1", None));
    assert_eq!(s.routers().reflected(), &BTreeSet::from([(0, P2)]));
}

#[test]
fn reports_over_the_rate_are_dropped_and_counted() {
    let mut s = with_port(PortPolicy {
        max_report_rate: Some(5),
        ..PortPolicy::default()
    });
    for i in 0..20 {
        rx(
            &mut s,
            100,
            P1,
            &join("10.0.0.1", &format!("239.1.1.{}", i + 1)),
        );
    }
    assert_eq!(groups_of(&s, P1).len(), 5);
    assert_eq!(counters(&s, P1).rate_drops, 15);
    // 400 ms later: two more tokens.
    for i in 20..25 {
        rx(
            &mut s,
            500,
            P1,
            &join("10.0.0.1", &format!("239.1.1.{}", i + 1)),
        );
    }
    assert_eq!(groups_of(&s, P1).len(), 7);
}

#[test]
fn require_router_alert_drops_reports_and_queries_without_it() {
    let mut s = with_port(PortPolicy {
        require_router_alert: true,
        ..PortPolicy::default()
    });
    let mut bare = join("10.0.0.1", "239.1.1.1");
    if let Packet::Igmp { ip, .. } = &mut bare {
        ip.router_alert = false;
    }
    assert_eq!(
        s.receive(t(0), P1, 0, &bare, &mut Vec::new()),
        Received::Dropped
    );
    assert_eq!(counters(&s, P1).router_alert_drops, 1);
    rx(&mut s, 10, P1, &join("10.0.0.1", "239.1.1.1"));
    assert_eq!(groups_of(&s, P1), ["239.1.1.1"]);
}

#[test]
fn queries_need_ttl_1_and_the_rfc_destination() {
    let mut s = snooper(cfg(false));
    let mut ttl = query("10.0.0.9", None);
    if let Packet::Igmp { ip, .. } = &mut ttl {
        ip.ttl = 2;
    }
    let mut dst = query("10.0.0.9", Some("239.1.1.1"));
    if let Packet::Igmp { ip, .. } = &mut dst {
        ip.dst = a4("224.0.0.1");
    }
    for q in [ttl, dst] {
        assert_eq!(
            s.receive(t(0), P1, 0, &q, &mut Vec::new()),
            Received::Dropped
        );
    }
    assert_eq!(counters(&s, P1).bad_queries, 2);
    assert!(s.routers().learned().next().is_none());
    rx(&mut s, 0, P1, &query("10.0.0.9", None));
    assert!(s.routers().learned().next().is_some());
}

#[test]
fn a_pim_hello_for_ever_is_capped() {
    let mut s = snooper(cfg(false));
    let pim = pim_hello("10.0.0.7", Some(0xffff));
    rx(&mut s, 0, P2, &pim);
    let end = MAX_PIM_HOLD.as_millis() as u64;
    assert_eq!(
        s.routers().next_deadline(),
        Some(t(end)),
        "an hour, not for ever"
    );
    assert!(s.routers().is_router(t(end - 1), 0, P2, Proto::Igmp));
    run_until(&mut s, end + 1);
    assert!(!s.routers().is_router(t(end + 1), 0, P2, Proto::Igmp));
}

#[test]
fn a_querier_announcing_absurd_timers_is_followed_but_not_adopted() {
    let mut s = snooper(cfg(false));
    let gmi = |s: &Snooper| s.igmp(0).unwrap().port_timing().gmi;
    let ours = gmi(&s);
    // QQIC 255: 31 744 s; QRV 7: every membership would last 62 hours.
    let mut q = IgmpQuery::general(IgmpVersion::V3, 1000, 7, 0);
    q.qqic = 255;
    rx(&mut s, 0, P1, &igmp("10.0.0.1", IgmpRepr::Query(q)));
    assert_eq!(
        s.igmp(0).unwrap().instance().querier_address(),
        Some(a4("10.0.0.1"))
    );
    // QRV 7 is in range and adopted; the interval is not.
    let i = s.igmp(0).unwrap().instance();
    assert_eq!(i.robustness(), 7);
    assert_eq!(i.query_interval(), Duration::from_secs(2));
    assert!(gmi(&s) < ours * 4);
    let f = s.findings(t(10), "br0");
    assert!(
        f.iter().any(|f| f.code == "querier-timers-ignored"),
        "{f:#?}"
    );
}

#[test]
fn tags_make_vlan_state_only_for_vlans_the_bridge_or_port_has() {
    let mut s = snooper(cfg(true));
    rx(&mut s, 0, P1, &join("10.0.0.1", "239.1.1.1"));
    for vid in 100..140 {
        s.receive(
            t(0),
            P1,
            vid,
            &join("10.0.0.1", "239.1.1.1"),
            &mut Vec::new(),
        );
    }
    assert_eq!(s.vids().collect::<Vec<_>>(), [0]);
    assert_eq!(s.counters().vlan_drops, 40);
    s.add_vlan(t(0), 120);
    s.receive(
        t(1),
        P1,
        120,
        &join("10.0.0.1", "239.1.1.1"),
        &mut Vec::new(),
    );
    assert_eq!(s.vids().collect::<Vec<_>>(), [0, 120]);
}

#[test]
fn query_sources_are_pruned_and_bounded() {
    let mut s = snooper(cfg(false));
    for i in 0..200u32 {
        let src = Ipv4Addr::from(0x0a00_0100 + i).to_string();
        rx(&mut s, u64::from(i), P1, &query(&src, None));
    }
    let seen = s.igmp(0).unwrap().observer().queriers().count();
    assert!(seen <= 64, "{seen}");
    // One Other Querier Present Interval later only the latest source is left.
    let oqpi = s
        .igmp(0)
        .unwrap()
        .instance()
        .other_querier_present_interval();
    let later = 200 + oqpi.as_millis() as u64;
    rx(&mut s, later, P1, &query("10.0.0.2", None));
    let left: Vec<Option<Ipv4Addr>> = s
        .igmp(0)
        .unwrap()
        .observer()
        .queriers()
        .map(|q| q.address)
        .collect();
    assert_eq!(left, [Some(a4("10.0.0.2"))]);
}

#[test]
fn reporters_per_group_are_bounded() {
    let mut s = snooper(cfg(false));
    for i in 0..500u32 {
        let host = Ipv4Addr::from(0x0a00_0000 + i).to_string();
        rx(&mut s, u64::from(i), P1, &join(&host, "239.1.1.1"));
    }
    let d = s.igmp(0).unwrap();
    let (_, m) = d.ports().find(|(p, _)| *p == P1).unwrap();
    let g = m.group(&a4("239.1.1.1")).unwrap();
    assert_eq!(
        g.reporters.len(),
        igmpd_querier::core::membership::MAX_REPORTERS
    );
    assert!(
        g.reporters.iter().any(|(h, _)| *h == a4("10.0.1.243")),
        "the newest is kept"
    );
}

/// Anything a host can send: IGMP/MLD reports of every kind with arbitrary groups and
/// sources, queries, PIM hellos and MRD, on any port and tag.
fn any_packet() -> impl Strategy<Value = (u32, u16, Packet)> {
    let v4 = any::<u32>().prop_map(Ipv4Addr::from);
    let mcast = (0u32..0x0fff_ffff).prop_map(|x| Ipv4Addr::from(0xe000_0000 | x));
    let rtype = (1u8..=7).prop_map(RecordType::from_code);
    let record = (
        rtype,
        mcast.clone(),
        prop::collection::vec(v4.clone(), 0..40),
    )
        .prop_map(|(record_type, group, sources)| GroupRecord {
            record_type,
            group,
            sources,
            aux_data: vec![],
        });
    let igmp_msg = prop_oneof![
        prop::collection::vec(record, 1..6).prop_map(|records| IgmpRepr::V3Report { records }),
        mcast.clone().prop_map(|group| IgmpRepr::V2Report { group }),
        mcast.clone().prop_map(|group| IgmpRepr::V2Leave { group }),
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(mrc, qrv, qqic)| {
            let mut q = IgmpQuery::general(IgmpVersion::V3, 1000, 2, 2);
            q.max_resp_code = mrc;
            q.qrv = qrv & 7;
            q.qqic = qqic;
            IgmpRepr::Query(q)
        }),
        any::<u8>().prop_map(|i| IgmpRepr::Mrd(MrdRepr::Advertisement {
            advertisement_interval: i,
            query_interval: 0,
            robustness: 0
        })),
    ];
    let pkt = prop_oneof![
        (v4.clone(), igmp_msg).prop_map(|(src, igmp)| {
            let dst = match &igmp {
                IgmpRepr::Query(_) => a4("224.0.0.1"),
                _ => a4("224.0.0.22"),
            };
            Packet::Igmp {
                ip: Ipv4Header::igmp(src, dst),
                igmp,
            }
        }),
        (v4, any::<Option<u16>>()).prop_map(|(src, holdtime)| Packet::PimHelloV4 {
            ip: Ipv4Header::igmp(src, igmpd_wire::pim::ALL_PIM_ROUTERS_V4),
            hello: PimHello { holdtime },
        }),
    ];
    (
        prop::sample::select(vec![P1, P2, P3, 99]),
        prop::sample::select(vec![0u16, 10, 4094]),
        pkt,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever hosts send, the core does not panic and its state stays within its
    /// bounds: each port's memberships, each group's sources and reporters, the observer.
    #[test]
    fn arbitrary_packets_keep_the_core_within_its_bounds(
        packets in prop::collection::vec(any_packet(), 1..300),
    ) {
        let mut s = snooper(cfg(true));
        let limited = PortPolicy {
            max_groups: Some(16),
            max_sources: Some(8),
            limit_action: LimitAction::Replace,
            max_report_rate: Some(1000),
            acl: acl_policy(AclAction::Permit).acl,
            ..PortPolicy::default()
        };
        s.set_port_policy(P2, Some(limited));
        let mut fwd = Vec::new();
        for (i, (port, vid, p)) in packets.iter().enumerate() {
            let now = t(i as u64 * 7);
            fwd.clear();
            s.receive(now, *port, *vid, p, &mut fwd);
            s.take_rewritten();
            s.poll(now);
            s.drain().for_each(drop);
        }
        prop_assert_eq!(s.vids().collect::<Vec<_>>(), vec![0]);
        let d = s.igmp(0).unwrap();
        let mut per_port: BTreeMap<u32, usize> = BTreeMap::new();
        for (port, m) in d.ports() {
            *per_port.entry(port).or_default() += m.len();
            for g in m.groups() {
                let max = if port == P2 { 8 } else { 1024 };
                prop_assert!(g.sources.len() <= max, "{} sources", g.sources.len());
                prop_assert!(g.reporters.len() <= 32);
            }
        }
        prop_assert!(per_port.get(&P2).copied().unwrap_or(0) <= 16);
        for (port, n) in &per_port {
            prop_assert_eq!(s.port_state(*port).map_or(0, |p| p.groups), *n);
        }
        prop_assert!(d.observer().queriers().count() <= 64);
    }
}

#[test]
fn adopted_memberships_count_against_the_limit() {
    let mut s = with_port(PortPolicy {
        max_groups: Some(2),
        ..PortPolicy::default()
    });
    for g in ["239.1.1.1", "239.1.1.2"] {
        s.adopt(t(0), key(P1, g), EntryFilter::Any, true);
    }
    assert_eq!(s.port_state(P1).unwrap().groups, 2);
    rx(&mut s, 10, P1, &join("10.0.0.1", "239.1.1.3"));
    assert_eq!(counters(&s, P1).refused, 1);
    assert_eq!(groups_of(&s, P1), ["239.1.1.1", "239.1.1.2"]);
}

#[test]
fn near_the_limit_a_port_keeps_to_its_share_and_freed_room_goes_in_turn() {
    let mut c = cfg(false);
    c.entry_limit = 8;
    let mut s = snooper(c);
    // Three ports: an even share is 8 / 3 = 2 once 6 of the 8 keys are used.
    for i in 1..=10 {
        rx(&mut s, 0, P1, &join("10.0.0.1", &format!("239.1.1.{i}")));
    }
    assert_eq!(groups_of(&s, P1).len(), 6, "P1 stops at 3/4 of the limit");
    rx(&mut s, 10, P2, &join("10.0.0.2", "239.2.2.1"));
    rx(&mut s, 10, P3, &join("10.0.0.3", "239.3.3.1"));
    assert_eq!(groups_of(&s, P2), ["239.2.2.1"]);
    assert_eq!(groups_of(&s, P3), ["239.3.3.1"]);
    rx(&mut s, 20, P2, &join("10.0.0.2", "239.2.2.2"));
    assert_eq!(groups_of(&s, P2).len(), 1, "the limit is reached");
    assert_eq!(s.mdb().refused_now(), 5);
    // P1 gives up one group: the key goes to P2's waiting join, not to P1's backlog.
    rx(&mut s, 30, P1, &leave("10.0.0.1", "239.1.1.1"));
    let q = query("10.0.0.254", Some("239.1.1.1"));
    rx(&mut s, 30, P2, &q);
    run_until(&mut s, 2_000);
    assert_eq!(groups_of(&s, P2), ["239.2.2.1", "239.2.2.2"]);
    assert_eq!(groups_of(&s, P1).len(), 5);
}
