//! The one system call of host joins that socket2 does not wrap: the protocol-independent
//! group membership options with an interface index (RFC 3678 §5.1: MCAST_JOIN_GROUP,
//! MCAST_LEAVE_GROUP, MCAST_JOIN_SOURCE_GROUP, MCAST_LEAVE_SOURCE_GROUP), one call for
//! both families (socket2's `join_ssm_v4` takes the interface's IPv4 address instead of
//! its index and has no IPv6 counterpart).
//!
//! `unsafe_code` is denied workspace-wide and allowed in this module only, for the one
//! setsockopt(2) call and the `sockaddr_storage` values it carries.
#![allow(unsafe_code)]

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use socket2::{SockAddr, Socket};

/// Join or leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Join,
    Leave,
}

/// `addr` (port 0) as a `sockaddr_storage`.
fn storage(addr: IpAddr) -> libc::sockaddr_storage {
    let sa = SockAddr::from(SocketAddr::new(addr, 0));
    // SAFETY: sockaddr_storage is plain old data; all-zero bytes are a valid value.
    let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = (sa.len() as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: `sa.as_ptr()` points to `sa`'s own storage, valid for `sa.len()` bytes;
    // `st` is a distinct local at least `len` bytes long; the regions do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.as_ptr().cast::<u8>(),
            std::ptr::from_mut(&mut st).cast::<u8>(),
            len,
        );
    }
    st
}

fn set<T>(sock: &Socket, level: libc::c_int, name: libc::c_int, req: &T) -> io::Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<T>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `req` is a fully initialised request (group_req or group_source_req) living
    // across the call, and `len` is its exact size; the kernel only reads it. The fd is
    // owned by `sock`.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(req).cast::<libc::c_void>(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Joins or leaves `group` (from `source` only, if given) on interface `ifindex`:
/// `setsockopt(sock, IPPROTO_IP or IPPROTO_IPV6, MCAST_{JOIN,LEAVE}[_SOURCE]_GROUP, ...)`.
pub(crate) fn membership(
    sock: &Socket,
    op: Op,
    ifindex: u32,
    group: IpAddr,
    source: Option<IpAddr>,
) -> io::Result<()> {
    let level = if group.is_ipv4() {
        libc::IPPROTO_IP
    } else {
        libc::IPPROTO_IPV6
    };
    match source {
        None => {
            let name = match op {
                Op::Join => libc::MCAST_JOIN_GROUP,
                Op::Leave => libc::MCAST_LEAVE_GROUP,
            };
            let req = libc::group_req {
                gr_interface: ifindex,
                gr_group: storage(group),
            };
            set(sock, level, name, &req)
        }
        Some(source) => {
            let name = match op {
                Op::Join => libc::MCAST_JOIN_SOURCE_GROUP,
                Op::Leave => libc::MCAST_LEAVE_SOURCE_GROUP,
            };
            let req = libc::group_source_req {
                gsr_interface: ifindex,
                gsr_group: storage(group),
                gsr_source: storage(source),
            };
            set(sock, level, name, &req)
        }
    }
}
