//! Virtual-time tests of what operators configure or ask for: static groups (written,
//! merged with learned memberships, never expiring, no limit, following ports and VLANs),
//! fast leave (at once for a lone host, the normal way with others, and with report
//! suppression in IGMPv2 mode), `flush`, and the query of a port that came up.

use std::collections::BTreeSet;

use igmpd_wire::{IgmpRepr, Packet};

use super::super::StaticGroup;
use super::*;

fn st(group: &str, source: Option<&str>, vid: u16) -> StaticGroup {
    StaticGroup {
        group: group.parse().unwrap(),
        source: source.map(|s| s.parse().unwrap()),
        vid,
    }
}

fn statics(list: &[StaticGroup]) -> BTreeSet<StaticGroup> {
    list.iter().copied().collect()
}

fn v2_join(src: &str, g: &str) -> Packet {
    igmp(src, IgmpRepr::V2Report { group: a4(g) })
}

fn v2_leave(src: &str, g: &str) -> Packet {
    igmp(src, IgmpRepr::V2Leave { group: a4(g) })
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn port_queries(s: &mut Snooper) -> Vec<(u32, u16, Option<Ipv4Addr>)> {
    s.drain()
        .filter_map(|o| match o {
            Output::PortQuery {
                port,
                vid,
                query: AnyQuery::V4(q),
            } => Some((port, vid, q.src)),
            _ => None,
        })
        .collect()
}

fn fast_port(s: &mut Snooper) {
    s.set_port_policy(
        P1,
        Some(PortPolicy {
            fast_leave: true,
            ..Default::default()
        }),
    );
}

#[test]
fn a_static_group_is_written_never_expires_and_goes_when_deleted() {
    let mut s = snooper(cfg(false));
    s.set_port_statics(P1, statics(&[st("239.1.1.1", None, 0)]));
    assert_eq!(
        ops(&mut s),
        [MdbOp::Set(key(P1, "239.1.1.1"), EntryFilter::Any)]
    );
    // A host joins and goes silent: its membership expires, the static group stays.
    rx(&mut s, 10, P1, &join("10.0.0.1", "239.1.1.1"));
    run_until(&mut s, 600_000);
    assert_eq!(
        ops(&mut s),
        [],
        "nothing to write: the entry stays as it was"
    );
    assert!(s.mdb().get(&key(P1, "239.1.1.1")).is_some());
    s.set_port_statics(P1, BTreeSet::new());
    assert_eq!(ops(&mut s), [MdbOp::Delete(key(P1, "239.1.1.1"))]);
}

#[test]
fn a_static_source_is_merged_with_the_hosts_sources() {
    let mut s = snooper(cfg(false));
    s.set_port_statics(P1, statics(&[st("232.1.1.1", Some("10.0.0.5"), 0)]));
    assert_eq!(
        ops(&mut s),
        [MdbOp::Set(
            key(P1, "232.1.1.1"),
            EntryFilter::Include(vec![ip("10.0.0.5")])
        )]
    );
    rx(
        &mut s,
        10,
        P1,
        &v3("10.0.0.1", RecordType::AllowNew, "232.1.1.1", &["10.0.0.6"]),
    );
    assert_eq!(
        ops(&mut s),
        [MdbOp::Set(
            key(P1, "232.1.1.1"),
            EntryFilter::Include(vec![ip("10.0.0.5"), ip("10.0.0.6")])
        )]
    );
    // The host's source expires; the static one stays.
    run_until(&mut s, 600_000);
    assert_eq!(
        ops(&mut s),
        [MdbOp::Set(
            key(P1, "232.1.1.1"),
            EntryFilter::Include(vec![ip("10.0.0.5")])
        )]
    );
    // A bridge that looks up no (S,G) entries gets a plain (*,G), as for learned ones.
    s.set_source_filtering(false, true);
    assert_eq!(
        ops(&mut s),
        [MdbOp::Set(key(P1, "232.1.1.1"), EntryFilter::Any)]
    );
}

#[test]
fn static_groups_follow_their_port_down_and_up() {
    let mut s = snooper(cfg(false));
    s.set_port_statics(P2, statics(&[st("239.1.1.2", None, 0)]));
    ops(&mut s);
    s.port_down(P2);
    assert_eq!(ops(&mut s), [MdbOp::Delete(key(P2, "239.1.1.2"))]);
    s.port_up(P2);
    assert_eq!(
        ops(&mut s),
        [MdbOp::Set(key(P2, "239.1.1.2"), EntryFilter::Any)]
    );
    // Configured while the port is down: written when it comes up.
    s.port_down(P3);
    s.set_port_statics(P3, statics(&[st("239.1.1.3", None, 0)]));
    assert_eq!(ops(&mut s), []);
    s.port_up(P3);
    assert_eq!(
        ops(&mut s),
        [MdbOp::Set(key(P3, "239.1.1.3"), EntryFilter::Any)]
    );
}

#[test]
fn static_groups_count_against_no_limit() {
    let mut s = snooper(cfg(false));
    s.set_port_policy(
        P1,
        Some(PortPolicy {
            max_groups: Some(1),
            ..Default::default()
        }),
    );
    s.set_port_statics(
        P1,
        statics(&[st("239.1.1.1", None, 0), st("239.1.1.2", None, 0)]),
    );
    rx(&mut s, 10, P1, &join("10.0.0.1", "239.1.1.3"));
    let written: Vec<_> = ops(&mut s).into_iter().map(|o| o.target().0).collect();
    assert_eq!(
        written,
        [
            key(P1, "239.1.1.1"),
            key(P1, "239.1.1.2"),
            key(P1, "239.1.1.3")
        ],
        "two static groups and the host's one membership"
    );
    assert_eq!(s.port_state(P1).map(|p| p.groups), Some(1));
}

#[test]
fn a_static_group_with_a_vlan_needs_a_vlan_filtering_bridge_and_the_port_in_it() {
    let mut c = cfg(false);
    c.vlan_filtering = false;
    let mut s = snooper(c);
    s.set_port_statics(P1, statics(&[st("239.1.1.1", None, 10)]));
    assert_eq!(
        ops(&mut s),
        [],
        "a bridge without VLANs: no entry with a vid"
    );

    let mut s = snooper(cfg(false));
    let vlans = |pvid, vids: &[u16]| PortVlans {
        pvid,
        vids: vids.iter().copied().collect(),
        untagged: BTreeSet::new(),
    };
    s.set_port_vlans(t(0), P1, Some(vlans(Some(20), &[10, 20])));
    ops(&mut s);
    s.set_port_statics(
        P1,
        statics(&[st("239.1.1.1", None, 10), st("239.1.1.2", None, 0)]),
    );
    let vkey = |vid, g: &str| EntryKey { vid, ..key(P1, g) };
    assert_eq!(
        ops(&mut s),
        [
            MdbOp::Set(vkey(10, "239.1.1.1"), EntryFilter::Any),
            MdbOp::Set(vkey(20, "239.1.1.2"), EntryFilter::Any),
        ],
        "without a VLAN: the port's PVID"
    );
    // The port leaves VLAN 10 and gets PVID 30: each static group follows.
    s.set_port_vlans(t(0), P1, Some(vlans(Some(30), &[20, 30])));
    let got = ops(&mut s);
    assert!(
        got.contains(&MdbOp::Delete(vkey(10, "239.1.1.1"))),
        "{got:?}"
    );
    assert!(
        got.contains(&MdbOp::Delete(vkey(20, "239.1.1.2"))),
        "{got:?}"
    );
    assert!(
        got.contains(&MdbOp::Set(vkey(30, "239.1.1.2"), EntryFilter::Any)),
        "{got:?}"
    );
}

#[test]
fn fast_leave_ends_a_lone_hosts_membership_at_once() {
    let mut s = snooper(cfg(true));
    fast_port(&mut s);
    run_until(&mut s, 100);
    rx(&mut s, 200, P1, &join("10.0.0.1", "239.1.1.1"));
    ops(&mut s);
    rx(&mut s, 300, P1, &leave("10.0.0.1", "239.1.1.1"));
    assert_eq!(ops(&mut s), [MdbOp::Delete(key(P1, "239.1.1.1"))]);
}

#[test]
fn fast_leave_waits_for_the_queries_while_another_host_of_the_port_is_in_the_group() {
    let mut s = snooper(cfg(true));
    fast_port(&mut s);
    run_until(&mut s, 100);
    rx(&mut s, 200, P1, &join("10.0.0.1", "239.1.1.1"));
    rx(&mut s, 210, P1, &join("10.0.0.2", "239.1.1.1"));
    ops(&mut s);
    rx(&mut s, 300, P1, &leave("10.0.0.1", "239.1.1.1"));
    assert_eq!(ops(&mut s), []);
    // 10.0.0.2 answers the last-member queries: the port stays.
    rx(
        &mut s,
        500,
        P1,
        &v3("10.0.0.2", RecordType::ModeIsExclude, "239.1.1.1", &[]),
    );
    run_until(&mut s, 5000);
    assert!(!ops(&mut s).contains(&MdbOp::Delete(key(P1, "239.1.1.1"))));
    // Now the last one leaves: at once.
    rx(&mut s, 5100, P1, &leave("10.0.0.2", "239.1.1.1"));
    assert_eq!(ops(&mut s), [MdbOp::Delete(key(P1, "239.1.1.1"))]);
}

#[test]
fn fast_leave_in_igmpv2_mode_trusts_no_host_count_once_two_hosts_reported() {
    let mut s = snooper(cfg(true));
    fast_port(&mut s);
    run_until(&mut s, 100);
    // Two v2 hosts joined; later only 10.0.0.1 answers (10.0.0.2 suppresses its report
    // on hearing it) and 10.0.0.2 drops out of the list of hosts after a GMI.
    rx(&mut s, 200, P1, &v2_join("10.0.0.1", "239.1.1.1"));
    rx(&mut s, 210, P1, &v2_join("10.0.0.2", "239.1.1.1"));
    for ms in (2000..20_000).step_by(2000) {
        rx(&mut s, ms, P1, &v2_join("10.0.0.1", "239.1.1.1"));
        run_until(&mut s, ms);
    }
    ops(&mut s);
    rx(&mut s, 20_100, P1, &v2_leave("10.0.0.1", "239.1.1.1"));
    assert_eq!(ops(&mut s), [], "the last-member queries decide");
    // A lone v2 host's leave is fast.
    rx(&mut s, 20_200, P2, &v2_join("10.0.0.3", "239.1.1.2"));
    s.set_port_policy(
        P2,
        Some(PortPolicy {
            fast_leave: true,
            ..Default::default()
        }),
    );
    ops(&mut s);
    rx(&mut s, 20_300, P2, &v2_leave("10.0.0.3", "239.1.1.2"));
    assert_eq!(ops(&mut s), [MdbOp::Delete(key(P2, "239.1.1.2"))]);
}

#[test]
fn without_fast_leave_a_lone_hosts_leave_waits_for_the_last_member_queries() {
    let mut s = snooper(cfg(true));
    run_until(&mut s, 100);
    rx(&mut s, 200, P1, &join("10.0.0.1", "239.1.1.1"));
    ops(&mut s);
    rx(&mut s, 300, P1, &leave("10.0.0.1", "239.1.1.1"));
    assert_eq!(ops(&mut s), []);
}

#[test]
fn flush_forgets_learned_memberships_keeps_static_ones_and_asks_again() {
    let mut s = snooper(cfg(true));
    run_until(&mut s, 100);
    s.set_port_statics(P1, statics(&[st("239.1.1.9", None, 0)]));
    rx(&mut s, 200, P1, &join("10.0.0.1", "239.1.1.1"));
    rx(&mut s, 200, P1, &join("10.0.0.1", "239.1.1.9"));
    rx(&mut s, 210, P2, &join("10.0.0.2", "239.1.1.1"));
    rx(&mut s, 210, P2, &join("10.0.0.2", "239.1.1.2"));
    s.drain().for_each(drop);
    // One group of one port: out of that port.
    let f = s.flush(t(300), Some(P2), Some(ip("239.1.1.1")));
    assert_eq!(f.memberships, 1);
    let outs: Vec<Output> = s.drain().collect();
    assert!(outs.contains(&Output::Mdb(MdbOp::Delete(key(P2, "239.1.1.1")))));
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::PortQuery {
            port: P2,
            query: AnyQuery::V4(q),
            ..
        } if q.group.is_none() && q.src == Some(a4("10.0.0.254"))
    )));
    // Everything: the static group stays, a general query goes through the bridge.
    let f = s.flush(t(400), None, None);
    assert_eq!(f.memberships, 3);
    assert!(f.queries >= 1);
    let outs: Vec<Output> = s.drain().collect();
    let deleted: Vec<EntryKey> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Mdb(MdbOp::Delete(k)) => Some(*k),
            _ => None,
        })
        .collect();
    assert_eq!(
        deleted,
        [key(P1, "239.1.1.1"), key(P2, "239.1.1.2")],
        "239.1.1.9 is static on P1"
    );
    assert!(outs.iter().any(
        |o| matches!(o, Output::Query { vid: 0, query: AnyQuery::V4(q) } if q.group.is_none())
    ));
}

#[test]
fn flush_without_being_querier_asks_igmp_hosts_with_a_proxy_query() {
    let mut s = snooper(cfg(false));
    rx(&mut s, 10, P1, &join("10.0.0.1", "239.1.1.1"));
    s.drain().for_each(drop);
    s.flush(t(20), None, None);
    let q: Vec<_> = s
        .drain()
        .filter_map(|o| match o {
            Output::Query { query, .. } => Some(query),
            _ => None,
        })
        .collect();
    assert_eq!(
        q.len(),
        1,
        "IGMP only: an MLD query would take part in the election"
    );
    assert!(matches!(&q[0], AnyQuery::V4(q) if q.src.is_none()));
}

#[test]
fn a_port_that_comes_up_gets_a_general_query_when_igmpd_is_querier() {
    let mut s = snooper(cfg(true));
    run_until(&mut s, 100);
    s.drain().for_each(drop);
    s.port_came_up(t(200), P2);
    assert_eq!(port_queries(&mut s), [(P2, 0, Some(a4("10.0.0.254")))]);
    // Another querier with a lower address took over: igmpd does not query.
    rx(&mut s, 300, P3, &query("10.0.0.1", None));
    s.drain().for_each(drop);
    s.port_came_up(t(400), P2);
    assert_eq!(port_queries(&mut s), []);
    // Without --querier, never.
    let mut s = snooper(cfg(false));
    s.port_came_up(t(10), P2);
    assert_eq!(port_queries(&mut s), []);
}
