//! Per-VLAN snooping on a VLAN-filtering bridge (`mcast_vlan_snooping 1`), as the kernel
//! does it: a querier per VLAN, router ports per port and VLAN, versions per VLAN.
//!
//! - **Queries** of VLAN V go through the bridge device, tagged V, when the bridge itself
//!   is in V (`bridge vlan add dev br0 vid V self`, which a `br0.V` interface needs
//!   anyway): the bridge then tags or untags them per port as each port's egress for V
//!   says, sends them only out of forwarding ports, and its own per-VLAN context sees a
//!   querier (without one the kernel floods V's multicast to every port). Where the
//!   bridge is not in V, they go out of each forwarding port in V directly, tagged or not
//!   as its egress says, and a warning says that the kernel cannot see them.
//! - **Sources**: the lowest address of the VLAN's upper interface (a vlan device on the
//!   bridge with id V: IPv4, and IPv6 link-local), or `querier_address` in
//!   `[bridge.B.vlan.V]`; when neither exists, IGMP queries from 0.0.0.0 (RFC 4541 §2.1.1
//!   proxy queries) and MLD from the bridge's link-local address, as the kernel's per-VLAN
//!   querier does (RFC 9777 §5.1.14 wants a link-local source).
//! - **Router ports**: the port-VLAN `mcast_router` (`bridge vlan set dev P vid V
//!   mcast_router 2`), back to the value from before igmpd when the core says so and at
//!   exit.
//! - **Versions**: with IGMPv3 / MLDv2 configured, each VLAN's `mcast_igmp_version 3` /
//!   `mcast_mld_version 2` (the kernel looks up (S,G) entries per VLAN then), restored at
//!   exit.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use igmpd_netlink::links;
use igmpd_netlink::monitor::{address_event, SystemEvent};
use igmpd_netlink::netlink_packet_route::address::AddressMessage;
use igmpd_netlink::netlink_packet_route::link::LinkMessage;
use igmpd_querier::adapter;
use tracing::{info, warn};

use super::events::set_member;
use super::SnoopDaemon;
use crate::core::VlanAddresses;
use igmpd_runtime::status::FindingDoc;

/// `mcast_router 2`.
const ROUTER: u8 = 2;
/// The kernel's default port-VLAN `mcast_router` (learn from queries).
const LEARN: u8 = 1;

/// What igmpd knows of the bridge's VLANs beyond the ports' memberships.
#[derive(Debug, Default)]
pub(super) struct VlanShell {
    /// VLANs the bridge device itself is in (`self`).
    pub(super) bridge_vids: BTreeSet<u16>,
    /// The bridge's VLAN interfaces: ifindex -> VID.
    uppers: BTreeMap<u32, u16>,
    /// Their usable addresses (IPv4, IPv6 link-local).
    upper_addrs: BTreeMap<u32, (BTreeSet<Ipv4Addr>, BTreeSet<Ipv6Addr>)>,
    /// Port-VLAN `mcast_router` values as the kernel reported them (before igmpd set any).
    router_seen: BTreeMap<(u32, u16), u8>,
    /// The port-VLANs igmpd set to `mcast_router 2`, with the value to restore.
    pub(super) router_set: BTreeMap<(u32, u16), u8>,
    /// Each VLAN's (`mcast_igmp_version`, `mcast_mld_version`) now.
    pub(super) versions: BTreeMap<u16, (u8, u8)>,
    /// The same from before igmpd raised them.
    pub(super) original_versions: BTreeMap<u16, (u8, u8)>,
    /// VLANs whose queries the kernel cannot see, warned about once.
    warned_hidden: BTreeSet<u16>,
}

fn lowest<T: Copy + Ord>(s: &BTreeSet<T>) -> Option<T> {
    s.first().copied()
}

impl SnoopDaemon {
    /// What a killed predecessor left (see `state`): its port-VLAN router settings are
    /// restored at exit unless the core takes them over, its VLANs' original versions are
    /// the ones to restore.
    pub(super) fn adopt_saved_vlans(&mut self) {
        for r in &self.saved.vlan_routers {
            if self.ports.contains_key(&r.port) {
                self.vlans
                    .router_set
                    .insert((r.port, r.vid), r.mcast_router);
            }
        }
        self.vlans
            .original_versions
            .extend(self.saved.vlan_versions.iter().map(|(k, v)| (*k, *v)));
    }

    /// The bridge is gone: its VLANs, ports and settings with it.
    pub(super) fn forget_vlans(&mut self) {
        self.vlans = VlanShell::default();
    }

    /// Per-VLAN snooping is on (the core's view).
    pub(super) fn per_vlan(&self) -> bool {
        let c = self.snooper.config();
        c.vlan_filtering && c.vlan_snooping
    }

    /// A link that may be one of the bridge's VLAN interfaces; true when it is (or was).
    pub(super) fn track_upper(&mut self, m: &LinkMessage, removed: bool) -> bool {
        let index = m.header.index;
        let on_bridge = links::vlan_upper(m)
            .filter(|(parent, _)| Some(*parent) == self.bridge_ifindex())
            .map(|(_, vid)| vid);
        match (on_bridge, removed) {
            (Some(vid), false) => {
                if self.vlans.uppers.insert(index, vid) != Some(vid) {
                    info!(bridge = %self.settings.bridge, vid, upper = links::name(m).unwrap_or_default(), "VLAN interface: its addresses are the VLAN's querier sources");
                }
                true
            }
            _ if self.vlans.uppers.contains_key(&index) => {
                self.vlans.uppers.remove(&index);
                self.vlans.upper_addrs.remove(&index);
                self.push_vlan_addresses();
                true
            }
            _ => false,
        }
    }

    /// An address of a VLAN interface came or went; true when `m` is one of theirs.
    pub(super) fn upper_address(&mut self, m: &AddressMessage, present: bool) -> bool {
        if !self.vlans.uppers.contains_key(&m.header.index) {
            return false;
        }
        if let Some(SystemEvent::Address {
            addr,
            present,
            usable,
            ..
        }) = address_event(m, present)
        {
            let keep = present && usable;
            let e = self.vlans.upper_addrs.entry(m.header.index).or_default();
            match addr {
                IpAddr::V4(a) => set_member(&mut e.0, a, keep),
                IpAddr::V6(a) if adapter::is_link_local(&a) => set_member(&mut e.1, a, keep),
                IpAddr::V6(_) => {}
            }
        }
        true
    }

    /// Forgets the VLAN interfaces' addresses (before a fresh dump).
    pub(super) fn clear_upper_addresses(&mut self) {
        self.vlans.upper_addrs.clear();
    }

    /// Each VLAN's querier sources to the core: configured ones first, else the VLAN
    /// interface's lowest.
    pub(super) fn push_vlan_addresses(&mut self) {
        let mut map: BTreeMap<u16, VlanAddresses> = BTreeMap::new();
        for (ifindex, vid) in &self.vlans.uppers {
            if let Some((v4, v6)) = self.vlans.upper_addrs.get(ifindex) {
                let e = map.entry(*vid).or_default();
                e.0 = e.0.or(lowest(v4));
                e.1 = e.1.or(lowest(v6));
            }
        }
        for (vid, (v4, v6)) in &self.settings.vlan_addresses {
            let e = map.entry(*vid).or_default();
            e.0 = v4.or(e.0);
            e.1 = v6.or(e.1);
        }
        let now = self.now();
        self.snooper.set_vlan_addresses(now, map);
        self.flush_outputs();
    }

    /// Sends a query frame of VLAN `vid` (untagged bytes): see the module.
    pub(super) fn send_vlan_query(&mut self, vid: u16, bytes: &[u8]) {
        if self.vlans.bridge_vids.contains(&vid) {
            if let Some(s) = &self.bridge_socket {
                if let Err(e) = s.send(&super::capture::tag(bytes, vid)) {
                    warn!(bridge = %self.settings.bridge, vid, error = %e, "sending a query failed");
                }
            }
            return;
        }
        if self.vlans.warned_hidden.insert(vid) {
            warn!(bridge = %self.settings.bridge, vid, "the bridge itself is not in VLAN {vid}: igmpd's queries go out of each port directly, and the kernel, which does not see them, floods VLAN {vid}'s multicast to every port; add it: bridge vlan add dev {} vid {vid} self", self.settings.bridge);
        }
        let ports: Vec<u32> = self.ports.keys().copied().collect();
        for port in ports {
            self.send_on_port(port, bytes, vid);
        }
    }

    /// Reads the port-VLANs' `mcast_router` values and the VLANs' versions (per-VLAN
    /// snooping only; the kernel reports them only then).
    pub(super) async fn refresh_vlan_db(&mut self) {
        if !self.per_vlan() {
            return;
        }
        let Some(bridge) = self.bridge_ifindex() else {
            return;
        };
        match self.handle.vlan().dump(false).await {
            Ok(msgs) => {
                for m in msgs.iter().filter(|m| self.ports.contains_key(&m.ifindex)) {
                    for e in m.entries() {
                        for vid in e.vids() {
                            if let Some(r) = e.mcast_router {
                                self.vlans.router_seen.insert((m.ifindex, vid), r);
                            }
                        }
                    }
                }
            }
            Err(e) => {
                warn!(bridge = %self.settings.bridge, error = %e, "cannot read the port VLANs' settings")
            }
        }
        match self.handle.vlan().dump(true).await {
            Ok(msgs) => {
                self.vlans.versions.clear();
                for m in msgs.iter().filter(|m| m.ifindex == bridge) {
                    for g in m.globals() {
                        for vid in g.vids() {
                            self.vlans.versions.insert(
                                vid,
                                (g.igmp_version.unwrap_or(2), g.mld_version.unwrap_or(1)),
                            );
                        }
                    }
                }
            }
            Err(e) => {
                warn!(bridge = %self.settings.bridge, error = %e, "cannot read the VLANs' settings")
            }
        }
    }

    /// The core made `port` a router port in VLAN `vid` (or no longer one).
    pub(super) fn set_vlan_router(&mut self, port: u32, vid: u16, router: bool) {
        let key = (port, vid);
        let mode = if router {
            let before = *self.vlans.router_seen.get(&key).unwrap_or(&LEARN);
            if let std::collections::btree_map::Entry::Vacant(e) = self.vlans.router_set.entry(key)
            {
                e.insert(before);
                // Saved before the change: a successor restores `before`, not the 2.
                self.save_state();
            }
            ROUTER
        } else {
            match self.vlans.router_set.remove(&key) {
                Some(m) => m,
                None => return,
            }
        };
        let name = self.port_name(port);
        info!(bridge = %self.settings.bridge, port = %name, vid, router, "multicast router port in VLAN");
        let h = self.handle.clone();
        tokio::spawn(async move {
            if let Err(e) = h.vlan().set_port_router(port, vid, mode).await {
                warn!(port = %name, vid, error = %e, "cannot set the port VLAN's mcast_router");
            }
        });
    }

    /// At exit: every port-VLAN `mcast_router` igmpd set, as it was.
    pub(super) async fn restore_vlan_routers(&mut self) {
        for ((port, vid), mode) in std::mem::take(&mut self.vlans.router_set) {
            if let Err(e) = self.handle.vlan().set_port_router(port, vid, mode).await {
                warn!(port = %self.port_name(port), vid, error = %e, "cannot restore the port VLAN's mcast_router");
            }
        }
    }

    /// With IGMPv3 / MLDv2 configured, every VLAN's versions to 3 / 2 (per-VLAN snooping:
    /// the kernel looks up (S,G) entries by the VLAN's own version), once per VLAN.
    pub(super) async fn set_vlan_versions(&mut self) {
        let Some(bridge) = self.bridge_ifindex() else {
            return;
        };
        let (v3, v2) = (
            super::kernel::queries_v3(&self.settings.igmp),
            super::kernel::queries_v3(&self.settings.mld),
        );
        for (vid, (igmp, mld)) in self.vlans.versions.clone() {
            let want_igmp = (v3 && igmp < 3).then_some(3);
            let want_mld = (v2 && mld < 2).then_some(2);
            if want_igmp.is_none() && want_mld.is_none() {
                continue;
            }
            // Raised once per VLAN: lowered again by an admin, it stays so (the finding
            // says what that costs), as the bridge's own versions do.
            if self.vlans.original_versions.contains_key(&vid) {
                continue;
            }
            self.vlans.original_versions.insert(vid, (igmp, mld));
            self.save_state();
            match self
                .handle
                .vlan()
                .set_versions(bridge, vid, want_igmp, want_mld)
                .await
            {
                Ok(()) => {
                    self.vlans
                        .versions
                        .insert(vid, (want_igmp.unwrap_or(igmp), want_mld.unwrap_or(mld)));
                    info!(bridge = %self.settings.bridge, vid, igmp_from = igmp, mld_from = mld, "source filtering: the VLAN's mcast_igmp_version / mcast_mld_version raised (restored at exit)");
                }
                Err(e) => {
                    self.vlans.original_versions.remove(&vid);
                    warn!(bridge = %self.settings.bridge, vid, error = %e, "cannot raise the VLAN's mcast_igmp_version / mcast_mld_version")
                }
            }
        }
    }

    /// At exit: the VLANs' versions from before igmpd.
    pub(super) async fn restore_vlan_versions(&mut self) {
        let Some(bridge) = self.bridge_ifindex() else {
            return;
        };
        for (vid, (igmp, mld)) in std::mem::take(&mut self.vlans.original_versions) {
            if let Err(e) = self
                .handle
                .vlan()
                .set_versions(bridge, vid, Some(igmp), Some(mld))
                .await
            {
                warn!(bridge = %self.settings.bridge, vid, error = %e, "cannot restore the VLAN's versions");
            }
        }
    }

    /// `source-filtering-off` for VLANs whose versions igmpd raised and somebody lowered
    /// since (per-VLAN snooping: the kernel reads each VLAN's).
    pub(super) fn vlan_source_filtering_finding(&self) -> Option<FindingDoc> {
        let (v3, v2) = (
            super::kernel::queries_v3(&self.settings.igmp),
            super::kernel::queries_v3(&self.settings.mld),
        );
        let low: Vec<String> = self
            .vlans
            .original_versions
            .keys()
            .filter_map(|vid| {
                let (i, m) = self.vlans.versions.get(vid)?;
                ((v3 && *i < 3) || (v2 && *m < 2))
                    .then(|| format!("VLAN {vid} (mcast_igmp_version {i}, mcast_mld_version {m})"))
            })
            .collect();
        if low.is_empty() {
            return None;
        }
        let br = &self.settings.bridge;
        Some(super::kernel::source_filtering_off(
            br,
            format!("{} of {br} lowered", low.join(", ")),
            format!("bridge vlan global set dev {br} vid VID"),
        ))
    }

    /// Each VLAN's source filtering (per-VLAN snooping): the VLAN's versions say the
    /// kernel looks up (S,G) entries for every snooped family.
    pub(super) fn vlan_source_filtering(&self) -> BTreeMap<u16, bool> {
        let (igmp, mld) = (self.settings.igmp.is_some(), self.settings.mld.is_some());
        let sources = self.kernel_mdb.source_list || self.kernel_mdb.sg;
        self.vlans
            .versions
            .iter()
            .map(|(vid, (i, m))| (*vid, sources && (!igmp || *i >= 3) && (!mld || *m >= 2)))
            .collect()
    }
}
