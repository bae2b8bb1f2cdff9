//! Registering a socket with the tokio reactor: one way, for the packet sockets, the
//! capture ring and the MDB writer's netlink socket alike.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A socket that owns its descriptor (an `OwnedFd` inside), never closes or replaces it
/// while alive, and whose `as_raw_fd` always returns it: what the reactor needs of a
/// registered source. Implement it only for such types.
pub trait OwnedSocket: AsRawFd {}

/// socket2's socket is an `OwnedFd`.
impl OwnedSocket for socket2::Socket {}

/// Registers `sock` with the tokio reactor for read readiness.
pub fn register_readable<T: OwnedSocket>(sock: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: `T: OwnedSocket` (see there): the descriptor stays open and the same for as
    // long as the AsyncFd, which owns `sock`, lives.
    unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}
