use std::collections::BTreeSet;

use super::*;
use crate::status::FindingDoc;

fn port(name: &str) -> PortMetrics {
    PortMetrics {
        name: name.into(),
        up: true,
        counters: PortCountersStatus {
            refused: 3,
            replaced: 0,
            refused_sources: 1,
            denied: 2,
            guard_drops: 4,
            rate_drops: 5,
            router_alert_drops: 0,
            bad_queries: 0,
            acl_default_hits: 0,
            backlog_drops: 6,
        },
        vlans: vec![
            PortVlanMetrics {
                vid: 0,
                family: "igmp",
                received: Traffic {
                    reports: 10,
                    leaves: 2,
                    queries: 0,
                },
                memberships: 7,
            },
            PortVlanMetrics {
                vid: 10,
                family: "mld",
                received: Traffic::default(),
                memberships: 1,
            },
        ],
    }
}

fn doc() -> MetricsDoc {
    MetricsDoc {
        interfaces: vec![IfaceMetrics {
            name: "eth1".into(),
            up: true,
            families: vec![QuerierMetrics {
                family: "igmp",
                role: "querier",
                querier_address: Some("10.0.0.1".parse().unwrap()),
                version: 3,
                queries_sent: 12,
                received: Traffic {
                    reports: 5,
                    leaves: 1,
                    queries: 0,
                },
                drops: vec![("checksum", 2)],
                groups: 4,
            }],
        }],
        bridges: vec![BridgeMetrics {
            // A name no one should use, but Linux allows: the label must stay one value.
            name: "br\"0\\x".into(),
            up: true,
            active: true,
            mdb_entries: 8,
            mdb_keys: 8,
            mdb_entry_limit: 4000,
            mdb_writes: 9,
            counters: BridgeCounters {
                reports: 12,
                mdb_errors: 1,
                ..BridgeCounters::default()
            },
            queriers: vec![DomainMetrics {
                vid: 0,
                family: "igmp",
                role: "non-querier",
                querier_address: None,
                queries_sent: 0,
            }],
            router_ports: vec![("p1".into(), 0, "igmp")],
            ports: vec![port("p1"), port("p2")],
        }],
        findings: FindingCount::count(&[
            finding("no-querier", "br0"),
            finding("no-querier", "br0"),
            finding("host-silent", "eth1"),
        ]),
    }
}

fn finding(code: &'static str, iface: &str) -> FindingDoc {
    FindingDoc {
        code,
        severity: "warning",
        iface: iface.into(),
        message: String::new(),
        hint: String::new(),
        host: None,
        group: None,
    }
}

fn text(mut d: MetricsDoc) -> String {
    let mut out = Vec::new();
    d.write_text(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The value of the sample whose line starts with `prefix` (name and labels).
fn value(t: &str, prefix: &str) -> Option<u64> {
    t.lines()
        .find_map(|l| l.strip_prefix(prefix)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn every_metric_has_help_and_type_once_and_its_samples_together() {
    let t = text(doc());
    let mut seen = BTreeSet::new();
    let mut current: Option<String> = None;
    for line in t.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_owned();
            assert!(name.starts_with("igmpd_"), "{name}");
            assert!(seen.insert(name.clone()), "{name} twice");
            current = Some(name);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(Some(name), current.as_deref());
            assert_eq!(
                kind == "counter",
                name.ends_with("_total"),
                "{name}: counters and only counters end in _total"
            );
            assert!(kind == "counter" || kind == "gauge");
        } else {
            let name = line.split(['{', ' ']).next().unwrap();
            assert_eq!(Some(name), current.as_deref(), "{line}: outside its metric");
            let v = line.rsplit(' ').next().unwrap();
            assert!(v.parse::<u64>().is_ok(), "{line}");
        }
    }
    assert!(t.ends_with('\n'));
}

#[test]
fn samples_carry_their_labels_and_values() {
    let t = text(doc());
    assert_eq!(
        value(
            &t,
            r#"igmpd_querier_info{iface="eth1",family="igmp",role="querier",version="3",querier="10.0.0.1"}"#
        ),
        Some(1)
    );
    assert_eq!(
        value(
            &t,
            r#"igmpd_querier_queries_sent_total{iface="eth1",family="igmp"}"#
        ),
        Some(12)
    );
    assert_eq!(
        value(
            &t,
            r#"igmpd_querier_drops_total{iface="eth1",family="igmp",reason="checksum"}"#
        ),
        Some(2)
    );
    let br = r#"bridge="br\"0\\x""#;
    assert_eq!(
        value(
            &t,
            &format!(
                r#"igmpd_port_reports_received_total{{{br},port="p2",vlan="0",family="igmp"}}"#
            )
        ),
        Some(10)
    );
    assert_eq!(
        value(
            &t,
            &format!(r#"igmpd_port_memberships{{{br},port="p1",vlan="10",family="mld"}}"#)
        ),
        Some(1)
    );
    assert_eq!(
        value(
            &t,
            &format!(r#"igmpd_port_refusals_total{{{br},port="p1",reason="max_groups"}}"#)
        ),
        Some(3)
    );
    assert_eq!(
        value(
            &t,
            &format!(
                r#"igmpd_bridge_querier_info{{{br},vlan="0",family="igmp",role="non-querier",querier=""}}"#
            )
        ),
        Some(1)
    );
    assert_eq!(
        value(&t, &format!("igmpd_bridge_mdb_write_errors_total{{{br}}}")),
        Some(1)
    );
    assert_eq!(
        value(
            &t,
            r#"igmpd_findings{iface="br0",code="no-querier",severity="warning"}"#
        ),
        Some(2)
    );
}

#[test]
fn label_values_are_escaped() {
    let mut s = String::new();
    text::escape(&mut s, "a\\b\"c\nd", true);
    assert_eq!(s, r#"a\\b\"c\nd"#);
    let mut s = String::new();
    text::escape(&mut s, "a\\b\"c\nd", false);
    assert_eq!(s, r#"a\\b"c\nd"#, "HELP keeps its quotes");
}

#[test]
fn metrics_without_samples_are_left_out() {
    let t = text(MetricsDoc::default());
    // Only the build info.
    assert_eq!(t.lines().filter(|l| !l.starts_with('#')).count(), 1, "{t}");
    assert!(t.contains("igmpd_build_info{version=\""));
    assert!(!t.contains("igmpd_port_"));
}

#[test]
fn merged_documents_list_interfaces_and_bridges_by_name() {
    let mut a = MetricsDoc::default();
    let mut b = doc();
    b.bridges[0].name = "br1".into();
    let mut c = doc();
    c.bridges[0].name = "br0".into();
    c.interfaces.clear();
    a.merge(b);
    a.merge(c);
    let t = text(a);
    let up: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with("igmpd_bridge_up{"))
        .collect();
    assert_eq!(
        up,
        [
            r#"igmpd_bridge_up{bridge="br0"} 1"#,
            r#"igmpd_bridge_up{bridge="br1"} 1"#
        ]
    );
}
