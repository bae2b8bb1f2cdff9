//! Following the system: links (up, down, created, deleted) and addresses (added, removed)
//! over rtnetlink, so a running querier re-elects and re-opens sockets without a restart.

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::sys::AsyncSocket;
use rtnetlink::MulticastGroup;

/// What changed on the system, as the shell needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemEvent {
    /// A link exists (new, or changed): its name, state and MAC.
    Link {
        /// Interface index.
        ifindex: u32,
        /// Interface name.
        name: String,
        /// Administratively up and with carrier (IFF_UP and IFF_RUNNING).
        up: bool,
        /// Its MAC address, when it has one.
        mac: Option<[u8; 6]>,
    },
    /// A link was deleted.
    LinkRemoved {
        /// Interface index.
        ifindex: u32,
        /// Interface name.
        name: String,
    },
    /// An address was added (or changed) or removed.
    Address {
        /// Interface index.
        ifindex: u32,
        /// The address.
        addr: IpAddr,
        /// Its prefix length.
        prefix_len: u8,
        /// False when it was removed.
        present: bool,
        /// Usable as a source: not tentative (DAD running) and DAD did not fail.
        usable: bool,
    },
    /// Events were lost (the socket overran): the caller must dump again.
    Resync,
}

/// An rtnetlink connection subscribed to link and address changes.
#[derive(Debug)]
pub struct Monitor {
    handle: rtnetlink::Handle,
    events: futures::channel::mpsc::UnboundedReceiver<(
        rtnetlink::packet_core::NetlinkMessage<RouteNetlinkMessage>,
        rtnetlink::sys::SocketAddr,
    )>,
}

impl Monitor {
    /// Subscribes (link, IPv4 and IPv6 address groups) and spawns the connection task on
    /// the current tokio runtime. Subscribing before dumping means nothing falls between.
    pub fn new() -> io::Result<Self> {
        let (mut conn, handle, events) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ])?;
        // Room for bursts of events (hundreds of interfaces changing at once).
        conn.socket_mut().socket_mut().set_rx_buf_sz(4 << 20)?;
        tokio::spawn(conn);
        Ok(Monitor { handle, events })
    }

    /// Every link and address now, as events.
    pub async fn dump(&self) -> io::Result<Vec<SystemEvent>> {
        let mut out = Vec::new();
        let mut links = self.handle.link().get().execute();
        while let Some(m) = links.try_next().await.map_err(to_io)? {
            out.extend(link_event(&m, false));
        }
        self.dump_addresses(&mut out, None).await?;
        Ok(out)
    }

    /// The links called `names` (those that exist) and their addresses, as events.
    ///
    /// One RTM_GETLINK per name instead of a dump: a dump's replies are all decoded and
    /// queued before we read the first (several KiB each once parsed: statistics,
    /// per-family settings), which on a host with a few hundred interfaces left megabytes
    /// of heap behind for a daemon that watches one.
    pub async fn dump_named(&self, names: &[&str]) -> io::Result<Vec<SystemEvent>> {
        let mut out = Vec::new();
        let mut wanted = BTreeSet::new();
        for name in names {
            let mut links = self
                .handle
                .link()
                .get()
                .match_name((*name).to_owned())
                .execute();
            match links.try_next().await {
                Ok(Some(m)) => {
                    wanted.insert(m.header.index);
                    out.extend(link_event(&m, false));
                }
                Ok(None) => {}
                // No such device: it may appear later (a link event then).
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == libc::ENODEV => {
                    continue
                }
                Err(e) => return Err(to_io(e)),
            }
        }
        self.dump_addresses(&mut out, Some(&wanted)).await?;
        Ok(out)
    }

    async fn dump_addresses(
        &self,
        out: &mut Vec<SystemEvent>,
        only: Option<&BTreeSet<u32>>,
    ) -> io::Result<()> {
        let mut addrs = self.handle.address().get().execute();
        while let Some(m) = addrs.try_next().await.map_err(to_io)? {
            if only.is_none_or(|o| o.contains(&m.header.index)) {
                out.extend(address_event(&m, true));
            }
        }
        Ok(())
    }

    /// Neighbours on `ifindex` that answered address resolution (reachable, stale, delay or
    /// probe): (address, MAC).
    pub async fn neighbours(&self, ifindex: u32) -> io::Result<Vec<(IpAddr, [u8; 6])>> {
        use netlink_packet_route::neighbour::{
            NeighbourAddress, NeighbourAttribute, NeighbourState,
        };
        let mut out = Vec::new();
        let mut s = self.handle.neighbours().get().execute();
        while let Some(m) = s.try_next().await.map_err(to_io)? {
            if m.header.ifindex != ifindex
                || !matches!(
                    m.header.state,
                    NeighbourState::Reachable
                        | NeighbourState::Stale
                        | NeighbourState::Delay
                        | NeighbourState::Probe
                )
            {
                continue;
            }
            let addr = m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => Some(IpAddr::V4(*a)),
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => Some(IpAddr::V6(*a)),
                _ => None,
            });
            let mac = m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLayerAddress(b) if b.len() == 6 => {
                    let mut mac = [0u8; 6];
                    mac.copy_from_slice(b);
                    Some(mac)
                }
                _ => None,
            });
            if let (Some(addr), Some(mac)) = (addr, mac) {
                out.push((addr, mac));
            }
        }
        Ok(out)
    }

    /// The next change; None when the connection ended.
    pub async fn next(&mut self) -> Option<Vec<SystemEvent>> {
        let (msg, _) = self.events.next().await?;
        Some(match msg.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => {
                link_event(&m, false).into_iter().collect()
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(m)) => {
                link_event(&m, true).into_iter().collect()
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) => {
                address_event(&m, true).into_iter().collect()
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)) => {
                address_event(&m, false).into_iter().collect()
            }
            // An error on the event socket (ENOBUFS: events were dropped) means our view
            // may be stale.
            NetlinkPayload::Error(_) | NetlinkPayload::Overrun(_) => vec![SystemEvent::Resync],
            _ => Vec::new(),
        })
    }
}

fn to_io(e: rtnetlink::Error) -> io::Error {
    io::Error::other(e.to_string())
}

fn link_event(m: &LinkMessage, removed: bool) -> Option<SystemEvent> {
    let name = m.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })?;
    let ifindex = m.header.index;
    if removed {
        return Some(SystemEvent::LinkRemoved { ifindex, name });
    }
    let mac = m.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(b) if b.len() == 6 => {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(b);
            Some(mac)
        }
        _ => None,
    });
    let up = m.header.flags.contains(LinkFlags::Up) && m.header.flags.contains(LinkFlags::Running);
    Some(SystemEvent::Link {
        ifindex,
        name,
        up,
        mac,
    })
}

/// An address message as a [`SystemEvent::Address`] (None when it carries no address).
pub fn address_event(m: &AddressMessage, present: bool) -> Option<SystemEvent> {
    // IFA_LOCAL is the interface's own address on point-to-point links; IFA_ADDRESS
    // otherwise (where both exist they are equal).
    let addr = m
        .attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Local(a) => Some(*a),
            _ => None,
        })
        .or_else(|| {
            m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(a) => Some(*a),
                _ => None,
            })
        })?;
    let flags = m
        .attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Flags(f) => Some(*f),
            _ => None,
        })
        .unwrap_or_else(|| AddressFlags::from_bits_retain(u32::from(m.header.flags.bits())));
    let usable = !flags.intersects(AddressFlags::Tentative | AddressFlags::Dadfailed);
    Some(SystemEvent::Address {
        ifindex: m.header.index,
        addr,
        prefix_len: m.header.prefix_len,
        present,
        usable,
    })
}
