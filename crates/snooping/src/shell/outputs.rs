//! What the core asks for ([`Output`]): queries sent on the bridge (which floods them to
//! every port), MDB writes, router-port changes, log lines.

use igmpd_querier::adapter;
use tracing::{debug, info, warn};

use super::SnoopDaemon;
use crate::core::{AnyQuery, Output, SnoopEvent};

impl SnoopDaemon {
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
                Output::RouterPort {
                    port,
                    vid: 0,
                    router,
                } => self.set_router(port, router),
                Output::RouterPort { port, vid, router } => self.set_vlan_router(port, vid, router),
                Output::Event(e) => self.log_event(&e),
            }
        }
        if let (Some(bridge), false) = (bridge, mdb.is_empty()) {
            self.save_entries();
            self.write_mdb(bridge, mdb);
        }
    }

    fn log_event(&self, e: &SnoopEvent) {
        match e {
            SnoopEvent::PortGroup {
                port,
                vid,
                group,
                added,
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
