//! One group record and what it is made of: source records, the hosts that reported it,
//! and the fingerprint hasher of its forwarding state.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use smallvec::SmallVec;

use super::FilterMode;
use crate::core::config::Generation;
use crate::core::time::Instant;

/// Source record: a running timer, or `None` for a timer of zero (an excluded source in
/// EXCLUDE mode, RFC 9776 §6.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Source {
    pub(super) timer: Option<Instant>,
    /// Group-and-source-specific queries still to send for this source (§6.6.3.2).
    pub(super) rexmit: u8,
}

/// One group record.
#[derive(Debug, Clone)]
pub(super) struct Group<A> {
    pub(super) mode: FilterMode,
    /// Group Timer; only meaningful in EXCLUDE mode.
    pub(super) group_timer: Instant,
    pub(super) sources: BTreeMap<A, Source>,
    /// IGMPv1 Host Present timer (§7.3.2).
    pub(super) v1_host: Option<Instant>,
    /// IGMPv2 / MLDv1 Host Present timer.
    pub(super) v2_host: Option<Instant>,
    /// Group-specific queries still to send (§6.6.3.1).
    pub(super) group_rexmit: u8,
    /// When the next specific query (group or sources) is due.
    pub(super) rexmit_at: Option<Instant>,
    /// Who reported the group and when, to tell which hosts still answer.
    pub(super) reporters: Reporters<A>,
    pub(super) last_reporter: Option<A>,
    /// More than one host reported the group since its record was made. IGMPv1/v2 and
    /// MLDv1 hosts that hear each other suppress their reports (RFC 2236 §3, RFC 2710 §4),
    /// so in those modes a host that stopped reporting may still be a member: fast leave
    /// then waits for the last-member queries.
    pub(super) shared: bool,
    /// The deadline this group is filed under in the queue.
    pub(super) queued_at: Option<Instant>,
    /// The last word on it was a host leaving (a leave, TO_IN, BLOCK) or a group-specific
    /// query: when it ends, a host left ([`super::Removal::Left`]), not a timeout.
    pub(super) leaving: bool,
}

impl<A: Ord + Copy> Group<A> {
    pub(super) fn new(now: Instant) -> Self {
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
            shared: false,
            queued_at: None,
            leaving: false,
        }
    }

    pub(super) fn compat(&self) -> Generation {
        if self.v1_host.is_some() {
            Generation::V1
        } else if self.v2_host.is_some() {
            Generation::V2
        } else {
            Generation::V3
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
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
    pub(super) fn forwarding_fingerprint(&self) -> u64
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

    pub(super) fn lower_source(&mut self, s: A, to: Instant, lmqc: u8) {
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
pub(super) struct Reporters<A>(pub(super) SmallVec<[(A, Instant); 1]>);

impl<A> Default for Reporters<A> {
    fn default() -> Self {
        Reporters(SmallVec::new())
    }
}

/// How many hosts are remembered per group (per port, or per LAN for the querier): a
/// host spoofing sources cannot grow a group's record without bound, and the work per
/// report stays small. When full, a new host takes the place of the one heard longest ago.
pub const MAX_REPORTERS: usize = 32;

impl<A: Ord + Copy> Reporters<A> {
    /// Records a report from `host` at `at`.
    pub(super) fn insert(&mut self, host: A, at: Instant) {
        match self.0.binary_search_by(|(h, _)| h.cmp(&host)) {
            Ok(i) => self.0[i].1 = at,
            Err(i) if self.0.len() < MAX_REPORTERS => self.0.insert(i, (host, at)),
            Err(_) => {
                if let Some(oldest) = (0..self.0.len()).min_by_key(|j| self.0[*j].1) {
                    self.0.remove(oldest);
                }
                let i = self.0.partition_point(|(h, _)| *h < host);
                self.0.insert(i, (host, at));
            }
        }
    }

    /// Forgets `host` (it left).
    pub(super) fn remove(&mut self, host: &A) {
        if let Ok(i) = self.0.binary_search_by(|(h, _)| h.cmp(host)) {
            self.0.remove(i);
        }
    }

    /// Whether a host other than `host` is remembered.
    pub(super) fn any_other(&self, host: &A) -> bool {
        self.0.iter().any(|(h, _)| h != host)
    }

    /// Keeps the hosts whose last report time passes `keep`.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(Instant) -> bool) {
        self.0.retain(|(_, t)| keep(*t));
    }
}

/// A small, deterministic hasher for fingerprints: eight bytes per multiply (a byte-wise
/// FNV-1a over the mode's discriminant and each address showed in the snooping profile).
pub(super) struct Fingerprinter(u64);

impl Fingerprinter {
    pub(super) fn mix(&mut self, w: u64) {
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
