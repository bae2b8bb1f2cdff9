//! The status document of a snooper in a known state, as JSON: its keys (what `igmpd
//! status --json` users and the end-to-end tests read) and the values that follow from
//! the state.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use igmpd_querier::core::{Config, Proto};
use igmpd_wire::frame::Ipv4Header;
use igmpd_wire::{IgmpQuery, IgmpRepr, IgmpVersion, Packet};
use serde_json::Value;

use super::*;
use crate::core::SnoopConfig;
use igmpd_runtime::status::KernelStatus;

const P1: u32 = 11;
const P2: u32 = 12;

fn snooper(querier: bool) -> Snooper {
    let mut s = Snooper::new(SnoopConfig {
        igmp: Some(Config::new(Proto::Igmp)),
        mld: Some(Config::new(Proto::Mld)),
        querier,
        router_ports: BTreeSet::from([P2]),
        source_filtering_v4: true,
        source_filtering_v6: true,
        entry_limit: 100,
        vlans: BTreeMap::new(),
        vlan_filtering: true,
        vlan_snooping: false,
        policy: Default::default(),
        flood_groups: Vec::new(),
    });
    let t0 = Instant::from_millis(0);
    s.set_addresses(t0, Some(Ipv4Addr::new(10, 0, 0, 254)), None);
    s.bridge_up(t0);
    s.port_up(P1);
    s.port_up(P2);
    let join = Packet::Igmp {
        ip: Ipv4Header::igmp(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(239, 1, 1, 1)),
        igmp: IgmpRepr::V2Report {
            group: Ipv4Addr::new(239, 1, 1, 1),
        },
    };
    let mut fwd = Vec::new();
    s.receive(Instant::from_millis(10), P1, 0, &join, &mut fwd);
    assert_eq!(fwd, [P2]);
    // A general query from a router on P2 (a learned router port too).
    let query = Packet::Igmp {
        ip: Ipv4Header::igmp(Ipv4Addr::new(10, 0, 0, 9), Ipv4Addr::new(224, 0, 0, 1)),
        igmp: IgmpRepr::Query(IgmpQuery::general(IgmpVersion::V2, 100, 0, 0)),
    };
    s.receive(Instant::from_millis(20), P2, 0, &query, &mut fwd);
    s.drain().for_each(drop);
    s
}

fn port(name: &str) -> Port {
    Port {
        name: name.into(),
        up: true,
        socket: None,
        original_router: 1,
        current_router: 1,
        original_flood: true,
        current_flood: true,
        forwarding: true,
    }
}

fn doc(querier: bool) -> Value {
    let s = snooper(querier);
    let bridge = BridgeLink {
        ifindex: 3,
        mac: [2, 0, 0, 0, 0, 3],
        up: true,
        hash_max: 4096,
        igmp_v3: false,
        mld_v2: true,
        igmp_version: 2,
        mld_version: 2,
        snooping: true,
        kernel_querier: false,
        vlan_filtering: false,
        vlan_snooping: false,
    };
    let ports = BTreeMap::from([(P1, port("p1")), (P2, port("p2"))]);
    let v = View {
        bridge_name: "br0",
        bridge: Some(&bridge),
        active: true,
        querier,
        ports: &ports,
        mdb_errors: 1,
        capture_drops: 2,
        decode_drops: 3,
        adopted: 4,
        source_filtering: false,
        vlan_source_filtering: None,
        kernel: KernelStatus {
            release: "6.18.0-test".into(),
            features: vec!["mdb_protocol"],
        },
        findings: Vec::new(),
        backlog_drops: BTreeMap::from([(P1, 7)]),
        nft_owned: Some(true),
        recovered: (5, 6, 7),
    };
    let now = Instant::from_millis(1000);
    serde_json::to_value(status_doc(&v, &s, now)).unwrap()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[test]
fn the_bridge_section_has_its_keys_and_the_state_of_the_core() {
    let d = doc(false);
    assert_eq!(
        keys(&d),
        ["bridges", "findings", "kernel"],
        "no interfaces without --querier"
    );
    assert_eq!(d["kernel"]["release"], "6.18.0-test");
    assert_eq!(d["kernel"]["features"], serde_json::json!(["mdb_protocol"]));
    let b = &d["bridges"][0];
    assert_eq!(
        keys(b),
        [
            "active",
            "counters",
            "entry_limit",
            "ifindex",
            "igmp",
            "mcast_hash_max",
            "mdb_entries",
            "mdb_keys",
            "mld",
            "name",
            "nft_table_owned",
            "ports",
            "querier",
            "router_ports",
            "source_filtering",
            "up",
            "vlans"
        ]
    );
    assert_eq!(b["source_filtering"], false);
    assert_eq!(
        keys(&b["counters"]),
        [
            "activation_failures",
            "adopted",
            "capture_drops",
            "decode_drops",
            "forwarded",
            "groups_refused",
            "groups_refused_now",
            "mdb_errors",
            "mld_bad_source",
            "netlink_reconnects",
            "queries",
            "reports",
            "source_lists_degraded",
            "vlan_drops",
            "vlan_tags_ignored",
            "writer_send_failures"
        ]
    );
    assert_eq!(
        [
            &b["counters"]["writer_send_failures"],
            &b["counters"]["netlink_reconnects"],
            &b["counters"]["activation_failures"]
        ],
        [5, 6, 7]
    );
    let c = &b["counters"];
    assert_eq!(
        [
            &c["reports"],
            &c["queries"],
            &c["forwarded"],
            &c["mdb_errors"],
            &c["capture_drops"],
            &c["decode_drops"],
            &c["adopted"]
        ],
        [1, 1, 1, 1, 2, 3, 4]
    );
    assert_eq!(
        (&b["name"], &b["ifindex"], &b["mdb_entries"]),
        (&Value::from("br0"), &Value::from(3), &Value::from(1))
    );
    assert_eq!(
        keys(&b["igmp"]),
        [
            "group_membership_interval_ms",
            "querier_address",
            "query_interval_ms",
            "robustness",
            "role"
        ]
    );
    assert_eq!(b["igmp"]["querier_address"], "10.0.0.9");
}

#[test]
fn ports_show_their_groups_and_router_ports_why() {
    let d = doc(false);
    let b = &d["bridges"][0];
    let p1 = &b["ports"][0];
    assert_eq!(
        keys(p1),
        ["acl", "counters", "groups", "ifindex", "limits", "name", "up"]
    );
    assert_eq!(
        keys(&p1["limits"]),
        [
            "acl_default",
            "groups",
            "limit_action",
            "max_groups",
            "max_report_rate",
            "max_sources",
            "require_router_alert",
            "router_guard"
        ]
    );
    assert_eq!(
        keys(&p1["counters"]),
        [
            "acl_default_hits",
            "backlog_drops",
            "bad_queries",
            "denied",
            "guard_drops",
            "rate_drops",
            "refused",
            "refused_sources",
            "replaced",
            "router_alert_drops"
        ]
    );
    // The defaults: the bridge's entry limit (at least 4096), 1024 sources, no guard.
    assert_eq!(
        (&p1["limits"]["max_groups"], &p1["limits"]["max_sources"]),
        (&Value::from(4096), &Value::from(1024))
    );
    assert_eq!(p1["acl"], Value::Array(vec![]));
    assert_eq!(p1["counters"]["backlog_drops"], 7);
    assert_eq!(
        (&p1["name"], &p1["ifindex"]),
        (&Value::from("p1"), &Value::from(P1))
    );
    let g = &p1["groups"][0];
    assert_eq!(
        keys(g),
        [
            "compat_version",
            "expires_in_ms",
            "filter_mode",
            "flooded",
            "group",
            "hosts",
            "origin",
            "sources",
            "vid"
        ]
    );
    assert_eq!(
        (&g["group"], &g["vid"], &g["origin"]),
        (
            &Value::from("239.1.1.1"),
            &Value::Null,
            &Value::from("learned")
        )
    );
    assert_eq!(g["hosts"][0], "10.0.0.1");
    assert_eq!(b["ports"][1]["groups"], Value::Array(vec![]));
    let routers = b["router_ports"].as_array().unwrap();
    assert_eq!(routers.len(), 2, "{routers:?}");
    assert_eq!(
        keys(&routers[0]),
        ["expires_in_ms", "families", "name", "reasons", "vid"]
    );
    assert_eq!(
        (&routers[0]["name"], &routers[0]["reasons"][0]),
        (&Value::from("p2"), &Value::from("configured"))
    );
    assert_eq!(
        (&routers[1]["reasons"][0], &routers[1]["families"][0]),
        (&Value::from("query"), &Value::from("igmp"))
    );
    let expires = routers[1]["expires_in_ms"].as_u64().unwrap();
    assert!(expires > 0 && expires < Duration::from_secs(300).as_millis() as u64);
}

#[test]
fn with_querier_the_bridge_is_an_interface_too() {
    let d = doc(true);
    assert_eq!(keys(&d), ["bridges", "findings", "interfaces", "kernel"]);
    let i = &d["interfaces"][0];
    assert_eq!(keys(i), ["ifindex", "igmp", "mld", "name", "up"]);
    assert_eq!(i["name"], "br0");
    assert!(i["igmp"]["role"].is_string());
    assert!(i["igmp"]["groups"].is_array());
}
