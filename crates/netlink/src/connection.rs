//! The connection: one `NETLINK_ROUTE` socket for MDB, links, addresses and
//! bridge/port settings, and its notifications as typed [`Event`]s.

use std::io;

use futures::{
    channel::mpsc::UnboundedReceiver,
    stream::{self, Stream, StreamExt},
};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_proto::sys::{protocols::NETLINK_ROUTE, AsyncSocket, SocketAddr};

use crate::{
    constants::{
        RTNLGRP_BRVLAN, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_LINK, RTNLGRP_MDB,
    },
    mdb::{MdbItem, MdbRecord, RouterPortRecord},
    vlans::{VlanMessage, RTM_DELVLAN},
    Handle, RtnlMessage,
};

/// The connection future; spawn it (`tokio::spawn(connection)`).
pub type Connection = netlink_proto::Connection<RtnlMessage>;

/// Messages the kernel sent without being asked: notifications of the
/// subscribed groups, and `NLMSG_OVERRUN` when the socket overflowed.
pub type Unsolicited = UnboundedReceiver<(NetlinkMessage<RtnlMessage>, SocketAddr)>;

/// rtnetlink multicast groups this crate decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// `RTNLGRP_MDB`: MDB entries and router ports added / deleted.
    Mdb,
    /// `RTNLGRP_LINK`: links (and bridge port state) changed.
    Link,
    /// `RTNLGRP_IPV4_IFADDR`.
    Ipv4Ifaddr,
    /// `RTNLGRP_IPV6_IFADDR`.
    Ipv6Ifaddr,
    /// `RTNLGRP_BRVLAN`: bridge and port VLANs and their options changed (`RTM_NEWVLAN`,
    /// `RTM_DELVLAN`).
    BrVlan,
}

impl Group {
    /// The `RTNLGRP_*` number.
    pub fn number(self) -> u32 {
        match self {
            Self::Mdb => RTNLGRP_MDB,
            Self::Link => RTNLGRP_LINK,
            Self::Ipv4Ifaddr => RTNLGRP_IPV4_IFADDR,
            Self::Ipv6Ifaddr => RTNLGRP_IPV6_IFADDR,
            Self::BrVlan => RTNLGRP_BRVLAN,
        }
    }
}

/// Opens a `NETLINK_ROUTE` connection, like rtnetlink's `new_connection`.
///
/// The socket belongs to the network namespace of the calling thread. It is
/// bound (so groups can be joined later with [`subscribe`]) and has
/// `NETLINK_EXT_ACK` on, so errors carry the kernel's message. Acks are
/// forwarded to requests, so an ack request that ends without one reports
/// [`Error::ConnectionClosed`](crate::Error::ConnectionClosed).
pub fn new_connection() -> io::Result<(Connection, Handle, Unsolicited)> {
    let (mut conn, handle, rx) = netlink_proto::new_connection::<RtnlMessage>(NETLINK_ROUTE)?;
    let socket = conn.socket_mut().socket_mut();
    socket.bind_auto()?;
    socket.set_ext_ack(true)?;
    conn.set_forward_ack(true);
    Ok((conn, Handle::new(handle), rx))
}

/// Joins rtnetlink multicast groups: their notifications then arrive on the
/// connection's [`Unsolicited`] receiver (see [`events`]).
pub fn subscribe(conn: &mut Connection, groups: &[Group]) -> io::Result<()> {
    let socket = conn.socket_mut().socket_mut();
    for g in groups {
        socket.add_membership(g.number())?;
    }
    Ok(())
}

/// Sets the socket receive buffer (`SO_RCVBUF`). A bigger buffer makes
/// overruns rarer on busy bridges; they can still happen.
pub fn set_receive_buffer(conn: &mut Connection, bytes: usize) -> io::Result<()> {
    conn.socket_mut().socket_mut().set_rx_buf_sz(bytes)
}

/// A decoded notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `RTM_NEWMDB`: a port joined a group (added by anyone, learned by the
    /// kernel, or replaced).
    NewMdbEntry(MdbRecord),
    /// `RTM_DELMDB`: an entry was deleted or expired.
    DelMdbEntry(MdbRecord),
    /// `RTM_NEWMDB` with `MDBA_ROUTER`: a port became a multicast router port.
    NewRouterPort(RouterPortRecord),
    /// `RTM_DELMDB` with `MDBA_ROUTER`: a port stopped being one.
    DelRouterPort(RouterPortRecord),
    /// Any netlink-packet-route notification (links, addresses, ...).
    Route(RouteNetlinkMessage),
    /// `RTM_NEWVLAN` / `RTM_DELVLAN`: VLANs of a port or bridge (or their options)
    /// changed; true when added or changed.
    Vlan(VlanMessage, bool),
    /// The socket overflowed (`ENOBUFS`): notifications were lost. Dump again
    /// (e.g. `handle.mdb().dump()`) to resynchronise.
    Overrun,
    /// Anything else, raw (including [`RtnlMessage::Unparsed`]).
    Other(NetlinkMessage<RtnlMessage>),
}

impl Event {
    /// The events in one unsolicited message.
    pub fn from_message(msg: NetlinkMessage<RtnlMessage>) -> Vec<Event> {
        match &msg.payload {
            NetlinkPayload::Overrun(_) => vec![Event::Overrun],
            NetlinkPayload::InnerMessage(RtnlMessage::NewMdb(m)) => m
                .items()
                .into_iter()
                .map(|i| match i {
                    MdbItem::Entry(r) => Event::NewMdbEntry(r),
                    MdbItem::RouterPort(r) => Event::NewRouterPort(r),
                })
                .collect(),
            NetlinkPayload::InnerMessage(RtnlMessage::DelMdb(m)) => m
                .items()
                .into_iter()
                .map(|i| match i {
                    MdbItem::Entry(r) => Event::DelMdbEntry(r),
                    MdbItem::RouterPort(r) => Event::DelRouterPort(r),
                })
                .collect(),
            NetlinkPayload::InnerMessage(RtnlMessage::Route(r)) => vec![Event::Route(r.clone())],
            NetlinkPayload::InnerMessage(RtnlMessage::Vlan {
                message_type,
                message,
            }) => vec![Event::Vlan(message.clone(), *message_type != RTM_DELVLAN)],
            _ => vec![Event::Other(msg)],
        }
    }
}

/// Turns the unsolicited receiver into a stream of [`Event`]s.
pub fn events(rx: Unsolicited) -> impl Stream<Item = Event> + Send + Unpin {
    rx.flat_map(|(msg, _)| stream::iter(Event::from_message(msg)))
}
