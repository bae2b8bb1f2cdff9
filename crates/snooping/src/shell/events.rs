//! rtnetlink events: the bridge (up, down, deleted, recreated, its multicast settings),
//! its ports (joined, left, up, down, renamed) and its addresses (the queriers' sources);
//! after an overrun, everything is read again.

use std::collections::BTreeSet;
use std::net::IpAddr;

use futures::{StreamExt, TryStreamExt};
use igmpd_netlink::links::{self, BridgeLink};
use igmpd_netlink::monitor::{address_event, SystemEvent};
use igmpd_netlink::netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use igmpd_netlink::netlink_packet_route::address::AddressMessage;
use igmpd_netlink::netlink_packet_route::link::LinkMessage;
use igmpd_netlink::netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use igmpd_netlink::{Event as NlEvent, RtnlMessage};
use igmpd_querier::adapter;
use tracing::{info, warn};

use super::nft::NFT_PORT_GONE_DELAY;
use super::SnoopDaemon;

impl SnoopDaemon {
    pub(super) async fn handle_event(&mut self, e: NlEvent) {
        match e {
            NlEvent::Route(RouteNetlinkMessage::NewLink(m)) => self.on_link(&m, false).await,
            NlEvent::Route(RouteNetlinkMessage::DelLink(m)) => self.on_link(&m, true).await,
            NlEvent::Route(RouteNetlinkMessage::NewAddress(a)) if self.upper_address(&a, true) => {
                self.push_vlan_addresses();
            }
            NlEvent::Route(RouteNetlinkMessage::DelAddress(a)) if self.upper_address(&a, false) => {
                self.push_vlan_addresses();
            }
            // A port's (or the bridge's own) VLANs or their options changed.
            NlEvent::Vlan(..) if self.active => {
                self.refresh_port_vlans().await;
            }
            NlEvent::Route(RouteNetlinkMessage::NewAddress(a))
                if Some(a.header.index) == self.bridge_ifindex() =>
            {
                self.apply_address(&a, true);
                self.push_addresses();
            }
            NlEvent::Route(RouteNetlinkMessage::DelAddress(a))
                if Some(a.header.index) == self.bridge_ifindex() =>
            {
                self.apply_address(&a, false);
                self.push_addresses();
            }
            NlEvent::Overrun => {
                warn!("rtnetlink events were lost; reading links again");
                self.resync_links().await;
            }
            _ => {}
        }
    }

    /// Reads every link and the bridge's addresses again and applies them (after lost
    /// events, and on SIGHUP): ports that went are removed, memberships stay.
    pub(super) async fn resync_links(&mut self) {
        let Ok(links) = self
            .handle
            .link()
            .dump(Default::default())
            .try_collect::<Vec<LinkMessage>>()
            .await
        else {
            return;
        };
        if !links
            .iter()
            .any(|l| links::name(l) == Some(self.settings.bridge.as_str()))
        {
            self.bridge_gone();
        }
        let current: BTreeSet<u32> = links
            .iter()
            .filter(|l| {
                self.bridge_ifindex().is_some() && links::master(l) == self.bridge_ifindex()
            })
            .map(|l| l.header.index)
            .collect();
        for p in self.ports.keys().copied().collect::<Vec<_>>() {
            if !current.contains(&p) {
                self.remove_port(p);
            }
        }
        for l in &links {
            self.on_link(l, false).await;
        }
        self.refresh_addresses().await;
    }

    fn bridge_gone(&mut self) {
        self.nft_due = None;
        self.deactivate();
        self.bridge = None;
        self.forget_vlans();
        info!(bridge = %self.settings.bridge, "bridge deleted: waiting for it to come back");
    }

    async fn on_link(&mut self, m: &LinkMessage, removed: bool) {
        let index = m.header.index;
        let name = links::name(m);
        let is_ours = Some(index) == self.bridge_ifindex()
            || (name == Some(self.settings.bridge.as_str()) && links::is_bridge(m));
        if is_ours {
            if removed {
                self.bridge_gone();
                return;
            }
            // AF_BRIDGE notifications about the bridge carry no link info.
            if !links::is_bridge(m) {
                return;
            }
            self.on_bridge(BridgeLink::from_message(m)).await;
            return;
        }
        if self.track_upper(m, removed) {
            return;
        }
        if !self.active {
            return;
        }
        let master = links::master(m);
        let known = self.ports.contains_key(&index);
        let bridge = self.bridge_ifindex();
        if removed
            || (known && master.is_some_and(|x| Some(x) != bridge))
            || (known && master.is_none() && m.header.interface_family == Default::default())
        {
            if known {
                self.remove_port(index);
                // Not at once (see NFT_PORT_GONE_DELAY).
                self.nft_due = Some(self.now() + NFT_PORT_GONE_DELAY);
            }
            return;
        }
        if master.is_none() || master != bridge {
            return;
        }
        let up = links::is_up(m);
        if !known {
            let mode = match links::port_mcast_router(m) {
                Some(r) => (r, links::port_mcast_flood(m).unwrap_or(true)),
                None => match self.handle.link().get(index).await {
                    Ok(l) => (
                        links::port_mcast_router(&l).unwrap_or(1),
                        links::port_mcast_flood(&l).unwrap_or(true),
                    ),
                    Err(_) => (1, true),
                },
            };
            let name = name.unwrap_or_default().to_owned();
            self.add_port(index, name, up, mode);
            self.set_forwarding(index, links::port_forwarding(m));
            self.refresh_port_vlans().await;
            self.reinstall_nft();
            if up && self.active {
                // A port added at runtime: its hosts are asked at once (core::admin).
                let now = self.now();
                self.snooper.port_came_up(now, index);
            }
            return;
        }
        self.set_forwarding(index, links::port_forwarding(m));
        // The bridge says a port's bridge settings changed (STP state, VLANs): the VLANs
        // are read again (its notifications do not always list them).
        if m.header.interface_family == AddressFamily::Bridge {
            self.refresh_port_vlans().await;
        }
        let Some(p) = self.ports.get_mut(&index) else {
            return;
        };
        if let Some(n) = name {
            if n != p.name {
                p.name = n.to_owned();
                self.reinstall_nft();
                // Static groups belong to port names.
                self.apply_statics(index, n);
            }
        }
        let Some(p) = self.ports.get_mut(&index) else {
            return;
        };
        if p.up != up {
            p.up = up;
            info!(bridge = %self.settings.bridge, port = %p.name, up, "port state");
            if up {
                self.snooper.port_up(index);
                self.probe_kernel().await;
                if self.active {
                    let now = self.now();
                    self.snooper.port_came_up(now, index);
                }
            } else {
                self.snooper.port_down(index);
            }
        }
    }

    /// A link message of our bridge: recreated, its settings, up or down.
    async fn on_bridge(&mut self, info: BridgeLink) {
        let recreated = self
            .bridge
            .as_ref()
            .is_some_and(|b| b.ifindex != info.ifindex);
        if recreated {
            self.bridge_gone();
        }
        let was_up = self.active;
        let fresh = self.bridge.is_none();
        let vlan_change = self
            .bridge
            .as_ref()
            .is_some_and(|b| b.vlan_filtering != info.vlan_filtering);
        let vlan_change = vlan_change
            || self
                .bridge
                .as_ref()
                .is_some_and(|b| b.vlan_snooping != info.vlan_snooping);
        let was = self.bridge.as_ref().map(|b| (b.snooping, b.hash_max));
        self.snooper.set_vlan_filtering(info.vlan_filtering);
        let now = self.now();
        self.snooper.set_vlan_snooping(now, info.vlan_snooping);
        self.bridge = Some(info);
        if vlan_change && self.active {
            self.refresh_port_vlans().await;
        }
        self.update_source_filtering();
        if fresh {
            if let Err(e) = self.configure_router_ports().await {
                warn!(error = %e, "configured router ports");
            }
        }
        // The kernel's snooping turned off at runtime (`mcast_snooping 0` by hand, or by
        // the kernel itself when its MDB reached mcast_hash_max): every group floods and
        // the MDB is not used, so snooping pauses (finding `snooping-off`) and starts
        // afresh when it is back (the startup queries learn the memberships again).
        if let (Some((was_on, was_max)), Some(b)) = (was, self.bridge.as_ref()) {
            if was_on && !b.snooping {
                warn!(bridge = %self.settings.bridge, "the bridge's multicast snooping was turned off: every group floods; snooping resumes when it is back on");
            } else if !was_on && b.snooping {
                info!(bridge = %self.settings.bridge, "the bridge's multicast snooping is back on: snooping afresh");
            }
            if was_max != b.hash_max && self.active {
                let limit = super::adopt::entry_limit(b.hash_max, self.foreign_keys);
                info!(bridge = %self.settings.bridge, mcast_hash_max = b.hash_max, limit, "mcast_hash_max changed: new entry limit");
                self.snooper.set_entry_limit(limit);
            }
        }
        let up = self.bridge.as_ref().is_some_and(|b| b.up && b.snooping);
        if up && !was_up {
            // A failed activation is retried on its own schedule, not at each event.
            if self.activate_retry.is_none() {
                self.try_activate().await;
            }
        } else if !up {
            self.activate_retry = None;
            if was_up {
                self.deactivate();
            }
        }
    }

    /// Reads the bridge's addresses anew.
    pub(super) async fn refresh_addresses(&mut self) {
        let Some(bridge) = self.bridge_ifindex() else {
            return;
        };
        let mut msg = NetlinkMessage::from(RtnlMessage::Route(RouteNetlinkMessage::GetAddress(
            AddressMessage::default(),
        )));
        msg.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let Ok(mut replies) = self.handle.request(msg) else {
            return;
        };
        self.v4.clear();
        self.v6_ll.clear();
        self.clear_upper_addresses();
        while let Some(m) = replies.next().await {
            if let NetlinkPayload::InnerMessage(RtnlMessage::Route(
                RouteNetlinkMessage::NewAddress(a),
            )) = m.payload
            {
                if a.header.index == bridge {
                    self.apply_address(&a, true);
                } else {
                    self.upper_address(&a, true);
                }
            }
        }
        self.push_addresses();
        self.push_vlan_addresses();
    }

    fn apply_address(&mut self, m: &AddressMessage, present: bool) {
        let Some(SystemEvent::Address {
            addr,
            present,
            usable,
            ..
        }) = address_event(m, present)
        else {
            return;
        };
        let keep = present && usable;
        match addr {
            IpAddr::V4(a) => set_member(&mut self.v4, a, keep),
            IpAddr::V6(a) if adapter::is_link_local(&a) => set_member(&mut self.v6_ll, a, keep),
            IpAddr::V6(_) => {}
        }
    }

    /// The lowest usable address of each family (IPv6: link-local) is the queriers'.
    fn push_addresses(&mut self) {
        let now = self.now();
        let (v4, v6) = (self.v4.first().copied(), self.v6_ll.first().copied());
        self.snooper.set_addresses(now, v4, v6);
        self.flush_outputs();
    }
}

/// `a` in `set` or not.
pub(super) fn set_member<T: Ord>(set: &mut BTreeSet<T>, a: T, member: bool) {
    if member {
        set.insert(a);
    } else {
        set.remove(&a);
    }
}
