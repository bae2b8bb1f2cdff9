//! What an operator or the topology asks of a running snooper besides packets:
//!
//! - [`Snooper::flush`] (`igmpd flush`): learned memberships are forgotten (static groups
//!   stay) and a general query asks the hosts to report again;
//! - [`Snooper::port_came_up`]: a port that comes up or enters STP forwarding gets a
//!   general query of its own at once when igmpd is the querier, so that its hosts are
//!   known within a Query Response Interval instead of at the next periodic query (up to a
//!   Query Interval later). RFC 4541 §2.1.1 asks snooping switches to handle topology
//!   changes this way (the general query a switch sends on a topology change).

use std::net::IpAddr;

use igmpd_querier::core::membership::Removal;
use igmpd_querier::core::Instant;

use super::domain::{Domain, DomainOp, Shared, Slot};
use super::snooper::Snooper;
use super::Output;

/// What `igmpd flush` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Learned memberships forgotten.
    pub memberships: usize,
    /// General queries sent (per VLAN and family).
    pub queries: usize,
}

/// [`Snooper::flush`] on one domain.
struct Flush {
    now: Instant,
    port: Option<u32>,
    group: Option<IpAddr>,
    done: Flushed,
}

impl DomainOp for Flush {
    fn apply<A: Slot>(&mut self, sh: &mut Shared, vid: u16, d: &mut Domain<A>) {
        let group = match self.group {
            Some(g) => match A::from_ip(g) {
                Some(g) => Some(g),
                None => return,
            },
            None => None,
        };
        let mut changes = Vec::new();
        let ports: Vec<u32> = d
            .ports
            .keys()
            .copied()
            .filter(|p| self.port.is_none_or(|x| x == *p))
            .collect();
        for port in ports {
            let Some(m) = d.ports.get_mut(&port) else {
                continue;
            };
            match group {
                Some(g) => m.remove_group(g, Removal::Cleared, &mut changes),
                None => m.clear(&mut changes),
            }
            self.done.memberships += changes.len();
            sh.apply_changes(vid, port, m, &mut changes);
            if m.is_empty() {
                d.ports.remove(&port);
            }
        }
        // Ask the hosts again: the querier's own general query, else (IGMP) a 0.0.0.0
        // one, which takes no part in the election. VLAN 0 has no querier of its own to
        // ask with under per-VLAN snooping, nor the VLANs without it.
        if (vid != 0) != sh.per_vlan() {
            return;
        }
        let q = d
            .seg
            .instance_mut()
            .general_query_now()
            .or_else(|| d.instance().proxy_query());
        if let Some(q) = q {
            d.seg.sent(self.now, &q);
            self.done.queries += 1;
            let query = A::any_query(q);
            sh.out.push(match self.port {
                Some(port) => Output::PortQuery { port, vid, query },
                None => Output::Query { vid, query },
            });
        }
    }
}

/// [`Snooper::port_came_up`] on one domain.
struct PortUp {
    now: Instant,
    port: u32,
}

impl DomainOp for PortUp {
    fn apply<A: Slot>(&mut self, sh: &mut Shared, vid: u16, d: &mut Domain<A>) {
        if !sh.port_in_vlan(self.port, vid) || (vid != 0) != sh.per_vlan() {
            return;
        }
        if let Some(q) = d.seg.instance_mut().general_query_now() {
            d.seg.sent(self.now, &q);
            sh.out.push(Output::PortQuery {
                port: self.port,
                vid,
                query: A::any_query(q),
            });
        }
    }
}

impl Snooper {
    /// Forgets the learned memberships of `port` (every port when None) of `group` (every
    /// group when None), writing the MDB accordingly (static groups stay), and sends a
    /// general query so that the hosts report again: out of `port` alone when one is
    /// named, else through the bridge. Where igmpd is not the querier, IGMP asks with a
    /// 0.0.0.0 query and MLD waits for the querier's next query.
    pub fn flush(&mut self, now: Instant, port: Option<u32>, group: Option<IpAddr>) -> Flushed {
        if !self.sh.bridge_up {
            return Flushed::default();
        }
        let mut op = Flush {
            now,
            port,
            group,
            done: Flushed::default(),
        };
        for (vid, v) in self.vlans.iter_mut() {
            v.each_mut(&mut self.sh, *vid, &mut op);
        }
        op.done
    }

    /// `port` came up in the bridge or entered STP forwarding: with `--querier`, a general
    /// query out of that port now (per VLAN of the port with per-VLAN snooping).
    pub fn port_came_up(&mut self, now: Instant, port: u32) {
        if !self.sh.bridge_up || !self.sh.cfg.querier || !self.sh.ports.contains(&port) {
            return;
        }
        let mut op = PortUp { now, port };
        for (vid, v) in self.vlans.iter_mut() {
            v.each_mut(&mut self.sh, *vid, &mut op);
        }
    }
}
