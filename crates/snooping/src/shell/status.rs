//! The status document of `igmpd snoop` (`igmpd status`): `bridges` (the bridge, its
//! ports' memberships, router ports, counters), `interfaces` with `--querier` (the
//! untagged queriers as `igmpd query` shows them), and the findings. Built from the core's
//! state and the daemon's view of the bridge ([`View`]), without I/O.

use std::collections::{BTreeMap, BTreeSet};

use igmpd_netlink::links::BridgeLink;
use igmpd_querier::core::{Instance, Instant, Membership};
use igmpd_querier::view::{instance_status, ms_until, sources_status};
use igmpd_runtime::status::{
    AclRuleStatus, BridgeCounters, BridgeQuerierStatus, BridgeStatus, BridgeVlanStatus,
    FamilyStatus, FindingDoc, IfaceStatus, KernelStatus, PortCountersStatus, PortGroupStatus,
    PortLimitsStatus, PortStatus, RouterPortStatus, SourceStatus, StatusDoc,
};

use super::ports::{port_name, Port};
use super::SnoopDaemon;
use crate::core::{Domain, DomainVisitor, Family, FloodPrefix, PortState, Snooper};

/// What the status shows besides the core's state.
pub(super) struct View<'a> {
    pub(super) bridge_name: &'a str,
    pub(super) bridge: Option<&'a BridgeLink>,
    pub(super) active: bool,
    pub(super) querier: bool,
    pub(super) ports: &'a BTreeMap<u32, Port>,
    pub(super) mdb_errors: u64,
    pub(super) capture_drops: u64,
    pub(super) decode_drops: u64,
    pub(super) adopted: u64,
    pub(super) source_filtering: bool,
    /// Per-VLAN snooping: each VLAN's source filtering (None: not per VLAN).
    pub(super) vlan_source_filtering: Option<BTreeMap<u16, bool>>,
    pub(super) kernel: KernelStatus,
    /// The daemon's own findings (besides the core's).
    pub(super) findings: Vec<FindingDoc>,
    /// Frames each port lost because its share of the capture backlog was full.
    pub(super) backlog_drops: BTreeMap<u32, u64>,
    /// Whether the nftables table is owned (None: not installed).
    pub(super) nft_owned: Option<bool>,
    /// Failures recovered from: writer sends, event stream ends, activations.
    pub(super) recovered: (u64, u64, u64),
}

impl SnoopDaemon {
    /// The status document: `bridges` (and `interfaces` with `--querier`).
    pub fn status(&mut self) -> StatusDoc {
        let now = self.now();
        self.capture.collect_drops();
        let view = self.view();
        status_doc(&view, &self.snooper, now)
    }

    /// What the status and metrics documents show besides the core's state (the capture
    /// ring's drops as last collected).
    pub(super) fn view(&self) -> View<'_> {
        View {
            bridge_name: &self.settings.bridge,
            bridge: self.bridge.as_ref(),
            active: self.active,
            querier: self.settings.querier,
            ports: &self.ports,
            mdb_errors: self.writes.failed,
            capture_drops: self.capture.drops,
            decode_drops: self.capture.decode_drops,
            adopted: self.adopted,
            source_filtering: self.source_filtering(),
            vlan_source_filtering: self.per_vlan().then(|| self.vlan_source_filtering()),
            kernel: self.kernel_status(),
            findings: self
                .source_filtering_finding()
                .into_iter()
                .chain(self.snooping_off_finding())
                .collect(),
            backlog_drops: self.capture.backlog_drops(),
            nft_owned: self.nft.owned(),
            recovered: (
                self.writes.send_failures(),
                self.reconnects,
                self.activation_failures,
            ),
        }
    }
}

/// The whole document.
pub(super) fn status_doc(v: &View<'_>, snooper: &Snooper, now: Instant) -> StatusDoc {
    StatusDoc {
        interfaces: v.querier.then(|| vec![interface_status(v, snooper, now)]),
        bridges: Some(vec![bridge_status(v, snooper, now)]),
        findings: snooper
            .findings(now, v.bridge_name)
            .iter()
            .chain(&snooper.port_findings(now, v.bridge_name, |p| port_name(v.ports, p)))
            .chain(&snooper.retry_findings(now, v.bridge_name, |p| port_name(v.ports, p)))
            .map(FindingDoc::from)
            .chain(v.findings.iter().cloned())
            .collect(),
        kernel: Some(v.kernel.clone()),
    }
}

fn bridge_status(v: &View<'_>, snooper: &Snooper, now: Instant) -> BridgeStatus {
    let name = |p: u32| port_name(v.ports, p);
    let mut groups = PortGroups {
        now,
        flood: &snooper.config().flood_groups,
        groups: v.ports.keys().map(|p| (*p, Vec::new())).collect(),
    };
    snooper.visit(&mut groups);
    let mut groups = groups.groups;
    static_groups(snooper, &mut groups);
    flood_groups(snooper, &mut groups);
    let ports = groups
        .into_iter()
        .map(|(p, groups)| {
            let (limits, mut counters, acl) = port_policy_status(snooper, p);
            counters.backlog_drops = v.backlog_drops.get(&p).copied().unwrap_or(0);
            PortStatus {
                name: name(p),
                ifindex: p,
                up: v.ports.get(&p).is_some_and(|x| x.up),
                groups,
                limits,
                counters,
                acl,
            }
        })
        .collect();
    let routers = snooper.routers();
    let mut router_ports: Vec<RouterPortStatus> = routers
        .configured()
        .iter()
        .map(|p| RouterPortStatus {
            name: name(*p),
            vid: None,
            reasons: vec!["configured"],
            families: vec!["igmp", "mld"],
            expires_in_ms: None,
        })
        .collect();
    for ((vid, p), l) in routers.learned() {
        let reasons: BTreeSet<&'static str> = l.timers.keys().map(|(_, r)| r.name()).collect();
        let families: BTreeSet<&'static str> = l.timers.keys().map(|(f, _)| f.name()).collect();
        router_ports.push(RouterPortStatus {
            name: name(*p),
            vid: (*vid != 0).then_some(*vid),
            reasons: reasons.into_iter().collect(),
            families: families.into_iter().collect(),
            expires_in_ms: l.timers.values().max().map(|t| ms_until(now, *t)),
        });
    }
    let mdb = snooper.mdb();
    let b = v.bridge;
    BridgeStatus {
        name: v.bridge_name.to_owned(),
        ifindex: b.map(|b| b.ifindex),
        up: b.is_some_and(|b| b.up),
        active: v.active,
        querier: v.querier,
        mcast_hash_max: b.map(|b| b.hash_max),
        entry_limit: mdb.limit(),
        mdb_keys: mdb.keys_in_use(),
        mdb_entries: mdb.programmed_len(),
        source_filtering: v.source_filtering,
        nft_table_owned: v.nft_owned,
        igmp: snooper.igmp(0).map(|d| bridge_querier(d.instance())),
        mld: snooper.mld(0).map(|d| bridge_querier(d.instance())),
        vlans: v
            .vlan_source_filtering
            .as_ref()
            .map(|sf| {
                snooper
                    .vids()
                    .filter(|vid| *vid != 0)
                    .map(|vid| BridgeVlanStatus {
                        vid,
                        source_filtering: sf.get(&vid).copied(),
                        igmp: snooper.igmp(vid).map(|d| bridge_querier(d.instance())),
                        mld: snooper.mld(vid).map(|d| bridge_querier(d.instance())),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        counters: bridge_counters(v, snooper),
        router_ports,
        ports,
    }
}

/// The bridge's counters (status and metrics show the same).
pub(super) fn bridge_counters(v: &View<'_>, snooper: &Snooper) -> BridgeCounters {
    let c = snooper.counters();
    let mdb = snooper.mdb();
    BridgeCounters {
        reports: c.reports,
        queries: c.queries,
        forwarded: c.forwarded,
        groups_refused: mdb.refused_total(),
        groups_refused_now: mdb.refused_now() as u64,
        source_lists_degraded: mdb.degraded_total(),
        mdb_errors: v.mdb_errors,
        capture_drops: v.capture_drops,
        decode_drops: v.decode_drops,
        mld_bad_source: c.bad_source,
        adopted: v.adopted,
        vlan_tags_ignored: c.tagged_unfiltered,
        vlan_drops: c.vlan_drops,
        writer_send_failures: v.recovered.0,
        netlink_reconnects: v.recovered.1,
        activation_failures: v.recovered.2,
    }
}

/// The querier sections as `igmpd query` shows them, for the bridge (untagged).
fn interface_status(v: &View<'_>, snooper: &Snooper, now: Instant) -> IfaceStatus {
    IfaceStatus {
        name: v.bridge_name.to_owned(),
        ifindex: v.bridge.map(|b| b.ifindex),
        up: v.bridge.is_some_and(|b| b.up),
        igmp: snooper.igmp(0).map(|d| querier_section(d, now)),
        mld: snooper.mld(0).map(|d| querier_section(d, now)),
        // Host joins are a querier interface's (`igmpd query`), not a bridge's.
        joins: Vec::new(),
    }
}

fn querier_section<A: Family>(d: &Domain<A>, now: Instant) -> FamilyStatus {
    instance_status(d.instance(), now, A::PROTO, BTreeMap::new())
}

/// The querier a bridge follows, as its (untagged) instance knows it.
pub(super) fn bridge_querier<A: Family>(i: &Instance<A>) -> BridgeQuerierStatus {
    BridgeQuerierStatus {
        role: i.role().name(),
        querier_address: i.querier_address().map(|a| a.to_string()),
        robustness: i.robustness(),
        query_interval_ms: i.query_interval().as_millis() as u64,
        group_membership_interval_ms: i.group_membership_interval().as_millis() as u64,
    }
}

/// Every port's memberships, VLAN by VLAN, IGMP before MLD.
struct PortGroups<'a> {
    now: Instant,
    flood: &'a [FloodPrefix],
    groups: BTreeMap<u32, Vec<PortGroupStatus>>,
}

impl DomainVisitor for PortGroups<'_> {
    fn visit<A: Family>(&mut self, vid: u16, d: &Domain<A>) {
        for (port, m) in d.ports() {
            let list = self.groups.entry(port).or_default();
            list.reserve(m.len());
            list.extend(port_groups(m, vid, self.now, self.flood));
        }
    }
}

/// A port's memberships in one VLAN and family, unordered (see [`StatusDoc::sort`]).
fn port_groups<'a, A: Family>(
    m: &'a Membership<A>,
    vid: u16,
    now: Instant,
    flood: &'a [FloodPrefix],
) -> impl Iterator<Item = PortGroupStatus> + 'a {
    let ms = move |t: Instant| ms_until(now, t);
    m.groups_unordered().map(move |g| PortGroupStatus {
        group: g.group.into(),
        vid: (vid != 0).then_some(vid),
        filter_mode: g.mode.name(),
        sources: sources_status(&g, now),
        hosts: g.reporters.iter().map(|(r, _)| (*r).into()).collect(),
        compat_version: g.compat.version(A::PROTO),
        expires_in_ms: g.expires.map_or(0, ms),
        origin: "learned",
        flooded: flood.iter().any(|p| p.contains(g.group.into())),
    })
}

/// The flooded groups' entries, as records of their ports (origin `flood`).
fn flood_groups(snooper: &Snooper, groups: &mut BTreeMap<u32, Vec<PortGroupStatus>>) {
    for key in snooper.flood_entries() {
        groups.entry(key.port).or_default().push(PortGroupStatus {
            group: key.group,
            vid: (key.vid != 0).then_some(key.vid),
            filter_mode: "exclude",
            sources: Vec::new(),
            hosts: Vec::new(),
            compat_version: if key.group.is_ipv4() { 3 } else { 2 },
            expires_in_ms: 0,
            origin: "flood",
            flooded: true,
        });
    }
}

/// The static groups in the MDB now, as records of their ports (origin `static`).
fn static_groups(snooper: &Snooper, groups: &mut BTreeMap<u32, Vec<PortGroupStatus>>) {
    for (key, sources) in snooper.static_entries() {
        let any = sources.contains(&None);
        groups.entry(key.port).or_default().push(PortGroupStatus {
            group: key.group,
            vid: (key.vid != 0).then_some(key.vid),
            filter_mode: if any { "exclude" } else { "include" },
            sources: sources
                .iter()
                .flatten()
                .filter(|_| !any)
                .map(|a| SourceStatus {
                    address: *a,
                    expires_in_ms: 0,
                })
                .collect(),
            hosts: Vec::new(),
            // The newest version: a static group is no host's and has no older mode.
            compat_version: if key.group.is_ipv4() { 3 } else { 2 },
            expires_in_ms: 0,
            origin: "static",
            flooded: snooper.is_flood_group(key.group),
        });
    }
}

#[cfg(test)]
mod tests;

/// A port's policy, counters and ACL hits as status shows them.
pub(super) fn port_policy_status(
    snooper: &Snooper,
    port: u32,
) -> (PortLimitsStatus, PortCountersStatus, Vec<AclRuleStatus>) {
    let pol = snooper.config().policy.of(port);
    let default = PortState::default();
    let st = snooper.port_state(port).unwrap_or(&default);
    let hit = |i: usize| st.acl_hits.get(i).copied().unwrap_or(0);
    let c = &st.counters;
    (
        PortLimitsStatus {
            max_groups: pol.groups_limit(snooper.mdb().limit()),
            groups: st.groups,
            max_sources: pol.sources_limit(),
            limit_action: pol.limit_action.name(),
            router_guard: pol.router_guard,
            max_report_rate: pol.max_report_rate,
            require_router_alert: pol.require_router_alert,
            acl_default: pol.acl_default.name(),
        },
        PortCountersStatus {
            refused: c.refused,
            replaced: c.replaced,
            refused_sources: c.refused_sources,
            denied: c.denied,
            guard_drops: c.guard_drops,
            rate_drops: c.rate_drops,
            router_alert_drops: c.router_alert_drops,
            bad_queries: c.bad_queries,
            acl_default_hits: hit(pol.acl.len()),
            backlog_drops: 0,
        },
        pol.acl
            .iter()
            .enumerate()
            .map(|(i, r)| AclRuleStatus {
                action: r.action.name(),
                group: r.group.to_string(),
                source: r.source.map(|s| s.to_string()),
                hits: hit(i),
            })
            .collect(),
    )
}
