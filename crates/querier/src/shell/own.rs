//! The member part of this box told to its router part.
//!
//! What the kernel does not do: answer igmpd's own queries (they leave through AF_PACKET
//! and never reach the local IP stack) or tell igmpd's router part (its reports are
//! outgoing frames, which the capture skips). A router that is also a member performs
//! the group member part too (RFC 9776 §6, RFC 9777 §7), toward itself as well, so igmpd feeds its own instance
//! the records the member part would send: the answer to every query it sends or hears
//! and the state-change records of every join and leave ([`crate::core::host`]), from the
//! interface's own address. Without that, the box's groups would expire after the Group
//! Membership Interval while igmpd is the querier, and a leave of another host would end
//! in removal after the last member queries nobody answered.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::family::Addr;
use super::QueryDaemon;
use crate::core::host::{self, HostState};
use crate::core::{Generation, HostJoin, Instant, QueryIn, Report};

impl QueryDaemon {
    /// Makes the kernel's memberships follow interface `i` and tells its instances what
    /// changed (RFC 9776 §5.1 state-change records, from the member part of this box).
    pub(super) fn sync_joins(&mut self, i: usize, now: Instant) {
        let iface = &mut self.ifaces[i];
        if iface.host.is_empty() {
            return;
        }
        let (b4, b6) = (
            iface.host.states(Ipv4Addr::from_ip),
            iface.host.states(Ipv6Addr::from_ip),
        );
        let ifindex = iface.ifindex;
        iface.host.sync(&iface.name, ifindex);
        self.own_changes(i, now, &b4, &b6);
    }

    /// Replaces interface `i`'s joins (reload).
    pub(super) fn set_joins(&mut self, i: usize, now: Instant, joins: &[HostJoin]) {
        let iface = &mut self.ifaces[i];
        let (b4, b6) = (
            iface.host.states(Ipv4Addr::from_ip),
            iface.host.states(Ipv6Addr::from_ip),
        );
        iface.host.set(&iface.name, joins);
        self.own_changes(i, now, &b4, &b6);
    }

    fn own_changes(
        &mut self,
        i: usize,
        now: Instant,
        b4: &BTreeMap<Ipv4Addr, HostState<Ipv4Addr>>,
        b6: &BTreeMap<Ipv6Addr, HostState<Ipv6Addr>>,
    ) {
        let a4 = host::changes(b4, &self.ifaces[i].host.states(Ipv4Addr::from_ip));
        let a6 = host::changes(b6, &self.ifaces[i].host.states(Ipv6Addr::from_ip));
        self.own_reports::<Ipv4Addr>(i, now, a4, Generation::V3);
        self.own_reports::<Ipv6Addr>(i, now, a6, Generation::V3);
    }

    /// The member part's answer to query `q` (sent by this instance or heard from
    /// another querier), given to the router part (RFC 9776 §6, RFC 9777 §7).
    pub(super) fn own_answer<A: Addr>(&mut self, i: usize, now: Instant, q: &QueryIn<A>) {
        let iface = &self.ifaces[i];
        if iface.host.is_empty() {
            return;
        }
        let reports = host::answer(&iface.host.states(A::from_ip), q);
        self.own_reports::<A>(i, now, reports, q.gen);
    }

    fn own_reports<A: Addr>(
        &mut self,
        i: usize,
        now: Instant,
        rs: Vec<Report<A>>,
        gen: Generation,
    ) {
        if rs.is_empty() {
            return;
        }
        let iface = &mut self.ifaces[i];
        // The kernel reports from the interface's address, as the querier's own is chosen.
        let src = A::source(iface);
        let Some(fam) = A::family_mut(iface) else {
            return;
        };
        let acts: Vec<_> = rs
            .iter()
            .flat_map(|r| fam.seg.report(now, src, r, gen, true))
            .collect();
        self.act::<A>(i, now, acts);
    }
}
