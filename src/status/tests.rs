use igmpd_runtime::status::{
    AclRuleStatus, BridgeCounters, BridgeQuerierStatus, BridgeStatus, BridgeVlanStatus,
    FamilyStatus, FindingDoc, GroupStatus, IfaceStatus, JoinStatus, PortCountersStatus,
    PortGroupStatus, PortLimitsStatus, PortStatus, ReporterStatus, RouterPortStatus, SourceStatus,
    StatusDoc,
};

/// What `igmpd status` prints for `doc` (the daemon renders its typed document).
fn text(doc: &StatusDoc) -> String {
    let mut out = Vec::new();
    super::write(doc, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn ip(a: &str) -> std::net::IpAddr {
    a.parse().unwrap()
}

fn limits(groups: usize, max_groups: usize, router_guard: bool) -> PortLimitsStatus {
    PortLimitsStatus {
        max_groups,
        groups,
        max_sources: 1024,
        limit_action: "deny",
        router_guard,
        max_report_rate: None,
        require_router_alert: false,
        acl_default: "permit",
    }
}

fn counters(refused: u64, guard_drops: u64) -> PortCountersStatus {
    PortCountersStatus {
        refused,
        replaced: 0,
        refused_sources: 0,
        denied: 1,
        guard_drops,
        rate_drops: 0,
        router_alert_drops: 0,
        bad_queries: 0,
        acl_default_hits: 4,
        backlog_drops: 0,
    }
}

fn source(address: &str, expires_in_ms: u64) -> SourceStatus {
    SourceStatus {
        address: address.parse().unwrap(),
        expires_in_ms,
    }
}

pub(crate) fn querier_iface() -> IfaceStatus {
    IfaceStatus {
        name: "eth0".into(),
        ifindex: Some(3),
        up: true,
        igmp: Some(FamilyStatus {
            version: 3,
            configured_version: 3,
            role: "querier",
            address: Some("10.0.0.1".into()),
            querier_address: Some("10.0.0.1".into()),
            other_querier_expires_in_ms: 0,
            robustness: 2,
            query_interval_ms: 125_000,
            queries_sent: 4,
            drops: [("bad_checksum", 1), ("truncated", 0)].into(),
            groups: vec![GroupStatus {
                group: ip("239.1.1.1"),
                filter_mode: "exclude",
                sources: vec![source("10.0.0.9", 3000), source("10.0.0.10", 0)],
                last_reporter: Some(ip("10.0.0.12")),
                reporters: Some(vec![ReporterStatus {
                    address: ip("10.0.0.12"),
                    last_report_ms_ago: 1500,
                }]),
                compat_version: 3,
                expires_in_ms: 250_000,
            }],
        }),
        mld: Some(FamilyStatus {
            version: 1,
            configured_version: 2,
            role: "non-querier",
            address: Some("fe80::2".into()),
            querier_address: Some("fe80::1".into()),
            other_querier_expires_in_ms: 200_500,
            robustness: 2,
            query_interval_ms: 60_000,
            queries_sent: 0,
            drops: Default::default(),
            groups: vec![],
        }),
        joins: vec![
            JoinStatus {
                group: "239.1.1.1".parse().unwrap(),
                source: None,
                state: "joined".into(),
            },
            JoinStatus {
                group: "232.1.1.1".parse().unwrap(),
                source: Some("10.0.0.5".parse().unwrap()),
                state: "No buffer space available (os error 105)".into(),
            },
        ],
    }
}

pub(crate) fn down_iface() -> IfaceStatus {
    IfaceStatus {
        name: "eth9".into(),
        ifindex: None,
        up: false,
        igmp: None,
        mld: None,
        joins: vec![],
    }
}

pub(crate) fn bridge() -> BridgeStatus {
    BridgeStatus {
        nft_table_owned: Some(true),
        source_filtering: true,
        name: "br0".into(),
        ifindex: Some(7),
        up: true,
        active: true,
        querier: false,
        mcast_hash_max: Some(4096),
        entry_limit: 4032,
        mdb_keys: 1,
        mdb_entries: 2,
        igmp: Some(BridgeQuerierStatus {
            role: "non-querier",
            querier_address: Some("10.0.0.1".into()),
            robustness: 2,
            query_interval_ms: 125_000,
            group_membership_interval_ms: 260_000,
        }),
        vlans: vec![BridgeVlanStatus {
            vid: 10,
            source_filtering: Some(true),
            igmp: Some(BridgeQuerierStatus {
                role: "querier",
                querier_address: Some("10.0.10.1".into()),
                robustness: 2,
                query_interval_ms: 125_000,
                group_membership_interval_ms: 260_000,
            }),
            mld: None,
        }],
        mld: None,
        counters: BridgeCounters {
            reports: 3,
            queries: 1,
            forwarded: 2,
            mdb_errors: 1,
            capture_drops: 5,
            ..Default::default()
        },
        router_ports: vec![
            RouterPortStatus {
                name: "p1".into(),
                vid: None,
                reasons: vec!["configured", "query"],
                families: vec!["igmp"],
                expires_in_ms: None,
            },
            RouterPortStatus {
                name: "p3".into(),
                vid: Some(10),
                reasons: vec!["pim"],
                families: vec!["igmp", "mld"],
                expires_in_ms: Some(100_000),
            },
        ],
        ports: vec![
            PortStatus {
                name: "p2".into(),
                ifindex: 8,
                up: true,
                groups: vec![
                    PortGroupStatus {
                        group: ip("239.1.1.1"),
                        vid: None,
                        filter_mode: "include",
                        sources: vec![source("10.0.0.9", 4000), source("10.0.0.8", 0)],
                        hosts: vec![ip("10.0.0.2"), ip("10.0.0.3")],
                        compat_version: 3,
                        expires_in_ms: 0,
                        origin: "learned",
                        flooded: false,
                    },
                    PortGroupStatus {
                        group: ip("ff0e::1"),
                        vid: Some(10),
                        filter_mode: "exclude",
                        sources: vec![],
                        hosts: vec![ip("fe80::5")],
                        compat_version: 2,
                        expires_in_ms: 90_000,
                        origin: "static",
                        flooded: false,
                    },
                ],
                limits: limits(2, 256, false),
                counters: counters(3, 0),
                acl: vec![AclRuleStatus {
                    action: "deny",
                    group: "239.255.0.0/16".into(),
                    source: None,
                    hits: 1,
                }],
            },
            PortStatus {
                name: "p4".into(),
                ifindex: 9,
                up: false,
                groups: vec![],
                limits: limits(0, 4096, true),
                counters: counters(0, 7),
                acl: vec![],
            },
        ],
    }
}

fn quiet_bridge() -> BridgeStatus {
    BridgeStatus {
        nft_table_owned: None,
        source_filtering: true,
        name: "br1".into(),
        ifindex: None,
        up: false,
        active: false,
        querier: true,
        mcast_hash_max: None,
        entry_limit: 0,
        mdb_keys: 0,
        mdb_entries: 0,
        igmp: None,
        mld: None,
        vlans: vec![],
        counters: BridgeCounters::default(),
        router_ports: vec![],
        ports: vec![],
    }
}

pub(crate) fn finding(code: &'static str, severity: &'static str, hint: &str) -> FindingDoc {
    FindingDoc {
        code,
        severity,
        iface: "eth0".into(),
        message: format!("{code} on eth0"),
        hint: hint.into(),
        host: None,
        group: None,
    }
}

const INTERFACES: &str = "\
eth0 (ifindex 3) up
  igmp v3 querier address 10.0.0.1  robustness 2  interval 2m5s  queries sent 4
    dropped: bad_checksum 1
    group                                    mode        expires  ver  last reporter
    239.1.1.1                                exclude       4m10s   v3  10.0.0.12
      source 10.0.0.9                                  3s
      source 10.0.0.10                            blocked
  mld v1 non-querier querier fe80::1 (present for 3m20.5s)  robustness 2  interval 1m  queries sent 0
    no groups
  join 239.1.1.1: joined
  join 10.0.0.5/232.1.1.1: No buffer space available (os error 105)
eth9 (ifindex -) down
";

const BRIDGES: &str = "\
bridge br0 snooping  source filtering on  entries 2 (keys 1 of limit 4032, mcast_hash_max 4096)  crash-safe yes
  reports 3  queries 1  forwarded 2  refused 0  mdb errors 1  capture drops 5
  vlan 10  source filtering on  igmp querier (querier 10.0.10.1)
  router ports: p1 (configured,query), p3 vlan 10 (pim)
  port              groups action  sources guard   rate refused replaced denied guard-drop rate-drop no-ra bad-query  backlog!
  p2                 2/256 deny       1024 off        -       3        0      1          0         0     0         0         0
                 acl 1 deny group 239.255.0.0/16  hits 1
                 acl default permit  hits 4
  p4                0/4096 deny       1024 on         -       0        0      1          7         0     0         0         0
  port         group                                      vid mode        expires  hosts / sources
  p2           239.1.1.1                                    - include         0ms  10.0.0.2 10.0.0.3
                 source 10.0.0.9                                               4s
                 source 10.0.0.8                                          blocked
  p2           ff0e::1                                     10 exclude      static  fe80::5
bridge br1 down  source filtering on  entries 0 (keys 0 of limit 0, mcast_hash_max -)  crash-safe -
  reports 0  queries 0  forwarded 0  refused 0  mdb errors 0  capture drops 0
  router ports: none
  port         group                                      vid mode        expires  hosts / sources
";

const FINDINGS: &str = "\
findings:
  error member-silent: member-silent on eth0
    hint: let queries in
  warning multiple-queriers: multiple-queriers on eth0
    hint: \n";

#[test]
fn renders_interfaces_with_groups_sources_and_drops() {
    let doc = StatusDoc {
        interfaces: Some(vec![querier_iface(), down_iface()]),
        bridges: None,
        findings: vec![],
        kernel: None,
    };
    assert_eq!(text(&doc), INTERFACES);
}

#[test]
fn renders_bridges_with_router_ports_and_port_groups() {
    let doc = StatusDoc {
        interfaces: None,
        bridges: Some(vec![bridge(), quiet_bridge()]),
        findings: vec![],
        kernel: None,
    };
    assert_eq!(text(&doc), BRIDGES);
}

#[test]
fn renders_the_kernel_line_first() {
    let mut doc = StatusDoc {
        kernel: Some(igmpd_runtime::status::KernelStatus {
            release: "6.1.0-57-amd64".into(),
            features: vec!["mdb_sg", "mcast_vlan_snooping"],
        }),
        ..Default::default()
    };
    assert_eq!(
        text(&doc),
        "kernel 6.1.0-57-amd64  features mdb_sg,mcast_vlan_snooping\n"
    );
    doc.kernel.as_mut().unwrap().features.clear();
    assert_eq!(text(&doc), "kernel 6.1.0-57-amd64  features -\n");
}

#[test]
fn renders_findings_with_hints() {
    let doc = StatusDoc {
        findings: vec![
            finding("member-silent", "error", "let queries in"),
            finding("multiple-queriers", "warning", ""),
        ],
        ..Default::default()
    };
    assert_eq!(text(&doc), FINDINGS);
    assert_eq!(text(&StatusDoc::default()), "");
}

/// `igmpd run` merges the querier's document with one per bridge: interfaces, then
/// bridges, then every daemon's findings.
#[test]
fn renders_merged_documents_in_order() {
    let mut doc = StatusDoc {
        interfaces: Some(vec![querier_iface()]),
        bridges: None,
        findings: vec![finding("member-silent", "error", "let queries in")],
        kernel: None,
    };
    for (b, f) in [
        (bridge(), finding("multiple-queriers", "warning", "")),
        (quiet_bridge(), finding("no-querier", "warning", "run one")),
    ] {
        doc.merge(StatusDoc {
            interfaces: None,
            bridges: Some(vec![b]),
            findings: vec![f],
            kernel: None,
        });
    }
    doc.interfaces.as_mut().unwrap().push(down_iface());
    let expected = format!(
        "{INTERFACES}{BRIDGES}{FINDINGS}  warning no-querier: no-querier on eth0\n    hint: run one\n"
    );
    assert_eq!(text(&doc), expected);
}

/// `igmpd snoop --querier`: the bridge's querier counts its groups, the bridge table
/// lists them.
#[test]
fn a_snooped_bridges_querier_counts_the_groups_the_table_lists() {
    let mut q = querier_iface();
    q.name = "br0".into();
    let doc = StatusDoc {
        interfaces: Some(vec![q]),
        bridges: Some(vec![bridge()]),
        ..Default::default()
    };
    let t = text(&doc);
    assert!(
        t.contains("  robustness 2  interval 2m5s  queries sent 4\n    dropped: bad_checksum 1\n    1 groups (by port in the bridge table)\n"),
        "{t}"
    );
    assert!(!t.contains("last reporter"), "{t}");
    assert!(t.contains("  p2           239.1.1.1 "), "{t}");
}

/// A large table goes out in pieces (whole rows each) and reads the same as one piece.
#[test]
fn renders_a_large_table_in_whole_rows() {
    let mut b = bridge();
    let g = b.ports[0].groups.remove(0);
    b.ports[0].groups = (0..5000u32)
        .map(|i| PortGroupStatus {
            group: std::net::IpAddr::V4(std::net::Ipv4Addr::from(0xef01_0000 + i)),
            sources: vec![],
            hosts: g.hosts.clone(),
            ..g
        })
        .collect();
    let doc = StatusDoc {
        bridges: Some(vec![b]),
        ..Default::default()
    };
    struct Pieces(Vec<Vec<u8>>);
    impl std::io::Write for Pieces {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.push(b.to_vec());
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = Pieces(Vec::new());
    super::write(&doc, &mut w).unwrap();
    assert!(w.0.len() > 1, "one piece for 5000 rows");
    assert!(
        w.0.iter().all(|p| p.ends_with(b"\n")),
        "a piece ends mid-row"
    );
    let all: Vec<u8> = w.0.concat();
    assert_eq!(String::from_utf8(all).unwrap(), text(&doc));
    assert!(text(&doc).contains("  p2           239.1.19.135                                 - include         0ms  10.0.0.2 10.0.0.3\n"));
}
