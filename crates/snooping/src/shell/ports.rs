//! The bridge's ports: added and removed (their send-only socket, ALLMULTI for the capture
//! ring, the ring's filter), `--router-port` names, and their `mcast_router` mode: `2`
//! while the core says the port is a multicast router port (RFC 4541 §2.1.1), the value
//! from before igmpd otherwise and at exit.

use std::collections::{BTreeMap, BTreeSet};

use futures::TryStreamExt;
use igmpd_netlink::links;
use igmpd_netlink::netlink_packet_route::link::BridgeMulticastRouterType;
use igmpd_packet::PacketSocket;
use tracing::{debug, info, warn};

use super::{SnoopDaemon, StartError};
use crate::core::{PortVlans, Snooper};

/// `mcast_router 2`: a permanent multicast router port.
const ROUTER: u8 = 2;

/// The name of `port` in `ports`, or its ifindex when it is not (or no longer) a port.
pub(super) fn port_name(ports: &BTreeMap<u32, Port>, port: u32) -> String {
    ports
        .get(&port)
        .map_or_else(|| port.to_string(), |x| x.name.clone())
}

pub(super) struct Port {
    pub(super) name: String,
    pub(super) up: bool,
    /// Sends reports forwarded out of the port (receives nothing: the ring captures).
    pub(super) socket: Option<PacketSocket>,
    /// `mcast_router` before igmpd changed it.
    pub(super) original_router: u8,
    /// `mcast_router` as igmpd last set it (or found it).
    pub(super) current_router: u8,
    /// `mcast_flood` before igmpd changed it (`flood_unregistered`).
    pub(super) original_flood: bool,
    /// `mcast_flood` as igmpd last set it (or found it).
    pub(super) current_flood: bool,
    /// In STP forwarding state (or the kernel did not say): reports are forwarded out of
    /// it only then (a blocked port would loop them).
    pub(super) forwarding: bool,
}

impl SnoopDaemon {
    /// Resolves `--router-port` names to ifindexes (at start, and after the bridge is
    /// recreated).
    pub(super) async fn configure_router_ports(&mut self) -> Result<(), StartError> {
        let mut set = BTreeSet::new();
        for name in &self.settings.router_ports {
            let l =
                self.handle.link().get_by_name(name).await.map_err(|_| {
                    StartError::NotAPort(name.clone(), self.settings.bridge.clone())
                })?;
            if links::master(&l) != self.bridge_ifindex() {
                return Err(StartError::NotAPort(
                    name.clone(),
                    self.settings.bridge.clone(),
                ));
            }
            set.insert(l.header.index);
        }
        let mut cfg = self.snooper.config().clone();
        cfg.router_ports = set;
        self.snooper = Snooper::new(cfg);
        Ok(())
    }

    /// A port found in the bridge, with its `mcast_router` and `mcast_flood` now.
    pub(super) fn add_port(
        &mut self,
        ifindex: u32,
        name: String,
        up: bool,
        (current_router, current_flood): (u8, bool),
    ) {
        if self.ports.contains_key(&ifindex) {
            return;
        }
        // A run before this one (killed) may have made it a router port or changed its
        // flooding: its saved values are the ones from before igmpd.
        let (original_router, original_flood) = match self.saved.ports.get(&ifindex) {
            Some(p) if p.name == name => (p.mcast_router, p.mcast_flood),
            _ => (current_router, current_flood),
        };
        let mut port = Port {
            name: name.clone(),
            up,
            socket: None,
            original_router,
            current_router,
            original_flood,
            current_flood,
            forwarding: true,
        };
        match PacketSocket::open_tx(ifindex) {
            Ok(s) => port.socket = Some(s),
            Err(e) => {
                warn!(port = %name, error = %e, "cannot open a packet socket on the port: reports are not forwarded out of it")
            }
        }
        if let Err(e) = self.capture.allmulti(ifindex, true) {
            debug!(port = %name, error = %e, "PACKET_MR_ALLMULTI failed");
        }
        info!(bridge = %self.settings.bridge, port = %name, up, "port added");
        let policy = self.settings.port_policies.get(&name).cloned();
        self.snooper.set_port_policy(ifindex, policy);
        self.apply_statics(ifindex, &name);
        self.ports.insert(ifindex, port);
        self.apply_flood_unregistered(ifindex);
        // While activating, the filter is set once for all ports.
        if self.active {
            self.update_capture();
        }
        if up {
            self.snooper.port_up(ifindex);
        }
    }

    /// Reads every port's VLANs (`bridge vlan show`) into the core, on a VLAN-filtering
    /// bridge; elsewhere the core takes no VLANs of ports (tags are no VLANs there).
    pub(super) async fn refresh_port_vlans(&mut self) {
        let Some(b) = self.bridge.as_ref() else {
            return;
        };
        let (bridge, filtering) = (b.ifindex, b.vlan_filtering);
        let mut found = BTreeMap::new();
        if filtering {
            let dump: Result<Vec<_>, _> =
                self.handle.link().dump_bridge_vlans().try_collect().await;
            match dump {
                Ok(msgs) => {
                    self.vlans.bridge_vids.clear();
                    for m in &msgs {
                        let Some(l) = links::port_vlans(m) else {
                            continue;
                        };
                        if m.header.index == bridge {
                            // The bridge's own (`self`) VLANs: where it can send.
                            self.vlans.bridge_vids = l.vids.into_iter().collect();
                        } else if links::master(m) == Some(bridge) {
                            found.insert(
                                m.header.index,
                                PortVlans {
                                    pvid: l.pvid,
                                    vids: l.vids.into_iter().collect(),
                                    untagged: l.untagged.into_iter().collect(),
                                },
                            );
                        }
                    }
                }
                Err(e) => {
                    warn!(bridge = %self.settings.bridge, error = %e, "cannot read the ports' VLANs");
                    return;
                }
            }
        }
        // Before the core starts new VLANs' queriers: their router and version settings.
        self.refresh_vlan_db().await;
        self.set_vlan_versions().await;
        self.update_source_filtering();
        let now = self.now();
        for port in self.ports.keys().copied().collect::<Vec<_>>() {
            let vlans = found.remove(&port);
            if filtering && vlans.is_none() {
                // A port in no VLAN forwards nothing on a VLAN-filtering bridge.
                self.snooper
                    .set_port_vlans(now, port, Some(PortVlans::default()));
            } else {
                self.snooper.set_port_vlans(now, port, vlans);
            }
        }
        self.flush_outputs();
    }

    /// The port's STP state, when a link message said it.
    pub(super) fn set_forwarding(&mut self, ifindex: u32, forwarding: Option<bool>) {
        let (Some(p), Some(f)) = (self.ports.get_mut(&ifindex), forwarding) else {
            return;
        };
        if p.forwarding != f {
            p.forwarding = f;
            info!(bridge = %self.settings.bridge, port = %p.name, forwarding = f, "port STP state");
            if f && p.up && self.active {
                // A topology change: its hosts are asked at once (see core::admin).
                let now = self.now();
                self.snooper.port_came_up(now, ifindex);
            }
        }
    }

    pub(super) fn remove_port(&mut self, ifindex: u32) {
        if let Some(p) = self.ports.remove(&ifindex) {
            // Fails when the interface is already gone (the kernel dropped it then).
            let _ = self.capture.allmulti(ifindex, false);
            self.update_capture();
            info!(bridge = %self.settings.bridge, port = %p.name, "port removed");
            self.snooper.port_down(ifindex);
            self.snooper.set_port_policy(ifindex, None);
            self.snooper.set_port_statics(ifindex, Default::default());
        }
    }

    pub(super) fn port_ifindexes(&self) -> Vec<u32> {
        self.ports.keys().copied().collect()
    }

    /// The ports with `router_guard`.
    pub(super) fn guarded_ports(&self) -> Vec<u32> {
        let policy = &self.snooper.config().policy;
        self.ports
            .keys()
            .copied()
            .filter(|p| policy.of(*p).router_guard)
            .collect()
    }

    /// The port's name, or its ifindex when it is not (or no longer) a port.
    pub(super) fn port_name(&self, port: u32) -> String {
        port_name(&self.ports, port)
    }

    /// Points the capture ring's filter at the current ports.
    pub(super) fn update_capture(&self) {
        if let Err(e) = self.capture.set_ports(&self.port_ifindexes()) {
            warn!(bridge = %self.settings.bridge, error = %e, "cannot set the capture filter");
        }
    }

    /// The core made `port` a multicast router port (or no longer one): `mcast_router 2`,
    /// or back to the value from before igmpd. Saved first (see `state`), so that a
    /// killed igmpd's successor restores that value, not the `2`.
    pub(super) fn set_router(&mut self, port: u32, router: bool) {
        if router {
            self.save_state();
        }
        let Some(p) = self.ports.get_mut(&port) else {
            return;
        };
        let mode = if router { ROUTER } else { p.original_router };
        p.current_router = mode;
        info!(bridge = %self.settings.bridge, port = %p.name, router, "multicast router port");
        let h = self.handle.clone();
        let name = p.name.clone();
        tokio::spawn(async move {
            if let Err(e) = h
                .link()
                .set_port_mcast_router(port, BridgeMulticastRouterType::from(mode))
                .await
            {
                warn!(port = %name, error = %e, "cannot set mcast_router");
            }
        });
    }

    /// `flood_unregistered` of `port`'s policy: its `mcast_flood` set (saved first, like
    /// `mcast_router`, so that a killed igmpd's successor restores the value from before).
    fn apply_flood_unregistered(&mut self, port: u32) {
        let Some(p) = self.ports.get(&port) else {
            return;
        };
        let policy = self.settings.port_policies.get(&p.name);
        let Some(want) = policy.unwrap_or(&self.settings.policy).flood_unregistered else {
            return;
        };
        if p.current_flood == want {
            return;
        }
        self.save_state();
        let Some(p) = self.ports.get_mut(&port) else {
            return;
        };
        p.current_flood = want;
        info!(bridge = %self.settings.bridge, port = %p.name, on = want, "mcast_flood (flood_unregistered)");
        let h = self.handle.clone();
        let name = p.name.clone();
        tokio::spawn(async move {
            if let Err(e) = h.link().set_port_mcast_flood(port, want).await {
                warn!(port = %name, error = %e, "cannot set mcast_flood");
            }
        });
    }

    /// At exit: every port's `mcast_router` and `mcast_flood` as they were before igmpd.
    pub(super) async fn restore_routers(&self) {
        for (port, p) in &self.ports {
            if p.current_flood != p.original_flood {
                let on = p.original_flood;
                if let Err(e) = self.handle.link().set_port_mcast_flood(*port, on).await {
                    warn!(port = %p.name, error = %e, "cannot restore mcast_flood");
                }
            }
        }
        for (port, p) in &self.ports {
            if p.current_router != p.original_router {
                let mode = BridgeMulticastRouterType::from(p.original_router);
                if let Err(e) = self.handle.link().set_port_mcast_router(*port, mode).await {
                    warn!(port = %p.name, error = %e, "cannot restore mcast_router");
                }
            }
        }
    }
}
