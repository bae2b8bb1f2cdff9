//! One configured interface of `igmpd query` and its per-family state, and what differs
//! between IGMP and MLD for the shell ([`Addr`]), so the daemon handles both with one code
//! path.

use std::collections::BTreeSet;
use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use igmpd_packet::PacketSocket;
use igmpd_wire::{DecodeError, Frame, MacAddr};
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;

use super::join::HostJoins;
use crate::adapter;
use crate::core::{Config, HostJoin, Instant, Proto, QueryOut, Segment};

/// Drop reasons counted besides the codec's [`DecodeError::REASONS`].
pub(super) const EXTRA_DROPS: [&str; 2] = [
    // RFC 9777 §5.1.14, §5.2.13: MLD messages must come from a link-local source (a report
    // may also come from ::).
    "source_not_link_local",
    // 802.1Q-tagged: the frame belongs to a VLAN, not to this (untagged) interface; an
    // instance on the VLAN's own interface (eth0.10) hears it there.
    "vlan_tagged",
];

/// Index of a drop reason of [`EXTRA_DROPS`] in [`Family::drops`].
pub(super) fn extra_drop(name: &str) -> usize {
    DecodeError::REASONS.len() + EXTRA_DROPS.iter().position(|n| *n == name).unwrap_or(0)
}

/// What to run on one interface.
#[derive(Debug, Clone)]
pub struct InterfaceSettings {
    /// Interface name.
    pub name: String,
    /// IGMP settings, None to leave IGMP alone.
    pub igmp: Option<Config>,
    /// MLD settings, None to leave MLD alone.
    pub mld: Option<Config>,
    /// Groups the box itself joins on the interface (through the kernel: host joins).
    pub joins: Vec<HostJoin>,
}

/// One protocol on one interface: the querier and observer, the messages received and
/// the frames dropped.
pub(super) struct Family<A> {
    pub(super) seg: Segment<A>,
    pub(super) received: igmpd_runtime::metrics::Traffic,
    pub(super) drops: Vec<u64>,
}

impl<A: Addr> Family<A> {
    pub(super) fn new(cfg: Config) -> Self {
        Family {
            seg: Segment::new(cfg, None, Instant::ZERO),
            received: Default::default(),
            drops: vec![0; DecodeError::REASONS.len() + EXTRA_DROPS.len()],
        }
    }

    pub(super) fn count_drop(&mut self, i: usize) {
        if let Some(d) = self.drops.get_mut(i) {
            *d += 1;
        }
    }
}

pub(super) struct Iface {
    pub(super) name: String,
    /// The name as `igmpd monitor` events carry it (shared, not copied, per event).
    pub(super) place: igmpd_runtime::events::Place,
    pub(super) ifindex: Option<u32>,
    pub(super) mac: MacAddr,
    pub(super) up: bool,
    pub(super) v4: BTreeSet<Ipv4Addr>,
    /// Link-local IPv6 addresses only: MLD queries come from one (RFC 9777 §5.1.14).
    pub(super) v6_ll: BTreeSet<Ipv6Addr>,
    pub(super) igmp: Option<Family<Ipv4Addr>>,
    pub(super) mld: Option<Family<Ipv6Addr>>,
    pub(super) socket: Option<Arc<AsyncFd<PacketSocket>>>,
    pub(super) reader: Option<JoinHandle<()>>,
    /// The box's own memberships on it.
    pub(super) host: HostJoins,
}

impl Iface {
    /// A configured interface not yet seen on the system (the dump or a link event fills
    /// in the rest).
    pub(super) fn new(s: InterfaceSettings) -> Self {
        Iface {
            place: igmpd_runtime::events::Place::Interface(s.name.as_str().into()),
            name: s.name,
            ifindex: None,
            mac: [0; 6],
            up: false,
            v4: BTreeSet::new(),
            v6_ll: BTreeSet::new(),
            igmp: s.igmp.map(Family::new),
            mld: s.mld.map(Family::new),
            socket: None,
            reader: None,
            host: HostJoins::new(&s.joins),
        }
    }

    /// Whether `s` asks for what this interface already runs (its instances; the joins
    /// change without a restart).
    pub(super) fn runs(&self, s: &InterfaceSettings) -> bool {
        self.igmp.as_ref().map(|f| f.seg.instance().config()) == s.igmp.as_ref()
            && self.mld.as_ref().map(|f| f.seg.instance().config()) == s.mld.as_ref()
    }

    pub(super) fn stop_reader(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
    }
}

/// What the shell needs to know of an address family.
pub(super) trait Addr:
    Ord + Copy + Hash + Debug + Display + Into<std::net::IpAddr> + Send + 'static
{
    const PROTO: Proto;
    /// This family's state on `iface`, if it runs there.
    fn family(iface: &Iface) -> Option<&Family<Self>>;
    fn family_mut(iface: &mut Iface) -> Option<&mut Family<Self>>;
    /// The address the querier uses on `iface`: the lowest usable one of the family
    /// (IPv6: link-local).
    fn source(iface: &Iface) -> Option<Self>;
    /// The query frame; None when the family cannot send it (MLD without an address).
    fn query_frame(mac: MacAddr, q: &QueryOut<Self>) -> Option<Frame>;
    /// `ip` if it is of this family.
    fn from_ip(ip: std::net::IpAddr) -> Option<Self>;
}

impl Addr for Ipv4Addr {
    const PROTO: Proto = Proto::Igmp;
    fn family(iface: &Iface) -> Option<&Family<Self>> {
        iface.igmp.as_ref()
    }
    fn family_mut(iface: &mut Iface) -> Option<&mut Family<Self>> {
        iface.igmp.as_mut()
    }
    fn source(iface: &Iface) -> Option<Self> {
        iface.v4.first().copied()
    }
    fn query_frame(mac: MacAddr, q: &QueryOut<Self>) -> Option<Frame> {
        Some(adapter::igmp_query_frame(mac, q))
    }
    fn from_ip(ip: std::net::IpAddr) -> Option<Self> {
        match ip {
            std::net::IpAddr::V4(a) => Some(a),
            std::net::IpAddr::V6(_) => None,
        }
    }
}

impl Addr for Ipv6Addr {
    const PROTO: Proto = Proto::Mld;
    fn family(iface: &Iface) -> Option<&Family<Self>> {
        iface.mld.as_ref()
    }
    fn family_mut(iface: &mut Iface) -> Option<&mut Family<Self>> {
        iface.mld.as_mut()
    }
    fn source(iface: &Iface) -> Option<Self> {
        iface.v6_ll.first().copied()
    }
    fn query_frame(mac: MacAddr, q: &QueryOut<Self>) -> Option<Frame> {
        adapter::mld_query_frame(mac, q)
    }
    fn from_ip(ip: std::net::IpAddr) -> Option<Self> {
        match ip {
            std::net::IpAddr::V6(a) => Some(a),
            std::net::IpAddr::V4(_) => None,
        }
    }
}
