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

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use igmpd_wire::RecordType;
use smallvec::SmallVec;

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

/// What changed, for logs, status and the forwarding plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<A> {
    /// A group record was created.
    GroupAdded {
        /// The group.
        group: A,
    },
    /// A group record was deleted (its timers ran out, or the segment went away).
    GroupRemoved {
        /// The group.
        group: A,
    },
    /// What the group forwards changed (filter mode, or which sources).
    Forwarding {
        /// The group.
        group: A,
    },
    /// The group's host compatibility mode changed (§7.3.2).
    Compat {
        /// The group.
        group: A,
        /// The new mode.
        mode: Generation,
    },
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

/// Source record: a running timer, or `None` for a timer of zero (an excluded source in
/// EXCLUDE mode, RFC 9776 §6.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Source {
    timer: Option<Instant>,
    /// Group-and-source-specific queries still to send for this source (§6.6.3.2).
    rexmit: u8,
}

/// One group record.
#[derive(Debug, Clone)]
struct Group<A> {
    mode: FilterMode,
    /// Group Timer; only meaningful in EXCLUDE mode.
    group_timer: Instant,
    sources: BTreeMap<A, Source>,
    /// IGMPv1 Host Present timer (§7.3.2).
    v1_host: Option<Instant>,
    /// IGMPv2 / MLDv1 Host Present timer.
    v2_host: Option<Instant>,
    /// Group-specific queries still to send (§6.6.3.1).
    group_rexmit: u8,
    /// When the next specific query (group or sources) is due.
    rexmit_at: Option<Instant>,
    /// Who reported the group and when, to tell which hosts still answer.
    reporters: Reporters<A>,
    last_reporter: Option<A>,
    /// The deadline this group is filed under in the queue.
    queued_at: Option<Instant>,
}

impl<A: Ord + Copy> Group<A> {
    fn new(now: Instant) -> Self {
        Group {
            mode: FilterMode::Include,
            group_timer: now,
            sources: BTreeMap::new(),
            v1_host: None,
            v2_host: None,
            group_rexmit: 0,
            rexmit_at: None,
            reporters: Reporters::default(),
            last_reporter: None,
            queued_at: None,
        }
    }

    fn compat(&self) -> Generation {
        if self.v1_host.is_some() {
            Generation::V1
        } else if self.v2_host.is_some() {
            Generation::V2
        } else {
            Generation::V3
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.rexmit_at;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        if self.mode == FilterMode::Exclude {
            consider(Some(self.group_timer));
        }
        consider(self.v1_host);
        consider(self.v2_host);
        for s in self.sources.values() {
            consider(s.timer);
        }
        next
    }

    /// A fingerprint of what the group forwards: the mode, and the forwarded (INCLUDE) or
    /// blocked (EXCLUDE) sources. Compared before and after a change, without allocating.
    fn forwarding_fingerprint(&self) -> u64
    where
        A: Hash,
    {
        let mut h = Fingerprinter(0xcbf2_9ce4_8422_2325);
        self.mode.hash(&mut h);
        for (a, s) in &self.sources {
            let counts = match self.mode {
                FilterMode::Include => true,
                FilterMode::Exclude => s.timer.is_none(),
            };
            if counts {
                a.hash(&mut h);
            }
        }
        h.0
    }

    fn lower_source(&mut self, s: A, to: Instant, lmqc: u8) {
        if let Some(src) = self.sources.get_mut(&s) {
            if let Some(t) = src.timer {
                src.timer = Some(t.min(to));
                src.rexmit = lmqc;
            }
        }
    }
}

/// Hosts that reported a group and when, sorted by address. Almost always one host per
/// group (per bridge port, or a few on a LAN), so one is kept inline: a map here cost a
/// 150-byte allocation per group, 1.4 MiB of a snooping daemon's 10 000 groups.
#[derive(Debug, Clone)]
struct Reporters<A>(SmallVec<[(A, Instant); 1]>);

impl<A> Default for Reporters<A> {
    fn default() -> Self {
        Reporters(SmallVec::new())
    }
}

impl<A: Ord + Copy> Reporters<A> {
    /// Records a report from `host` at `at`.
    fn insert(&mut self, host: A, at: Instant) {
        match self.0.binary_search_by(|(h, _)| h.cmp(&host)) {
            Ok(i) => self.0[i].1 = at,
            Err(i) => self.0.insert(i, (host, at)),
        }
    }

    /// Keeps the hosts whose last report time passes `keep`.
    fn retain(&mut self, mut keep: impl FnMut(Instant) -> bool) {
        self.0.retain(|(_, t)| keep(*t));
    }
}

/// A small, deterministic hasher for fingerprints: eight bytes per multiply (a byte-wise
/// FNV-1a over the mode's discriminant and each address showed in the snooping profile).
struct Fingerprinter(u64);

impl Fingerprinter {
    fn mix(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
    }
}

impl Hasher for Fingerprinter {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.mix(u64::from(v));
    }
    fn write_u32(&mut self, v: u32) {
        self.mix(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.mix(v);
    }
    fn write_usize(&mut self, v: usize) {
        self.mix(v as u64);
    }
    fn write_isize(&mut self, v: isize) {
        self.mix(v as u64);
    }
}

/// What a group looks like from outside: for status output and the forwarding plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView<A> {
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
    /// Every host that reported it within a group membership interval, with the time.
    pub reporters: Vec<(A, Instant)>,
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
}

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
        }
    }

    /// Number of group records.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True when there are no group records.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
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
        let (existed, group) = match self.groups.entry(g) {
            Entry::Occupied(e) => (true, e.into_mut()),
            Entry::Vacant(e) => (false, e.insert(Group::new(now))),
        };
        let before_fp = group.forwarding_fingerprint();
        let before_compat = group.compat();
        if let Some(r) = reporter {
            group.reporters.retain(|t| t + timing.gmi > now);
            group.reporters.insert(r, now);
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
        if let Some((t, b)) = apply {
            apply_record(group, now, timing, t, b);
        }
        let after_compat = group.compat();
        let empty = group.mode == FilterMode::Include && group.sources.is_empty();
        if empty && group.rexmit_at.is_none() {
            // Nothing left to track: an INCLUDE({}) record does not exist (§6.2.1).
            self.remove(g);
            if existed {
                changes.push(Change::GroupRemoved { group: g });
            }
            return;
        }
        if !existed {
            changes.push(Change::GroupAdded { group: g });
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
        match group.mode {
            FilterMode::Include => group
                .sources
                .retain(|_, s| s.timer.is_some_and(|t| t > now)),
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
            self.remove(g);
            changes.push(Change::GroupRemoved { group: g });
            return;
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
        changes.extend(gone.into_iter().map(|group| Change::GroupRemoved { group }));
        self.queue.clear();
    }

    /// Every group, in address order.
    pub fn groups(&self) -> impl Iterator<Item = GroupView<A>> + '_ {
        let mut all: Vec<(&A, &Group<A>)> = self.groups.iter().collect();
        all.sort_unstable_by_key(|(g, _)| **g);
        all.into_iter().map(|(g, s)| view(*g, s))
    }

    /// One group.
    pub fn group(&self, group: &A) -> Option<GroupView<A>> {
        self.groups.get(group).map(|s| view(*group, s))
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

fn view<A: Copy + Ord>(group: A, s: &Group<A>) -> GroupView<A> {
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
        reporters: s.reporters.0.to_vec(),
    }
}

/// The rows of RFC 9776 §6.4.1 (current-state records) and §6.4.2 (filter-mode-change and
/// source-list-change records). `b` is the record's source list.
fn apply_record<A: Ord + Copy>(
    group: &mut Group<A>,
    now: Instant,
    timing: &Timing,
    t: RecordType,
    b: &[A],
) {
    let gmi = now + timing.gmi;
    let in_b = |a: &A| b.contains(a);
    match (group.mode, t) {
        // INCLUDE (A) + IS_IN (B) or ALLOW (B) -> INCLUDE (A+B); (B)=GMI.
        (FilterMode::Include, RecordType::ModeIsInclude | RecordType::AllowNew) => {
            set_gmi(group, b, gmi)
        }
        // INCLUDE (A) + IS_EX (B) -> EXCLUDE (A*B, B-A); (B-A)=0; Delete (A-B); Group Timer=GMI.
        // INCLUDE (A) + TO_EX (B) -> the same, plus Send Q(G,A*B).
        (FilterMode::Include, RecordType::ModeIsExclude | RecordType::ChangeToExclude) => {
            group.sources.retain(|a, _| in_b(a));
            let a_and_b: Vec<A> = group.sources.keys().copied().collect();
            for s in b {
                group.sources.entry(*s).or_insert(Source {
                    timer: None,
                    rexmit: 0,
                });
            }
            group.mode = FilterMode::Exclude;
            group.group_timer = gmi;
            if t == RecordType::ChangeToExclude {
                send_q_sources(group, now, timing, &a_and_b);
            }
        }
        // INCLUDE (A) + BLOCK (B) -> INCLUDE (A); Send Q(G,A*B).
        (FilterMode::Include, RecordType::BlockOld) => {
            let a_and_b: Vec<A> = b
                .iter()
                .copied()
                .filter(|s| group.sources.contains_key(s))
                .collect();
            send_q_sources(group, now, timing, &a_and_b);
        }
        // INCLUDE (A) + TO_IN (B) -> INCLUDE (A+B); (B)=GMI; Send Q(G,A-B).
        (FilterMode::Include, RecordType::ChangeToInclude) => {
            let a_minus_b: Vec<A> = group.sources.keys().copied().filter(|a| !in_b(a)).collect();
            set_gmi(group, b, gmi);
            send_q_sources(group, now, timing, &a_minus_b);
        }
        // EXCLUDE (X,Y) + IS_IN (A) or ALLOW (A) -> EXCLUDE (X+A, Y-A); (A)=GMI.
        (FilterMode::Exclude, RecordType::ModeIsInclude | RecordType::AllowNew) => {
            set_gmi(group, b, gmi)
        }
        // EXCLUDE (X,Y) + IS_EX (A) -> EXCLUDE (A-Y, Y*A); (A-X-Y)=GMI; Delete (X-A);
        // Delete (Y-A); Group Timer=GMI.
        (FilterMode::Exclude, RecordType::ModeIsExclude) => {
            group.sources.retain(|a, _| in_b(a));
            for s in b {
                group.sources.entry(*s).or_insert(Source {
                    timer: Some(gmi),
                    rexmit: 0,
                });
            }
            group.group_timer = gmi;
        }
        // EXCLUDE (X,Y) + BLOCK (A) -> EXCLUDE (X+(A-Y), Y); (A-X-Y)=Group Timer;
        // Send Q(G,A-Y).
        (FilterMode::Exclude, RecordType::BlockOld) => {
            let gt = group.group_timer;
            for s in b {
                group.sources.entry(*s).or_insert(Source {
                    timer: Some(gt),
                    rexmit: 0,
                });
            }
            let a_minus_y: Vec<A> = b
                .iter()
                .copied()
                .filter(|s| group.sources.get(s).is_some_and(|x| x.timer.is_some()))
                .collect();
            send_q_sources(group, now, timing, &a_minus_y);
        }
        // EXCLUDE (X,Y) + TO_EX (A) -> EXCLUDE (A-Y, Y*A); (A-X-Y)=Group Timer;
        // Delete (X-A); Delete (Y-A); Send Q(G,A-Y); Group Timer=GMI.
        (FilterMode::Exclude, RecordType::ChangeToExclude) => {
            let gt = group.group_timer;
            group.sources.retain(|a, _| in_b(a));
            for s in b {
                group.sources.entry(*s).or_insert(Source {
                    timer: Some(gt),
                    rexmit: 0,
                });
            }
            let a_minus_y: Vec<A> = b
                .iter()
                .copied()
                .filter(|s| group.sources.get(s).is_some_and(|x| x.timer.is_some()))
                .collect();
            send_q_sources(group, now, timing, &a_minus_y);
            group.group_timer = gmi;
        }
        // EXCLUDE (X,Y) + TO_IN (A) -> EXCLUDE (X+A, Y-A); (A)=GMI; Send Q(G,X-A);
        // Send Q(G).
        (FilterMode::Exclude, RecordType::ChangeToInclude) => {
            let x_minus_a: Vec<A> = group
                .sources
                .iter()
                .filter(|(a, s)| s.timer.is_some() && !in_b(a))
                .map(|(a, _)| *a)
                .collect();
            set_gmi(group, b, gmi);
            send_q_sources(group, now, timing, &x_minus_a);
            send_q_group(group, now, timing);
        }
        (_, RecordType::Unknown(_)) => {}
    }
}

/// "(B)=GMI": sources in `b` get the timer `gmi`, created if missing.
fn set_gmi<A: Ord + Copy>(group: &mut Group<A>, b: &[A], gmi: Instant) {
    for s in b {
        let e = group.sources.entry(*s).or_insert(Source {
            timer: None,
            rexmit: 0,
        });
        e.timer = Some(gmi);
    }
}

/// "Send Q(G)" (§6.6.3.1): when querier, lower the group timer to LMQT and schedule
/// [LMQC] group-specific queries starting now.
fn send_q_group<A: Ord + Copy>(group: &mut Group<A>, now: Instant, timing: &Timing) {
    if timing.querier.is_none() || timing.lmqc == 0 {
        return;
    }
    group.group_timer = group.group_timer.min(now + timing.lmqt());
    group.group_rexmit = timing.lmqc;
    group.rexmit_at = Some(now);
}

/// "Send Q(G,S)" (§6.6.3.2): when an IGMPv3/MLDv2 querier, lower the sources' timers to
/// LMQT and schedule [LMQC] group-and-source-specific queries for them starting now.
fn send_q_sources<A: Ord + Copy>(
    group: &mut Group<A>,
    now: Instant,
    timing: &Timing,
    sources: &[A],
) {
    if timing.querier != Some(Generation::V3) || sources.is_empty() || timing.lmqc == 0 {
        return;
    }
    let to = now + timing.lmqt();
    for s in sources {
        group.lower_source(*s, to, timing.lmqc);
    }
    group.rexmit_at = Some(now);
}

/// Sends the due specific queries of one group and schedules the next ones.
///
/// §6.6.3.1: a group-specific query carries the S flag when the group timer is above
/// LMQT. §6.6.3.2: sources with pending retransmissions are split into those whose timers
/// are above LMQT (a query with S set) and the others (S clear).
fn send_retransmissions<A: Ord + Copy>(
    group: &mut Group<A>,
    g: A,
    now: Instant,
    timing: &Timing,
    queries: &mut Vec<SpecificQuery<A>>,
) {
    let lmqt_at = now + timing.lmqt();
    if group.group_rexmit > 0 {
        group.group_rexmit -= 1;
        queries.push(SpecificQuery {
            group: g,
            sources: Vec::new(),
            s_flag: group.mode == FilterMode::Exclude && group.group_timer > lmqt_at,
        });
    }
    let mut with_s = Vec::new();
    let mut without_s = Vec::new();
    for (a, s) in group.sources.iter_mut() {
        if s.rexmit == 0 {
            continue;
        }
        s.rexmit -= 1;
        match s.timer {
            Some(t) if t > lmqt_at => with_s.push(*a),
            Some(_) => without_s.push(*a),
            None => s.rexmit = 0,
        }
    }
    if !without_s.is_empty() {
        queries.push(SpecificQuery {
            group: g,
            sources: without_s,
            s_flag: false,
        });
    }
    if !with_s.is_empty() {
        queries.push(SpecificQuery {
            group: g,
            sources: with_s,
            s_flag: true,
        });
    }
    let more = group.group_rexmit > 0 || group.sources.values().any(|s| s.rexmit > 0);
    group.rexmit_at = more.then(|| now + timing.lmqi);
}
