//! Multicast router ports (RFC 4541 §2.1.1): where reports are forwarded to, and which
//! ports get unregistered multicast. Learned from queries with a source address, PIM
//! hellos (RFC 7761 §4.3.1: the Hello Holdtime) and Multicast Router Discovery
//! advertisements (RFC 4286 §5), plus configured ones.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use igmpd_querier::core::{Instant, Proto};

/// Why a port is a router port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// A query from a source address (RFC 4541 §2.1.1 b); lasts the Other Querier Present
    /// Interval, like the kernel's `mcast_querier_interval`.
    Query,
    /// A PIM hello; lasts its holdtime.
    Pim,
    /// A Multicast Router Advertisement; lasts three advertisement intervals
    /// (RFC 4286 §4.1 MRD timeout, as the kernel and the RFC's examples use).
    Mrd,
}

impl Reason {
    /// "query", "pim", "mrd".
    pub fn name(self) -> &'static str {
        match self {
            Reason::Query => "query",
            Reason::Pim => "pim",
            Reason::Mrd => "mrd",
        }
    }
}

/// Learned router timers of one port in one VLAN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Learned {
    /// (family, reason) -> expiry.
    pub timers: BTreeMap<(ProtoKey, Reason), Instant>,
}

/// [`Proto`] as an ordered key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtoKey {
    /// IGMP (IPv4).
    Igmp,
    /// MLD (IPv6).
    Mld,
}

impl From<Proto> for ProtoKey {
    fn from(p: Proto) -> Self {
        match p {
            Proto::Igmp => ProtoKey::Igmp,
            Proto::Mld => ProtoKey::Mld,
        }
    }
}

impl ProtoKey {
    /// "igmp" or "mld".
    pub fn name(self) -> &'static str {
        match self {
            ProtoKey::Igmp => "igmp",
            ProtoKey::Mld => "mld",
        }
    }
}

/// Every router port of a bridge.
#[derive(Debug, Clone, Default)]
pub struct RouterPorts {
    configured: BTreeSet<u32>,
    /// (vid, port) -> learned timers.
    learned: BTreeMap<(u16, u32), Learned>,
    /// (vid, port) currently reflected to the kernel as routers (vid 0: the port).
    reflected: BTreeSet<(u16, u32)>,
}

impl RouterPorts {
    /// Configured router ports (`--router-port`), routers for every VLAN and family.
    pub fn new(configured: BTreeSet<u32>) -> Self {
        RouterPorts {
            configured,
            ..RouterPorts::default()
        }
    }

    /// Marks (vid, port) as a router for `proto` until `now + hold` (a zero hold ends it:
    /// a PIM hello with holdtime 0 or an MRD termination).
    pub fn learn(
        &mut self,
        now: Instant,
        vid: u16,
        port: u32,
        proto: Proto,
        reason: Reason,
        hold: Duration,
    ) {
        let l = self.learned.entry((vid, port)).or_default();
        if hold.is_zero() {
            l.timers.remove(&(proto.into(), reason));
            if l.timers.is_empty() {
                self.learned.remove(&(vid, port));
            }
        } else {
            l.timers.insert((proto.into(), reason), now + hold);
        }
    }

    /// Forgets a port (removed from the bridge, or down).
    pub fn forget_port(&mut self, port: u32) {
        self.learned.retain(|(_, p), _| *p != port);
    }

    /// Forgets everything learned.
    pub fn clear_learned(&mut self) {
        self.learned.clear();
    }

    /// Whether `port` is a router port for `proto` in `vid` at `now`.
    pub fn is_router(&self, now: Instant, vid: u16, port: u32, proto: Proto) -> bool {
        self.configured.contains(&port)
            || self.learned.get(&(vid, port)).is_some_and(|l| {
                l.timers
                    .iter()
                    .any(|((p, _), t)| *p == ProtoKey::from(proto) && *t > now)
            })
    }

    /// The ports a report of `proto` in `vid` arriving on `ingress` goes to: every router
    /// port of that family but the ingress (RFC 4541 §2.1.1: "forwarded only to those
    /// ports where multicast routers are attached").
    pub fn targets(
        &self,
        now: Instant,
        vid: u16,
        ingress: u32,
        proto: Proto,
        ports: impl Iterator<Item = u32>,
        out: &mut Vec<u32>,
    ) {
        out.extend(ports.filter(|p| *p != ingress && self.is_router(now, vid, *p, proto)));
    }

    /// When the next learned timer ends.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.learned
            .values()
            .flat_map(|l| l.timers.values().copied())
            .min()
    }

    /// Drops ended timers.
    pub fn expire(&mut self, now: Instant) {
        self.learned.retain(|_, l| {
            l.timers.retain(|_, t| *t > now);
            !l.timers.is_empty()
        });
    }

    /// What the kernel's `mcast_router` settings should say, among `ports` (each with
    /// the VLANs it is in, `None`: without per-VLAN snooping). Without per-VLAN snooping:
    /// (0, port) for a port that is a router for any VLAN or family (the per-port setting
    /// is all the kernel then reads). With it: (vid, port) for every VLAN a learned router
    /// was heard in, and every VLAN of a configured router port.
    pub fn router_set<'a>(
        &self,
        ports: impl Iterator<Item = (u32, Option<&'a BTreeSet<u16>>)>,
    ) -> BTreeSet<(u16, u32)> {
        let mut out = BTreeSet::new();
        for (p, vids) in ports {
            match vids {
                None => {
                    if self.configured.contains(&p) || self.learned.keys().any(|(_, q)| *q == p) {
                        out.insert((0, p));
                    }
                }
                Some(vids) => {
                    for v in vids {
                        if self.configured.contains(&p) || self.learned.contains_key(&(*v, p)) {
                            out.insert((*v, p));
                        }
                    }
                }
            }
        }
        out
    }

    /// Compares with what the kernel was told; returns ((vid, port), is_router) changes
    /// and remembers the new state.
    pub fn reflect(&mut self, now_set: BTreeSet<(u16, u32)>) -> Vec<((u16, u32), bool)> {
        let mut out = Vec::new();
        for p in now_set.difference(&self.reflected) {
            out.push((*p, true));
        }
        for p in self.reflected.difference(&now_set) {
            out.push((*p, false));
        }
        self.reflected = now_set;
        out
    }

    /// Configured router ports.
    pub fn configured(&self) -> &BTreeSet<u32> {
        &self.configured
    }

    /// Learned entries, for status.
    pub fn learned(&self) -> impl Iterator<Item = (&(u16, u32), &Learned)> {
        self.learned.iter()
    }

    /// (vid, port) reflected to the kernel as routers (vid 0: the port itself).
    pub fn reflected(&self) -> &BTreeSet<(u16, u32)> {
        &self.reflected
    }
}
