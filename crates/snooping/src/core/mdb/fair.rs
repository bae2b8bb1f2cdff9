//! Fair use of the bridge's MDB key limit among its ports: once the limit is near
//! ([`near`]), a new entry of a port that already holds its share waits, and entries that
//! wait for room get it in turn, one port after the other (not lowest port first, which let
//! one port's backlog take every key freed).
//!
//! A port's share, in kernel keys (an entry with a source list uses one per source), is
//! its `max_groups` where configured, else an even share of what the configured ones leave
//! ([`Shares::set`]).

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::{EntryFilter, EntryKey};

/// Whether `used` of `limit` keys is near enough the limit for shares to apply: 3/4.
pub(super) fn near(used: usize, limit: usize) -> bool {
    used * 4 >= limit * 3
}

/// Each port's share and the kernel keys its entries use.
#[derive(Debug, Clone, Default)]
pub(super) struct Shares {
    configured: HashMap<u32, usize>,
    default: usize,
    entries: HashMap<u32, usize>,
}

impl Shares {
    /// Shares for `limit` keys among `ports`, each with its `max_groups` if configured.
    pub(super) fn set(&mut self, limit: usize, ports: impl Iterator<Item = (u32, Option<usize>)>) {
        self.configured.clear();
        let mut others = 0usize;
        for (p, max) in ports {
            match max {
                Some(n) => {
                    self.configured.insert(p, n);
                }
                None => others += 1,
            }
        }
        let taken: usize = self.configured.values().sum();
        self.default = (limit.saturating_sub(taken) / others.max(1)).max(1);
    }

    /// The kernel keys of a port's programmed entries changed by `delta`.
    pub(super) fn count(&mut self, port: u32, delta: isize) {
        let n = self.entries.entry(port).or_default();
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            self.entries.remove(&port);
        }
    }

    /// Whether `port` holds its share already.
    pub(super) fn full(&self, port: u32) -> bool {
        let share = self.configured.get(&port).copied().unwrap_or(self.default);
        self.entries.get(&port).copied().unwrap_or(0) >= share
    }

    pub(super) fn clear_entries(&mut self) {
        self.entries.clear();
    }
}

/// Entries refused at the limit, waiting for room: what each wants, and per port a queue in
/// refusal order.
#[derive(Debug, Clone, Default)]
pub(super) struct Waiting {
    wants: HashMap<EntryKey, EntryFilter>,
    queues: BTreeMap<u32, VecDeque<EntryKey>>,
    /// The port served last.
    cursor: u32,
}

impl Waiting {
    /// Queues `key`; true when it was not waiting yet.
    pub(super) fn insert(&mut self, key: EntryKey, want: EntryFilter) -> bool {
        if self.wants.insert(key, want).is_some() {
            return false;
        }
        self.queues.entry(key.port).or_default().push_back(key);
        true
    }

    /// `key` no longer waits. Its queue slot goes when it comes up, or at a compaction: a
    /// queue holds at most twice as many slots as entries wait in all, plus a few.
    pub(super) fn remove(&mut self, key: &EntryKey) -> Option<EntryFilter> {
        let want = self.wants.remove(key)?;
        if let Some(q) = self.queues.get_mut(&key.port) {
            if q.len() > 16 && q.len() > 2 * self.wants.len() {
                q.retain(|k| self.wants.contains_key(k));
            }
        }
        Some(want)
    }

    /// Entries waiting.
    pub(super) fn len(&self) -> usize {
        self.wants.len()
    }

    pub(super) fn clear(&mut self) {
        self.wants.clear();
        self.queues.clear();
    }

    /// The next waiting entry in turn: of the first port after the one served last (in
    /// ifindex order, wrapping) that has one and is not `skip`ped. Taken out of the queue.
    pub(super) fn next(&mut self, skip: impl Fn(u32) -> bool) -> Option<(EntryKey, EntryFilter)> {
        let order: Vec<u32> = self
            .queues
            .range(self.cursor.saturating_add(1)..)
            .chain(self.queues.range(..=self.cursor))
            .map(|(p, _)| *p)
            .collect();
        for port in order {
            if skip(port) {
                continue;
            }
            let Some(q) = self.queues.get_mut(&port) else {
                continue;
            };
            while let Some(key) = q.pop_front() {
                if let Some(want) = self.wants.remove(&key) {
                    if q.is_empty() {
                        self.queues.remove(&port);
                    }
                    self.cursor = port;
                    return Some((key, want));
                }
            }
            self.queues.remove(&port);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(port: u32, n: u8) -> EntryKey {
        EntryKey {
            port,
            vid: 0,
            group: std::net::IpAddr::V4([239, 0, 0, n].into()),
        }
    }

    #[test]
    fn waiting_entries_are_served_port_after_port() {
        let mut w = Waiting::default();
        for n in 0..5 {
            w.insert(k(1, n), EntryFilter::Any);
        }
        w.insert(k(2, 0), EntryFilter::Any);
        w.insert(k(3, 0), EntryFilter::Any);
        assert!(!w.insert(k(3, 0), EntryFilter::Any));
        w.remove(&k(1, 1));
        let order: Vec<(u32, u8)> = std::iter::from_fn(|| w.next(|_| false))
            .map(|(key, _)| match key.group {
                std::net::IpAddr::V4(g) => (key.port, g.octets()[3]),
                std::net::IpAddr::V6(_) => unreachable!(),
            })
            .collect();
        assert_eq!(order, [(1, 0), (2, 0), (3, 0), (1, 2), (1, 3), (1, 4)]);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn shares_split_what_configured_ports_leave() {
        let mut s = Shares::default();
        s.set(100, [(1, Some(10)), (2, None), (3, None)].into_iter());
        for _ in 0..10 {
            s.count(1, 1);
        }
        assert!(s.full(1));
        for _ in 0..44 {
            s.count(2, 1);
        }
        assert!(!s.full(2), "45 each");
        s.count(2, 1);
        assert!(s.full(2));
        s.count(2, -1);
        assert!(!s.full(2));
        assert!(near(75, 100) && !near(74, 100));
    }
}
