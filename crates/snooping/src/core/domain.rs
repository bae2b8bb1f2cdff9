//! One VLAN and family: the bridge-level querier with the observer of the bridge (one
//! [`Segment`]), and every port's [`Membership`].
//!
//! - Per-port state is RFC 9776 §6 / RFC 9777 §7 with `Timing::querier = None`: it never
//!   sends; its timers follow the elected querier's adopted robustness and interval
//!   (RFC 9776 §8.4).
//! - Our own queries reach the observer as the hosts see them, and our group-specific
//!   ones lower the ports' timers like received ones (RFC 9776 §6.6.1): to Last Member
//!   Query Count x the query's Max Resp Time, as the Linux bridge does.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use igmpd_querier::core::observer::{Finding, Observer};
use igmpd_querier::core::{Action, Config, Event, Instance, Instant, Membership, Segment, Timing};

use super::family::{Family, Slot};
use super::snooper::Shared;
use super::{Output, SnoopEvent};

/// One VLAN and family: the bridge-level querier, every port's membership, and the
/// [`Observer`] that turns the queries and reports seen on any port (and the queries of our
/// own querier) into findings.
#[derive(Debug, Clone)]
pub struct Domain<A> {
    pub(super) seg: Segment<A>,
    pub(super) ports: BTreeMap<u32, Membership<A>>,
    since: Instant,
}

impl<A: Family> Domain<A> {
    /// The bridge-level querier instance (passive unless `--querier`).
    pub fn instance(&self) -> &Instance<A> {
        self.seg.instance()
    }

    /// Per-port memberships.
    pub fn ports(&self) -> impl Iterator<Item = (u32, &Membership<A>)> {
        self.ports.iter().map(|(p, m)| (*p, m))
    }

    /// What was seen on the bridge (queriers, reporting hosts).
    pub fn observer(&self) -> &Observer<A> {
        self.seg.observer()
    }

    pub(super) fn new(c: Config, addr: Option<A>, now: Instant) -> Self {
        Domain {
            seg: Segment::new(c, addr, now),
            ports: BTreeMap::new(),
            since: now,
        }
    }

    /// The findings of this VLAN and family: the [`Segment`]'s, plus
    /// `snooping-without-querier` when igmpd does not query (no `--querier`) and no query
    /// with a source address was heard for the Other Querier Present Interval: a Linux
    /// bridge that snoops without a querier lets every membership expire.
    pub(super) fn findings(&self, now: Instant, iface: &str, querier: bool) -> Vec<Finding> {
        let present = self.instance().other_querier_present_interval();
        let mut out = self.seg.findings(now, iface, querier);
        let named = self
            .observer()
            .queriers()
            .any(|q| q.address.is_some() && q.last_seen + present > now);
        if !querier && !named && now.saturating_since(self.since) >= present {
            out.retain(|f| f.code != "no-querier");
            out.push(Finding::snooping_without_querier(
                iface,
                A::PROTO,
                Some(present),
            ));
        }
        out
    }

    /// The timers of per-port state: the elected querier's (adopted) robustness and
    /// interval give the GMI (RFC 9776 §8.4); no queries of its own.
    pub fn port_timing(&self) -> Timing {
        let inst = self.instance();
        let gmi = inst.group_membership_interval();
        let c = inst.config();
        Timing {
            gmi,
            lmqi: c.last_member_query_interval,
            lmqc: c.last_member_query_count.unwrap_or(inst.robustness()),
            older_host_present: gmi,
            querier: None,
        }
    }

    /// The earliest timer of the querier and of every port.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.ports
            .values()
            .filter_map(Membership::next_deadline)
            .chain(self.instance().next_deadline())
            .min()
    }

    /// The MDB keys of every port's groups in VLAN `vid`.
    pub(super) fn groups(&self) -> impl Iterator<Item = (u32, IpAddr)> + '_ {
        self.ports
            .iter()
            .flat_map(|(port, m)| m.groups().map(|g| (*port, g.group.into())))
    }
}

impl<A: Slot> Domain<A> {
    /// Handles the bridge-level instance's actions: queries go out (and reach the
    /// observer), and our own group-specific queries lower every port's timers
    /// (RFC 9776 §6.6.1).
    pub(super) fn act(&mut self, sh: &mut Shared, now: Instant, vid: u16, acts: Vec<Action<A>>) {
        for a in acts {
            match a {
                Action::Send(q) => {
                    self.seg.sent(now, &q);
                    if let (Some(g), false) = (q.group, q.s_flag) {
                        self.lower_ports(sh, now, vid, g, &q.sources, q.max_resp);
                    }
                    sh.out.push(Output::Query {
                        vid,
                        query: A::any_query(q),
                    });
                }
                Action::Event(Event::Membership(_)) => {}
                Action::Event(e) => sh.out.push(Output::Event(SnoopEvent::Querier {
                    vid,
                    proto: A::PROTO,
                    event: widen_event(e),
                })),
            }
        }
    }

    /// §6.6.1 on every port: a query for `group` (and `sources`) with S clear lowers timers
    /// to LMQC x the query's Max Resp Time.
    pub(super) fn lower_ports(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        vid: u16,
        group: A,
        sources: &[A],
        max_resp: Duration,
    ) {
        let mut timing = self.port_timing();
        timing.lmqi = max_resp;
        let mut changes = Vec::new();
        let mut queries = Vec::new();
        for (port, m) in self.ports.iter_mut() {
            m.lower_on_query(now, &timing, group, sources);
            // A timer lowered to now (Max Resp 0) ends at once.
            if m.next_deadline().is_some_and(|t| t <= now) {
                m.poll(now, &timing, &mut changes, &mut queries);
                sh.apply_changes(vid, *port, m, &mut changes);
            }
        }
    }

    /// Runs the timers due at `now`: the querier's, then every port's (ports left without
    /// state go).
    pub(super) fn poll(&mut self, sh: &mut Shared, now: Instant, vid: u16) {
        if self.instance().next_deadline().is_some_and(|t| t <= now) {
            let acts = self.seg.instance_mut().poll(now);
            self.act(sh, now, vid, acts);
        }
        let timing = self.port_timing();
        let mut changes = Vec::new();
        let mut queries = Vec::new();
        let mut emptied = Vec::new();
        for (port, m) in self.ports.iter_mut() {
            if m.next_deadline().is_some_and(|t| t <= now) {
                m.poll(now, &timing, &mut changes, &mut queries);
                sh.apply_changes(vid, *port, m, &mut changes);
                if m.is_empty() {
                    emptied.push(*port);
                }
            }
        }
        for p in emptied {
            self.ports.remove(&p);
        }
    }

    /// The bridge is up: the querier starts (startup queries with `--querier`), unless it
    /// already runs.
    pub(super) fn link_up(&mut self, sh: &mut Shared, now: Instant, vid: u16) {
        if !self.instance().link_is_up() {
            let acts = self.seg.instance_mut().link_up(now);
            self.act(sh, now, vid, acts);
        }
    }

    /// The bridge's address of this family changed (in `sh`): the querier's source.
    pub(super) fn set_address(&mut self, sh: &mut Shared, now: Instant, vid: u16) {
        let acts = self.seg.instance_mut().set_address(now, A::address(sh));
        self.act(sh, now, vid, acts);
    }

    /// `port` is gone: its memberships end and their entries go.
    pub(super) fn drop_port(&mut self, sh: &mut Shared, vid: u16, port: u32) {
        if let Some(mut m) = self.ports.remove(&port) {
            let mut changes = Vec::new();
            m.clear(&mut changes);
            sh.apply_changes(vid, port, &m, &mut changes);
        }
    }
}

fn widen_event<A: Family>(e: Event<A>) -> Event<IpAddr> {
    match e {
        Event::Elected => Event::Elected,
        Event::LostElection { querier } => Event::LostElection {
            querier: querier.into(),
        },
        Event::OlderQuerier { gen, from } => Event::OlderQuerier {
            gen,
            from: from.map(Into::into),
        },
        Event::VersionRestored { gen } => Event::VersionRestored { gen },
        Event::Membership(_) => Event::Elected,
    }
}
