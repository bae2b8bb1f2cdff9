//! What differs between IGMP (IPv4) and MLD (IPv6) for the snooper, so that everything
//! else is written once, generic over [`Family`].

use std::fmt::Debug;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use igmpd_querier::core::{Proto, QueryOut};

use super::AnyQuery;

/// An address family the snooper handles: glue between generic state and the outputs.
pub trait Family: Ord + Copy + Hash + Debug + std::fmt::Display + Into<IpAddr> + 'static {
    /// IGMP or MLD.
    const PROTO: Proto;
    /// Wraps a query.
    fn any_query(q: QueryOut<Self>) -> AnyQuery;
    /// Whether the kernel snoops this group (RFC 4541 §2.1.2: link-local IPv4 groups are
    /// flooded; the kernel refuses MDB entries for them and for ff02::1).
    fn is_snooped(&self) -> bool;
    /// Back from the wide address type.
    fn from_ip(a: IpAddr) -> Option<Self>;
}

impl Family for Ipv4Addr {
    const PROTO: Proto = Proto::Igmp;
    fn any_query(q: QueryOut<Self>) -> AnyQuery {
        AnyQuery::V4(q)
    }
    fn is_snooped(&self) -> bool {
        self.is_multicast() && self.octets()[..3] != [224, 0, 0]
    }
    fn from_ip(a: IpAddr) -> Option<Self> {
        match a {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }
}

impl Family for Ipv6Addr {
    const PROTO: Proto = Proto::Mld;
    fn any_query(q: QueryOut<Self>) -> AnyQuery {
        AnyQuery::V6(q)
    }
    fn is_snooped(&self) -> bool {
        self.is_multicast() && *self != Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)
    }
    fn from_ip(a: IpAddr) -> Option<Self> {
        match a {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }
    }
}
