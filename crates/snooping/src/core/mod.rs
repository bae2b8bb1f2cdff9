//! The sans-IO snooping core of one bridge.
//!
//! Per VLAN (0 = untagged) and family there is a [`Domain`]: one bridge-level querier
//! [`Instance`] and one [`Membership`] per port. Inputs are frames seen on a port (the
//! shell decodes them), port and bridge changes, MDB entries found at start, and `now`.
//! Outputs ([`Output`]) are queries to send on the bridge, MDB writes, router-port changes
//! for the kernel, and events for logs. [`Snooper::next_deadline`] says when to call
//! [`Snooper::poll`] again.
//!
//! Rules, with their sources:
//! - Per-port state is RFC 9776 §6 / RFC 9777 §7 with `Timing::querier = None`: the port
//!   state never sends; a leave lowers timers only through the querier's group-specific
//!   queries (RFC 9776 §6.6.1; RFC 4541 §2.1.1 c: the snooping switch relies on the
//!   querier's queries). Such a query lowers the timers to Last Member Query Count x its
//!   Max Resp Time, as the Linux bridge does.
//! - Every report is also fed to the bridge-level instance, so that with `--querier` it
//!   sends the last-member queries (§6.6.3); our own queries lower the ports' timers like
//!   received ones (§6.6.1).
//! - Reports and leaves go to router ports only, never back to the ingress port
//!   (RFC 4541 §2.1.1 a).
//! - Groups the kernel does not snoop are not tracked: 224.0.0.0/24 (RFC 4541 §2.1.2) and
//!   ff02::1 (all-nodes).

pub mod mdb;
pub mod router;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use igmpd_querier::adapter::{self, Input};
use igmpd_querier::core::membership::Change;
use igmpd_querier::core::observer::{Finding, Observer, Severity};
use igmpd_querier::core::{
    Action, Config, Event, Forwarding, Generation, Instance, Instant, Membership, Proto, QueryIn,
    QueryOut, Report, Role, Timing,
};
use igmpd_wire::{IgmpRepr, MldRepr, MrdRepr, Packet, RecordType};

pub use mdb::{EntryFilter, EntryKey, MdbOp, MdbTable, SetOutcome};
pub use router::{Reason, RouterPorts};

/// What the snooper is asked to do.
#[derive(Debug, Clone)]
pub struct SnoopConfig {
    /// IGMP settings (timers, version); None: IPv4 is not snooped.
    pub igmp: Option<Config>,
    /// MLD settings; None: IPv6 is not snooped.
    pub mld: Option<Config>,
    /// Run the querier on the bridge (else the instances are passive).
    pub querier: bool,
    /// Configured router ports (ifindexes).
    pub router_ports: BTreeSet<u32>,
    /// The bridge looks up (S,G) entries for IPv4 (`mcast_igmp_version 3`): write source
    /// lists; otherwise plain (*,G) entries.
    pub source_filtering_v4: bool,
    /// The same for IPv6 (`mcast_mld_version 2`).
    pub source_filtering_v6: bool,
    /// Most kernel MDB keys igmpd may use (below `mcast_hash_max`).
    pub entry_limit: usize,
    /// Per-VLAN settings that differ from the bridge's: (IGMP, MLD) per VID; a VLAN not
    /// listed uses `igmp` and `mld`.
    pub vlans: BTreeMap<u16, (Option<Config>, Option<Config>)>,
}

/// A query to send on the bridge, for the shell to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyQuery {
    /// IGMP.
    V4(QueryOut<Ipv4Addr>),
    /// MLD.
    V6(QueryOut<Ipv6Addr>),
}

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnoopEvent {
    /// A port's membership of a group started or ended.
    PortGroup {
        /// Port ifindex.
        port: u32,
        /// VLAN (0 none).
        vid: u16,
        /// The group.
        group: IpAddr,
        /// True when added.
        added: bool,
    },
    /// A new group was not written: the bridge's hash limit is reached.
    Refused {
        /// Port ifindex.
        port: u32,
        /// VLAN.
        vid: u16,
        /// The group.
        group: IpAddr,
    },
    /// The bridge-level instance's election or version changed.
    Querier {
        /// VLAN.
        vid: u16,
        /// Family.
        proto: Proto,
        /// What happened (membership changes are not repeated here).
        event: Event<IpAddr>,
    },
}

/// What the core asks the shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a query on the bridge device (tagged with `vid` when non-zero); the bridge
    /// floods it to every port.
    Query {
        /// VLAN, 0 for untagged.
        vid: u16,
        /// The query.
        query: AnyQuery,
    },
    /// Write the MDB.
    Mdb(MdbOp),
    /// Tell the kernel a port is (true) or is no longer (false) a multicast router port.
    RouterPort {
        /// Port ifindex.
        port: u32,
        /// Router or not.
        router: bool,
    },
    /// Log it.
    Event(SnoopEvent),
}

/// What [`Snooper::receive`] made of a frame, for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Reports or leaves: forward the frame to the ports put in `forward`.
    Report,
    /// A query.
    Query,
    /// A router announcement (PIM hello, MRD).
    Router,
    /// Not for us (family not snooped, unknown port, bad MLD source).
    Ignored,
}

/// An address family the snooper handles: glue between generic state and the outputs.
pub trait Family: Ord + Copy + Hash + Debug + std::fmt::Display + Into<IpAddr> + 'static {
    /// IGMP or MLD.
    const PROTO: Proto;
    /// Wraps a query.
    fn any_query(q: QueryOut<Self>) -> AnyQuery;
    /// Whether the kernel snoops this group (RFC 4541 §2.1.2: link-local IPv4 groups are
    /// flooded; the kernel refuses MDB entries for them and for ff02::1).
    fn is_snooped(&self) -> bool;
    /// Back from the wide address type.
    fn from_ip(a: IpAddr) -> Option<Self>;
}

impl Family for Ipv4Addr {
    const PROTO: Proto = Proto::Igmp;
    fn any_query(q: QueryOut<Self>) -> AnyQuery {
        AnyQuery::V4(q)
    }
    fn is_snooped(&self) -> bool {
        self.is_multicast() && self.octets()[..3] != [224, 0, 0]
    }
    fn from_ip(a: IpAddr) -> Option<Self> {
        match a {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }
}

impl Family for Ipv6Addr {
    const PROTO: Proto = Proto::Mld;
    fn any_query(q: QueryOut<Self>) -> AnyQuery {
        AnyQuery::V6(q)
    }
    fn is_snooped(&self) -> bool {
        self.is_multicast() && *self != Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)
    }
    fn from_ip(a: IpAddr) -> Option<Self> {
        match a {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }
    }
}

/// One VLAN and family: the bridge-level querier, every port's membership, and the
/// [`Observer`] that turns the queries and reports seen on any port (and the queries of our
/// own querier) into findings.
#[derive(Debug, Clone)]
pub struct Domain<A> {
    inst: Instance<A>,
    ports: BTreeMap<u32, Membership<A>>,
    obs: Observer<A>,
    since: Instant,
}

impl<A: Family> Domain<A> {
    /// The bridge-level querier instance (passive unless `--querier`).
    pub fn instance(&self) -> &Instance<A> {
        &self.inst
    }

    /// Per-port memberships.
    pub fn ports(&self) -> impl Iterator<Item = (u32, &Membership<A>)> {
        self.ports.iter().map(|(p, m)| (*p, m))
    }

    /// What was seen on the bridge (queriers, reporting hosts).
    pub fn observer(&self) -> &Observer<A> {
        &self.obs
    }

    fn new(c: Config, addr: Option<A>, now: Instant) -> Self {
        Domain {
            inst: Instance::new(c, addr),
            ports: BTreeMap::new(),
            obs: Observer::new(A::PROTO, now),
            since: now,
        }
    }

    /// The findings of this VLAN and family: the [`Observer`]'s, judged with the bridge
    /// querier's Other Querier Present Interval, plus `snooping-without-querier` when igmpd
    /// does not query (no `--querier`) and no query with a source address was heard for
    /// that interval: a Linux bridge that snoops without a querier lets every membership
    /// expire.
    fn findings(&self, now: Instant, iface: &str, querier: bool) -> Vec<Finding> {
        let present = self.inst.other_querier_present_interval();
        let we_query = querier
            && matches!(
                self.inst.role(),
                Role::Querier | Role::Proxy | Role::NonQuerier
            );
        let mut out = self.obs.findings(now, iface, present, we_query);
        let named = self
            .obs
            .queriers()
            .any(|q| q.address.is_some() && q.last_seen + present > now);
        if !querier && !named && now.saturating_since(self.since) >= present {
            out.retain(|f| f.code != "no-querier");
            let pname = match A::PROTO {
                Proto::Igmp => "IGMP",
                Proto::Mld => "MLD",
            };
            out.push(Finding {
                code: "snooping-without-querier",
                severity: Severity::Error,
                iface: iface.into(),
                host: None,
                group: None,
                message: format!(
                    "{iface} snoops {pname} but no {pname} querier with an address was heard for {} s and igmpd does not query (no --querier): memberships will expire after the membership interval and multicast to the members stops",
                    present.as_secs()
                ),
                hint: format!(
                    "run `igmpd snoop {iface} --querier`, or enable a querier on the LAN (`igmpd query IFACE` on a router, or the router's {pname} querier)"
                ),
            });
        }
        out
    }

    /// The timers of per-port state: the elected querier's (adopted) robustness and
    /// interval give the GMI (RFC 9776 §8.4); no queries of its own.
    pub fn port_timing(&self) -> Timing {
        let gmi = self.inst.group_membership_interval();
        let c = self.inst.config();
        Timing {
            gmi,
            lmqi: c.last_member_query_interval,
            lmqc: c.last_member_query_count.unwrap_or(self.inst.robustness()),
            older_host_present: gmi,
            querier: None,
        }
    }
}

/// Counters shown in status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Reports and leaves processed.
    pub reports: u64,
    /// Queries seen.
    pub queries: u64,
    /// Frames forwarded to router ports (one per target port).
    pub forwarded: u64,
    /// MLD messages from a source that is not link-local (RFC 9777 §5.1.14, §5.2.13).
    pub bad_source: u64,
}

/// One VLAN's domains.
#[derive(Debug, Clone)]
struct Vlan {
    igmp: Option<Domain<Ipv4Addr>>,
    mld: Option<Domain<Ipv6Addr>>,
}

/// Everything but the domains, so domain code can borrow both.
#[derive(Debug, Clone)]
struct Shared {
    cfg: SnoopConfig,
    mdb: MdbTable,
    routers: RouterPorts,
    out: Vec<Output>,
    counters: Counters,
    /// Bridge ports that are up.
    ports: BTreeSet<u32>,
    bridge_up: bool,
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
}

/// The snooping state of one bridge.
#[derive(Debug, Clone)]
pub struct Snooper {
    vlans: BTreeMap<u16, Vlan>,
    sh: Shared,
}

fn domain_mut<A: Family>(v: &mut Vlan) -> Option<&mut Domain<A>> {
    // A small, safe type switch: each family has its own field.
    let any: &mut dyn std::any::Any = match A::PROTO {
        Proto::Igmp => v.igmp.as_mut()?,
        Proto::Mld => v.mld.as_mut()?,
    };
    any.downcast_mut::<Domain<A>>()
}

impl Shared {
    /// The MDB entry `group` of `port` should have, from its membership (RFC 9776 §6.3).
    fn desired<A: Family>(&self, m: &Membership<A>, group: &A) -> Option<EntryFilter> {
        let fwd = m.forwarding(group)?;
        let filtering = match A::PROTO {
            Proto::Igmp => self.cfg.source_filtering_v4,
            Proto::Mld => self.cfg.source_filtering_v6,
        };
        let wide = |v: Vec<A>| v.into_iter().map(Into::into).collect::<Vec<IpAddr>>();
        Some(match fwd {
            Forwarding::Include(s) if s.is_empty() => return None,
            Forwarding::Exclude(y) if y.is_empty() => EntryFilter::Any,
            _ if !filtering => EntryFilter::Any,
            Forwarding::Include(s) => EntryFilter::Include(wide(s)),
            Forwarding::Exclude(y) => EntryFilter::Exclude(wide(y)),
        })
    }

    fn apply_changes<A: Family>(
        &mut self,
        vid: u16,
        port: u32,
        m: &Membership<A>,
        changes: &mut Vec<Change<A>>,
    ) {
        for c in changes.drain(..) {
            let (group, log) = match c {
                Change::GroupAdded { group } => (group, Some(true)),
                Change::GroupRemoved { group } => (group, Some(false)),
                Change::Forwarding { group } => (group, None),
                Change::Compat { .. } => continue,
            };
            let key = EntryKey {
                port,
                vid,
                group: group.into(),
            };
            let want = self.desired(m, &group);
            let mut ops = Vec::new();
            let outcome = self.mdb.set_desired(key, want, &mut ops);
            self.out.extend(ops.into_iter().map(Output::Mdb));
            if outcome == SetOutcome::Refused && log == Some(true) {
                self.out.push(Output::Event(SnoopEvent::Refused {
                    port,
                    vid,
                    group: key.group,
                }));
            }
            if let Some(added) = log {
                self.out.push(Output::Event(SnoopEvent::PortGroup {
                    port,
                    vid,
                    group: key.group,
                    added,
                }));
            }
        }
    }

    /// Handles the bridge-level instance's actions: queries go out, and our own
    /// group-specific queries lower every port's timers (RFC 9776 §6.6.1).
    fn instance_actions<A: Family>(
        &mut self,
        now: Instant,
        vid: u16,
        d: &mut Domain<A>,
        acts: Vec<Action<A>>,
    ) {
        for a in acts {
            match a {
                Action::Send(q) => {
                    d.obs.query(now, q.src, &query_in(&q), true);
                    if let (Some(g), false) = (q.group, q.s_flag) {
                        lower_ports(self, now, vid, d, g, &q.sources, q.max_resp);
                    }
                    self.out.push(Output::Query {
                        vid,
                        query: A::any_query(q),
                    });
                }
                Action::Event(Event::Membership(_)) => {}
                Action::Event(e) => self.out.push(Output::Event(SnoopEvent::Querier {
                    vid,
                    proto: A::PROTO,
                    event: widen_event(e),
                })),
            }
        }
    }
}

/// What a query we send looks like to a host, for the [`Observer`].
fn query_in<A: Copy>(q: &QueryOut<A>) -> QueryIn<A> {
    let v3 = q.gen == Generation::V3;
    QueryIn {
        gen: q.gen,
        group: q.group,
        sources: q.sources.clone(),
        s_flag: q.s_flag,
        qrv: if v3 { q.qrv } else { 0 },
        qqi: v3.then_some(q.qqi),
        max_resp: q.max_resp,
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

/// §6.6.1 on every port: a query for `group` (and `sources`) with S clear lowers timers to
/// LMQC x the query's Max Resp Time.
fn lower_ports<A: Family>(
    sh: &mut Shared,
    now: Instant,
    vid: u16,
    d: &mut Domain<A>,
    group: A,
    sources: &[A],
    max_resp: Duration,
) {
    let mut timing = d.port_timing();
    timing.lmqi = max_resp;
    let mut changes = Vec::new();
    let mut queries = Vec::new();
    for (port, m) in d.ports.iter_mut() {
        m.lower_on_query(now, &timing, group, sources);
        // A timer lowered to now (Max Resp 0) ends at once.
        if m.next_deadline().is_some_and(|t| t <= now) {
            m.poll(now, &timing, &mut changes, &mut queries);
            sh.apply_changes(vid, *port, m, &mut changes);
        }
    }
}

/// The state of `vid`, created (and its queriers started when the bridge is up) on first
/// use.
fn vlan_entry<'a>(
    vlans: &'a mut BTreeMap<u16, Vlan>,
    sh: &mut Shared,
    now: Instant,
    vid: u16,
) -> &'a mut Vlan {
    vlans.entry(vid).or_insert_with(|| {
        let passive = !sh.cfg.querier;
        let mk = |c: &Option<Config>| {
            c.clone().map(|mut c| {
                c.passive = passive;
                c
            })
        };
        // A VLAN's own section overrides the bridge's settings (the config's precedence).
        let (igmp, mld) = match sh.cfg.vlans.get(&vid) {
            Some((i, m)) => (mk(i), mk(m)),
            None => (mk(&sh.cfg.igmp), mk(&sh.cfg.mld)),
        };
        let mut v = Vlan {
            igmp: igmp.map(|c| Domain::new(c, sh.v4, now)),
            mld: mld.map(|c| Domain::new(c, sh.v6, now)),
        };
        if sh.bridge_up {
            if let Some(d) = v.igmp.as_mut() {
                let acts = d.inst.link_up(now);
                sh.instance_actions(now, vid, d, acts);
            }
            if let Some(d) = v.mld.as_mut() {
                let acts = d.inst.link_up(now);
                sh.instance_actions(now, vid, d, acts);
            }
        }
        v
    })
}

impl Snooper {
    /// A snooper for a bridge that is not up yet.
    pub fn new(cfg: SnoopConfig) -> Self {
        let limit = cfg.entry_limit;
        let routers = RouterPorts::new(cfg.router_ports.clone());
        Snooper {
            vlans: BTreeMap::new(),
            sh: Shared {
                cfg,
                mdb: MdbTable::new(limit),
                routers,
                out: Vec::new(),
                counters: Counters::default(),
                ports: BTreeSet::new(),
                bridge_up: false,
                v4: None,
                v6: None,
            },
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SnoopConfig {
        &self.sh.cfg
    }

    /// Takes the outputs produced so far.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Output> {
        self.sh.out.drain(..)
    }

    /// The MDB table.
    pub fn mdb(&self) -> &MdbTable {
        &self.sh.mdb
    }

    /// Router ports.
    pub fn routers(&self) -> &RouterPorts {
        &self.sh.routers
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.sh.counters
    }

    /// Ports that are up, in ifindex order.
    pub fn ports(&self) -> impl Iterator<Item = u32> + '_ {
        self.sh.ports.iter().copied()
    }

    /// VLANs with state, 0 first.
    pub fn vids(&self) -> impl Iterator<Item = u16> + '_ {
        self.vlans.keys().copied()
    }

    /// IGMP domain of `vid`.
    pub fn igmp(&self, vid: u16) -> Option<&Domain<Ipv4Addr>> {
        self.vlans.get(&vid)?.igmp.as_ref()
    }

    /// MLD domain of `vid`.
    pub fn mld(&self, vid: u16) -> Option<&Domain<Ipv6Addr>> {
        self.vlans.get(&vid)?.mld.as_ref()
    }

    /// The current findings of every VLAN and family (none while the bridge is down):
    /// what the [`Observer`]s make of the queries and reports seen, plus
    /// `snooping-without-querier`. `bridge` names the bridge (VLAN `vid` appears as
    /// `bridge.vid`).
    pub fn findings(&self, now: Instant, bridge: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        if !self.sh.bridge_up {
            return out;
        }
        let querier = self.sh.cfg.querier;
        for (vid, v) in &self.vlans {
            let iface = if *vid == 0 {
                bridge.to_owned()
            } else {
                format!("{bridge}.{vid}")
            };
            if let Some(d) = &v.igmp {
                out.extend(d.findings(now, &iface, querier));
            }
            if let Some(d) = &v.mld {
                out.extend(d.findings(now, &iface, querier));
            }
        }
        out
    }

    /// Whether the bridge is up.
    pub fn bridge_is_up(&self) -> bool {
        self.sh.bridge_up
    }

    /// A write the shell sent failed: the entry's kernel state is unknown and is written
    /// again at its next change.
    pub fn mdb_write_failed(&mut self, key: &EntryKey) {
        self.sh.mdb.write_failed(key);
    }

    /// Changes the MDB key limit.
    pub fn set_entry_limit(&mut self, limit: usize) {
        self.sh.cfg.entry_limit = limit;
        self.sh.mdb.set_limit(limit);
    }

    /// Whether the kernel bridge filters sources, per family (its IGMP/MLD version).
    pub fn set_source_filtering(&mut self, v4: bool, v6: bool) {
        self.sh.cfg.source_filtering_v4 = v4;
        self.sh.cfg.source_filtering_v6 = v6;
    }

    /// A VLAN was configured on the bridge (VLAN-filtering bridges): its querier starts.
    pub fn add_vlan(&mut self, now: Instant, vid: u16) {
        vlan_entry(&mut self.vlans, &mut self.sh, now, vid);
    }

    /// A VLAN was removed: its state and entries go.
    pub fn remove_vlan(&mut self, vid: u16) {
        let Some(v) = self.vlans.remove(&vid) else {
            return;
        };
        let mut keys = Vec::new();
        for d in v.igmp.iter() {
            for (port, m) in &d.ports {
                keys.extend(m.groups().map(|g| (*port, IpAddr::from(g.group))));
            }
        }
        for d in v.mld.iter() {
            for (port, m) in &d.ports {
                keys.extend(m.groups().map(|g| (*port, IpAddr::from(g.group))));
            }
        }
        let mut ops = Vec::new();
        for (port, group) in keys {
            self.sh
                .mdb
                .set_desired(EntryKey { port, vid, group }, None, &mut ops);
        }
        self.sh.out.extend(ops.into_iter().map(Output::Mdb));
    }

    /// The bridge is up: the querier instances start (startup queries with `--querier`).
    pub fn bridge_up(&mut self, now: Instant) {
        self.sh.bridge_up = true;
        vlan_entry(&mut self.vlans, &mut self.sh, now, 0);
        let sh = &mut self.sh;
        for (vid, v) in self.vlans.iter_mut() {
            if let Some(d) = v.igmp.as_mut() {
                if !d.inst.link_is_up() {
                    let acts = d.inst.link_up(now);
                    sh.instance_actions(now, *vid, d, acts);
                }
            }
            if let Some(d) = v.mld.as_mut() {
                if !d.inst.link_is_up() {
                    let acts = d.inst.link_up(now);
                    sh.instance_actions(now, *vid, d, acts);
                }
            }
        }
    }

    /// The bridge went down or away: all state goes, without MDB writes (the kernel refuses
    /// them on a down bridge; what it kept is adopted again at the next start).
    pub fn bridge_down(&mut self) {
        self.sh.bridge_up = false;
        self.vlans.clear();
        self.sh.mdb.clear();
        self.sh.routers.clear_learned();
        self.sh.ports.clear();
        let changes = self.sh.routers.reflect(BTreeSet::new());
        // Nothing to tell the kernel about ports of a bridge that is down; forget them.
        drop(changes);
    }

    /// The bridge's addresses (IPv4 primary, IPv6 link-local), the queriers' sources.
    pub fn set_addresses(&mut self, now: Instant, v4: Option<Ipv4Addr>, v6: Option<Ipv6Addr>) {
        self.sh.v4 = v4;
        self.sh.v6 = v6;
        let sh = &mut self.sh;
        for (vid, v) in self.vlans.iter_mut() {
            if let Some(d) = v.igmp.as_mut() {
                let acts = d.inst.set_address(now, v4);
                sh.instance_actions(now, *vid, d, acts);
            }
            if let Some(d) = v.mld.as_mut() {
                let acts = d.inst.set_address(now, v6);
                sh.instance_actions(now, *vid, d, acts);
            }
        }
    }

    /// A port is up in the bridge (added, or came up).
    pub fn port_up(&mut self, port: u32) {
        if self.sh.ports.insert(port) {
            self.reflect_routers();
        }
    }

    /// A port went down or left the bridge: its hosts cannot be reached, so its state and
    /// entries go (the kernel drops the learned entries of a disabled port too).
    pub fn port_down(&mut self, port: u32) {
        if !self.sh.ports.remove(&port) {
            return;
        }
        let sh = &mut self.sh;
        let mut changes4 = Vec::new();
        let mut changes6 = Vec::new();
        for (vid, v) in self.vlans.iter_mut() {
            if let Some(d) = v.igmp.as_mut() {
                if let Some(mut m) = d.ports.remove(&port) {
                    m.clear(&mut changes4);
                    sh.apply_changes(*vid, port, &m, &mut changes4);
                }
            }
            if let Some(d) = v.mld.as_mut() {
                if let Some(mut m) = d.ports.remove(&port) {
                    m.clear(&mut changes6);
                    sh.apply_changes(*vid, port, &m, &mut changes6);
                }
            }
        }
        // Entries adopted at start on a port without state yet.
        let mut ops = Vec::new();
        for key in sh.mdb.entries_of_port(port) {
            sh.mdb.set_desired(key, None, &mut ops);
        }
        sh.out.extend(ops.into_iter().map(Output::Mdb));
        sh.routers.forget_port(port);
        self.reflect_routers();
    }

    fn reflect_routers(&mut self) {
        let set = self.sh.routers.router_set(self.sh.ports.iter().copied());
        for (port, router) in self.sh.routers.reflect(set) {
            self.sh.out.push(Output::RouterPort { port, router });
        }
    }

    /// An MDB entry with igmpd's protocol value found at start (left by an earlier run):
    /// it keeps forwarding, and becomes a membership with a fresh group membership
    /// interval, refreshed by hosts that still report and removed when they do not.
    pub fn adopt(&mut self, now: Instant, key: EntryKey, filter: EntryFilter, permanent: bool) {
        if !self.sh.ports.contains(&key.port) {
            // Not a port we know (gone, or down): delete it.
            self.sh.mdb.adopt(key, filter, permanent);
            let mut ops = Vec::new();
            self.sh.mdb.set_desired(key, None, &mut ops);
            self.sh.out.extend(ops.into_iter().map(Output::Mdb));
            return;
        }
        self.sh.mdb.adopt(key, filter.clone(), permanent);
        match key.group {
            IpAddr::V4(g) => self.adopt_in::<Ipv4Addr>(now, key, g, &filter),
            IpAddr::V6(g) => self.adopt_in::<Ipv6Addr>(now, key, g, &filter),
        }
    }

    fn adopt_in<A: Family>(&mut self, now: Instant, key: EntryKey, g: A, filter: &EntryFilter) {
        let srcs: Vec<A> = filter
            .sources()
            .iter()
            .filter_map(|s| A::from_ip(*s))
            .collect();
        // The record that recreates the entry's state (RFC 9776 §6.4.1 rows from an empty
        // record): IS_IN(A) -> INCLUDE(A); IS_EX(Y) -> EXCLUDE({}, Y); IS_EX({}) -> (*,G).
        let record = match filter {
            EntryFilter::Include(_) => Report::Record(RecordType::ModeIsInclude, g, srcs),
            EntryFilter::Exclude(_) | EntryFilter::Any => {
                Report::Record(RecordType::ModeIsExclude, g, srcs)
            }
        };
        let vlan = vlan_entry(&mut self.vlans, &mut self.sh, now, key.vid);
        let Some(d) = domain_mut::<A>(vlan) else {
            // Family not snooped now: the entry goes.
            let mut ops = Vec::new();
            self.sh.mdb.set_desired(key, None, &mut ops);
            self.sh.out.extend(ops.into_iter().map(Output::Mdb));
            return;
        };
        let timing = d.port_timing();
        let m = d.ports.entry(key.port).or_default();
        let mut changes = Vec::new();
        m.report(now, &timing, None, &record, &mut changes);
        // Adopted entries are not news: only write if the state differs (a temporary entry
        // becomes permanent).
        changes.retain(|c| !matches!(c, Change::GroupAdded { .. }));
        self.sh.apply_changes(key.vid, key.port, m, &mut changes);
    }

    /// A frame captured on `port` (VLAN `vid`, 0 for untagged). For reports and leaves,
    /// `forward` receives the router ports to send the frame to.
    pub fn receive(
        &mut self,
        now: Instant,
        port: u32,
        vid: u16,
        packet: &Packet,
        forward: &mut Vec<u32>,
    ) -> Received {
        if !self.sh.bridge_up || !self.sh.ports.contains(&port) {
            return Received::Ignored;
        }
        match packet {
            Packet::Igmp { ip, igmp } => {
                let src = (!ip.src.is_unspecified()).then_some(ip.src);
                if let IgmpRepr::Mrd(m) = igmp {
                    return self.mrd(now, vid, port, Proto::Igmp, m);
                }
                let input = adapter::igmp_input(igmp);
                let gen = adapter::igmp_report_gen(igmp);
                self.input::<Ipv4Addr>(now, port, vid, src, input, gen, forward)
            }
            Packet::Mld { ip, mld } => {
                if let MldRepr::Mrd(m) = mld {
                    return self.mrd(now, vid, port, Proto::Mld, m);
                }
                let input = adapter::mld_input(mld);
                // RFC 9777 §5.1.14 / §5.2.13: link-local sources only (reports may use ::).
                let ok = adapter::is_link_local(&ip.src)
                    || (ip.src.is_unspecified() && !matches!(input, Input::Query(_)));
                if !ok {
                    self.sh.counters.bad_source += 1;
                    return Received::Ignored;
                }
                let src = (!ip.src.is_unspecified()).then_some(ip.src);
                let gen = adapter::mld_report_gen(mld);
                self.input::<Ipv6Addr>(now, port, vid, src, input, gen, forward)
            }
            Packet::PimHelloV4 { hello, .. } => {
                self.pim(now, vid, port, Proto::Igmp, hello.holdtime)
            }
            Packet::PimHelloV6 { hello, .. } => {
                self.pim(now, vid, port, Proto::Mld, hello.holdtime)
            }
        }
    }

    fn family_enabled(&self, proto: Proto) -> bool {
        match proto {
            Proto::Igmp => self.sh.cfg.igmp.is_some(),
            Proto::Mld => self.sh.cfg.mld.is_some(),
        }
    }

    /// RFC 7761 §4.3.1: a hello's Holdtime (0xffff: forever; 0: the neighbor is leaving).
    fn pim(
        &mut self,
        now: Instant,
        vid: u16,
        port: u32,
        proto: Proto,
        holdtime: Option<u16>,
    ) -> Received {
        if !self.family_enabled(proto) {
            return Received::Ignored;
        }
        // Default Hello_Holdtime 105 s (3.5 x 30 s) when the option is absent.
        let hold = match holdtime.unwrap_or(105) {
            0xffff => Duration::from_secs(u64::from(u32::MAX)),
            s => Duration::from_secs(u64::from(s)),
        };
        self.sh
            .routers
            .learn(now, vid, port, proto, Reason::Pim, hold);
        self.reflect_routers();
        Received::Router
    }

    /// RFC 4286: an advertisement makes the port a router port for three advertisement
    /// intervals; a termination ends it.
    fn mrd(&mut self, now: Instant, vid: u16, port: u32, proto: Proto, m: &MrdRepr) -> Received {
        if !self.family_enabled(proto) {
            return Received::Ignored;
        }
        let hold = match m {
            MrdRepr::Advertisement {
                advertisement_interval,
                ..
            } => Duration::from_secs(3 * u64::from((*advertisement_interval).max(1))),
            MrdRepr::Termination => Duration::ZERO,
            MrdRepr::Solicitation => return Received::Ignored,
        };
        self.sh
            .routers
            .learn(now, vid, port, proto, Reason::Mrd, hold);
        self.reflect_routers();
        Received::Router
    }

    /// A query or reports (of version `gen`) from `src` on `port`.
    #[allow(clippy::too_many_arguments)]
    fn input<A: Family>(
        &mut self,
        now: Instant,
        port: u32,
        vid: u16,
        src: Option<A>,
        input: Input<A>,
        gen: Generation,
        forward: &mut Vec<u32>,
    ) -> Received {
        if !self.family_enabled(A::PROTO) {
            return Received::Ignored;
        }
        let querier = self.sh.cfg.querier;
        let vlan = vlan_entry(&mut self.vlans, &mut self.sh, now, vid);
        let Some(d) = domain_mut::<A>(vlan) else {
            return Received::Ignored;
        };
        let sh = &mut self.sh;
        match input {
            Input::Query(q) => {
                sh.counters.queries += 1;
                d.obs.query(now, src, &q, false);
                let acts = d.inst.handle_query(now, src, &q);
                sh.instance_actions(now, vid, d, acts);
                // RFC 4541 §2.1.1: a port where queries from a router arrive is a router
                // port; 0.0.0.0 proxy queries come from snooping switches, not routers.
                if src.is_some() {
                    let hold = d.inst.other_querier_present_interval();
                    sh.routers
                        .learn(now, vid, port, A::PROTO, Reason::Query, hold);
                }
                if let (Some(g), false) = (q.group, q.s_flag) {
                    lower_ports(sh, now, vid, d, g, &q.sources, q.max_resp);
                }
                let set = sh.routers.router_set(sh.ports.iter().copied());
                for (port, router) in sh.routers.reflect(set) {
                    sh.out.push(Output::RouterPort { port, router });
                }
                Received::Query
            }
            Input::Reports(reports) => {
                let timing = d.port_timing();
                // §7.3.1: in IGMPv1 mode leaves are ignored.
                let v1_mode = d.inst.effective_version() == igmpd_querier::core::Generation::V1;
                let m = d.ports.entry(port).or_default();
                let mut changes = Vec::new();
                for r in &reports {
                    sh.counters.reports += 1;
                    d.obs.report(now, src, r, gen);
                    if !r.group().is_snooped() || (v1_mode && matches!(r, Report::Leave(_))) {
                        continue;
                    }
                    m.report(now, &timing, src, r, &mut changes);
                    sh.apply_changes(vid, port, m, &mut changes);
                }
                if m.is_empty() {
                    d.ports.remove(&port);
                }
                if querier {
                    for r in &reports {
                        if !r.group().is_snooped() {
                            continue;
                        }
                        let acts = d.inst.handle_report(now, src, r);
                        sh.instance_actions(now, vid, d, acts);
                    }
                }
                let before = forward.len();
                sh.routers
                    .targets(now, vid, port, A::PROTO, sh.ports.iter().copied(), forward);
                sh.counters.forwarded += (forward.len() - before) as u64;
                Received::Report
            }
            Input::Ignored => Received::Ignored,
        }
    }

    /// When [`Snooper::poll`] next has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.sh.routers.next_deadline();
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        for v in self.vlans.values() {
            if let Some(d) = &v.igmp {
                consider(d.inst.next_deadline());
                for m in d.ports.values() {
                    consider(m.next_deadline());
                }
            }
            if let Some(d) = &v.mld {
                consider(d.inst.next_deadline());
                for m in d.ports.values() {
                    consider(m.next_deadline());
                }
            }
        }
        next
    }

    /// Runs every timer due at `now`.
    pub fn poll(&mut self, now: Instant) {
        let sh = &mut self.sh;
        for (vid, v) in self.vlans.iter_mut() {
            if let Some(d) = v.igmp.as_mut() {
                poll_domain(sh, now, *vid, d);
            }
            if let Some(d) = v.mld.as_mut() {
                poll_domain(sh, now, *vid, d);
            }
        }
        if self.sh.routers.next_deadline().is_some_and(|t| t <= now) {
            self.sh.routers.expire(now);
            self.reflect_routers();
        }
    }
}

fn poll_domain<A: Family>(sh: &mut Shared, now: Instant, vid: u16, d: &mut Domain<A>) {
    if d.inst.next_deadline().is_some_and(|t| t <= now) {
        let acts = d.inst.poll(now);
        sh.instance_actions(now, vid, d, acts);
    }
    let timing = d.port_timing();
    let mut changes = Vec::new();
    let mut queries = Vec::new();
    let mut emptied = Vec::new();
    for (port, m) in d.ports.iter_mut() {
        if m.next_deadline().is_some_and(|t| t <= now) {
            m.poll(now, &timing, &mut changes, &mut queries);
            sh.apply_changes(vid, *port, m, &mut changes);
            if m.is_empty() {
                emptied.push(*port);
            }
        }
    }
    for p in emptied {
        d.ports.remove(&p);
    }
}
