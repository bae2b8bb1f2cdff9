//! What the core asks for ([`Output`]): queries sent on the bridge (which floods them to
//! every port), MDB writes, router-port changes, log lines and `igmpd monitor` events.

use igmpd_querier::core::Proto;
use igmpd_querier::{adapter, monitor};
use std::net::IpAddr;

use igmpd_runtime::events::{Event, Place};
use tracing::{debug, info, warn};

use super::SnoopDaemon;
use crate::core::{AnyQuery, Output, SnoopEvent, Why};

impl SnoopDaemon {
    /// Emits this bridge's events (memberships, router ports, querier role, findings) on
    /// `events` (`igmpd run` gives all its daemons one bus).
    pub fn with_events(mut self, events: igmpd_runtime::events::Events) -> Self {
        self.findings = std::mem::take(&mut self.findings)
            .emitting(events.clone(), igmpd_runtime::events::Scope::Bridge);
        self.monitor = events;
        self
    }
    /// Carries out every output of the core so far (MDB writes together, at the end).
    pub(super) fn flush_outputs(&mut self) {
        let bridge = self.bridge_ifindex();
        let outs: Vec<Output> = self.snooper.drain().collect();
        let mut mdb = Vec::new();
        for o in outs {
            match o {
                Output::Mdb(op) => {
                    if bridge.is_some() {
                        mdb.push(op);
                    }
                }
                Output::Query { vid, query } => self.send_query(vid, &query),
                Output::PortQuery { port, vid, query } => self.send_port_query(port, vid, &query),
                Output::RouterPort { port, vid, router } => {
                    self.monitor.emit(|| {
                        let Place::Bridge(b) = &self.place else {
                            return None;
                        };
                        let name = self.port_name(port).into();
                        Some(Event::router_port(router, b.clone(), name, vid))
                    });
                    if vid == 0 {
                        self.set_router(port, router);
                    } else {
                        self.set_vlan_router(port, vid, router);
                    }
                }
                Output::Event(e) => {
                    self.log_event(&e);
                    self.monitor.emit(|| self.monitored(&e));
                }
            }
        }
        if let (Some(bridge), false) = (bridge, mdb.is_empty()) {
            self.save_entries();
            self.write_mdb(bridge, mdb);
        }
    }

    /// The `igmpd monitor` event of `e`, if it is one.
    fn monitored(&self, e: &SnoopEvent) -> Option<Event> {
        let (port, vid, e) = match e {
            SnoopEvent::PortGroup {
                port,
                vid,
                group,
                why,
                ..
            } => (*port, *vid, self.membership(*group, None, *why)?),
            SnoopEvent::PortSource {
                port,
                vid,
                group,
                source,
                why,
                ..
            } => (*port, *vid, self.membership(*group, Some(*source), *why)?),
            SnoopEvent::Refused { .. } => return None,
            SnoopEvent::Querier { vid, proto, event } => {
                // The bridge-level querier's source: the VLAN's (or the bridge's) address.
                let address = match proto {
                    Proto::Igmp => self
                        .snooper
                        .igmp(*vid)
                        .and_then(|d| d.instance().address().map(Into::into)),
                    Proto::Mld => self
                        .snooper
                        .mld(*vid)
                        .and_then(|d| d.instance().address().map(Into::into)),
                };
                return monitor::querier(&self.place, *proto, event, address)
                    .map(|e| e.with_vid(*vid));
            }
        };
        Some(e.with_port(self.port_name(port).into()).with_vid(vid))
    }

    /// `join`, `leave` or `expiry` of `group` (and `source`); an INCLUDE record's
    /// creation is none (its sources' joins follow).
    fn membership(&self, group: IpAddr, source: Option<IpAddr>, why: Why) -> Option<Event> {
        Some(match why {
            Why::Joined {
                any_source: false, ..
            } if source.is_none() => return None,
            Why::Joined { host, .. } => monitor::joined(&self.place, group, source, host),
            Why::Removed(reason) => {
                monitor::removed(&self.place, group, reason).with_source(source)
            }
        })
    }

    fn log_event(&self, e: &SnoopEvent) {
        match e {
            SnoopEvent::PortGroup {
                port,
                vid,
                group,
                added,
                ..
            } => {
                debug!(port = %self.port_name(*port), vid, %group, added, "membership")
            }
            // One line for the first ten, then at every power of two: a flood of joins
            // at the limit must not become a flood of log lines.
            SnoopEvent::Refused { port, vid, group }
                if {
                    let n = self.snooper.mdb().refused_total();
                    n <= 10 || n.is_power_of_two()
                } =>
            {
                warn!(
                    bridge = %self.settings.bridge, port = %self.port_name(*port), vid, %group,
                    limit = self.snooper.mdb().limit(),
                    refused = self.snooper.mdb().refused_total(),
                    "group refused: the bridge's MDB is at igmpd's limit below mcast_hash_max (the kernel would turn snooping off at the limit); raise it with --raise-hash-max"
                )
            }
            SnoopEvent::Refused { .. } => {}
            SnoopEvent::PortSource {
                port,
                vid,
                group,
                source,
                added,
                ..
            } => {
                debug!(port = %self.port_name(*port), vid, %group, %source, added, "membership source")
            }
            SnoopEvent::Querier { vid, proto, event } => {
                info!(bridge = %self.settings.bridge, vid, proto = proto.name(), event = ?event, "querier")
            }
        }
    }

    /// The frame of a query, from the bridge's MAC address.
    fn query_frame(&self, q: &AnyQuery) -> Option<Vec<u8>> {
        let b = self.bridge.as_ref()?;
        let frame = match q {
            AnyQuery::V4(q) => Some(adapter::igmp_query_frame(b.mac, q)),
            AnyQuery::V6(q) => adapter::mld_query_frame(b.mac, q),
        };
        frame.map(|f| f.to_bytes())
    }

    /// A query out of `port` alone (tagged as its egress for `vid` wants).
    fn send_port_query(&mut self, port: u32, vid: u16, q: &AnyQuery) {
        if let Some(bytes) = self.query_frame(q) {
            self.send_on_port(port, &bytes, vid);
        }
    }

    /// A query of VLAN `vid`: untagged on the bridge device for VLAN 0 (the bridge floods
    /// it), per VLAN as `vlans` says.
    fn send_query(&mut self, vid: u16, q: &AnyQuery) {
        let Some(bytes) = self.query_frame(q) else {
            return;
        };
        let Some(s) = &self.bridge_socket else {
            return;
        };
        if vid != 0 {
            self.send_vlan_query(vid, &bytes);
            return;
        }
        if let Err(e) = s.send(&bytes) {
            warn!(bridge = %self.settings.bridge, error = %e, "sending a query failed");
        }
    }
}
