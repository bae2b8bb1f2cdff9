//! The MDB as state: what each (port, VLAN, group) should forward, what was programmed, and
//! the difference as the only thing written to the kernel.
//!
//! Kernel facts (Linux 6.18, measured): a (*,G) entry added from userspace with
//! `filter_mode include` and a source list makes the kernel create one (S,G) entry per
//! source; `filter_mode exclude` with a list creates "blocked" (S,G) entries; at most 31
//! sources per entry ("Exceeded maximum number of source entries (31)"); the kernel looks
//! up (S,G) entries only on IGMPv3 / MLDv2 bridges (`mcast_igmp_version 3`,
//! `mcast_mld_version 2`), so elsewhere source lists would only cost hash entries. Every
//! distinct (VLAN, group, source) key counts against `mcast_hash_max`, and reaching it
//! turns snooping off for the whole bridge: [`MdbTable`] counts keys and never goes past
//! its limit.

mod fair;
pub mod retry;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use self::fair::{near, Shares, Waiting};

/// Most sources the kernel takes in one entry's source list.
pub const MAX_SOURCES: usize = 31;

/// One port's entry for one group: the unit igmpd writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryKey {
    /// Bridge port ifindex.
    pub port: u32,
    /// VLAN id, 0 for none.
    pub vid: u16,
    /// The group.
    pub group: IpAddr,
}

/// What an entry forwards, as written to the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryFilter {
    /// A plain (*,G) entry: every source (IGMPv1/v2, MLDv1, EXCLUDE({}), or a bridge that
    /// does not filter sources).
    Any,
    /// `filter_mode include source_list A`: only these sources (RFC 9776 §6.3).
    Include(Vec<IpAddr>),
    /// `filter_mode exclude source_list Y`: every source but these.
    Exclude(Vec<IpAddr>),
}

impl EntryFilter {
    /// The sources in the entry's list.
    pub fn sources(&self) -> &[IpAddr] {
        match self {
            EntryFilter::Any => &[],
            EntryFilter::Include(s) | EntryFilter::Exclude(s) => s,
        }
    }

    /// "include", "exclude" (plain (*,G) entries are EXCLUDE({}) in the kernel).
    pub fn mode_name(&self) -> &'static str {
        match self {
            EntryFilter::Include(_) => "include",
            EntryFilter::Any | EntryFilter::Exclude(_) => "exclude",
        }
    }
}

/// A write for the shell to batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MdbOp {
    /// Create or replace the entry, permanent, with igmpd's protocol value.
    Set(EntryKey, EntryFilter),
    /// Delete the entry (a missing entry is not an error).
    Delete(EntryKey),
    /// Create the (S,G) entry of `key`'s group and this source (kernels without source
    /// lists: see [`MdbTable::set_per_source`]).
    SetSource(EntryKey, IpAddr),
    /// Delete that (S,G) entry.
    DeleteSource(EntryKey, IpAddr),
}

impl MdbOp {
    /// The entry the operation writes, and its source for an (S,G) one.
    pub fn target(&self) -> (EntryKey, Option<IpAddr>) {
        match self {
            MdbOp::Set(k, _) | MdbOp::Delete(k) => (*k, None),
            MdbOp::SetSource(k, s) | MdbOp::DeleteSource(k, s) => (*k, Some(*s)),
        }
    }

    /// True for the writes that create an entry.
    pub fn is_set(&self) -> bool {
        matches!(self, MdbOp::Set(..) | MdbOp::SetSource(..))
    }

    /// The delete that undoes this set (a delete stays itself).
    pub fn undo(&self) -> MdbOp {
        match self {
            MdbOp::Set(k, _) => MdbOp::Delete(*k),
            MdbOp::SetSource(k, s) => MdbOp::DeleteSource(*k, *s),
            other => other.clone(),
        }
    }
}

/// Result of [`MdbTable::set_desired`] for counters and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    /// Nothing to write, or written.
    Ok,
    /// Written as a plain (*,G): the source list did not fit (more than 31 sources, or
    /// not enough room left under the hash limit). Forwards more sources than asked.
    Degraded,
    /// A new group that would take the bridge to its hash limit: not written.
    Refused,
}

/// Desired and programmed entries, and the kernel keys they use.
#[derive(Debug, Clone, Default)]
pub struct MdbTable {
    programmed: HashMap<EntryKey, (EntryFilter, bool)>,
    /// (vid, group, source) kernel keys in use by programmed entries, with port counts.
    keys: HashMap<(u16, IpAddr, Option<IpAddr>), u32>,
    /// Entries not written because the limit was reached (or their port's share), with
    /// what they want, served in turn when room frees.
    refused: Waiting,
    /// Each port's share of the limit and its programmed entries.
    shares: Shares,
    limit: usize,
    refused_total: u64,
    degraded_total: u64,
    /// The kernel takes no source list (before 6.3): INCLUDE is written as one (S,G)
    /// entry per source, EXCLUDE as a plain (*,G).
    per_source: bool,
    /// With `per_source`: what every port wants of each (VLAN, group). An (S,G) entry
    /// shadows the plain (*,G) entries of other ports for S (the kernel forwards S's
    /// traffic by the (S,G) entry alone), so a group is written per source only while every
    /// port wants INCLUDE; else all its ports get plain (*,G) entries.
    wanted: HashMap<(u16, IpAddr), BTreeMap<u32, EntryFilter>>,
    /// Entries of static groups: never refused for their port's share (they count
    /// against no limit but the kernel's).
    exempt: HashSet<EntryKey>,
}

fn kernel_keys<'a>(
    k: &EntryKey,
    f: &'a EntryFilter,
) -> impl Iterator<Item = (u16, IpAddr, Option<IpAddr>)> + 'a {
    let (vid, group) = (k.vid, k.group);
    std::iter::once((vid, group, None))
        .chain(f.sources().iter().map(move |s| (vid, group, Some(*s))))
}

impl MdbTable {
    /// An empty table that uses at most `limit` kernel keys.
    pub fn new(limit: usize) -> Self {
        MdbTable {
            limit,
            ..MdbTable::default()
        }
    }

    /// Writes INCLUDE(S) as an (S,G) entry per source and EXCLUDE as a plain (*,G): for
    /// kernels that refuse source lists on userspace entries (before 6.3) but take (S,G)
    /// entries (5.11). The kernel's (S,G) lookup then forwards exactly the listed sources,
    /// as its own snooping would; EXCLUDE({..}) forwards every source (more than asked,
    /// never less: counted as degraded). Programmed entries stay as they were written.
    pub fn set_per_source(&mut self, on: bool) {
        self.per_source = on;
        self.wanted.clear();
    }

    /// Whether INCLUDE entries are written per source.
    pub fn per_source(&self) -> bool {
        self.per_source
    }

    /// The writes that create every programmed entry again (to hand them to the kernel
    /// as temporary ones at exit).
    pub fn rewrite_ops(&self) -> Vec<MdbOp> {
        let mut ops = Vec::with_capacity(self.programmed.len());
        for (k, (f, _)) in &self.programmed {
            match f {
                EntryFilter::Include(s) if self.per_source => {
                    ops.extend(s.iter().map(|s| MdbOp::SetSource(*k, *s)));
                }
                f => ops.push(MdbOp::Set(*k, f.clone())),
            }
        }
        ops
    }

    /// Emits the writes that take `key` from `old` to `new` (None: no entry).
    fn emit(
        &self,
        key: EntryKey,
        old: Option<&EntryFilter>,
        new: Option<&EntryFilter>,
        ops: &mut Vec<MdbOp>,
    ) {
        if !self.per_source {
            match new {
                Some(f) => ops.push(MdbOp::Set(key, f.clone())),
                None if old.is_some() => ops.push(MdbOp::Delete(key)),
                None => {}
            }
            return;
        }
        let none: &[IpAddr] = &[];
        let (old_sources, old_plain) = match old {
            Some(EntryFilter::Include(s)) => (s.as_slice(), false),
            Some(_) => (none, true),
            None => (none, false),
        };
        let (new_sources, new_plain) = match new {
            Some(EntryFilter::Include(s)) => (s.as_slice(), false),
            Some(_) => (none, true),
            None => (none, false),
        };
        // The new entries first, so that nothing wanted stops for a moment.
        if new_plain && !old_plain {
            ops.push(MdbOp::Set(key, EntryFilter::Any));
        }
        for s in new_sources.iter().filter(|s| !old_sources.contains(s)) {
            ops.push(MdbOp::SetSource(key, *s));
        }
        for s in old_sources.iter().filter(|s| !new_sources.contains(s)) {
            ops.push(MdbOp::DeleteSource(key, *s));
        }
        if old_plain && !new_plain {
            ops.push(MdbOp::Delete(key));
        }
    }

    /// Whether `key` is a static group's entry: never refused for its port's share near
    /// the limit.
    pub fn set_exempt(&mut self, key: EntryKey, on: bool) {
        if on {
            self.exempt.insert(key);
        } else {
            self.exempt.remove(&key);
        }
    }

    /// Changes the key limit (e.g. after reading `mcast_hash_max`).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// The ports among which the limit is shared, each with its `max_groups` if
    /// configured (see `fair`).
    pub fn set_shares(&mut self, ports: impl Iterator<Item = (u32, Option<usize>)>) {
        self.shares.set(self.limit, ports);
    }

    /// The key limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Distinct kernel keys in use.
    pub fn keys_in_use(&self) -> usize {
        self.keys.len()
    }

    /// Entries currently programmed (or adopted), permanent flag included.
    pub fn programmed(&self) -> impl Iterator<Item = (&EntryKey, &EntryFilter, bool)> {
        self.programmed.iter().map(|(k, (f, p))| (k, f, *p))
    }

    /// How many entries are programmed (or adopted), without walking them.
    pub fn programmed_len(&self) -> usize {
        self.programmed.len()
    }

    /// The programmed entry of `key`.
    pub fn get(&self, key: &EntryKey) -> Option<&EntryFilter> {
        self.programmed.get(key).map(|(f, _)| f)
    }

    /// Groups refused at the limit since start.
    pub fn refused_total(&self) -> u64 {
        self.refused_total
    }

    /// Entries written without their source list since start.
    pub fn degraded_total(&self) -> u64 {
        self.degraded_total
    }

    /// Entries waiting for room.
    pub fn refused_now(&self) -> usize {
        self.refused.len()
    }

    fn new_keys(&self, key: &EntryKey, f: &EntryFilter, old: Option<&EntryFilter>) -> usize {
        kernel_keys(key, f)
            .filter(|k| {
                !self.keys.contains_key(k)
                    && !old.is_some_and(|o| kernel_keys(key, o).any(|ok| ok == *k))
            })
            .count()
    }

    /// Counts the kernel keys of `key`'s entry `f` (for the bridge, and for its port's
    /// share: a key two ports use counts for each).
    fn add_keys(&mut self, key: &EntryKey, f: &EntryFilter) {
        for k in kernel_keys(key, f) {
            *self.keys.entry(k).or_insert(0) += 1;
        }
        self.shares
            .count(key.port, kernel_keys(key, f).count() as isize);
    }

    fn remove_keys(&mut self, key: &EntryKey, f: &EntryFilter) {
        self.shares
            .count(key.port, -(kernel_keys(key, f).count() as isize));
        for k in kernel_keys(key, f) {
            if let Some(n) = self.keys.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    self.keys.remove(&k);
                }
            }
        }
    }

    /// An entry found in the kernel at start (igmpd's own protocol value): counted as
    /// programmed so an unchanged membership writes nothing. A temporary one will be
    /// rewritten as permanent.
    pub fn adopt(&mut self, key: EntryKey, filter: EntryFilter, permanent: bool) {
        if let Some((old, _)) = self.programmed.remove(&key) {
            self.remove_keys(&key, &old);
        }
        self.add_keys(&key, &filter);
        if self.per_source {
            let ports = self.wanted.entry((key.vid, key.group)).or_default();
            ports.insert(key.port, filter.clone());
        }
        self.programmed.insert(key, (filter, permanent));
    }

    /// Forgets everything without writing (the bridge went away: the kernel dropped it).
    pub fn clear(&mut self) {
        self.programmed.clear();
        self.wanted.clear();
        self.keys.clear();
        self.refused.clear();
        self.shares.clear_entries();
    }

    /// A write failed: the kernel state of `key` is unknown, so the next change writes it
    /// again (a failed delete is dropped: it is gone or will be replaced).
    pub fn write_failed(&mut self, key: &EntryKey) {
        if let Some((old, _)) = self.programmed.remove(key) {
            self.remove_keys(key, &old);
        }
    }

    /// Makes `key` forward `desired` (None: no entry). Emits the writes needed into `ops`.
    pub fn set_desired(
        &mut self,
        key: EntryKey,
        desired: Option<EntryFilter>,
        ops: &mut Vec<MdbOp>,
    ) -> SetOutcome {
        if !self.per_source {
            return self.set_written(key, desired, ops);
        }
        let g = (key.vid, key.group);
        let before = self.group_plain(g);
        let ports = self.wanted.entry(g).or_default();
        match &desired {
            Some(f) => {
                ports.insert(key.port, f.clone());
            }
            None => {
                ports.remove(&key.port);
            }
        }
        if ports.is_empty() {
            self.wanted.remove(&g);
        }
        let after = self.group_plain(g);
        if before == after {
            let f = desired.map(|f| self.form(f, after));
            return self.set_written(key, f, ops);
        }
        // The group's form changed: every port of it is written in the new one.
        let mut outcome = SetOutcome::Ok;
        if desired.is_none() {
            outcome = self.set_written(key, None, ops);
        }
        let all: Vec<(u32, EntryFilter)> = self
            .wanted
            .get(&g)
            .map(|p| p.iter().map(|(p, f)| (*p, f.clone())).collect())
            .unwrap_or_default();
        for (port, f) in all {
            let k = EntryKey { port, ..key };
            let o = self.set_written(k, Some(self.form(f, after)), ops);
            if port == key.port {
                outcome = o;
            }
        }
        outcome
    }

    /// Some port wants a plain (*,G) of group `g` (see [`MdbTable::wanted`]).
    fn group_plain(&self, g: (u16, IpAddr)) -> bool {
        self.wanted
            .get(&g)
            .is_some_and(|p| p.values().any(|f| !matches!(f, EntryFilter::Include(_))))
    }

    /// `f` as written to a group whose form is plain (or not).
    fn form(&self, f: EntryFilter, plain: bool) -> EntryFilter {
        match f {
            EntryFilter::Include(_) if plain => EntryFilter::Any,
            f => f,
        }
    }

    /// [`MdbTable::set_desired`] in the form already decided.
    fn set_written(
        &mut self,
        key: EntryKey,
        desired: Option<EntryFilter>,
        ops: &mut Vec<MdbOp>,
    ) -> SetOutcome {
        let Some(mut want) = desired else {
            self.refused.remove(&key);
            if let Some((old, _)) = self.programmed.remove(&key) {
                self.remove_keys(&key, &old);
                self.emit(key, Some(&old), None, ops);
                self.retry_refused(ops);
            }
            return SetOutcome::Ok;
        };
        let mut outcome = SetOutcome::Ok;
        if want.sources().len() > MAX_SOURCES {
            want = match want {
                // More sources than the kernel takes: forward them all (over-forwarding
                // is safe; dropping a wanted source is not).
                EntryFilter::Include(_) => EntryFilter::Any,
                // Block the first 31 only: the rest are forwarded.
                EntryFilter::Exclude(mut y) => {
                    y.truncate(MAX_SOURCES);
                    EntryFilter::Exclude(y)
                }
                EntryFilter::Any => EntryFilter::Any,
            };
            outcome = SetOutcome::Degraded;
        }
        if self.per_source {
            if let EntryFilter::Exclude(y) = &want {
                // No way to block sources without a source list: forward them all.
                if !y.is_empty() {
                    outcome = SetOutcome::Degraded;
                }
                want = EntryFilter::Any;
            }
        }
        let old = self.programmed.get(&key).cloned();
        if old.as_ref().is_some_and(|(f, p)| *f == want && *p) {
            return outcome;
        }
        let used = self.keys.len();
        // Near the limit, a port at its share takes no new key (see `fair`).
        if old.is_none()
            && near(used, self.limit)
            && !self.exempt.contains(&key)
            && self.shares.full(key.port)
            && self.new_keys(&key, &EntryFilter::Any, None) > 0
        {
            if self.refused.insert(key, want) {
                self.refused_total += 1;
            }
            return SetOutcome::Refused;
        }
        if used + self.new_keys(&key, &want, old.as_ref().map(|o| &o.0)) > self.limit {
            let any = EntryFilter::Any;
            if used + self.new_keys(&key, &any, old.as_ref().map(|o| &o.0)) <= self.limit {
                want = any;
                outcome = SetOutcome::Degraded;
                if old.as_ref().is_some_and(|(f, p)| *f == want && *p) {
                    return outcome;
                }
            } else {
                if old.is_none() && self.refused.insert(key, want) {
                    self.refused_total += 1;
                }
                return SetOutcome::Refused;
            }
        }
        if outcome == SetOutcome::Degraded {
            self.degraded_total += 1;
        }
        self.refused.remove(&key);
        if let Some((o, _)) = &old {
            self.remove_keys(&key, o);
        }
        self.add_keys(&key, &want);
        // An adopted temporary entry is written again (permanent) even when unchanged.
        let written = old.as_ref().filter(|(f, p)| *p || *f != want).map(|o| &o.0);
        self.emit(key, written, Some(&want), ops);
        self.programmed.insert(key, (want, true));
        outcome
    }

    /// Writes refused entries while there is room (after deletes freed keys), in turn
    /// port after port, skipping ports at their share while the limit is near.
    fn retry_refused(&mut self, ops: &mut Vec<MdbOp>) {
        while self.keys.len() < self.limit {
            let (shares, near_now) = (&self.shares, near(self.keys.len(), self.limit));
            let Some((key, want)) = self.refused.next(|p| near_now && shares.full(p)) else {
                return;
            };
            let counted = self.refused_total;
            if self.set_desired(key, Some(want), ops) == SetOutcome::Refused {
                // Still no room for it: it stays refused (already counted).
                self.refused_total = counted;
                return;
            }
        }
    }

    /// Every programmed entry of `port` (to delete when the port leaves).
    pub fn entries_of_port(&self, port: u32) -> BTreeSet<EntryKey> {
        self.programmed
            .keys()
            .filter(|k| k.port == port)
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod per_source_tests;
