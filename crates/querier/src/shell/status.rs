//! The status document of `igmpd query`, its metrics document (counters and gauges only)
//! and its findings (logged by the runtime's findings log, shown by status).

use std::net::{Ipv4Addr, Ipv6Addr};

use igmpd_runtime::metrics::{FindingCount, IfaceMetrics, MetricsDoc, QuerierMetrics};
use igmpd_runtime::status::{FamilyStatus, FindingDoc, IfaceStatus, ReporterStatus, StatusDoc};
use igmpd_wire::DecodeError;

use super::family::{Addr, Family, Iface, EXTRA_DROPS};
use super::QueryDaemon;
use crate::core::{Finding, Instant};
use crate::view;

impl QueryDaemon {
    /// The status document (`igmpd status --json`).
    pub fn status(&self) -> StatusDoc {
        let now = self.now();
        let interfaces = self
            .ifaces
            .iter()
            .map(|i| IfaceStatus {
                name: i.name.clone(),
                ifindex: i.ifindex,
                up: i.up,
                igmp: Ipv4Addr::family(i).map(|f| family_status(f, now)),
                mld: Ipv6Addr::family(i).map(|f| family_status(f, now)),
                joins: i.host.status(),
            })
            .collect();
        StatusDoc {
            interfaces: Some(interfaces),
            bridges: None,
            findings: self.current_findings(now),
            kernel: Some(igmpd_runtime::status::KernelStatus {
                release: igmpd_netlink::probe::kernel_release(),
                features: Vec::new(),
            }),
        }
    }

    /// The metrics document: counters and gauges, no group lists (a group count is the
    /// membership's length), findings as last evaluated.
    pub fn metrics(&self) -> MetricsDoc {
        fn of<A: Addr>(i: &Iface) -> Option<QuerierMetrics> {
            let f = A::family(i)?;
            let inst = f.seg.instance();
            let mut drops: Vec<(&'static str, u64)> = DecodeError::REASONS
                .iter()
                .chain(EXTRA_DROPS.iter())
                .copied()
                .zip(f.drops.iter().copied())
                .collect();
            drops.push(("new_groups_over_limit", inst.membership().refused_groups()));
            Some(QuerierMetrics {
                family: A::PROTO.name(),
                role: inst.role().name(),
                querier_address: inst.querier_address().map(Into::into),
                version: inst.effective_version().version(A::PROTO),
                queries_sent: inst.queries_sent(),
                received: f.received,
                drops,
                groups: inst.membership().len() as u64,
            })
        }
        MetricsDoc {
            interfaces: self
                .ifaces
                .iter()
                .map(|i| IfaceMetrics {
                    name: i.name.clone(),
                    up: i.up,
                    families: [of::<Ipv4Addr>(i), of::<Ipv6Addr>(i)]
                        .into_iter()
                        .flatten()
                        .collect(),
                })
                .collect(),
            bridges: Vec::new(),
            findings: FindingCount::count(self.findings.current()),
        }
    }

    fn current_findings(&self, now: Instant) -> Vec<FindingDoc> {
        fn of<A: Addr>(i: &Iface, now: Instant) -> Vec<Finding> {
            A::family(i).map_or_else(Vec::new, |f| f.seg.findings(now, &i.name, true))
        }
        self.ifaces
            .iter()
            .flat_map(|i| [of::<Ipv4Addr>(i, now), of::<Ipv6Addr>(i, now)])
            .flatten()
            .map(|f| FindingDoc::from(&f))
            .collect()
    }

    /// Re-evaluates findings (at most once a second, when the loop wakes anyway) and logs
    /// each new one once, and each cleared one.
    pub(super) fn update_findings(&mut self, now: Instant) {
        let mut log = std::mem::take(&mut self.findings);
        log.update(now.as_millis(), || self.current_findings(now));
        self.findings = log;
    }
}

fn family_status<A: Addr>(f: &Family<A>, now: Instant) -> FamilyStatus {
    let inst = f.seg.instance();
    let mut drops: std::collections::BTreeMap<&'static str, u64> = DecodeError::REASONS
        .iter()
        .chain(EXTRA_DROPS.iter())
        .copied()
        .zip(f.drops.iter().copied())
        .collect();
    // Reports of new groups past the membership's bound (MAX_GROUPS).
    drops.insert("new_groups_over_limit", inst.membership().refused_groups());
    let mut s = view::instance_status(inst, now, A::PROTO, drops);
    // Only the querier's own view keeps per-host report times. The same unmodified map
    // iterates in the same order as in instance_status.
    for (doc, g) in s
        .groups
        .iter_mut()
        .zip(inst.membership().groups_unordered())
    {
        doc.reporters = Some(
            g.reporters
                .iter()
                .map(|(r, t)| ReporterStatus {
                    address: (*r).into(),
                    last_report_ms_ago: now.saturating_since(*t).as_millis() as u64,
                })
                .collect(),
        );
    }
    s
}
