//! The system calls the benchmark needs that std does not offer (AF_PACKET sendmmsg, the
//! MDB event socket). The driver's only `unsafe` lives here; each block says why it is
//! sound.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{ensure, Context, Result};

fn check(rc: libc::c_int, what: &str) -> Result<libc::c_int> {
    if rc < 0 {
        Err(std::io::Error::last_os_error()).context(what.to_owned())
    } else {
        Ok(rc)
    }
}

/// A new socket(2) of `domain` (raw, close-on-exec).
fn socket(domain: libc::c_int, protocol: libc::c_int, what: &str) -> Result<OwnedFd> {
    // SAFETY: plain socket(2) call.
    let raw = check(
        unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) },
        what,
    )?;
    // SAFETY: raw is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// bind(2) to `addr`, a `sockaddr_ll` or `sockaddr_nl` (the only types passed here).
fn bind<T>(fd: &OwnedFd, addr: &T, what: &str) -> Result<()> {
    // SAFETY: pointer and size of a live socket address of the socket's family.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (addr as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    check(rc, what).map(drop)
}

/// setsockopt(2) of `opt` to `v`, a `c_int` or `timeval` (the only types passed here).
fn setsockopt<T>(fd: &OwnedFd, level: i32, opt: i32, v: &T, what: &str) -> Result<()> {
    // SAFETY: pointer to a live value of the type the option takes, and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    check(rc, what).map(drop)
}

/// An AF_PACKET socket bound to `ifname` of the calling thread's namespace, for sending.
pub(crate) fn packet_sender(ifname: &str) -> Result<OwnedFd> {
    let fd = socket(libc::AF_PACKET, 0, "AF_PACKET socket")?;
    let name = std::ffi::CString::new(ifname)?;
    // SAFETY: a NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    ensure!(ifindex != 0, "no interface {ifname}");
    // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifindex as i32;
    sll.sll_protocol = 0;
    bind(&fd, &sll, "bind AF_PACKET")?;
    setsockopt(
        &fd,
        libc::SOL_SOCKET,
        libc::SO_SNDBUF,
        &(8 << 20),
        "SO_SNDBUF",
    )?;
    setsockopt(
        &fd,
        libc::SOL_PACKET,
        libc::PACKET_QDISC_BYPASS,
        &1,
        "PACKET_QDISC_BYPASS",
    )?;
    Ok(fd)
}

/// sendmmsg of `frames[from..from + n]` (cyclically); returns how many the kernel took.
pub(crate) fn send_frames(
    fd: &OwnedFd,
    frames: &[Vec<u8>],
    from: usize,
    n: usize,
) -> Result<usize> {
    let mut iov: Vec<libc::iovec> = (0..n)
        .map(|i| {
            let f = &frames[(from + i) % frames.len()];
            libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            }
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: mmsghdr is plain old data; all-zero is valid.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = v as *mut libc::iovec;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    let mut done = 0;
    let mut spins = 0;
    while done < n {
        // SAFETY: msgs[done..] point at iovecs that point into `frames`, all alive.
        let rc = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                msgs[done..].as_mut_ptr(),
                (n - done) as u32,
                0,
            )
        };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::EAGAIN)) && spins < 1000 {
                spins += 1;
                std::thread::yield_now();
                continue;
            }
            return Err(e).context("sendmmsg");
        }
        done += rc as usize;
    }
    Ok(done)
}

/// A NETLINK_ROUTE socket subscribed to RTNLGRP_MDB with a 64 MiB buffer and a 50 ms
/// receive timeout.
pub(crate) fn mdb_event_socket() -> Result<OwnedFd> {
    let fd = socket(libc::AF_NETLINK, libc::NETLINK_ROUTE, "netlink socket")?;
    // SAFETY: sockaddr_nl is plain old data; all-zero is valid.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    bind(&fd, &sa, "bind netlink")?;
    setsockopt(
        &fd,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        &(64 << 20),
        "SO_RCVBUFFORCE",
    )?;
    setsockopt(
        &fd,
        libc::SOL_NETLINK,
        libc::NETLINK_ADD_MEMBERSHIP,
        &(libc::RTNLGRP_MDB as i32),
        "RTNLGRP_MDB",
    )?;
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 50_000,
    };
    setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv, "SO_RCVTIMEO")?;
    Ok(fd)
}

/// One recv(2) into `buf`.
pub(crate) fn recv(fd: &OwnedFd, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: buf is a live, writable buffer of buf.len() bytes.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Clock ticks per second (for /proc/PID/stat times).
pub(crate) fn clk_tck() -> libc::c_long {
    // SAFETY: sysconf has no memory effects.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }
}
