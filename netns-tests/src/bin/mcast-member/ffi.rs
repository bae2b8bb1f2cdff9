//! The helper's only unsafe code: the protocol-independent source-filter socket options
//! (RFC 3678 §5.1: MCAST_JOIN_SOURCE_GROUP, MCAST_LEAVE_SOURCE_GROUP, MCAST_BLOCK_SOURCE,
//! MCAST_UNBLOCK_SOURCE), which socket2 does not wrap. `unsafe_code` is denied
//! workspace-wide and allowed in this module only, for the one setsockopt(2) call and
//! the `sockaddr_storage` it needs.
//!
//! One ifindex-based call for both families (socket2's `join_ssm_v4` would need the
//! interface's IPv4 address instead, and has no IPv6 or block counterpart).
#![allow(unsafe_code)]

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use socket2::{SockAddr, Socket};

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

/// `setsockopt(sock, IPPROTO_IP or IPPROTO_IPV6, op, group_source_req { ifindex, group,
/// source })` for one of the MCAST_*_SOURCE* options.
pub fn group_source_op(
    sock: &Socket,
    op: libc::c_int,
    ifindex: u32,
    group: IpAddr,
    source: IpAddr,
) -> io::Result<()> {
    let level = if group.is_ipv4() {
        libc::IPPROTO_IP
    } else {
        libc::IPPROTO_IPV6
    };
    let req = libc::group_source_req {
        gsr_interface: ifindex,
        gsr_group: storage(group),
        gsr_source: storage(source),
    };
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::group_source_req>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `req` is a fully initialised group_source_req living across the call, and
    // `len` is its exact size; the kernel only reads it. The fd is owned by `sock`.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            op,
            std::ptr::from_ref(&req).cast::<libc::c_void>(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
