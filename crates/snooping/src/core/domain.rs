//! One VLAN and family: the bridge-level querier with the observer of the bridge (one
//! [`Segment`]), and every port's [`Membership`].
//!
//! - Per-port state is RFC 9776 §6 / RFC 9777 §7 with `Timing::querier = None`: it never
//!   sends; its timers follow the elected querier's adopted robustness and interval
//!   (RFC 9776 §8.4).
//! - Our own queries reach the observer as the hosts see them, and our group-specific
//!   ones lower the ports' timers like received ones (RFC 9776 §6.6.1): to Last Member
//!   Query Count x the query's Max Resp Time, as the Linux bridge does.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use igmpd_querier::core::membership::Change;
use igmpd_querier::core::observer::{Finding, Observer};
use igmpd_querier::core::{
    Action, Config, Event, Forwarding, Instance, Instant, Membership, Segment, Timing,
};
use igmpd_runtime::metrics::Traffic;

use super::family::Family;
use super::policy::{LimitAction, PortState};
use super::{
    Counters, EntryFilter, EntryKey, MdbTable, Output, RouterPorts, SetOutcome, SnoopConfig,
    SnoopEvent, Why,
};

/// One VLAN and family: the bridge-level querier, every port's membership, and the
/// [`Observer`] that turns the queries and reports seen on any port (and the queries of our
/// own querier) into findings.
#[derive(Debug, Clone)]
pub struct Domain<A> {
    pub(super) seg: Segment<A>,
    pub(super) ports: BTreeMap<u32, Membership<A>>,
    /// Messages received per port (for the metrics), kept while the port is.
    pub(super) traffic: BTreeMap<u32, Traffic>,
    since: Instant,
}

impl<A: Family> Domain<A> {
    /// The bridge-level querier instance (passive unless `--querier`).
    pub fn instance(&self) -> &Instance<A> {
        self.seg.instance()
    }

    /// Per-port memberships.
    pub fn ports(&self) -> impl Iterator<Item = (u32, &Membership<A>)> {
        self.ports.iter().map(|(p, m)| (*p, m))
    }

    /// Messages each port sent in this VLAN and family.
    pub fn traffic(&self) -> impl Iterator<Item = (u32, &Traffic)> {
        self.traffic.iter().map(|(p, t)| (*p, t))
    }

    /// What was seen on the bridge (queriers, reporting hosts).
    pub fn observer(&self) -> &Observer<A> {
        self.seg.observer()
    }

    pub(super) fn new(c: Config, addr: Option<A>, now: Instant) -> Self {
        Domain {
            seg: Segment::new(c, addr, now),
            ports: BTreeMap::new(),
            traffic: BTreeMap::new(),
            since: now,
        }
    }

    /// The findings of this VLAN and family: the [`Segment`]'s, plus
    /// `snooping-without-querier` when igmpd does not query (no `--querier`) and no query
    /// with a source address was heard for the Other Querier Present Interval: a Linux
    /// bridge that snoops without a querier lets every membership expire.
    pub(super) fn findings(&self, now: Instant, iface: &str, querier: bool) -> Vec<Finding> {
        let present = self.instance().other_querier_present_interval();
        let mut out = self.seg.findings(now, iface, querier);
        let named = self
            .observer()
            .queriers()
            .any(|q| q.address.is_some() && q.last_seen + present > now);
        if !querier && !named && now.saturating_since(self.since) >= present {
            out.retain(|f| f.code != "no-querier");
            out.push(Finding::snooping_without_querier(
                iface,
                A::PROTO,
                Some(present),
            ));
        }
        out
    }

    /// The timers of per-port state: the elected querier's (adopted) robustness and
    /// interval give the GMI (RFC 9776 §8.4); no queries of its own.
    pub fn port_timing(&self) -> Timing {
        let inst = self.instance();
        let gmi = inst.group_membership_interval();
        let c = inst.config();
        Timing {
            gmi,
            lmqi: c.last_member_query_interval,
            lmqc: c.last_member_query_count.unwrap_or(inst.robustness()),
            older_host_present: gmi,
            querier: None,
        }
    }

    /// The earliest timer of the querier and of every port.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.ports
            .values()
            .filter_map(Membership::next_deadline)
            .chain(self.instance().next_deadline())
            .min()
    }

    /// The MDB keys of every port's groups in VLAN `vid`.
    pub(super) fn groups(&self) -> impl Iterator<Item = (u32, IpAddr)> + '_ {
        self.ports
            .iter()
            .flat_map(|(port, m)| m.groups().map(|g| (*port, g.group.into())))
    }
}

impl<A: Slot> Domain<A> {
    /// Handles the bridge-level instance's actions: queries go out (and reach the
    /// observer), and our own group-specific queries lower every port's timers
    /// (RFC 9776 §6.6.1).
    pub(super) fn act(&mut self, sh: &mut Shared, now: Instant, vid: u16, acts: Vec<Action<A>>) {
        for a in acts {
            match a {
                Action::Send(q) => {
                    self.seg.sent(now, &q);
                    if let (Some(g), false) = (q.group, q.s_flag) {
                        self.lower_ports(sh, now, vid, g, &q.sources, q.max_resp);
                    }
                    sh.out.push(Output::Query {
                        vid,
                        query: A::any_query(q),
                    });
                }
                Action::Event(Event::Membership(_)) => {}
                Action::Event(e) => sh.out.push(Output::Event(SnoopEvent::Querier {
                    vid,
                    proto: A::PROTO,
                    event: widen_event(e),
                })),
            }
        }
    }

    /// §6.6.1 on every port: a query for `group` (and `sources`) with S clear lowers timers
    /// to LMQC x the query's Max Resp Time.
    pub(super) fn lower_ports(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        vid: u16,
        group: A,
        sources: &[A],
        max_resp: Duration,
    ) {
        let mut timing = self.port_timing();
        timing.lmqi = max_resp;
        let mut changes = Vec::new();
        let mut queries = Vec::new();
        for (port, m) in self.ports.iter_mut() {
            m.lower_on_query(now, &timing, group, sources);
            // A timer lowered to now (Max Resp 0) ends at once.
            if m.next_deadline().is_some_and(|t| t <= now) {
                m.poll(now, &timing, &mut changes, &mut queries);
                sh.apply_changes(vid, *port, m, &mut changes);
            }
        }
    }

    /// Runs the timers due at `now`: the querier's, then every port's (ports left without
    /// state go).
    pub(super) fn poll(&mut self, sh: &mut Shared, now: Instant, vid: u16) {
        if self.instance().next_deadline().is_some_and(|t| t <= now) {
            let acts = self.seg.instance_mut().poll(now);
            self.act(sh, now, vid, acts);
        }
        let timing = self.port_timing();
        let mut changes = Vec::new();
        let mut queries = Vec::new();
        let mut emptied = Vec::new();
        for (port, m) in self.ports.iter_mut() {
            if m.next_deadline().is_some_and(|t| t <= now) {
                m.poll(now, &timing, &mut changes, &mut queries);
                sh.apply_changes(vid, *port, m, &mut changes);
                if m.is_empty() {
                    emptied.push(*port);
                }
            }
        }
        for p in emptied {
            self.ports.remove(&p);
        }
    }

    /// The bridge is up: the querier starts (startup queries with `--querier`), unless it
    /// already runs.
    pub(super) fn link_up(&mut self, sh: &mut Shared, now: Instant, vid: u16) {
        if !self.instance().link_is_up() {
            let acts = self.seg.instance_mut().link_up(now);
            self.act(sh, now, vid, acts);
        }
    }

    /// The bridge's address of this family changed (in `sh`): the querier's source.
    pub(super) fn set_address(&mut self, sh: &mut Shared, now: Instant, vid: u16) {
        let acts = self
            .seg
            .instance_mut()
            .set_address(now, A::address(sh, vid));
        self.act(sh, now, vid, acts);
    }

    /// `port` is gone: its memberships end and their entries go.
    /// Writes every membership's entry as the current settings want it (after the
    /// bridge's source filtering or the kernel's way of writing sources changed).
    pub(super) fn rewrite(&self, sh: &mut Shared, vid: u16) {
        for (port, m) in &self.ports {
            for g in m.groups() {
                let key = EntryKey {
                    port: *port,
                    vid,
                    group: g.group.into(),
                };
                let want = sh.with_statics(&key, sh.desired(m, &g.group));
                sh.set_desired(key, want);
            }
        }
    }

    pub(super) fn drop_port(&mut self, sh: &mut Shared, vid: u16, port: u32) {
        self.traffic.remove(&port);
        if let Some(mut m) = self.ports.remove(&port) {
            let mut changes = Vec::new();
            m.clear(&mut changes);
            sh.apply_changes(vid, port, &m, &mut changes);
        }
    }
}

fn widen_event<A: Family>(e: Event<A>) -> Event<IpAddr> {
    match e {
        Event::Elected => Event::Elected,
        Event::LostElection { querier } => Event::LostElection {
            querier: querier.into(),
        },
        Event::OlderQuerier { gen, from } => Event::OlderQuerier {
            gen,
            from: from.map(Into::into),
        },
        Event::VersionRestored { gen } => Event::VersionRestored { gen },
        Event::Membership(_) => Event::Elected,
    }
}

/// Where a family's state and settings are in the snooper, beside the public [`Family`].
/// (`pub` in a private module, so that the generic code of [`Domain`] may name it; not
/// reachable outside the crate.)
pub trait Slot: Family {
    /// This family's domain of a VLAN, if the family is snooped there.
    fn domain(v: &Vlan) -> Option<&Domain<Self>>;
    /// The same, to change it.
    fn domain_mut(v: &mut Vlan) -> Option<&mut Domain<Self>>;
    /// The querier's source in VLAN `vid` (IPv6: link-local): the bridge's address for
    /// VLAN 0, the VLAN's own (its upper interface's, or configured) for the others.
    fn address(sh: &Shared, vid: u16) -> Option<Self>;
    /// Whether the kernel bridge filters sources for this family (its IGMPv3 / MLDv2
    /// mode): entries then carry source lists.
    fn source_filtering(cfg: &SnoopConfig) -> bool;
}

impl Slot for Ipv4Addr {
    fn domain(v: &Vlan) -> Option<&Domain<Self>> {
        v.igmp.as_ref()
    }
    fn domain_mut(v: &mut Vlan) -> Option<&mut Domain<Self>> {
        v.igmp.as_mut()
    }
    fn address(sh: &Shared, vid: u16) -> Option<Self> {
        match vid {
            0 => sh.v4,
            v => sh.vlan_addrs.get(&v).and_then(|a| a.0),
        }
    }
    fn source_filtering(cfg: &SnoopConfig) -> bool {
        cfg.source_filtering_v4
    }
}

impl Slot for Ipv6Addr {
    fn domain(v: &Vlan) -> Option<&Domain<Self>> {
        v.mld.as_ref()
    }
    fn domain_mut(v: &mut Vlan) -> Option<&mut Domain<Self>> {
        v.mld.as_mut()
    }
    /// A VLAN without a link-local address of its own queries from the bridge's, as the
    /// kernel's per-VLAN querier does: MLD needs a link-local source (RFC 9777 §5.1.14),
    /// and without queries every membership of the VLAN would expire.
    fn address(sh: &Shared, vid: u16) -> Option<Self> {
        match vid {
            0 => sh.v6,
            v => sh.vlan_addrs.get(&v).and_then(|a| a.1).or(sh.v6),
        }
    }
    fn source_filtering(cfg: &SnoopConfig) -> bool {
        cfg.source_filtering_v6
    }
}

/// One VLAN's domains: the one place where the two families are listed (everything else
/// goes through [`Slot`], [`DomainOp`] or [`DomainVisitor`]). `pub` in a private module
/// (for [`Slot`]): not reachable outside the crate; so is [`Shared`].
#[derive(Debug, Clone)]
pub struct Vlan {
    pub(super) igmp: Option<Domain<Ipv4Addr>>,
    pub(super) mld: Option<Domain<Ipv6Addr>>,
}

/// Something done to each domain of a VLAN, written once for both families (a closure
/// cannot be generic over them).
pub(super) trait DomainOp {
    fn apply<A: Slot>(&mut self, sh: &mut Shared, vid: u16, d: &mut Domain<A>);
}

/// Something read from each [`Domain`] of the snooper, written once for both families
/// (see [`Snooper::visit`]).
pub trait DomainVisitor {
    /// Called for every VLAN (in VID order) and family (IGMP first) that has a domain.
    fn visit<A: Family>(&mut self, vid: u16, d: &Domain<A>);
}

impl Vlan {
    pub(super) fn each_mut(&mut self, sh: &mut Shared, vid: u16, op: &mut impl DomainOp) {
        if let Some(d) = self.igmp.as_mut() {
            op.apply(sh, vid, d);
        }
        if let Some(d) = self.mld.as_mut() {
            op.apply(sh, vid, d);
        }
    }

    pub(super) fn each(&self, vid: u16, v: &mut impl DomainVisitor) {
        if let Some(d) = &self.igmp {
            v.visit(vid, d);
        }
        if let Some(d) = &self.mld {
            v.visit(vid, d);
        }
    }
}

/// Everything but the domains, so domain code can borrow both.
#[derive(Debug, Clone)]
pub struct Shared {
    pub(super) cfg: SnoopConfig,
    pub(super) mdb: MdbTable,
    pub(super) routers: RouterPorts,
    pub(super) out: Vec<Output>,
    pub(super) counters: Counters,
    /// Bridge ports that are up.
    pub(super) ports: BTreeSet<u32>,
    /// Ports' VLANs where the shell read them (VLAN-filtering bridges).
    pub(super) port_vlans: BTreeMap<u32, super::PortVlans>,
    pub(super) bridge_up: bool,
    pub(super) v4: Option<Ipv4Addr>,
    pub(super) v6: Option<Ipv6Addr>,
    /// Each VLAN's querier sources (per-VLAN snooping).
    pub(super) vlan_addrs: BTreeMap<u16, VlanAddresses>,
    /// Each port's policy state (counters, rate bucket, what findings name).
    pub(super) port_state: BTreeMap<u32, PortState>,
    /// The report the ACL rewrote, to forward instead of the captured frame.
    pub(super) rewritten: Option<igmpd_wire::Packet>,
    /// Each port's static groups (see `statics`), up or not.
    pub(super) statics: BTreeMap<u32, BTreeSet<super::StaticGroup>>,
    /// The MDB keys the static groups of ports that are up make, with their sources.
    pub(super) static_keys: BTreeMap<EntryKey, super::StaticSources>,
    /// The flooded groups and what `nd-at-risk` names (see `flood`).
    pub(super) flood: super::FloodState,
}

/// A VLAN's querier sources: IPv4, IPv6 link-local.
pub type VlanAddresses = (Option<Ipv4Addr>, Option<Ipv6Addr>);

impl Shared {
    /// The MDB entry `group` of `port` should have, from its membership (RFC 9776 §6.3).
    pub(super) fn desired<A: Slot>(&self, m: &Membership<A>, group: &A) -> Option<EntryFilter> {
        let fwd = m.forwarding(group)?;
        let filtering = A::source_filtering(&self.cfg);
        let wide = |v: Vec<A>| v.into_iter().map(Into::into).collect::<Vec<IpAddr>>();
        Some(match fwd {
            Forwarding::Include(s) if s.is_empty() => return None,
            Forwarding::Exclude(y) if y.is_empty() => EntryFilter::Any,
            _ if !filtering => EntryFilter::Any,
            Forwarding::Include(s) => EntryFilter::Include(wide(s)),
            Forwarding::Exclude(y) => EntryFilter::Exclude(wide(y)),
        })
    }

    /// Turns a port's membership changes into MDB writes and log events.
    pub(super) fn apply_changes<A: Slot>(
        &mut self,
        vid: u16,
        port: u32,
        m: &Membership<A>,
        changes: &mut Vec<Change<A>>,
    ) {
        for c in changes.drain(..) {
            let joined = |group: &A, any_source| Why::Joined {
                host: m.last_reporter(group).map(Into::into),
                any_source,
            };
            // The group, and whether it was added (with what caused it) or removed.
            let (group, log) = match c {
                Change::GroupAdded { group, any_source } => {
                    self.heard_flood_group(vid, group.into());
                    (group, Some((true, joined(&group, any_source))))
                }
                Change::GroupRemoved { group, reason } => {
                    (group, Some((false, Why::Removed(reason))))
                }
                Change::Forwarding { group } => (group, None),
                // Events only: the Forwarding change that follows writes the entry.
                Change::SourceAdded { group, source } => {
                    self.out.push(Output::Event(SnoopEvent::PortSource {
                        port,
                        vid,
                        group: group.into(),
                        source: source.into(),
                        added: true,
                        why: joined(&group, false),
                    }));
                    continue;
                }
                Change::SourceRemoved {
                    group,
                    source,
                    reason,
                } => {
                    self.out.push(Output::Event(SnoopEvent::PortSource {
                        port,
                        vid,
                        group: group.into(),
                        source: source.into(),
                        added: false,
                        why: Why::Removed(reason),
                    }));
                    continue;
                }
                Change::Compat { .. } => continue,
            };
            let key = EntryKey {
                port,
                vid,
                group: group.into(),
            };
            if let Some((added, _)) = log {
                let replace = self.cfg.policy.of(port).limit_action == LimitAction::Replace;
                let st = self.port_state.entry(port).or_default();
                if added {
                    st.groups += 1;
                } else {
                    st.groups = st.groups.saturating_sub(1);
                    if replace {
                        st.forget(vid, key.group);
                    }
                }
            }
            let want = self.with_statics(&key, self.desired(m, &group));
            let outcome = self.set_desired(key, want);
            if outcome == SetOutcome::Refused && log.is_some_and(|(added, _)| added) {
                self.out.push(Output::Event(SnoopEvent::Refused {
                    port,
                    vid,
                    group: key.group,
                }));
            }
            if let Some((added, why)) = log {
                self.out.push(Output::Event(SnoopEvent::PortGroup {
                    port,
                    vid,
                    group: key.group,
                    added,
                    why,
                }));
            }
        }
    }

    /// Sets what `key` should be in the MDB, its writes going to the outputs.
    pub(super) fn set_desired(&mut self, key: EntryKey, want: Option<EntryFilter>) -> SetOutcome {
        let mut ops = Vec::new();
        let outcome = self.mdb.set_desired(key, want, &mut ops);
        self.out.extend(ops.into_iter().map(Output::Mdb));
        outcome
    }

    /// Each port's share of the MDB limit: its `max_groups`, else an even share of what
    /// the configured ports leave (after ports or policies changed).
    pub(super) fn update_shares(&mut self) {
        let policy = &self.cfg.policy;
        self.mdb
            .set_shares(self.ports.iter().map(|p| (*p, policy.of(*p).max_groups)));
    }

    /// Per-VLAN snooping is on: VLANs have their own queriers and router ports.
    pub(super) fn per_vlan(&self) -> bool {
        self.cfg.vlan_filtering && self.cfg.vlan_snooping
    }

    /// Whether `port` is in VLAN `vid` (always, where the port's VLANs are not known or
    /// the bridge does not filter VLANs).
    pub(super) fn port_in_vlan(&self, port: u32, vid: u16) -> bool {
        vid == 0
            || !self.cfg.vlan_filtering
            || self
                .port_vlans
                .get(&port)
                .is_none_or(|v| v.vids.contains(&vid))
    }

    /// Tells the kernel about router ports that changed.
    pub(super) fn reflect_routers(&mut self) {
        let per_vlan = self.per_vlan();
        let ports = self.ports.iter().map(|p| {
            let vids = per_vlan
                .then(|| self.port_vlans.get(p).map(|v| &v.vids))
                .flatten();
            (*p, vids)
        });
        let set = self.routers.router_set(ports);
        for ((vid, port), router) in self.routers.reflect(set) {
            self.out.push(Output::RouterPort { port, vid, router });
        }
    }
}
