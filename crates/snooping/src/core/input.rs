//! What a frame captured on a port does: the querier crate's adapter reads it
//! ([`adapter::heard`], as for `igmpd query`), then
//!
//! - a query reaches the VLAN's [`Segment`](igmpd_querier::core::Segment) (observer and
//!   election) and, with a source address, makes its port a router port (RFC 4541 §2.1.1;
//!   0.0.0.0 proxy queries come from snooping switches, not routers); a group-specific one
//!   lowers the ports' timers (RFC 9776 §6.6.1);
//! - reports and leaves update the ingress port's membership, reach the observer, and,
//!   with `--querier`, the bridge-level instance (so that it sends the last-member queries,
//!   §6.6.3); they are forwarded to router ports only, never back to the ingress port
//!   (RFC 4541 §2.1.1 a). Groups the kernel does not snoop (224.0.0.0/24, RFC 4541
//!   §2.1.2, and ff02::1) are only observed;
//! - PIM hellos (RFC 7761 §4.3.1) and Multicast Router Discovery (RFC 4286) make their
//!   port a router port for their holdtime.

use std::time::Duration;

use igmpd_querier::adapter::{self, Heard, Input, Message};
use igmpd_querier::core::{Generation, Instant, Proto, Report};
use igmpd_wire::{MrdRepr, Packet};

use super::domain::Slot;
use super::snooper::{vlan_entry, Snooper};
use super::{Reason, Received};

impl Snooper {
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
        let Some(vid) = self.ingress_vlan(port, vid) else {
            return Received::Ignored;
        };
        match adapter::heard(packet) {
            Heard::Igmp(m) => self.input(now, port, vid, m, forward),
            Heard::Mld(m) => self.input(now, port, vid, m, forward),
            Heard::MldBadSource => {
                self.sh.counters.bad_source += 1;
                Received::Ignored
            }
            Heard::Mrd(proto, m) => self.mrd(now, vid, port, proto, m),
            Heard::PimHello(proto, holdtime) => self.pim(now, vid, port, proto, holdtime),
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
        self.sh.reflect_routers();
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
        self.sh.reflect_routers();
        Received::Router
    }

    /// A query or reports from `msg.src` on `port`.
    fn input<A: Slot>(
        &mut self,
        now: Instant,
        port: u32,
        vid: u16,
        msg: Message<A>,
        forward: &mut Vec<u32>,
    ) -> Received {
        if !self.family_enabled(A::PROTO) {
            return Received::Ignored;
        }
        let Message { src, input, gen } = msg;
        let querier = self.sh.cfg.querier;
        let vlan = vlan_entry(&mut self.vlans, &mut self.sh, now, vid);
        let Some(d) = A::domain_mut(vlan) else {
            return Received::Ignored;
        };
        let sh = &mut self.sh;
        match input {
            Input::Query(q) => {
                sh.counters.queries += 1;
                let acts = d.seg.query(now, src, &q);
                d.act(sh, now, vid, acts);
                // RFC 4541 §2.1.1: a port where queries from a router arrive is a router
                // port; 0.0.0.0 proxy queries come from snooping switches, not routers.
                if src.is_some() {
                    let hold = d.instance().other_querier_present_interval();
                    sh.routers
                        .learn(now, vid, port, A::PROTO, Reason::Query, hold);
                }
                if let (Some(g), false) = (q.group, q.s_flag) {
                    d.lower_ports(sh, now, vid, g, &q.sources, q.max_resp);
                }
                sh.reflect_routers();
                Received::Query
            }
            Input::Reports(reports) => {
                let timing = d.port_timing();
                // §7.3.1: in IGMPv1 mode leaves are ignored.
                let v1_mode = d.instance().effective_version() == Generation::V1;
                let m = d.ports.entry(port).or_default();
                let mut changes = Vec::new();
                for r in &reports {
                    sh.counters.reports += 1;
                    if !r.group().is_snooped() || (v1_mode && matches!(r, Report::Leave(_))) {
                        continue;
                    }
                    m.report(now, &timing, src, r, &mut changes);
                    sh.apply_changes(vid, port, m, &mut changes);
                }
                if m.is_empty() {
                    d.ports.remove(&port);
                }
                // Every report reaches the observer; the instance answers only with
                // `--querier`, and only for groups the kernel snoops.
                for r in &reports {
                    let answer = querier && r.group().is_snooped();
                    let acts = d.seg.report(now, src, r, gen, answer);
                    d.act(sh, now, vid, acts);
                }
                let before = forward.len();
                // Only ports in the frame's VLAN: a configured router port elsewhere must
                // not see the VLAN's reports (nor get them with its tag).
                let ports = sh
                    .ports
                    .iter()
                    .copied()
                    .filter(|p| sh.port_in_vlan(*p, vid));
                sh.routers.targets(now, vid, port, A::PROTO, ports, forward);
                sh.counters.forwarded += (forward.len() - before) as u64;
                Received::Report
            }
            Input::Ignored => Received::Ignored,
        }
    }
}
