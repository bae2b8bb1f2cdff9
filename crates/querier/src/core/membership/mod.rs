//! Router-side membership state for one network segment (an interface, or a bridge port):
//! per group a filter mode, source records with timers, the group timer, the host
//! compatibility mode, and pending last-member retransmissions.
//!
//! This is RFC 9776 §6 (IGMPv3) and RFC 9777 §7 (MLDv2), with the IGMPv1/v2 and MLDv1
//! compatibility rules of RFC 9776 §7.3.2 / RFC 9777 §8.3.2. The state tables of §6.4.1
//! and §6.4.2 are implemented row by row in [`Membership::report`]; their names
//! (IS_IN, TO_EX, "(B)=GMI", "Send Q(G,A*B)") are kept in the comments.
//!
//! One implementation serves the querier (one per interface) and the snooper (one per
//! bridge port). Timers are absolute deadlines; a queue ordered by each group's next
//! deadline makes [`Membership::next_deadline`] and [`Membership::poll`] cheap with many
//! groups. Group records live in a hash map (a re-join is one lookup, where an ordered map
//! cost a tree search per access on the snooping hot path); everything shown to users is
//! sorted by address on the way out.

mod bounds;
mod change;
mod fast;
mod group;
mod rows;

pub use self::change::{Change, Removal};
pub use self::fast::is_group_leave;
pub use self::group::MAX_REPORTERS;

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Duration;

use igmpd_wire::RecordType;
use smallvec::SmallVec;

use self::group::Group;
use self::rows::{apply_record, send_retransmissions};
use super::config::Generation;
use super::time::Instant;

/// The timer values membership needs, computed by the owner from its (possibly adopted)
/// robustness and intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Group Membership Interval (RFC 9776 §8.4): robustness x query interval + response.
    pub gmi: Duration,
    /// Last Member Query Interval (§8.8).
    pub lmqi: Duration,
    /// Last Member Query Count (§8.9).
    pub lmqc: u8,
    /// Older Host Present Interval (§8.13).
    pub older_host_present: Duration,
    /// Which specific queries this router sends: `None` when it is not the querier (the
    /// tables' "Send Q(..)" actions then do nothing; timers follow the querier's queries
    /// instead, §6.6.1), `Some(V2)` for group-specific only (an IGMPv2/MLDv1 querier),
    /// `Some(V3)` for group- and group-and-source-specific queries.
    pub querier: Option<Generation>,
}

impl Timing {
    /// Last Member Query Time (§8.10): LMQI x LMQC.
    pub fn lmqt(&self) -> Duration {
        self.lmqi * u32::from(self.lmqc)
    }
}

/// Filter mode of a group record (RFC 9776 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterMode {
    /// Forward only the listed sources.
    Include,
    /// Forward everything but the sources whose timer is zero.
    Exclude,
}

impl FilterMode {
    /// "include" or "exclude".
    pub fn name(self) -> &'static str {
        match self {
            FilterMode::Include => "include",
            FilterMode::Exclude => "exclude",
        }
    }
}

/// A membership message as the state machine sees it, after the wire codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report<A> {
    /// IGMPv1 Membership Report.
    V1(A),
    /// IGMPv2 Membership Report or MLDv1 Report.
    V2(A),
    /// IGMPv2 Leave Group or MLDv1 Done.
    Leave(A),
    /// One IGMPv3 group record or MLDv2 multicast address record.
    Record(RecordType, A, Vec<A>),
}

impl<A: Copy> Report<A> {
    /// The group the message is about.
    pub fn group(&self) -> A {
        match self {
            Report::V1(g) | Report::V2(g) | Report::Leave(g) | Report::Record(_, g, _) => *g,
        }
    }
}

/// A specific query the querier must send now (RFC 9776 §6.6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecificQuery<A> {
    /// The group asked about.
    pub group: A,
    /// Empty for a group-specific query, else the sources of a group-and-source query.
    pub sources: Vec<A>,
    /// Suppress Router-Side Processing: set when the timers already exceed LMQT.
    pub s_flag: bool,
}

/// What a group looks like from outside: for status output and the forwarding plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView<'a, A> {
    /// The group.
    pub group: A,
    /// Its filter mode.
    pub mode: FilterMode,
    /// Every source record and when its timer ends (`None`: timer zero, excluded).
    pub sources: Vec<(A, Option<Instant>)>,
    /// When the group record ends unless refreshed: the group timer in EXCLUDE mode, the
    /// latest source timer in INCLUDE mode.
    pub expires: Option<Instant>,
    /// The host compatibility mode.
    pub compat: Generation,
    /// The last host that reported it.
    pub last_reporter: Option<A>,
    /// Every host that reported it within a group membership interval, with the time
    /// (borrowed: status copies it once, into its own form).
    pub reporters: &'a [(A, Instant)],
}

/// What a group forwards (RFC 9776 §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarding<A> {
    /// Only these sources.
    Include(Vec<A>),
    /// Every source but these.
    Exclude(Vec<A>),
}

/// Membership state of one segment.
#[derive(Debug, Clone)]
pub struct Membership<A> {
    groups: HashMap<A, Group<A>>,
    /// (deadline, group) for every group with a deadline.
    queue: BTreeSet<(Instant, A)>,
    /// Reports of new groups refused at [`MAX_GROUPS`].
    refused_groups: u64,
}

/// Group records one membership holds at most (an `igmpd query` interface, a snooped
/// bridge's querier, a bridge port): far above any LAN's (an IPTV head end carries a few
/// thousand channels), so that hosts spoofing new groups cannot grow igmpd without bound
/// (a record is a few hundred bytes: this is some tens of MiB at most). Reports of further
/// new groups are dropped and counted; existing records are kept and refreshed.
pub const MAX_GROUPS: usize = 65_536;

impl<A: Ord + Copy + Hash> Default for Membership<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Ord + Copy + Hash> Membership<A> {
    /// No groups.
    pub fn new() -> Self {
        Membership {
            groups: HashMap::new(),
            queue: BTreeSet::new(),
            refused_groups: 0,
        }
    }

    /// Number of group records.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Reports of new groups refused at [`MAX_GROUPS`] so far.
    pub fn refused_groups(&self) -> u64 {
        self.refused_groups
    }

    /// True when there are no group records.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Whether there is a record for `group`.
    pub fn contains(&self, group: &A) -> bool {
        self.groups.contains_key(group)
    }

    /// Deletes `group`'s record at once (a port over its limit gives up its oldest
    /// membership: `Replaced`; an operator's flush: `Cleared`); reports it as removed.
    pub fn remove_group(&mut self, group: A, reason: Removal, changes: &mut Vec<Change<A>>) {
        if self.groups.contains_key(&group) {
            self.remove(group);
            changes.push(Change::GroupRemoved { group, reason });
        }
    }

    /// The earliest instant at which [`Membership::poll`] has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.first().map(|(t, _)| *t)
    }

    /// Processes one report from `reporter` (None for 0.0.0.0 / ::).
    pub fn report(
        &mut self,
        now: Instant,
        timing: &Timing,
        reporter: Option<A>,
        report: &Report<A>,
        changes: &mut Vec<Change<A>>,
    ) {
        let g = report.group();
        if self.groups.len() >= MAX_GROUPS && !self.groups.contains_key(&g) {
            self.refused_groups += 1;
            return;
        }
        let (existed, group) = match self.groups.entry(g) {
            Entry::Occupied(e) => (true, e.into_mut()),
            Entry::Vacant(e) => (false, e.insert(Group::new(now))),
        };
        let before_fp = group.forwarding_fingerprint();
        let before_compat = group.compat();
        if let Some(r) = reporter {
            group.reporters.retain(|t| t + timing.gmi > now);
            if group.reporters.any_other(&r) {
                group.shared = true;
            }
            // A host that leaves is no longer one of the group's hosts.
            if is_group_leave(report) {
                group.reporters.remove(&r);
            } else {
                group.reporters.insert(r, now);
            }
            group.last_reporter = Some(r);
        }
        let ohpi = now + timing.older_host_present;
        // RFC 9776 §7.3.2: v1/v2 messages set the Host Present timers and are translated
        // into their IGMPv3 equivalents; in older modes some v3 content is ignored.
        let (rtype, sources): (RecordType, &[A]) = match report {
            Report::V1(_) => {
                group.v1_host = Some(ohpi);
                (RecordType::ModeIsExclude, &[])
            }
            Report::V2(_) => {
                group.v2_host = Some(ohpi);
                (RecordType::ModeIsExclude, &[])
            }
            Report::Leave(_) => (RecordType::ChangeToInclude, &[]),
            Report::Record(t, _, s) => (*t, s.as_slice()),
        };
        let compat = group.compat();
        let apply = match (rtype, compat) {
            (RecordType::Unknown(_), _) => None,
            // "IGMPv3 BLOCK messages are ignored" in v1 and v2 modes.
            (RecordType::BlockOld, Generation::V1 | Generation::V2) => None,
            // "IGMPv2 Leave messages and IGMPv3 TO_IN() messages are also ignored" in v1 mode.
            (RecordType::ChangeToInclude, Generation::V1) => None,
            // "source-lists in TO_EX() messages" are ignored in v1 and v2 modes.
            (RecordType::ChangeToExclude, Generation::V1 | Generation::V2) => {
                Some((rtype, &[][..]))
            }
            (t, _) => Some((t, sources)),
        };
        // INCLUDE mode only adds sources on a report (removals are the timers'): the
        // record's sources the group does not have yet are the candidates of
        // `SourceAdded`. A few map lookups, only for source-specific records.
        let mut fresh: SmallVec<[A; 4]> = SmallVec::new();
        if group.mode == FilterMode::Include {
            if let Some((_, b)) = apply {
                fresh.extend(b.iter().filter(|s| !group.sources.contains_key(s)).copied());
            }
        }
        if let Some((t, b)) = apply {
            apply_record(group, now, timing, t, b);
            // A host leaving, or one still (or again) in it.
            group.leaving = matches!(t, RecordType::ChangeToInclude | RecordType::BlockOld);
        }
        let after_compat = group.compat();
        let empty = group.mode == FilterMode::Include && group.sources.is_empty();
        if empty && group.rexmit_at.is_none() {
            // Nothing left to track: an INCLUDE({}) record does not exist (§6.2.1).
            self.remove(g);
            if existed {
                changes.push(Change::GroupRemoved {
                    group: g,
                    reason: Removal::Left { queried: false },
                });
            }
            return;
        }
        if !existed {
            changes.push(Change::GroupAdded {
                group: g,
                any_source: group.mode == FilterMode::Exclude,
            });
        }
        if group.mode == FilterMode::Include {
            for source in fresh {
                if group.sources.contains_key(&source) {
                    changes.push(Change::SourceAdded { group: g, source });
                }
            }
        }
        if group.forwarding_fingerprint() != before_fp || !existed {
            changes.push(Change::Forwarding { group: g });
        }
        if existed && after_compat != before_compat {
            changes.push(Change::Compat {
                group: g,
                mode: after_compat,
            });
        }
        // A refresh only moves deadlines later: within a slack the earlier queue entry
        // stays (see [`refile`]).
        refile(&mut self.queue, g, group, refile_slack(timing));
    }

    /// RFC 9776 §6.6.1: a query with the S flag clear, sent by us or received, lowers the
    /// group timer (group-specific query) or the named sources' timers
    /// (group-and-source-specific) to LMQT. Never raises a timer.
    pub fn lower_on_query(&mut self, now: Instant, timing: &Timing, group: A, sources: &[A]) {
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        let to = now + timing.lmqt();
        // Someone asked whether hosts are left: a host left (the query's reason).
        g.leaving = true;
        if sources.is_empty() {
            if g.mode == FilterMode::Exclude {
                g.group_timer = g.group_timer.min(to);
            }
        } else {
            for s in sources {
                if let Some(src) = g.sources.get_mut(s) {
                    if let Some(t) = src.timer {
                        src.timer = Some(t.min(to));
                    }
                }
            }
        }
        self.requeue(group);
    }

    /// Runs every timer due at `now`: source and group timers (§6.3, §6.5), Older Host
    /// Present timers (§7.3.2) and specific-query retransmissions (§6.6.3). Returns the
    /// queries to send; state changes go to `changes`.
    pub fn poll(
        &mut self,
        now: Instant,
        timing: &Timing,
        changes: &mut Vec<Change<A>>,
        queries: &mut Vec<SpecificQuery<A>>,
    ) {
        while let Some(&(t, g)) = self.queue.first() {
            if t > now {
                break;
            }
            self.queue.pop_first();
            if let Some(group) = self.groups.get_mut(&g) {
                group.queued_at = None;
            }
            self.expire_group(now, timing, g, changes, queries);
        }
    }

    fn expire_group(
        &mut self,
        now: Instant,
        timing: &Timing,
        g: A,
        changes: &mut Vec<Change<A>>,
        queries: &mut Vec<SpecificQuery<A>>,
    ) {
        let Some(group) = self.groups.get_mut(&g) else {
            return;
        };
        let before_fp = group.forwarding_fingerprint();
        let before_compat = group.compat();
        if group.rexmit_at.is_some_and(|t| t <= now) {
            send_retransmissions(group, g, now, timing, queries);
        }
        if group.v1_host.is_some_and(|t| t <= now) {
            group.v1_host = None;
        }
        if group.v2_host.is_some_and(|t| t <= now) {
            group.v2_host = None;
        }
        let was_include = group.mode == FilterMode::Include;
        // §6.5: the group timer expiring in EXCLUDE mode switches to INCLUDE with the
        // sources that still have running timers, or deletes the group if none do.
        if group.mode == FilterMode::Exclude && group.group_timer <= now {
            group
                .sources
                .retain(|_, s| s.timer.is_some_and(|t| t > now));
            group.mode = FilterMode::Include;
        }
        // §6.3: an expired source timer removes the source in INCLUDE mode and turns it
        // into an excluded source (timer zero) in EXCLUDE mode.
        // The INCLUDE sources that go (`SourceRemoved`, unless the whole group goes).
        let mut gone: SmallVec<[A; 4]> = SmallVec::new();
        match group.mode {
            FilterMode::Include => group.sources.retain(|a, s| {
                let keep = s.timer.is_some_and(|t| t > now);
                if !keep && was_include {
                    gone.push(*a);
                }
                keep
            }),
            FilterMode::Exclude => {
                for s in group.sources.values_mut() {
                    if s.timer.is_some_and(|t| t <= now) {
                        s.timer = None;
                        s.rexmit = 0;
                    }
                }
            }
        }
        group.reporters.retain(|t| t + timing.gmi > now);
        if group.mode == FilterMode::Include
            && group.sources.is_empty()
            && group.rexmit_at.is_none()
        {
            let reason = if group.leaving {
                Removal::Left { queried: true }
            } else {
                Removal::Expired
            };
            self.remove(g);
            changes.push(Change::GroupRemoved { group: g, reason });
            return;
        }
        let reason = if group.leaving {
            Removal::Left { queried: true }
        } else {
            Removal::Expired
        };
        for source in gone {
            changes.push(Change::SourceRemoved {
                group: g,
                source,
                reason,
            });
        }
        if group.forwarding_fingerprint() != before_fp {
            changes.push(Change::Forwarding { group: g });
        }
        let compat = group.compat();
        if compat != before_compat {
            changes.push(Change::Compat {
                group: g,
                mode: compat,
            });
        }
        self.requeue(g);
    }

    /// Drops every group (the segment went away); reports each as removed.
    pub fn clear(&mut self, changes: &mut Vec<Change<A>>) {
        let mut gone: Vec<A> = std::mem::take(&mut self.groups).into_keys().collect();
        gone.sort_unstable();
        changes.extend(gone.into_iter().map(|group| Change::GroupRemoved {
            group,
            reason: Removal::Cleared,
        }));
        self.queue.clear();
    }

    /// Every group, in address order.
    pub fn groups(&self) -> impl Iterator<Item = GroupView<'_, A>> + '_ {
        let mut all: Vec<(&A, &Group<A>)> = self.groups.iter().collect();
        all.sort_unstable_by_key(|(g, _)| **g);
        all.into_iter().map(|(g, s)| view(*g, s))
    }

    /// Every group, in no particular order: for callers that sort later, away from the
    /// protocol loop (the status document is sorted where it is encoded).
    pub fn groups_unordered(&self) -> impl ExactSizeIterator<Item = GroupView<'_, A>> + '_ {
        self.groups.iter().map(|(g, s)| view(*g, s))
    }

    /// One group.
    pub fn group(&self, group: &A) -> Option<GroupView<'_, A>> {
        self.groups.get(group).map(|s| view(*group, s))
    }

    /// The last host that reported `group` (a join's `host`), without building a view.
    pub fn last_reporter(&self, group: &A) -> Option<A> {
        self.groups.get(group).and_then(|g| g.last_reporter)
    }

    /// What `group` forwards, or None if there is no record.
    pub fn forwarding(&self, group: &A) -> Option<Forwarding<A>> {
        let g = self.groups.get(group)?;
        Some(match g.mode {
            FilterMode::Include => Forwarding::Include(g.sources.keys().copied().collect()),
            FilterMode::Exclude => Forwarding::Exclude(
                g.sources
                    .iter()
                    .filter(|(_, s)| s.timer.is_none())
                    .map(|(a, _)| *a)
                    .collect(),
            ),
        })
    }

    fn remove(&mut self, g: A) {
        if let Some(group) = self.groups.remove(&g) {
            if let Some(t) = group.queued_at {
                self.queue.remove(&(t, g));
            }
        }
    }

    fn requeue(&mut self, g: A) {
        if let Some(group) = self.groups.get_mut(&g) {
            refile(&mut self.queue, g, group, Duration::ZERO);
        }
    }
}

/// How much earlier than its next deadline a group may stay filed after a report:
/// 1/32 of the group membership interval, at most a second. Reports at the query interval
/// move a deadline by far more (GMI is at least two query intervals), so a host's
/// periodic report re-files exactly; only reports that repeat within the slack (a flood,
/// or several hosts answering the same query) leave the entry where it was.
fn refile_slack(timing: &Timing) -> Duration {
    (timing.gmi / 32).min(Duration::from_secs(1))
}

/// Files `group` (address `g`) in `queue` under its next deadline. An entry that is up to
/// `slack` earlier than that deadline stays: the queue is then a lower bound, never late,
/// and [`Membership::poll`] re-files a group whose entry came due early without changing
/// it. Re-filing on every report was a third of the snooping daemon's CPU time in a
/// re-join flood (two tree searches per report).
fn refile<A: Ord + Copy>(
    queue: &mut BTreeSet<(Instant, A)>,
    g: A,
    group: &mut Group<A>,
    slack: Duration,
) {
    let next = group.next_deadline();
    if next == group.queued_at {
        return;
    }
    if let (Some(n), Some(q)) = (next, group.queued_at) {
        if q < n && n.saturating_since(q) <= slack {
            return;
        }
    }
    if let Some(t) = group.queued_at {
        queue.remove(&(t, g));
    }
    if let Some(t) = next {
        queue.insert((t, g));
    }
    group.queued_at = next;
}

fn view<A: Copy + Ord>(group: A, s: &Group<A>) -> GroupView<'_, A> {
    let expires = match s.mode {
        FilterMode::Exclude => Some(s.group_timer),
        FilterMode::Include => s.sources.values().filter_map(|x| x.timer).max(),
    };
    GroupView {
        group,
        mode: s.mode,
        sources: s.sources.iter().map(|(a, x)| (*a, x.timer)).collect(),
        expires,
        compat: s.compat(),
        last_reporter: s.last_reporter,
        reporters: &s.reporters.0,
    }
}
