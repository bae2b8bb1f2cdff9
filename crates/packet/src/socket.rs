//! AF_PACKET sockets for IGMP, MLD and PIM, filtered by [`Filter`] so only those frames
//! reach userspace.
//!
//! A raw IPv4 IGMP socket does not see IGMPv2/MLDv1 reports to groups this host has not
//! joined; AF_PACKET sees every frame on the interface, before any local firewall, and
//! lets us send whole frames: queries from 0.0.0.0, the Router Alert option, tags.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use igmpd_runtime::reactor::{self, OwnedSocket};
use socket2::{Domain, Protocol, Socket, Type};

use crate::filter::Filter;
use crate::sys;

/// A frame received, without its bytes (they are in the caller's buffer).
pub use sys::RecvInfo;

/// An AF_PACKET socket bound to one interface.
#[derive(Debug)]
pub struct PacketSocket {
    socket: Socket,
    ifindex: u32,
}

impl PacketSocket {
    /// Opens a non-blocking socket on `ifindex` with `filter`. Needs CAP_NET_RAW.
    pub fn open(ifindex: u32, filter: Filter) -> io::Result<Self> {
        let socket = Socket::new(
            Domain::PACKET,
            Type::RAW.nonblocking().cloexec(),
            Some(Protocol::from(i32::from(sys::ETH_P_ALL_BE))),
        )?;
        // Filter first, bind second: nothing unfiltered is queued in between.
        socket.attach_filter(&filter.program())?;
        sys::bind_packet(socket.as_fd(), ifindex)?;
        sys::add_allmulti(socket.as_fd(), ifindex)?;
        sys::enable_auxdata(socket.as_fd())?;
        // Bursts of reports (thousands of joins at once) must not overflow the queue.
        sys::set_rcvbuf(socket.as_fd(), 8 << 20)?;
        Ok(PacketSocket { socket, ifindex })
    }

    /// Opens a socket that only sends, on `ifindex`: protocol 0 registers no receive hook,
    /// so nothing queues up on it (the capture ring receives). Needs CAP_NET_RAW.
    pub fn open_tx(ifindex: u32) -> io::Result<Self> {
        let socket = Socket::new(Domain::PACKET, Type::RAW.nonblocking().cloexec(), None)?;
        sys::bind_packet_tx(socket.as_fd(), ifindex)?;
        Ok(PacketSocket { socket, ifindex })
    }

    /// The interface it is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Receives one frame into `buf` without blocking; `Ok(None)` when none is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<RecvInfo>> {
        sys::recv(self.socket.as_fd(), buf)
    }

    /// Sends one whole frame.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let n = self.socket.send(frame)?;
        if n == frame.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short send on packet socket",
            ))
        }
    }

    /// Frames received and dropped by the kernel since the last call (PACKET_STATISTICS).
    pub fn stats(&self) -> io::Result<(u32, u32)> {
        sys::packet_stats(self.socket.as_fd())
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// The socket owns its descriptor for its whole life.
impl OwnedSocket for PacketSocket {}

impl PacketSocket {
    /// Registers the socket with the tokio reactor for readability.
    pub fn into_async(self) -> io::Result<tokio::io::unix::AsyncFd<PacketSocket>> {
        reactor::register_readable(self)
    }
}
