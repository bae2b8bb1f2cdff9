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
use igmpd_querier::core::membership::{is_group_leave, Removal};
use igmpd_querier::core::{Generation, Instant, Proto, Report};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use igmpd_wire::{IgmpRepr, MldRepr, MrdRepr, Packet, RecordType};

use super::domain::Slot;
use super::policy::{filter_report, Filtered, LimitAction, LimitHit, MAX_PIM_HOLD};
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
        let filtered = match self.screen(now, port, packet) {
            Some(f) => f,
            None => return Received::Dropped,
        };
        let packet = match &filtered {
            Filtered::Pass => packet,
            Filtered::Rewritten(p) => p,
            Filtered::Denied => return Received::Dropped,
        };
        let received = self.dispatch(now, port, vid, packet, forward);
        if let Filtered::Rewritten(p) = filtered {
            if !forward.is_empty() {
                self.sh.rewritten = Some(p);
            }
        }
        received
    }

    /// What a port's policy and the RFCs' checks make of a frame before anything learns
    /// from it (None: dropped, counted in the port's counters):
    /// - `router_guard`: queries, PIM hellos and MRD messages go;
    /// - `require_router_alert`: IGMP/MLD without Router Alert go;
    /// - queries need TTL / hop limit 1 (RFC 9776 §4, RFC 9777 §5) and the RFC's
    ///   destination: all-systems / all-nodes for general queries, the group for specific
    ///   ones (RFC 9776 §4.1.12, RFC 9777 §5.1.15);
    /// - `max_report_rate`: reports over the rate go;
    /// - the ACL: denied records and sources go ([`filter_report`]).
    fn screen(&mut self, now: Instant, port: u32, packet: &Packet) -> Option<Filtered> {
        let sh = &mut self.sh;
        let pol = sh.cfg.policy.of(port);
        let st = sh.port_state.entry(port).or_default();
        let (router_msg, query, report) = classify(packet);
        if let Some(kind) = router_msg.filter(|_| pol.router_guard) {
            st.rogue(now, kind, packet.src());
            return None;
        }
        let igmp_mld = matches!(packet, Packet::Igmp { .. } | Packet::Mld { .. });
        if pol.require_router_alert && igmp_mld && (query || report) && !packet.router_alert() {
            st.counters.router_alert_drops += 1;
            return None;
        }
        if query && !query_well_formed(packet) {
            st.counters.bad_queries += 1;
            return None;
        }
        if report {
            if let Some(rate) = pol.max_report_rate {
                if !st.take_token(now, rate) {
                    st.counters.rate_drops += 1;
                    return None;
                }
            }
        }
        Some(filter_report(pol, st, now, packet))
    }

    fn dispatch(
        &mut self,
        now: Instant,
        port: u32,
        vid: u16,
        packet: &Packet,
        forward: &mut Vec<u32>,
    ) -> Received {
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

    /// RFC 7761 §4.3.1: a hello's Holdtime (0: the neighbor is leaving; 0xffff, "forever",
    /// and anything longer than [`MAX_PIM_HOLD`] lasts that long).
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
        // Default Hello_Holdtime 105 s (3.5 x 30 s) when the option is absent; 0xffff
        // ("never time out") and long holdtimes are capped (see [`MAX_PIM_HOLD`]).
        let hold = Duration::from_secs(u64::from(holdtime.unwrap_or(105))).min(MAX_PIM_HOLD);
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
        input.count(d.traffic.entry(port).or_default());
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
            Input::Reports(mut reports) => {
                let timing = d.port_timing();
                // §7.3.1: in IGMPv1 mode leaves are ignored.
                let v1_mode = d.instance().effective_version() == Generation::V1;
                let pol = sh.cfg.policy.of(port);
                let max_groups = pol.groups_limit(sh.mdb.limit());
                let max_sources = pol.sources_limit();
                let replace = pol.limit_action == LimitAction::Replace;
                let fast_leave = pol.fast_leave;
                let m = d.ports.entry(port).or_default();
                let mut changes = Vec::new();
                let mut evict = Vec::new();
                // Records refused at the limit reach neither the port nor the bridge-level
                // instance (whose state would otherwise grow with every group a host
                // makes up).
                // (Indices; empty, and so not allocated, unless a port is at its limit.)
                let mut refused = Vec::new();
                for (i, r) in reports.iter_mut().enumerate() {
                    sh.counters.reports += 1;
                    if !r.group().is_snooped() || (v1_mode && matches!(r, Report::Leave(_))) {
                        continue;
                    }
                    let g = r.group();
                    let st = sh.port_state.entry(port).or_default();
                    if let Report::Record(_, _, srcs) = r {
                        let dropped = m.admit_sources(&g, srcs, max_sources);
                        st.counters.refused_sources += dropped as u64;
                    }
                    // A new membership at the port's limit: refused, or the oldest goes.
                    let held = st.groups - evict.len().min(st.groups);
                    if creates(r) && !m.contains(&g) && held >= max_groups {
                        match st.oldest().filter(|_| replace) {
                            Some(old) => {
                                st.forget(old.0, old.1);
                                st.counters.replaced += 1;
                                evict.push(old);
                            }
                            None => {
                                st.counters.refused += 1;
                                st.limit_hit = Some(LimitHit {
                                    host: src.map(Into::into),
                                    group: g.into(),
                                    limit: max_groups,
                                    at: now,
                                });
                                refused.push(i);
                                continue;
                            }
                        }
                    }
                    // Fast leave: the port leaves at once where no other host on it is
                    // known to be in the group; else the leave takes the normal way
                    // (the querier's last-member queries, RFC 9776 §6.6.3). It is still
                    // forwarded to the router ports, and with `--querier` still reaches
                    // the bridge-level instance, whose queries reach the other ports.
                    let fast =
                        fast_leave && is_group_leave(r) && m.fast_leave(g, src, &mut changes);
                    if !fast {
                        m.report(now, &timing, src, r, &mut changes);
                    }
                    if replace && m.contains(&g) {
                        st.touch(now, vid, g.into());
                    }
                    sh.apply_changes(vid, port, m, &mut changes);
                }
                if m.is_empty() {
                    d.ports.remove(&port);
                }
                sh.heard_host(port, src.map(Into::into));
                // Every report reaches the observer; the instance answers only with
                // `--querier`, and only for groups the kernel snoops.
                for (i, r) in reports.iter().enumerate() {
                    let answer = querier && r.group().is_snooped() && !refused.contains(&i);
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
                sh.routers
                    .targets(now, vid, port, A::PROTO, ports.clone(), forward);
                // `flood_reports`: a downstream snooping switch gets them as a router
                // port would (RFC 4541 §2.1.1 a lets reports go only where routers or
                // other snoopers need them).
                let routers = forward[before..].to_vec();
                forward.extend(ports.filter(|p| {
                    *p != port && sh.cfg.policy.of(*p).flood_reports && !routers.contains(p)
                }));
                sh.counters.forwarded += (forward.len() - before) as u64;
                for (v, g) in evict {
                    self.evict(port, v, g);
                }
                Received::Report
            }
            Input::Ignored => Received::Ignored,
        }
    }
}

impl Snooper {
    /// Drops `port`'s membership of `group` in `vid` (at its limit, for a new one).
    fn evict(&mut self, port: u32, vid: u16, group: IpAddr) {
        match group {
            IpAddr::V4(g) => self.evict_in::<Ipv4Addr>(port, vid, g),
            IpAddr::V6(g) => self.evict_in::<Ipv6Addr>(port, vid, g),
        }
    }

    fn evict_in<A: Slot>(&mut self, port: u32, vid: u16, g: A) {
        let Some(d) = self.vlans.get_mut(&vid).and_then(A::domain_mut) else {
            return;
        };
        let Some(m) = d.ports.get_mut(&port) else {
            return;
        };
        let mut changes = Vec::new();
        m.remove_group(g, Removal::Replaced, &mut changes);
        self.sh.apply_changes(vid, port, m, &mut changes);
        if m.is_empty() {
            d.ports.remove(&port);
        }
    }
}

/// Whether a record makes a membership where there is none (joins; leaves, BLOCK and
/// empty INCLUDE records do not).
fn creates<A>(r: &Report<A>) -> bool {
    match r {
        Report::V1(_) | Report::V2(_) => true,
        Report::Leave(_) => false,
        Report::Record(t, _, s) => match t {
            RecordType::ModeIsExclude | RecordType::ChangeToExclude => true,
            RecordType::ModeIsInclude | RecordType::ChangeToInclude | RecordType::AllowNew => {
                !s.is_empty()
            }
            _ => false,
        },
    }
}

/// (router announcement kind: "querier" / "router", is a query, is a report).
fn classify(p: &Packet) -> (Option<&'static str>, bool, bool) {
    match p {
        Packet::Igmp { igmp, .. } => match igmp {
            IgmpRepr::Query(_) => (Some("querier"), true, false),
            IgmpRepr::Mrd(_) => (Some("router"), false, false),
            _ => (None, false, true),
        },
        Packet::Mld { mld, .. } => match mld {
            MldRepr::Query(_) => (Some("querier"), true, false),
            MldRepr::Mrd(_) => (Some("router"), false, false),
            _ => (None, false, true),
        },
        Packet::PimHelloV4 { .. } | Packet::PimHelloV6 { .. } => (Some("router"), false, false),
    }
}

/// TTL / hop limit 1 and the destination the RFCs give a query.
fn query_well_formed(p: &Packet) -> bool {
    if p.hop_limit() != 1 {
        return false;
    }
    match p {
        Packet::Igmp {
            ip,
            igmp: IgmpRepr::Query(q),
        } => {
            if q.group.is_unspecified() {
                ip.dst == Ipv4Addr::new(224, 0, 0, 1)
            } else {
                ip.dst == q.group
            }
        }
        Packet::Mld {
            ip,
            mld: MldRepr::Query(q),
        } => {
            if q.group.is_unspecified() {
                ip.dst == Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)
            } else {
                ip.dst == q.group
            }
        }
        _ => true,
    }
}
