//! Following the system: links (up, down, created, deleted) and addresses (added, removed)
//! over rtnetlink, so a running querier re-elects and re-opens sockets without a restart.

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;

use futures::{Stream, StreamExt, TryStreamExt};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::RequestKind;
use crate::{
    events, links, new_connection, set_receive_buffer, subscribe, Event, Group, Handle, RtnlMessage,
};

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
pub struct Monitor {
    handle: Handle,
    events: Box<dyn Stream<Item = Event> + Send + Unpin>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").finish_non_exhaustive()
    }
}

fn dump(msg: RouteNetlinkMessage) -> NetlinkMessage<RtnlMessage> {
    let mut m = NetlinkMessage::from(RtnlMessage::Route(msg));
    m.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    m
}

/// Failure injection for the end-to-end tests, in debug builds only (release builds return
/// `events` as they are): `IGMPD_TEST_EVENTS_END_MS=N` ends the first event stream passed
/// here in a process N ms later, as a failed socket would, so that a test sees the daemon
/// connect again. [`Monitor::new`] passes its own; `igmpd snoop` its connection's.
pub fn injected_end(
    events: Box<dyn Stream<Item = Event> + Send + Unpin>,
) -> Box<dyn Stream<Item = Event> + Send + Unpin> {
    #[cfg(debug_assertions)]
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        static DONE: AtomicBool = AtomicBool::new(false);
        let after = std::env::var("IGMPD_TEST_EVENTS_END_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(ms) = after {
            if !DONE.swap(true, Ordering::Relaxed) {
                let end = Box::pin(tokio::time::sleep(std::time::Duration::from_millis(ms)));
                return Box::new(events.take_until(end));
            }
        }
    }
    events
}

impl Monitor {
    /// Subscribes (link, IPv4 and IPv6 address groups) and spawns the connection task on
    /// the current tokio runtime. Subscribing before dumping means nothing falls between.
    pub fn new() -> io::Result<Self> {
        let (mut conn, handle, rx) = new_connection()?;
        subscribe(
            &mut conn,
            &[Group::Link, Group::Ipv4Ifaddr, Group::Ipv6Ifaddr],
        )?;
        // Room for bursts of events (hundreds of interfaces changing at once).
        set_receive_buffer(&mut conn, 4 << 20)?;
        tokio::spawn(conn);
        Ok(Monitor {
            handle,
            events: injected_end(Box::new(events(rx))),
        })
    }

    /// Every link and address now, as events.
    pub async fn dump(&self) -> io::Result<Vec<SystemEvent>> {
        let mut out = Vec::new();
        let mut links = std::pin::pin!(self.handle.link().dump(AddressFamily::Unspec));
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
            match self.handle.link().get_by_name(name).await {
                Ok(m) => {
                    wanted.insert(m.header.index);
                    out.extend(link_event(&m, false));
                }
                // No such device: it may appear later (a link event then).
                Err(e) if e.errno() == Some(ENODEV) => continue,
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
        let msg = dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()));
        let mut replies = self
            .handle
            .replies(msg, RequestKind::Other)
            .map_err(to_io)?;
        while let Some(m) = replies.try_next().await.map_err(to_io)? {
            if let RtnlMessage::Route(RouteNetlinkMessage::NewAddress(m)) = m {
                if only.is_none_or(|o| o.contains(&m.header.index)) {
                    out.extend(address_event(&m, true));
                }
            }
        }
        Ok(())
    }

    /// Neighbours on `ifindex` that answered address resolution (reachable, stale, delay or
    /// probe): (address, MAC).
    pub async fn neighbours(&self, ifindex: u32) -> io::Result<Vec<(IpAddr, [u8; 6])>> {
        let msg = dump(RouteNetlinkMessage::GetNeighbour(
            NeighbourMessage::default(),
        ));
        let mut replies = self
            .handle
            .replies(msg, RequestKind::Other)
            .map_err(to_io)?;
        let mut out = Vec::new();
        while let Some(m) = replies.try_next().await.map_err(to_io)? {
            let RtnlMessage::Route(RouteNetlinkMessage::NewNeighbour(m)) = m else {
                continue;
            };
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
                NeighbourAttribute::LinkLayerAddress(b) => <[u8; 6]>::try_from(b.as_slice()).ok(),
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
        let e = self.events.next().await?;
        Some(match e {
            Event::Route(RouteNetlinkMessage::NewLink(m)) => {
                link_event(&m, false).into_iter().collect()
            }
            Event::Route(RouteNetlinkMessage::DelLink(m)) => {
                link_event(&m, true).into_iter().collect()
            }
            Event::Route(RouteNetlinkMessage::NewAddress(m)) => {
                address_event(&m, true).into_iter().collect()
            }
            Event::Route(RouteNetlinkMessage::DelAddress(m)) => {
                address_event(&m, false).into_iter().collect()
            }
            // Events were dropped (ENOBUFS), or an error arrived on the event socket: our
            // view may be stale.
            Event::Overrun => vec![SystemEvent::Resync],
            Event::Other(m) if matches!(m.payload, NetlinkPayload::Error(_)) => {
                vec![SystemEvent::Resync]
            }
            _ => Vec::new(),
        })
    }
}

/// `ENODEV` (no libc dependency here).
const ENODEV: i32 = 19;

fn to_io(e: crate::Error) -> io::Error {
    match e.kernel() {
        Some(k) => k.io_error(),
        None => io::Error::other(e.to_string()),
    }
}

fn link_event(m: &LinkMessage, removed: bool) -> Option<SystemEvent> {
    let name = links::name(m)?.to_owned();
    let ifindex = m.header.index;
    if removed {
        return Some(SystemEvent::LinkRemoved { ifindex, name });
    }
    Some(SystemEvent::Link {
        ifindex,
        name,
        up: links::is_up(m),
        mac: links::mac(m),
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
