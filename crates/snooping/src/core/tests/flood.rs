//! Flooded groups, in virtual time: a report for a group of the flood list puts it on
//! every port up, for good; other groups are snooped as before.

use super::*;

fn flood_cfg() -> SnoopConfig {
    let mut c = cfg(false);
    c.flood_groups = crate::core::flood::default_flood_groups();
    c
}

fn sets(ops: &[MdbOp]) -> BTreeSet<EntryKey> {
    ops.iter()
        .filter_map(|o| match o {
            MdbOp::Set(k, EntryFilter::Any) => Some(*k),
            _ => None,
        })
        .collect()
}

fn deletes(ops: &[MdbOp]) -> BTreeSet<EntryKey> {
    ops.iter()
        .filter_map(|o| match o {
            MdbOp::Delete(k) => Some(*k),
            _ => None,
        })
        .collect()
}

const SN: &str = "ff02::1:ff00:2";

#[test]
fn a_reported_solicited_node_group_is_on_every_port_and_never_expires() {
    let mut s = snooper(flood_cfg());
    rx(&mut s, 10, P2, &mld_join("fe80::2", SN));
    let o = ops(&mut s);
    assert_eq!(
        sets(&o),
        [key(P1, SN), key(P2, SN), key(P3, SN)]
            .into_iter()
            .collect()
    );
    assert!(s.is_flood_group(SN.parse().unwrap()));
    assert_eq!(s.flood_entries().count(), 3);
    // A group not in the list is snooped as before: on P2 only, gone after the
    // membership interval (2 x 2 s + 1 s) without reports.
    rx(&mut s, 20, P2, &mld_join("fe80::2", "ff05::1"));
    assert_eq!(
        sets(&ops(&mut s)),
        [key(P2, "ff05::1")].into_iter().collect()
    );
    run_until(&mut s, 20_000);
    let o = ops(&mut s);
    assert_eq!(deletes(&o), [key(P2, "ff05::1")].into_iter().collect());
    // Three membership intervals later the flooded group is still on every port.
    assert_eq!(s.flood_entries().count(), 3);
    assert!(s.mdb().programmed().any(|(k, _, _)| *k == key(P1, SN)));
}

#[test]
fn flooded_groups_follow_the_ports_and_a_report_of_them_changes_nothing() {
    let mut s = snooper(flood_cfg());
    rx(&mut s, 10, P2, &mld_join("fe80::2", "ff02::fb"));
    s.drain().for_each(drop);
    // Another host's report: every port has the entry already.
    rx(&mut s, 20, P3, &mld_join("fe80::3", "ff02::fb"));
    assert_eq!(ops(&mut s), []);
    s.port_down(P3);
    assert_eq!(
        deletes(&ops(&mut s)),
        [key(P3, "ff02::fb")].into_iter().collect()
    );
    s.port_up(P3);
    assert_eq!(
        sets(&ops(&mut s)),
        [key(P3, "ff02::fb")].into_iter().collect()
    );
}

#[test]
fn with_an_empty_flood_list_a_silent_hosts_solicited_node_group_expires() {
    let mut s = snooper(cfg(false));
    rx(&mut s, 10, P2, &mld_join("fe80::2", SN));
    assert_eq!(sets(&ops(&mut s)), [key(P2, SN)].into_iter().collect());
    run_until(&mut s, 20_000);
    assert_eq!(deletes(&ops(&mut s)), [key(P2, SN)].into_iter().collect());
    assert_eq!(s.flood_entries().count(), 0);
}

#[test]
fn a_flood_reports_port_gets_every_report_once_never_its_own() {
    let mut s = snooper(cfg(false));
    s.set_port_policy(
        P3,
        Some(PortPolicy {
            flood_reports: true,
            ..Default::default()
        }),
    );
    // No router port: the report goes to P3 only.
    assert_eq!(rx(&mut s, 0, P2, &join("10.0.0.1", "239.1.1.1")), [P3]);
    // P3 a router port as well: still once.
    rx(&mut s, 0, P3, &query("10.0.0.9", None));
    assert_eq!(rx(&mut s, 10, P2, &join("10.0.0.1", "239.1.1.1")), [P3]);
    // With P1 a router port: both; P3's own reports never go back to it.
    rx(&mut s, 10, P1, &query("10.0.0.8", None));
    let mut to = rx(&mut s, 20, P2, &join("10.0.0.1", "239.1.1.2"));
    to.sort_unstable();
    assert_eq!(to, [P1, P3]);
    assert_eq!(rx(&mut s, 30, P3, &join("10.0.0.3", "239.1.1.3")), [P1]);
}

/// Hosts fe80::2 on P2 (answers every general query we send) and fe80::3 on P3 (its
/// firewall drops MLD queries) joined their solicited-node groups; 12 s of our queries.
fn silent_ipv6_host(flood_groups: Vec<crate::core::FloodPrefix>) -> Snooper {
    let mut c = cfg(true);
    c.igmp = None;
    c.flood_groups = flood_groups;
    let mut s = snooper(c);
    rx(&mut s, 100, P2, &mld_join("fe80::2", "ff02::1:ff00:2"));
    rx(&mut s, 100, P3, &mld_join("fe80::3", "ff02::1:ff00:3"));
    let mut now = 100;
    while now < 12_000 {
        let Some(d) = s.next_deadline() else { break };
        now = d.as_millis();
        s.poll(d);
        let general = s.drain().any(
            |o| matches!(o, Output::Query { query: AnyQuery::V6(q), .. } if q.group.is_none()),
        );
        if general {
            rx(&mut s, now + 10, P2, &mld_join("fe80::2", "ff02::1:ff00:2"));
        }
    }
    s
}

#[test]
fn nd_at_risk_names_the_silent_hosts_port_when_solicited_nodes_are_not_flooded() {
    let s = silent_ipv6_host(Vec::new());
    let f = s.port_findings(t(12_000), "br0", |p| format!("p{p}"));
    let nd: Vec<_> = f.iter().filter(|f| f.code == "nd-at-risk").collect();
    assert_eq!(nd.len(), 1, "{f:#?}");
    assert_eq!(nd[0].host.as_deref(), Some("fe80::3"));
    assert!(
        nd[0].message.contains(&format!("port p{P3}")),
        "{}",
        nd[0].message
    );
    assert!(nd[0].hint.contains("flood_groups") && nd[0].hint.contains("mld-listener-query"));
    // Flooded (the default list): the host stays reachable, nothing to say.
    let s = silent_ipv6_host(crate::core::flood::default_flood_groups());
    assert!(s
        .findings(t(12_000), "br0")
        .iter()
        .any(|f| f.code == "member-silent"));
    let f = s.port_findings(t(12_000), "br0", |p| format!("p{p}"));
    assert!(f.iter().all(|f| f.code != "nd-at-risk"), "{f:#?}");
}

fn vkey(port: u32, vid: u16, g: &str) -> EntryKey {
    EntryKey {
        port,
        vid,
        group: g.parse().unwrap(),
    }
}

#[test]
fn on_a_vlan_filtering_bridge_a_flooded_group_is_on_every_port_of_its_vlan_only() {
    let mut s = snooper(flood_cfg());
    s.set_port_vlans(t(0), P1, vlans(Some(10), &[10, 20]));
    s.set_port_vlans(t(0), P2, vlans(None, &[20]));
    s.set_port_vlans(t(0), P3, vlans(Some(10), &[10]));
    s.drain().for_each(drop);
    let mut f = Vec::new();
    s.receive(t(10), P2, 20, &mld_join("fe80::2", SN), &mut f);
    assert_eq!(
        sets(&ops(&mut s)),
        [vkey(P1, 20, SN), vkey(P2, 20, SN)].into_iter().collect()
    );
    // P3 joins VLAN 20: the group is on it too; P1 leaves it: gone from P1.
    s.set_port_vlans(t(20), P3, vlans(Some(10), &[10, 20]));
    assert_eq!(sets(&ops(&mut s)), [vkey(P3, 20, SN)].into_iter().collect());
    s.set_port_vlans(t(30), P1, vlans(Some(10), &[10]));
    assert_eq!(
        deletes(&ops(&mut s)),
        [vkey(P1, 20, SN)].into_iter().collect()
    );
}
