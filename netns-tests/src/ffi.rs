//! The library's only unsafe code: three tiny libc wrappers std does not offer.
//!
//! `unsafe_code` is denied workspace-wide; it is allowed here because sending an arbitrary
//! signal to a child (SIGTERM so tcpdump flushes its file), arming the parent-death signal
//! in a freshly forked child and moving a thread into a namespace all need libc calls.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Sends `sig` to the process `pid`. Callers pass only PIDs of children they have not yet
/// reaped, so the PID cannot have been reused by another process.
pub(crate) fn send_signal(pid: u32, sig: libc::c_int) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes the child spawned by `cmd` receive SIGKILL when the thread that spawned it exits,
/// so helpers never outlive a test process that crashed or was killed.
///
/// Linux ties the parent-death signal to the spawning *thread*: spawn from the thread that
/// owns the guard (a test's own thread), not from a short-lived helper thread.
pub(crate) fn kill_on_parent_death(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec in the child and calls only prctl(2),
    // which is async-signal-safe, allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Moves the calling thread into the network namespace `file` refers to.
pub(crate) fn enter_netns(file: &File) -> io::Result<()> {
    // SAFETY: setns(2) on a namespace descriptor we hold open; it affects only this thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
