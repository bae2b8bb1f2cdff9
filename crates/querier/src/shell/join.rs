//! Host joins on one interface (`join = [...]`, `igmpd query --join`): the kernel itself
//! becomes a member through one UDP socket per family, kept for the daemon's life, so the
//! box attracts the stream and its kernel sends the reports and answers the queries it
//! hears (another querier's, a snooping switch's).
//!
//! What igmpd's own router part learns of them: `own.rs`.
//!
//! Memberships survive the link going down (the kernel keeps them and reports them again
//! when it comes up); when the interface disappears they are left on the old index and
//! made again on the new one. A join that failed is tried again at every link or address
//! change.

mod sys;

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;

use igmpd_runtime::status::JoinStatus;
use socket2::{Domain, Protocol, Socket, Type};
use tracing::{info, warn};

use self::sys::Op;
use crate::core::host::{self, HostState};
use crate::core::HostJoin;

/// What became of one join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    /// Not tried: the interface does not exist.
    Waiting,
    /// The kernel is a member.
    Joined,
    /// The kernel refused it (tried again at the next link or address change).
    Failed(String),
}

/// The host joins of one interface and the sockets that hold them.
#[derive(Debug, Default)]
pub(super) struct HostJoins {
    entries: Vec<(HostJoin, State)>,
    v4: Option<Socket>,
    v6: Option<Socket>,
    /// The ifindex the joined entries were made on.
    on: Option<u32>,
}

/// Why a join failed, with what to do about the kernel's limits.
fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOBUFS) => format!(
            "{e} (the kernel's limit per socket: net.ipv4.igmp_max_memberships, \
             igmp_max_msf for sources)"
        ),
        Some(libc::ENODEV) => format!("{e} (the interface has no IP configuration)"),
        _ => e.to_string(),
    }
}

impl HostJoins {
    pub(super) fn new(joins: &[HostJoin]) -> Self {
        HostJoins {
            entries: joins.iter().map(|j| (*j, State::Waiting)).collect(),
            ..HostJoins::default()
        }
    }

    /// `joins`, all held on `ifindex`, without a socket (tests of what the router part
    /// learns; a unit test must not make the host's kernel join).
    #[cfg(test)]
    pub(super) fn joined(joins: &[HostJoin], ifindex: u32) -> Self {
        HostJoins {
            entries: joins.iter().map(|j| (*j, State::Joined)).collect(),
            on: Some(ifindex),
            ..HostJoins::default()
        }
    }

    /// The configured joins, in order.
    pub(super) fn joins(&self) -> Vec<HostJoin> {
        self.entries.iter().map(|(j, _)| *j).collect()
    }

    /// The family's socket, opened on first use.
    fn socket(&mut self, v4: bool) -> io::Result<&Socket> {
        let slot = if v4 { &mut self.v4 } else { &mut self.v6 };
        if slot.is_none() {
            let domain = if v4 { Domain::IPV4 } else { Domain::IPV6 };
            // Never bound: no datagram is ever queued on it, it only holds memberships.
            *slot = Some(Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?);
        }
        slot.as_ref()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn op(&mut self, op: Op, ifindex: u32, j: HostJoin) -> io::Result<()> {
        let sock = self.socket(j.group.is_ipv4())?;
        sys::membership(sock, op, ifindex, j.group, j.source)
    }

    /// Brings the memberships in line with the interface's index (None: it is gone).
    pub(super) fn sync(&mut self, iface: &str, ifindex: Option<u32>) {
        if let Some(old) = self.on.filter(|old| Some(*old) != ifindex) {
            // Leave on the old index: the kernel drops the socket's record even when the
            // device is gone (the whole group: a source leave needs the device).
            let mut groups: Vec<IpAddr> = Vec::new();
            for (j, st) in &mut self.entries {
                if *st == State::Joined && !groups.contains(&j.group) {
                    groups.push(j.group);
                }
                *st = State::Waiting;
            }
            for g in groups {
                let any = HostJoin {
                    group: g,
                    source: None,
                };
                let _ = self.op(Op::Leave, old, any);
            }
            self.on = None;
        }
        let Some(ifindex) = ifindex else { return };
        self.on = Some(ifindex);
        for k in 0..self.entries.len() {
            let (j, st) = self.entries[k].clone();
            if st == State::Joined {
                continue;
            }
            let new = match self.op(Op::Join, ifindex, j) {
                Ok(()) => State::Joined,
                // Already a member on this index (made before, kept by the kernel).
                Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => State::Joined,
                Err(e) => State::Failed(describe(&e)),
            };
            match &new {
                State::Joined => {
                    info!(iface, join = %j, ifindex, "host join: the kernel is a member")
                }
                State::Failed(e) if st != new => {
                    warn!(iface, join = %j, error = %e, "host join failed");
                }
                _ => {}
            }
            self.entries[k].1 = new;
        }
    }

    /// Replaces the list: joins no longer listed are left, new ones made.
    pub(super) fn set(&mut self, iface: &str, joins: &[HostJoin]) {
        let old = std::mem::take(&mut self.entries);
        for (j, st) in old {
            if joins.contains(&j) {
                self.entries.push((j, st));
            } else if st == State::Joined {
                if let Some(ix) = self.on {
                    match self.op(Op::Leave, ix, j) {
                        Ok(()) => info!(iface, join = %j, "host join left"),
                        Err(e) => warn!(iface, join = %j, error = %e, "leaving failed"),
                    }
                }
            }
        }
        for j in joins {
            if !self.entries.iter().any(|(x, _)| x == j) {
                self.entries.push((*j, State::Waiting));
            }
        }
        // Keep the configured order.
        self.entries
            .sort_by_key(|(j, _)| joins.iter().position(|x| x == j));
        let on = self.on;
        self.on = None;
        self.sync(iface, on);
    }

    /// Whether any join is configured.
    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The joined groups of one family (`of`: the address if it is of that family), as the
    /// member part holds them.
    pub(super) fn states<A: Ord + Copy>(
        &self,
        of: impl Fn(IpAddr) -> Option<A>,
    ) -> BTreeMap<A, HostState<A>> {
        host::states(self.entries.iter().filter_map(|(j, st)| {
            let g = of(j.group)?;
            let s = match j.source {
                Some(s) => Some(of(s)?),
                None => None,
            };
            (*st == State::Joined).then_some((g, s))
        }))
    }

    /// The joins for status.
    pub(super) fn status(&self) -> Vec<JoinStatus> {
        self.entries
            .iter()
            .map(|(j, st)| JoinStatus {
                group: j.group,
                source: j.source,
                state: match st {
                    State::Waiting => "waiting for the interface".to_owned(),
                    State::Joined => "joined".to_owned(),
                    State::Failed(e) => e.clone(),
                },
            })
            .collect()
    }
}
