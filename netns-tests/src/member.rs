//! [`Member`]: a real Linux host application joining groups, driven over a pipe.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ChildStdin;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::lab::Host;
use crate::netns::{Netns, NsChild};
use crate::poll::poll_until_ok;

/// How long [`Member`] waits for the helper to answer one command.
pub const MEMBER_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `mcast-member` helper in a host namespace: the host's own kernel joins groups
/// on the host's interface and sends the reports; see the binary's docs
/// (`src/bin/mcast-member/main.rs`) for the line protocol this wraps.
///
/// Every method returns once the helper has answered, i.e. the setsockopt or send has
/// returned in the host. Dropping the handle kills the helper (by PID), which drops its
/// memberships without an explicit leave; call [`Member::leave`] first to send one.
#[derive(Debug)]
pub struct Member {
    child: NsChild,
    stdin: ChildStdin,
    replies: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    label: String,
}

impl Member {
    /// Starts the helper `bin` on `host`'s interface. In this crate's tests pass
    /// [`crate::member_bin!()`]; elsewhere [`Member::locate_binary`].
    pub fn spawn(host: &Host, bin: impl AsRef<Path>) -> Result<Member> {
        Member::spawn_in(host.netns(), host.ifname(), bin)
    }

    /// Starts the helper `bin` in namespace `ns` on interface `ifname`.
    pub fn spawn_in(ns: &Netns, ifname: &str, bin: impl AsRef<Path>) -> Result<Member> {
        let bin = bin.as_ref();
        let bin_s = bin
            .to_str()
            .ok_or_else(|| anyhow!("non-UTF-8 path {}", bin.display()))?;
        let mut child = ns.spawn(&[bin_s, "--interface", ifname])?;
        let label = format!("mcast-member[{}] in {}", child.pid(), ns.name());
        let stdin = child.take_stdin().context("helper stdin")?;
        let stdout = child.take_stdout().context("helper stdout")?;
        let stderr_pipe = child.take_stderr().context("helper stderr")?;
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut pipe = stderr_pipe;
            let mut buf = [0u8; 1024];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let mut m = Member {
            child,
            stdin,
            replies,
            stderr,
            label,
        };
        let first = m.next_line()?;
        if first != "ready" {
            bail!("{}: expected `ready`, got {first:?}", m.label);
        }
        Ok(m)
    }

    /// Finds the `mcast-member` binary for tests outside this crate: `$IGMPD_MCAST_MEMBER`,
    /// else next to the running test binary's directory (`target/<profile>/mcast-member`,
    /// present once `cargo build -p igmpd-netns-tests --bins` or a workspace test build ran).
    pub fn locate_binary() -> Result<PathBuf> {
        if let Some(p) = std::env::var_os("IGMPD_MCAST_MEMBER") {
            return Ok(PathBuf::from(p));
        }
        let exe = std::env::current_exe().context("current_exe")?;
        let mut dir = exe.parent();
        while let Some(d) = dir {
            let candidate = d.join("mcast-member");
            if candidate.is_file() {
                return Ok(candidate);
            }
            dir = d
                .parent()
                .filter(|p| p.file_name().is_some_and(|n| n != "target"));
        }
        bail!(
            "mcast-member not found near {} (build it: cargo build -p igmpd-netns-tests --bins, \
             or set IGMPD_MCAST_MEMBER)",
            exe.display()
        )
    }

    /// The helper's process ID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    fn next_line(&mut self) -> Result<String> {
        match self.replies.recv_timeout(MEMBER_REPLY_TIMEOUT) {
            Ok(l) => Ok(l),
            Err(RecvTimeoutError::Timeout) => {
                bail!("{}: no reply within {MEMBER_REPLY_TIMEOUT:?}", self.label)
            }
            Err(RecvTimeoutError::Disconnected) => {
                // Give the stderr reader a moment to collect the last words.
                let _ = self.child.wait_timeout(Duration::from_secs(1));
                let err = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
                bail!("{}: exited: {}", self.label, err.trim())
            }
        }
    }

    /// Sends one raw command line and returns the reply's value (empty for a bare `ok`);
    /// an `err` reply becomes an error.
    pub fn command(&mut self, line: &str) -> Result<String> {
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .with_context(|| format!("{}: write {line:?}", self.label))?;
        let reply = self.next_line()?;
        if reply == "ok" {
            Ok(String::new())
        } else if let Some(v) = reply.strip_prefix("ok ") {
            Ok(v.to_owned())
        } else if let Some(e) = reply.strip_prefix("err ") {
            bail!("{}: `{line}` failed: {e}", self.label)
        } else {
            bail!("{}: unexpected reply {reply:?} to `{line}`", self.label)
        }
    }

    /// Any-source join of `group` (IPv4 or IPv6).
    pub fn join(&mut self, group: IpAddr) -> Result<()> {
        self.command(&format!("join {group}")).map(drop)
    }

    /// Drops every membership of `group` (closes its socket): the kernel sends a leave /
    /// done or a state-change report.
    pub fn leave(&mut self, group: IpAddr) -> Result<()> {
        self.command(&format!("leave {group}")).map(drop)
    }

    /// Source-specific (INCLUDE) join of (`source`, `group`).
    pub fn join_source(&mut self, group: IpAddr, source: IpAddr) -> Result<()> {
        self.command(&format!("join-source {group} {source}"))
            .map(drop)
    }

    /// Leaves (`source`, `group`) joined with [`Member::join_source`].
    pub fn leave_source(&mut self, group: IpAddr, source: IpAddr) -> Result<()> {
        self.command(&format!("leave-source {group} {source}"))
            .map(drop)
    }

    /// Blocks `source` of a group joined with [`Member::join`] (EXCLUDE mode).
    pub fn block(&mut self, group: IpAddr, source: IpAddr) -> Result<()> {
        self.command(&format!("block {group} {source}")).map(drop)
    }

    /// Unblocks a source blocked with [`Member::block`].
    pub fn unblock(&mut self, group: IpAddr, source: IpAddr) -> Result<()> {
        self.command(&format!("unblock {group} {source}")).map(drop)
    }

    /// Starts counting UDP datagrams arriving at this host on `port` (any joined group,
    /// IPv4 and IPv6).
    pub fn listen(&mut self, port: u16) -> Result<()> {
        self.command(&format!("listen {port}")).map(drop)
    }

    /// Datagrams counted on `port` since [`Member::listen`].
    pub fn count(&mut self, port: u16) -> Result<u64> {
        let v = self.command(&format!("count {port}"))?;
        v.parse()
            .with_context(|| format!("{}: bad count {v:?}", self.label))
    }

    /// Polls [`Member::count`] until it reaches `at_least`; returns the count.
    pub fn wait_count(&mut self, port: u16, at_least: u64, timeout: Duration) -> Result<u64> {
        let label = self.label.clone();
        poll_until_ok(timeout, Duration::from_millis(20), || {
            let c = self.count(port)?;
            Ok::<_, anyhow::Error>((c >= at_least).then_some(c))
        })
        .with_context(|| format!("{label}: count on port {port} did not reach {at_least}"))
    }

    /// Checks for `window` that the count on `port` stays at `expected` (a datagram that
    /// should not arrive would have arrived by then); fails at once when it moves.
    pub fn stays_at(&mut self, port: u16, expected: u64, window: Duration) -> Result<()> {
        let label = self.label.clone();
        let moved = crate::poll::holds_for(window, Duration::from_millis(20), || {
            self.count(port).ok().filter(|c| *c != expected)
        });
        moved.map_err(|c| {
            anyhow::anyhow!("{label}: count on port {port} moved from {expected} to {c}")
        })
    }

    /// Sends `count` UDP datagrams to `group`:`port` out of the host's interface (TTL or
    /// hop limit 1, no loopback).
    pub fn send(&mut self, group: IpAddr, port: u16, count: u32) -> Result<()> {
        self.command(&format!("send {group} {port} {count}"))
            .map(drop)
    }

    /// Sends one IGMP Multicast Router Advertisement (RFC 4286) from `src` with an
    /// advertisement interval of `interval_s` seconds: a snooping switch makes the port a
    /// router port for 3 x that interval.
    pub fn mrd_advertise(&mut self, src: std::net::Ipv4Addr, interval_s: u8) -> Result<()> {
        self.command(&format!("mrd-advertise {src} {interval_s}"))
            .map(drop)
    }

    /// Sends `packet`, a whole IPv4 packet (header included: a forged query, a PIM hello),
    /// to its destination out of the host's interface.
    pub fn send_ipv4(&mut self, packet: &[u8]) -> Result<()> {
        let hex: String = packet.iter().map(|b| format!("{b:02x}")).collect();
        self.command(&format!("ipv4 {hex}")).map(drop)
    }

    /// Sends `count` IGMPv2 reports for consecutive groups from `first` on, each from a
    /// spoofed source, as fast as the host's socket takes them; returns how long it took.
    pub fn flood_igmp(&mut self, first: std::net::Ipv4Addr, count: u32) -> Result<Duration> {
        let secs = self.command(&format!("flood-igmp {first} {count}"))?;
        Ok(Duration::from_secs_f64(secs.trim().parse().unwrap_or(0.0)))
    }

    /// Asks the helper to exit and waits for it (bounded); kills it if it does not.
    pub fn quit(mut self) -> Result<()> {
        self.command("quit")?;
        if self.child.wait_timeout(Duration::from_secs(5))?.is_none() {
            self.child.kill()?;
            bail!("{}: did not exit after quit", self.label);
        }
        Ok(())
    }
}
