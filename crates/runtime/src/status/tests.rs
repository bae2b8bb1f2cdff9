//! The documented order of the group lists, and the JSON written from them.

use std::net::IpAddr;

use super::*;

fn ip(a: &str) -> IpAddr {
    a.parse().unwrap()
}

fn port_group(group: &str, vid: Option<u16>) -> PortGroupStatus {
    PortGroupStatus {
        group: ip(group),
        vid,
        filter_mode: "exclude",
        sources: vec![],
        hosts: vec![ip("10.0.0.1")],
        compat_version: 2,
        expires_in_ms: 1000,
        origin: "learned",
        flooded: false,
    }
}

fn group(group: &str) -> GroupStatus {
    GroupStatus {
        group: ip(group),
        filter_mode: "exclude",
        sources: vec![],
        last_reporter: None,
        reporters: None,
        compat_version: 3,
        expires_in_ms: 0,
    }
}

fn doc() -> StatusDoc {
    let port = PortStatus {
        name: "p1".into(),
        ifindex: 2,
        up: true,
        groups: vec![
            port_group("ff0e::1", Some(10)),
            port_group("239.1.1.2", None),
            port_group("ff0e::1", None),
            port_group("239.1.1.1", Some(10)),
            port_group("10.0.0.0", None),
            port_group("239.1.1.1", None),
        ],
        limits: PortLimitsStatus {
            max_groups: 4096,
            groups: 6,
            max_sources: 1024,
            limit_action: "deny",
            router_guard: false,
            max_report_rate: None,
            require_router_alert: false,
            acl_default: "permit",
        },
        counters: PortCountersStatus {
            refused: 0,
            replaced: 0,
            refused_sources: 0,
            denied: 0,
            guard_drops: 0,
            rate_drops: 0,
            router_alert_drops: 0,
            bad_queries: 0,
            acl_default_hits: 0,
            backlog_drops: 0,
        },
        acl: vec![],
    };
    let family = FamilyStatus {
        version: 3,
        configured_version: 3,
        role: "querier",
        address: None,
        querier_address: None,
        other_querier_expires_in_ms: 0,
        robustness: 2,
        query_interval_ms: 125_000,
        queries_sent: 0,
        drops: BTreeMap::new(),
        groups: vec![group("239.9.0.1"), group("224.0.1.1"), group("239.10.0.1")],
    };
    StatusDoc {
        interfaces: Some(vec![IfaceStatus {
            name: "br0".into(),
            ifindex: Some(1),
            up: true,
            igmp: Some(family),
            mld: None,
            joins: vec![],
        }]),
        bridges: Some(vec![BridgeStatus {
            name: "br0".into(),
            ifindex: Some(1),
            up: true,
            active: true,
            querier: true,
            mcast_hash_max: Some(4096),
            entry_limit: 4032,
            mdb_keys: 6,
            mdb_entries: 6,
            source_filtering: true,
            nft_table_owned: Some(true),
            igmp: None,
            mld: None,
            vlans: vec![],
            counters: BridgeCounters::default(),
            router_ports: vec![],
            ports: vec![port],
        }]),
        findings: vec![],
        kernel: None,
    }
}

/// Untagged first, then by VLAN; in each, IGMP before MLD, then by address (numerically:
/// 239.9 before 239.10).
#[test]
fn sorts_port_groups_by_vlan_family_and_address_and_interface_groups_by_address() {
    let mut d = doc();
    d.sort();
    let b = &d.bridges.as_ref().unwrap()[0];
    let order: Vec<(Option<u16>, String)> = b.ports[0]
        .groups
        .iter()
        .map(|g| (g.vid, g.group.to_string()))
        .collect();
    let want = [
        (None, "10.0.0.0"),
        (None, "239.1.1.1"),
        (None, "239.1.1.2"),
        (None, "ff0e::1"),
        (Some(10), "239.1.1.1"),
        (Some(10), "ff0e::1"),
    ];
    assert_eq!(
        order,
        want.map(|(v, g)| (v, g.to_string())).to_vec(),
        "port groups"
    );
    let i = &d.interfaces.as_ref().unwrap()[0];
    let order: Vec<String> = i
        .igmp
        .as_ref()
        .unwrap()
        .groups
        .iter()
        .map(|g| g.group.to_string())
        .collect();
    assert_eq!(order, ["224.0.1.1", "239.9.0.1", "239.10.0.1"]);
}

/// The JSON is sorted, its addresses are strings, and the indented form is the same
/// document.
#[test]
fn writes_sorted_json_with_addresses_as_strings_on_one_line_or_indented() {
    let mut line = Vec::new();
    doc().write_json(&mut line, false).unwrap();
    assert!(!line.contains(&b'\n'), "one line");
    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
    let g = &v["bridges"][0]["ports"][0]["groups"];
    assert_eq!(g[0]["group"], "10.0.0.0");
    assert_eq!(g[0]["hosts"], serde_json::json!(["10.0.0.1"]));
    assert_eq!(g[5]["group"], "ff0e::1");
    assert_eq!(g[5]["vid"], 10);
    assert_eq!(
        v["interfaces"][0]["igmp"]["groups"][2]["group"],
        "239.10.0.1"
    );
    let mut pretty = Vec::new();
    doc().write_json(&mut pretty, true).unwrap();
    assert!(
        pretty.iter().filter(|b| **b == b'\n').count() > 50,
        "indented"
    );
    let p: serde_json::Value = serde_json::from_slice(&pretty).unwrap();
    assert_eq!(p, v);
}
