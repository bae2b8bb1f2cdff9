//! The few system calls the packet path needs that socket2 does not wrap: binding an
//! AF_PACKET socket to one interface, multicast promiscuity, receiving with the link-layer
//! address (packet type) and PACKET_AUXDATA (the VLAN tag the kernel strips), and the
//! socket's drop statistics.
//!
//! `unsafe` lives here (and in `ring.rs`, the mapped capture ring) only, in small wrappers
//! around libc calls on structures owned by the caller; each block says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, BorrowedFd};

/// ETH_P_ALL in network byte order, as AF_PACKET wants the protocol.
pub const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

/// `sll_pkttype` of a frame this host sent (<linux/if_packet.h>).
pub const PACKET_OUTGOING: u8 = libc::PACKET_OUTGOING;

/// What `recvmsg` told about one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvInfo {
    /// Bytes copied into the buffer.
    pub len: usize,
    /// Bytes on the wire (larger than `len` when the buffer was too small).
    pub wire_len: usize,
    /// `sll_pkttype`: host, broadcast, multicast, other host, outgoing.
    pub pkttype: u8,
    /// The ifindex it arrived on.
    pub ifindex: u32,
    /// The 802.1Q VID when the frame carried a tag (PACKET_AUXDATA, TP_STATUS_VLAN_VALID).
    pub vlan: Option<u16>,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub(crate) fn setsockopt<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a live, initialised T for the duration of the call and the length
    // passed is exactly its size; the kernel only reads it.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Binds an AF_PACKET socket to `ifindex` (0: every interface) for every protocol.
pub fn bind_packet(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    bind_ll(fd, ifindex, ETH_P_ALL_BE)
}

/// Binds an AF_PACKET socket to `ifindex` for sending only (protocol 0: no receive hook;
/// the kernel takes each frame's protocol from its Ethernet header).
pub fn bind_packet_tx(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    bind_ll(fd, ifindex, 0)
}

fn bind_ll(fd: BorrowedFd<'_>, ifindex: u32, protocol: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll and its exact size is passed.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Receives every multicast frame on `ifindex` (PACKET_MR_ALLMULTI), so reports to groups
/// nobody on this host joined reach us on NICs that filter multicast MACs.
pub fn add_allmulti(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    allmulti(fd, ifindex, libc::PACKET_ADD_MEMBERSHIP)
}

/// Undoes [`add_allmulti`].
pub fn drop_allmulti(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    allmulti(fd, ifindex, libc::PACKET_DROP_MEMBERSHIP)
}

fn allmulti(fd: BorrowedFd<'_>, ifindex: u32, op: libc::c_int) -> io::Result<()> {
    // SAFETY: packet_mreq is plain old data; all-zero is valid.
    let mut mr: libc::packet_mreq = unsafe { zeroed() };
    mr.mr_ifindex = ifindex as i32;
    mr.mr_type = libc::PACKET_MR_ALLMULTI as u16;
    setsockopt(fd, libc::SOL_PACKET, op, &mr)
}

/// Asks for PACKET_AUXDATA control messages (the VLAN tag).
pub fn enable_auxdata(fd: BorrowedFd<'_>) -> io::Result<()> {
    let on: libc::c_int = 1;
    setsockopt(fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, &on)
}

/// Sets the receive buffer, trying SO_RCVBUFFORCE (allowed with CAP_NET_ADMIN, beyond
/// rmem_max) before SO_RCVBUF.
pub fn set_rcvbuf(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &v)
        .or_else(|_| setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &v))
}

/// PACKET_STATISTICS: (packets received, packets dropped) since the last call.
pub fn packet_stats(fd: BorrowedFd<'_>) -> io::Result<(u32, u32)> {
    // SAFETY: tpacket_stats is plain old data; all-zero is valid.
    let mut st: libc::tpacket_stats = unsafe { zeroed() };
    let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: `st` and `len` are live and `len` holds the buffer's size; the kernel writes
    // at most that many bytes.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut libc::tpacket_stats).cast(),
            &mut len,
        )
    })?;
    Ok((st.tp_packets, st.tp_drops))
}

/// TP_STATUS_VLAN_VALID from <linux/if_packet.h>.
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;

/// One non-blocking `recvmsg` into `buf`. `Ok(None)` when nothing is queued.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<RecvInfo>> {
    // SAFETY: plain old data, all-zero valid.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    // Room for one cmsg carrying tpacket_auxdata, aligned for cmsghdr.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain old data; all-zero valid.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut sll as *mut libc::sockaddr_ll).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 8]>();
    // SAFETY: every pointer in `msg` refers to a live buffer of the stated length that
    // outlives the call; MSG_TRUNC only changes the return value to the wire length.
    let n = unsafe {
        libc::recvmsg(
            fd.as_raw_fd(),
            &mut msg,
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::WouldBlock {
            Ok(None)
        } else {
            Err(e)
        };
    }
    let wire_len = n as usize;
    let vlan = aux_vlan(&msg);
    Ok(Some(RecvInfo {
        len: wire_len.min(buf.len()),
        wire_len,
        pkttype: sll.sll_pkttype,
        ifindex: sll.sll_ifindex as u32,
        vlan,
    }))
}

/// The VLAN of a received frame from its PACKET_AUXDATA control message, if tagged.
fn aux_vlan(msg: &libc::msghdr) -> Option<u16> {
    let mut vlan = None;
    // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR walk the control buffer the kernel filled, within
    // msg_controllen; CMSG_DATA of a PACKET_AUXDATA cmsg holds a tpacket_auxdata, read
    // unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == libc::PACKET_AUXDATA {
                let aux: libc::tpacket_auxdata =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                if aux.tp_status & TP_STATUS_VLAN_VALID != 0 {
                    vlan = Some(aux.tp_vlan_tci & 0x0fff);
                }
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    vlan
}
