//! The box's own memberships (host joins: `join = [...]`, `igmpd query --join`) as the
//! router part of the same box must see them.
//!
//! igmpd makes the kernel join (the kernel sends the reports on the wire and answers
//! queries it hears), but igmpd's own queries leave through AF_PACKET and never reach the
//! local IP stack, and the kernel's reports leave the box as outgoing frames the capture
//! skips. A router that is also a member of groups performs both the router part and the
//! group member part of the protocol (RFC 9776 §6, RFC 9777 §7), its router part learning
//! its own memberships as any other member's: so the shell feeds the router part the
//! records the member part would send, computed here. Pure: no I/O.
//!
//! - [`HostJoin`]: one configured join, `GROUP` or `SOURCE/GROUP`, parsed totally.
//! - [`states`]: the per-group filter state of a set of joins (RFC 9776 §3.2: one
//!   interface state per group, the union of the sockets' requests).
//! - [`answer`]: the current-state records answering a query (RFC 9776 §5.2).
//! - [`changes`]: the state-change records of a change of joins (RFC 9776 §5.1 table).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use igmpd_wire::RecordType;

use super::instance::QueryIn;
use super::membership::Report;

/// One host join: a group, and for source-specific multicast the one source it accepts
/// (INCLUDE {source}); without a source it is an any-source join (EXCLUDE {}).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostJoin {
    /// The multicast group.
    pub group: IpAddr,
    /// The source of an SSM join.
    pub source: Option<IpAddr>,
}

/// Why a join is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// Not an IP address.
    #[error("{0:?} is not an IP address (write GROUP or SOURCE/GROUP)")]
    NotAnAddress(String),
    /// The group is not a multicast address.
    #[error("{0} is not a multicast group")]
    NotMulticast(IpAddr),
    /// A group no report is ever sent for (RFC 9776 §5: 224.0.0.1; RFC 9777 §6: ff02::1
    /// and interface-local scope): joining it would tell no router anything.
    #[error("{0} is never reported (all-hosts or interface-local scope)")]
    NeverReported(IpAddr),
    /// The source is no unicast address.
    #[error("source {0} is not a unicast address")]
    SourceNotUnicast(IpAddr),
    /// Source and group of different families.
    #[error("source {src} and group {group} are not of one family")]
    FamilyMismatch {
        /// The source.
        src: IpAddr,
        /// The group.
        group: IpAddr,
    },
}

impl FromStr for HostJoin {
    type Err = JoinError;

    fn from_str(s: &str) -> Result<Self, JoinError> {
        let addr = |t: &str| {
            t.trim()
                .parse::<IpAddr>()
                .map_err(|_| JoinError::NotAnAddress(t.trim().to_owned()))
        };
        let (source, group) = match s.split_once('/') {
            Some((src, g)) => (Some(addr(src)?), addr(g)?),
            None => (None, addr(s)?),
        };
        if !group.is_multicast() {
            return Err(JoinError::NotMulticast(group));
        }
        let never = match group {
            IpAddr::V4(g) => g == std::net::Ipv4Addr::new(224, 0, 0, 1),
            // The scope is the low nibble of the second byte (RFC 4291 §2.7).
            IpAddr::V6(g) => {
                g.octets()[1] & 0x0f <= 1 || g.segments() == [0xff02, 0, 0, 0, 0, 0, 0, 1]
            }
        };
        if never {
            return Err(JoinError::NeverReported(group));
        }
        if let Some(src) = source {
            if src.is_ipv4() != group.is_ipv4() {
                return Err(JoinError::FamilyMismatch { src, group });
            }
            let broadcast = matches!(src, IpAddr::V4(a) if a.is_broadcast());
            if src.is_multicast() || src.is_unspecified() || broadcast {
                return Err(JoinError::SourceNotUnicast(src));
            }
        }
        Ok(HostJoin { group, source })
    }
}

impl fmt::Display for HostJoin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            Some(s) => write!(f, "{s}/{}", self.group),
            None => write!(f, "{}", self.group),
        }
    }
}

/// Why a list of joins cannot be joined through one socket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinListError {
    /// The same join twice.
    #[error("{0} is listed twice")]
    Duplicate(HostJoin),
    /// A group joined both for any source and for one source: one socket holds one filter
    /// mode per group (RFC 3678 §4.2: the kernel refuses the second with EINVAL).
    #[error("{0} is joined both with and without a source")]
    MixedModes(IpAddr),
}

/// Checks that `joins` can be held together by one socket per family.
pub fn check_list(joins: &[HostJoin]) -> Result<(), JoinListError> {
    let mut seen = BTreeSet::new();
    let mut modes: BTreeMap<IpAddr, bool> = BTreeMap::new();
    for j in joins {
        if !seen.insert(*j) {
            return Err(JoinListError::Duplicate(*j));
        }
        let ssm = j.source.is_some();
        if *modes.entry(j.group).or_insert(ssm) != ssm {
            return Err(JoinListError::MixedModes(j.group));
        }
    }
    Ok(())
}

/// A group's filter state on the interface (RFC 9776 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostState<A> {
    /// EXCLUDE {}: any source (an any-source join).
    Any,
    /// INCLUDE {sources}: source-specific joins.
    Include(BTreeSet<A>),
}

/// The per-group state of `joins` (group, optional source), one family.
pub fn states<A: Ord + Copy>(
    joins: impl IntoIterator<Item = (A, Option<A>)>,
) -> BTreeMap<A, HostState<A>> {
    let mut out: BTreeMap<A, HostState<A>> = BTreeMap::new();
    for (g, s) in joins {
        match s {
            // RFC 9776 §3.2: EXCLUDE with an empty list wins over every INCLUDE.
            None => {
                out.insert(g, HostState::Any);
            }
            Some(s) => match out
                .entry(g)
                .or_insert_with(|| HostState::Include(BTreeSet::new()))
            {
                HostState::Any => {}
                HostState::Include(set) => {
                    set.insert(s);
                }
            },
        }
    }
    out
}

fn record<A: Copy>(t: RecordType, g: A, sources: impl IntoIterator<Item = A>) -> Report<A> {
    Report::Record(t, g, sources.into_iter().collect())
}

/// The current-state records the member part sends for `q` (RFC 9776 §5.2): every group
/// for a general query, the group for a group-specific one, and for a
/// group-and-source-specific one the queried sources it wants (all of them in EXCLUDE {},
/// the intersection in INCLUDE); nothing when nothing is wanted.
pub fn answer<A: Ord + Copy>(states: &BTreeMap<A, HostState<A>>, q: &QueryIn<A>) -> Vec<Report<A>> {
    let one = |g: A, st: &HostState<A>| -> Option<Report<A>> {
        match (st, q.sources.is_empty()) {
            (HostState::Any, true) => Some(record(RecordType::ModeIsExclude, g, [])),
            (HostState::Include(s), true) => {
                Some(record(RecordType::ModeIsInclude, g, s.iter().copied()))
            }
            (HostState::Any, false) => Some(record(
                RecordType::ModeIsInclude,
                g,
                q.sources.iter().copied(),
            )),
            (HostState::Include(s), false) => {
                let both: Vec<A> = q
                    .sources
                    .iter()
                    .copied()
                    .filter(|x| s.contains(x))
                    .collect();
                (!both.is_empty()).then(|| record(RecordType::ModeIsInclude, g, both))
            }
        }
    };
    match q.group {
        None => states.iter().filter_map(|(g, st)| one(*g, st)).collect(),
        Some(g) => states
            .get(&g)
            .and_then(|st| one(g, st))
            .into_iter()
            .collect(),
    }
}

/// The state-change records from `old` to `new` (RFC 9776 §5.1: INCLUDE(A) -> INCLUDE(B)
/// is ALLOW(B-A), BLOCK(A-B); a filter-mode change is TO_EX(B) or TO_IN(B); a group no
/// longer joined is INCLUDE {}).
pub fn changes<A: Ord + Copy>(
    old: &BTreeMap<A, HostState<A>>,
    new: &BTreeMap<A, HostState<A>>,
) -> Vec<Report<A>> {
    let none = HostState::Include(BTreeSet::new());
    let groups: BTreeSet<A> = old.keys().chain(new.keys()).copied().collect();
    let mut out = Vec::new();
    for g in groups {
        let (a, b) = (old.get(&g).unwrap_or(&none), new.get(&g).unwrap_or(&none));
        match (a, b) {
            (HostState::Any, HostState::Any) => {}
            (HostState::Include(_), HostState::Any) => {
                out.push(record(RecordType::ChangeToExclude, g, []));
            }
            (HostState::Any, HostState::Include(b)) => {
                out.push(record(RecordType::ChangeToInclude, g, b.iter().copied()));
            }
            (HostState::Include(a), HostState::Include(b)) => {
                let allow: Vec<A> = b.difference(a).copied().collect();
                let block: Vec<A> = a.difference(b).copied().collect();
                if !allow.is_empty() {
                    out.push(record(RecordType::AllowNew, g, allow));
                }
                if !block.is_empty() {
                    out.push(record(RecordType::BlockOld, g, block));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
