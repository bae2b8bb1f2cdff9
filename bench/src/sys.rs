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

fn setsockopt_int(fd: &OwnedFd, level: i32, opt: i32, v: i32, what: &str) -> Result<()> {
    // SAFETY: passes a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&v as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    check(rc, what).map(drop)
}

/// An AF_PACKET socket bound to `ifname` of the calling thread's namespace, for sending.
pub(crate) fn packet_sender(ifname: &str) -> Result<OwnedFd> {
    // SAFETY: plain socket(2) call.
    let raw = check(
        unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) },
        "AF_PACKET socket",
    )?;
    // SAFETY: raw is a fresh descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let name = std::ffi::CString::new(ifname)?;
    // SAFETY: a NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    ensure!(ifindex != 0, "no interface {ifname}");
    // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifindex as i32;
    sll.sll_protocol = 0;
    // SAFETY: pointer and size of a live sockaddr_ll.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    check(rc, "bind AF_PACKET")?;
    setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 8 << 20, "SO_SNDBUF")?;
    setsockopt_int(
        &fd,
        libc::SOL_PACKET,
        libc::PACKET_QDISC_BYPASS,
        1,
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
    // SAFETY: plain socket(2) call.
    let raw = check(
        unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        },
        "netlink socket",
    )?;
    // SAFETY: fresh descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_nl is plain old data.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: pointer and size of a live sockaddr_nl.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    check(rc, "bind netlink")?;
    setsockopt_int(
        &fd,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        64 << 20,
        "SO_RCVBUFFORCE",
    )?;
    setsockopt_int(
        &fd,
        libc::SOL_NETLINK,
        libc::NETLINK_ADD_MEMBERSHIP,
        libc::RTNLGRP_MDB as i32,
        "RTNLGRP_MDB",
    )?;
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 50_000,
    };
    // SAFETY: pointer and size of a live timeval.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    check(rc, "SO_RCVTIMEO")?;
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
