//! Following the system: links appearing, going up or down, renamed or deleted, and their
//! addresses, as the netlink monitor reports them. The instances re-elect and sockets are
//! re-opened without a restart.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use igmpd_netlink::SystemEvent;
use tracing::{debug, info, warn};

use super::family::Addr;
use super::QueryDaemon;
use crate::adapter;
use crate::core::Instant;

impl QueryDaemon {
    pub(super) async fn handle_system_event(&mut self, e: &SystemEvent) {
        if *e == SystemEvent::Resync {
            warn!("rtnetlink events were lost; reading interfaces again");
            match self.monitor.dump().await {
                Ok(events) => {
                    for e in &events {
                        self.apply_system_event(e, true);
                    }
                }
                Err(err) => warn!(error = %err, "re-reading interfaces failed"),
            }
            return;
        }
        self.apply_system_event(e, true);
    }

    /// Updates the interface view; when `live`, also reopens sockets and tells the
    /// instances (at start the dump is applied first and the instances started after).
    pub(super) fn apply_system_event(&mut self, e: &SystemEvent, live: bool) {
        let now = self.now();
        match e {
            SystemEvent::Link {
                ifindex,
                name,
                up,
                mac,
            } => {
                let Some(i) = self
                    .ifaces
                    .iter()
                    .position(|x| &x.name == name || x.ifindex == Some(*ifindex))
                else {
                    return;
                };
                let iface = &mut self.ifaces[i];
                if iface.name != *name {
                    // Renamed away from the configured name: treat as gone.
                    if live {
                        self.link_gone(i, now);
                    }
                    return;
                }
                let recreated = iface.ifindex.is_some_and(|old| old != *ifindex);
                if recreated && live {
                    self.link_gone(i, now);
                }
                let iface = &mut self.ifaces[i];
                let new = iface.ifindex.is_none();
                iface.ifindex = Some(*ifindex);
                if let Some(m) = mac {
                    iface.mac = *m;
                }
                let was_up = iface.up;
                iface.up = *up;
                if live {
                    if new {
                        info!(iface = %name, ifindex, "interface appeared");
                        if let Err(e) = self.open_socket(i) {
                            warn!(iface = %name, error = %e, "cannot open socket");
                        }
                    }
                    if was_up != *up || new {
                        info!(iface = %name, up, "link state");
                        self.refresh_family_state(i, now);
                    }
                }
            }
            SystemEvent::LinkRemoved { ifindex, name } => {
                let Some(i) = self.ifaces.iter().position(|x| x.ifindex == Some(*ifindex)) else {
                    return;
                };
                info!(iface = %name, ifindex, "interface deleted");
                self.link_gone(i, now);
            }
            SystemEvent::Address {
                ifindex,
                addr,
                present,
                usable,
                ..
            } => {
                let Some(i) = self.ifaces.iter().position(|x| x.ifindex == Some(*ifindex)) else {
                    return;
                };
                let iface = &mut self.ifaces[i];
                let keep = *present && *usable;
                match addr {
                    IpAddr::V4(a) => {
                        if keep {
                            iface.v4.insert(*a)
                        } else {
                            iface.v4.remove(a)
                        };
                    }
                    IpAddr::V6(a) if adapter::is_link_local(a) => {
                        if keep {
                            iface.v6_ll.insert(*a)
                        } else {
                            iface.v6_ll.remove(a)
                        };
                    }
                    IpAddr::V6(_) => return,
                }
                if live {
                    debug!(iface = %iface.name, %addr, present, usable, "address change");
                    self.refresh_family_state(i, now);
                }
            }
            SystemEvent::Resync => {}
        }
    }

    fn link_gone(&mut self, i: usize, now: Instant) {
        let iface = &mut self.ifaces[i];
        iface.ifindex = None;
        iface.up = false;
        iface.v4.clear();
        iface.v6_ll.clear();
        iface.socket = None;
        iface.stop_reader();
        self.refresh_family_state(i, now);
    }

    /// Brings each instance in line with the interface: link state, then address. An
    /// instance runs while its link is up and its socket open.
    pub(super) fn refresh_family_state(&mut self, i: usize, now: Instant) {
        self.sync_joins(i, now);
        let running = self.ifaces[i].up && self.ifaces[i].socket.is_some();
        self.set_running(i, now, running);
    }

    /// [`Self::refresh_family_state`] with the link's state given.
    pub(super) fn set_running(&mut self, i: usize, now: Instant, up: bool) {
        self.refresh::<Ipv4Addr>(i, now, up);
        self.refresh::<Ipv6Addr>(i, now, up);
    }

    fn refresh<A: Addr>(&mut self, i: usize, now: Instant, up: bool) {
        let iface = &mut self.ifaces[i];
        let addr = A::source(iface);
        let Some(f) = A::family_mut(iface) else {
            return;
        };
        let inst = f.seg.instance_mut();
        let mut acts = inst.set_address(now, addr);
        if up && !inst.link_is_up() {
            acts.extend(inst.link_up(now));
        } else if !up && inst.link_is_up() {
            acts.extend(inst.link_down(now));
        }
        self.act::<A>(i, now, acts);
    }
}
