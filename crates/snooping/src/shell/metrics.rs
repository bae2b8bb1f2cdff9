//! The metrics document of `igmpd snoop` (`GET /metrics`): the bridge's and its ports'
//! counters and gauges, from what the loop keeps anyway. No membership is visited: a
//! port's count per VLAN and family is its membership's length, so a scrape of a bridge
//! with 10 000 groups costs the loop what one with ten does.

use std::collections::BTreeMap;

use igmpd_querier::core::Proto;
use igmpd_runtime::metrics::{
    BridgeMetrics, DomainMetrics, FindingCount, MetricsDoc, PortMetrics, PortVlanMetrics, Traffic,
};

use super::ports::port_name;
use super::status::{bridge_counters, port_policy_status};
use super::SnoopDaemon;
use crate::core::{Domain, DomainVisitor, Family};

impl SnoopDaemon {
    /// The metrics document: one bridge; findings as last evaluated.
    pub fn metrics(&mut self) -> MetricsDoc {
        self.capture.collect_drops();
        let v = self.view();
        let snooper = &self.snooper;
        let mut per_port = PerPort::default();
        snooper.visit(&mut per_port);
        let ports = v
            .ports
            .iter()
            .map(|(p, port)| {
                let (_, mut counters, _) = port_policy_status(snooper, *p);
                counters.backlog_drops = v.backlog_drops.get(p).copied().unwrap_or(0);
                PortMetrics {
                    name: port.name.clone(),
                    up: port.up,
                    counters,
                    vlans: per_port.0.remove(p).unwrap_or_default(),
                }
            })
            .collect();
        let routers = snooper.routers();
        let mut router_ports: Vec<(String, u16, &'static str)> = Vec::new();
        for p in routers.configured() {
            for family in [Proto::Igmp, Proto::Mld] {
                router_ports.push((port_name(v.ports, *p), 0, family.name()));
            }
        }
        for ((vid, p), l) in routers.learned() {
            let mut families: Vec<&'static str> = l.timers.keys().map(|(f, _)| f.name()).collect();
            families.sort_unstable();
            families.dedup();
            for family in families {
                router_ports.push((port_name(v.ports, *p), *vid, family));
            }
        }
        let mut queriers = Vec::new();
        for vid in snooper.vids() {
            queriers.extend(snooper.igmp(vid).map(|d| domain(vid, d)));
            queriers.extend(snooper.mld(vid).map(|d| domain(vid, d)));
        }
        let mdb = snooper.mdb();
        let bridge = BridgeMetrics {
            name: v.bridge_name.to_owned(),
            up: v.bridge.is_some_and(|b| b.up),
            active: v.active,
            mdb_entries: mdb.programmed_len() as u64,
            mdb_keys: mdb.keys_in_use() as u64,
            mdb_entry_limit: mdb.limit() as u64,
            mdb_writes: self.writes.written,
            counters: bridge_counters(&v, snooper),
            queriers,
            router_ports,
            ports,
        };
        MetricsDoc {
            interfaces: Vec::new(),
            bridges: vec![bridge],
            findings: FindingCount::count(self.findings.current()),
        }
    }
}

fn domain<A: Family>(vid: u16, d: &Domain<A>) -> DomainMetrics {
    let i = d.instance();
    DomainMetrics {
        vid,
        family: A::PROTO.name(),
        role: i.role().name(),
        querier_address: i.querier_address().map(Into::into),
        queries_sent: i.queries_sent(),
    }
}

/// Each port's memberships and traffic per VLAN and family.
#[derive(Default)]
struct PerPort(BTreeMap<u32, Vec<PortVlanMetrics>>);

impl DomainVisitor for PerPort {
    fn visit<A: Family>(&mut self, vid: u16, d: &Domain<A>) {
        let mut here: BTreeMap<u32, (Traffic, u64)> = BTreeMap::new();
        for (p, t) in d.traffic() {
            here.entry(p).or_default().0 = *t;
        }
        for (p, m) in d.ports() {
            here.entry(p).or_default().1 = m.len() as u64;
        }
        for (p, (received, memberships)) in here {
            self.0.entry(p).or_default().push(PortVlanMetrics {
                vid,
                family: A::PROTO.name(),
                received,
                memberships,
            });
        }
    }
}
