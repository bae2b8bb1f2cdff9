//! The snooping state of one bridge: its VLANs' [`Domain`]s, and what they share (the MDB
//! diff, router ports, counters, the outputs). Lifecycle and timers here; what a captured
//! frame does is in `input`.
//!
//! - A port that goes down or leaves loses its state and entries: its hosts cannot be
//!   reached (the kernel drops the learned entries of a disabled port too).
//! - MDB entries igmpd left (its protocol value) are adopted at start as memberships with
//!   a fresh group membership interval: refreshed by hosts that still report (RFC 9776
//!   §6.4.1 rows from an empty record recreate their state), removed when they do not.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use igmpd_querier::core::observer::Finding;
use igmpd_querier::core::{Config, Instant};

use super::domain::{DomainOp, DomainVisitor, Shared, Slot, Vlan, VlanAddresses};
use super::family::Family;
use super::{
    Counters, Domain, EntryKey, MdbTable, Output, PortState, PortVlans, RouterPorts, SnoopConfig,
};

/// The snooping state of one bridge.
#[derive(Debug, Clone)]
pub struct Snooper {
    pub(super) vlans: BTreeMap<u16, Vlan>,
    pub(super) sh: Shared,
    /// Writes the kernel refused, to write again (see `core::retry`).
    pub(super) retries: super::mdb::retry::Retries,
}

/// The state of `vid`, created (and its queriers started when the bridge is up) on first
/// use.
pub(super) fn vlan_entry<'a>(
    vlans: &'a mut BTreeMap<u16, Vlan>,
    sh: &mut Shared,
    now: Instant,
    vid: u16,
) -> &'a mut Vlan {
    vlans.entry(vid).or_insert_with(|| {
        // One querier per VLAN with per-VLAN snooping, else one for the bridge (VLAN 0,
        // which on a VLAN-filtering bridge without it is what the kernel does too).
        let passive = !sh.cfg.querier || (vid != 0) != sh.per_vlan();
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
            igmp: igmp.map(|c| Domain::new(c, Ipv4Addr::address(sh, vid), now)),
            mld: mld.map(|c| Domain::new(c, Ipv6Addr::address(sh, vid), now)),
        };
        if sh.bridge_up {
            v.each_mut(sh, vid, &mut LinkUp(now));
        }
        v
    })
}

/// [`Domain::link_up`].
struct LinkUp(Instant);

impl DomainOp for LinkUp {
    fn apply<A: Slot>(&mut self, sh: &mut Shared, vid: u16, d: &mut Domain<A>) {
        d.link_up(sh, self.0, vid);
    }
}

/// [`Domain::set_address`].
struct SetAddress(Instant);

impl DomainOp for SetAddress {
    fn apply<A: Slot>(&mut self, sh: &mut Shared, vid: u16, d: &mut Domain<A>) {
        d.set_address(sh, self.0, vid);
    }
}

/// [`Domain::poll`].
struct Poll(Instant);

impl DomainOp for Poll {
    fn apply<A: Slot>(&mut self, sh: &mut Shared, vid: u16, d: &mut Domain<A>) {
        d.poll(sh, self.0, vid);
    }
}

/// [`Domain::drop_port`].
struct DropPort(u32);

impl DomainOp for DropPort {
    fn apply<A: Slot>(&mut self, sh: &mut Shared, vid: u16, d: &mut Domain<A>) {
        d.drop_port(sh, vid, self.0);
    }
}

/// The earliest [`Domain::next_deadline`].
struct Deadline(Option<Instant>);

impl DomainVisitor for Deadline {
    fn visit<A: Family>(&mut self, _: u16, d: &Domain<A>) {
        if let Some(t) = d.next_deadline() {
            self.0 = Some(self.0.map_or(t, |n| n.min(t)));
        }
    }
}

/// Every [`Domain::findings`], named after the bridge (VLAN `vid` as `bridge.vid`).
struct Findings<'a> {
    now: Instant,
    bridge: &'a str,
    querier: bool,
    out: Vec<Finding>,
}

impl DomainVisitor for Findings<'_> {
    fn visit<A: Family>(&mut self, vid: u16, d: &Domain<A>) {
        let iface = if vid == 0 {
            self.bridge.to_owned()
        } else {
            format!("{}.{vid}", self.bridge)
        };
        self.out.extend(d.findings(self.now, &iface, self.querier));
    }
}

/// The MDB keys of every group of the domains visited.
struct Keys(Vec<EntryKey>);

impl DomainVisitor for Keys {
    fn visit<A: Family>(&mut self, vid: u16, d: &Domain<A>) {
        self.0.extend(
            d.groups()
                .map(|(port, group)| EntryKey { port, vid, group }),
        );
    }
}

impl Snooper {
    /// A snooper for a bridge that is not up yet.
    pub fn new(cfg: SnoopConfig) -> Self {
        let limit = cfg.entry_limit;
        let routers = RouterPorts::new(cfg.router_ports.clone());
        Snooper {
            vlans: BTreeMap::new(),
            retries: Default::default(),
            sh: Shared {
                cfg,
                mdb: MdbTable::new(limit),
                routers,
                out: Vec::new(),
                counters: Counters::default(),
                ports: BTreeSet::new(),
                port_vlans: BTreeMap::new(),
                bridge_up: false,
                v4: None,
                v6: None,
                vlan_addrs: BTreeMap::new(),
                port_state: BTreeMap::new(),
                rewritten: None,
                statics: BTreeMap::new(),
                static_keys: BTreeMap::new(),
                flood: Default::default(),
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

    /// `port`'s own policy (None: the bridge's).
    pub fn set_port_policy(&mut self, port: u32, policy: Option<super::PortPolicy>) {
        match policy {
            Some(p) => self.sh.cfg.policy.ports.insert(port, p),
            None => self.sh.cfg.policy.ports.remove(&port),
        };
        self.sh.update_shares();
    }

    /// A port's policy state (counters, ACL hits), once it had any.
    pub fn port_state(&self, port: u32) -> Option<&PortState> {
        self.sh.port_state.get(&port)
    }

    /// The report the ACL rewrote in the last [`Snooper::receive`]: forward it instead of
    /// the captured frame (taken once).
    pub fn take_rewritten(&mut self) -> Option<igmpd_wire::Packet> {
        self.sh.rewritten.take()
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
        Ipv4Addr::domain(self.vlans.get(&vid)?)
    }

    /// MLD domain of `vid`.
    pub fn mld(&self, vid: u16) -> Option<&Domain<Ipv6Addr>> {
        Ipv6Addr::domain(self.vlans.get(&vid)?)
    }

    /// Shows `v` every domain: VLANs in VID order, IGMP before MLD.
    pub fn visit(&self, v: &mut impl DomainVisitor) {
        for (vid, vlan) in &self.vlans {
            vlan.each(*vid, v);
        }
    }

    fn each_mut(&mut self, op: &mut impl DomainOp) {
        for (vid, v) in self.vlans.iter_mut() {
            v.each_mut(&mut self.sh, *vid, op);
        }
    }

    /// The current findings of every VLAN and family (none while the bridge is down):
    /// what the observers make of the queries and reports seen, plus
    /// `snooping-without-querier`. `bridge` names the bridge (VLAN `vid` appears as
    /// `bridge.vid`).
    pub fn findings(&self, now: Instant, bridge: &str) -> Vec<Finding> {
        if !self.sh.bridge_up {
            return Vec::new();
        }
        let mut f = Findings {
            now,
            bridge,
            querier: self.sh.cfg.querier,
            out: Vec::new(),
        };
        self.visit(&mut f);
        f.out
    }

    /// The findings of every port's policy (limits, guard, ACL): see
    /// [`super::policy::findings`]. `name` gives a port's name.
    pub fn port_findings(
        &self,
        now: Instant,
        bridge: &str,
        name: impl Fn(u32) -> String,
    ) -> Vec<Finding> {
        self.sh
            .port_state
            .iter()
            .flat_map(|(p, st)| super::policy::findings(st, now, bridge, &name(*p)))
            .chain(self.nd_at_risk(now, bridge, &name))
            .collect()
    }

    /// Whether the bridge is up.
    pub fn bridge_is_up(&self) -> bool {
        self.sh.bridge_up
    }

    /// Changes the MDB key limit.
    pub fn set_entry_limit(&mut self, limit: usize) {
        self.sh.cfg.entry_limit = limit;
        self.sh.mdb.set_limit(limit);
        self.sh.update_shares();
    }

    /// Whether the kernel bridge filters sources, per family (its IGMP/MLD version). A
    /// change rewrites every entry: a bridge that stopped looking up (S,G) entries must
    /// get plain (*,G) ones, else INCLUDE joins written per source would receive nothing.
    pub fn set_source_filtering(&mut self, v4: bool, v6: bool) {
        let cfg = &mut self.sh.cfg;
        if (cfg.source_filtering_v4, cfg.source_filtering_v6) == (v4, v6) {
            return;
        }
        cfg.source_filtering_v4 = v4;
        cfg.source_filtering_v6 = v6;
        self.rewrite_entries();
    }

    /// The kernel takes no source lists on userspace entries: INCLUDE entries are written
    /// as one (S,G) entry per source (see [`MdbTable::set_per_source`]); every entry is
    /// rewritten in the new form.
    pub fn set_per_source(&mut self, on: bool) {
        if self.sh.mdb.per_source() == on {
            return;
        }
        // What was written in the old form goes first, then comes back in the new one.
        let mut ops = Vec::new();
        let keys: Vec<EntryKey> = self.sh.mdb.programmed().map(|(k, _, _)| *k).collect();
        for k in &keys {
            self.sh.mdb.set_desired(*k, None, &mut ops);
        }
        self.sh.mdb.set_per_source(on);
        self.sh.out.extend(ops.into_iter().map(Output::Mdb));
        self.rewrite_entries();
    }

    fn rewrite_entries(&mut self) {
        for (vid, v) in &self.vlans {
            if let Some(d) = &v.igmp {
                d.rewrite(&mut self.sh, *vid);
            }
            if let Some(d) = &v.mld {
                d.rewrite(&mut self.sh, *vid);
            }
        }
        // Static and flooded groups without a learned membership.
        let keys = self.sh.written_keys();
        for k in keys {
            self.refresh_key(k);
        }
    }

    /// The bridge's `vlan_filtering` changed. Turned off, every VLAN's state goes (the
    /// kernel flushes the entries of VLANs as well) and tags are ignored from now on.
    pub fn set_vlan_filtering(&mut self, on: bool) {
        if self.sh.cfg.vlan_filtering == on {
            return;
        }
        let per_vlan = self.sh.per_vlan();
        self.sh.cfg.vlan_filtering = on;
        if !on {
            let vids: Vec<u16> = self.vlans.keys().copied().filter(|v| *v != 0).collect();
            for vid in vids {
                self.remove_vlan(vid);
            }
        }
        if per_vlan != self.sh.per_vlan() {
            self.requerier();
        }
        self.restatic();
    }

    /// The bridge's `mcast_vlan_snooping` changed: which VLANs query changes, and router
    /// ports move between the ports' and the port-VLANs' settings.
    pub fn set_vlan_snooping(&mut self, now: Instant, on: bool) {
        if self.sh.cfg.vlan_snooping == on {
            return;
        }
        let per_vlan = self.sh.per_vlan();
        self.sh.cfg.vlan_snooping = on;
        if per_vlan != self.sh.per_vlan() {
            self.requerier();
            self.start_port_vlans(now);
        }
    }

    /// The queriers change roles (VLAN 0's or the VLANs'): every VLAN's state goes and is
    /// learned again, with queriers of the new kind; router ports are told anew.
    fn requerier(&mut self) {
        let vids: Vec<u16> = self.vlans.keys().copied().collect();
        for vid in vids {
            self.remove_vlan(vid);
        }
        self.sh.reflect_routers();
    }

    /// With per-VLAN snooping every VLAN of a port has a querier from the start (not
    /// only once a frame was heard in it); VLAN 0 keeps the bridge's state (passive).
    fn start_port_vlans(&mut self, now: Instant) {
        if !self.sh.bridge_up {
            return;
        }
        vlan_entry(&mut self.vlans, &mut self.sh, now, 0);
        if !self.sh.per_vlan() {
            return;
        }
        let vids: BTreeSet<u16> = self
            .sh
            .port_vlans
            .values()
            .flat_map(|p| p.vids.iter().copied())
            .collect();
        for vid in vids {
            vlan_entry(&mut self.vlans, &mut self.sh, now, vid);
        }
    }

    /// Each VLAN's querier sources (per-VLAN snooping): from the VLAN's upper interface
    /// (`br0.10`) or the configuration; a VLAN not listed queries from 0.0.0.0 for IGMP
    /// and from the bridge's link-local address for MLD (as the kernel does).
    pub fn set_vlan_addresses(&mut self, now: Instant, addrs: BTreeMap<u16, VlanAddresses>) {
        if self.sh.vlan_addrs == addrs {
            return;
        }
        self.sh.vlan_addrs = addrs;
        self.each_mut(&mut SetAddress(now));
    }

    /// The tag a frame that arrived on `port` with tag `vid` leaves other ports with: on
    /// a VLAN-filtering bridge its VLAN (an untagged frame's is the port's PVID; the
    /// egress port's settings then say tagged or not); elsewhere the tag it came with,
    /// which is payload to such a bridge.
    pub fn egress_vlan(&self, port: u32, vid: u16) -> u16 {
        if !self.sh.cfg.vlan_filtering || vid != 0 {
            return vid;
        }
        self.sh
            .port_vlans
            .get(&port)
            .and_then(|v| v.pvid)
            .unwrap_or(0)
    }

    /// A port's VLANs (see [`Snooper::set_port_vlans`]), as the kernel reported them.
    pub fn port_vlans(&self, port: u32) -> Option<&PortVlans> {
        self.sh.port_vlans.get(&port)
    }

    /// A port's VLANs as the bridge has them (None: not known, every tag is taken). A VLAN
    /// the port left loses the port's memberships and entries there (the kernel deletes
    /// only its own temporary entries of that VLAN, not userspace ones); a VLAN no port
    /// has any more goes with its querier.
    pub fn set_port_vlans(&mut self, now: Instant, port: u32, vlans: Option<PortVlans>) {
        let old = match vlans {
            Some(v) => self.sh.port_vlans.insert(port, v),
            None => self.sh.port_vlans.remove(&port),
        };
        self.start_port_vlans(now);
        self.sh.reflect_routers();
        self.restatic();
        let Some(old) = old else { return };
        let now_in: BTreeSet<u16> = self
            .sh
            .port_vlans
            .get(&port)
            .map(|v| v.vids.clone())
            .unwrap_or_default();
        for vid in old.vids.difference(&now_in) {
            if let Some(v) = self.vlans.get_mut(vid) {
                v.each_mut(&mut self.sh, *vid, &mut DropPort(port));
            }
            let used = self.sh.port_vlans.values().any(|p| p.vids.contains(vid));
            if !used && *vid != 0 {
                self.remove_vlan(*vid);
            }
        }
    }

    /// The VLAN of a frame that arrived on `port` with tag `vid` (0: untagged), or None
    /// when the bridge drops it at ingress (RFC 4541 §2.1.1 learns only what the switch
    /// forwards). Without VLAN filtering a tag is no VLAN of the bridge: vid 0.
    pub(super) fn ingress_vlan(&mut self, port: u32, vid: u16) -> Option<u16> {
        if !self.sh.cfg.vlan_filtering {
            if vid != 0 {
                self.sh.counters.tagged_unfiltered += 1;
            }
            return Some(0);
        }
        let Some(pv) = self.sh.port_vlans.get(&port) else {
            // The port's VLANs are not known (yet): only a VLAN the bridge has, never
            // state (a querier, its queries) for any tag a host makes up.
            if vid == 0 || self.vlans.contains_key(&vid) {
                return Some(vid);
            }
            self.sh.counters.vlan_drops += 1;
            return None;
        };
        let vlan = if vid == 0 {
            pv.pvid
        } else {
            pv.vids.contains(&vid).then_some(vid)
        };
        if vlan.is_none() {
            self.sh.counters.vlan_drops += 1;
        }
        vlan
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
        let mut keys = Keys(Vec::new());
        v.each(vid, &mut keys);
        for key in keys.0 {
            // Static groups stay where they still apply.
            let want = self.sh.with_statics(&key, None);
            self.sh.set_desired(key, want);
        }
    }

    /// The bridge is up: the querier instances start (startup queries with `--querier`).
    pub fn bridge_up(&mut self, now: Instant) {
        self.sh.bridge_up = true;
        self.start_port_vlans(now);
        self.each_mut(&mut LinkUp(now));
        self.restatic();
    }

    /// The bridge went down or away: all state goes, without MDB writes (the kernel refuses
    /// them on a down bridge; what it kept is adopted again at the next start).
    pub fn bridge_down(&mut self) {
        self.sh.bridge_up = false;
        self.vlans.clear();
        self.sh.mdb.clear();
        self.sh.clear_written();
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
        self.each_mut(&mut SetAddress(now));
    }

    /// A port is up in the bridge (added, or came up).
    pub fn port_up(&mut self, port: u32) {
        if self.sh.ports.insert(port) {
            self.sh.update_shares();
            self.sh.reflect_routers();
            self.restatic();
        }
    }

    /// A port went down or left the bridge: its hosts cannot be reached, so its state and
    /// entries go (the kernel drops the learned entries of a disabled port too).
    pub fn port_down(&mut self, port: u32) {
        if !self.sh.ports.remove(&port) {
            return;
        }
        self.each_mut(&mut DropPort(port));
        self.sh.port_state.remove(&port);
        // Entries adopted at start on a port without state yet.
        for key in self.sh.mdb.entries_of_port(port) {
            self.sh.set_desired(key, None);
        }
        self.sh.routers.forget_port(port);
        self.sh.update_shares();
        self.sh.reflect_routers();
        self.restatic();
    }

    /// When [`Snooper::poll`] next has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next = Deadline(self.sh.routers.next_deadline());
        self.visit(&mut next);
        [next.0, self.retries.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs every timer due at `now`.
    pub fn poll(&mut self, now: Instant) {
        self.each_mut(&mut Poll(now));
        if self.sh.routers.next_deadline().is_some_and(|t| t <= now) {
            self.sh.routers.expire(now);
            self.sh.reflect_routers();
        }
        self.poll_retries(now);
    }

    /// The writes the kernel refused, being retried.
    pub fn retries(&self) -> &super::mdb::retry::Retries {
        &self.retries
    }
}
