//! The writer's bookkeeping, without I/O (see the parent module): the latest operation per
//! entry, the order in which entries wait, the entries with a write in flight.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

use super::WriteCmd;
use crate::core::{EntryKey, MdbOp};

/// An entry of a bridge (with its source for an (S,G) entry).
pub(super) type Key = (u32, EntryKey, Option<IpAddr>);

/// A write and whether its entry is permanent.
pub(super) type Write = (MdbOp, bool);

/// The writer's bookkeeping, without I/O: the latest operation per entry, the order in
/// which entries wait, the entries with a write in flight (busy: a newer operation for
/// one waits until that write ends), barriers, and how many operations were received.
#[derive(Debug, Default)]
pub(super) struct Queue {
    pub(super) received: u64,
    pub(super) pending: HashMap<Key, Write>,
    pub(super) order: VecDeque<Key>,
    pub(super) busy: HashSet<Key>,
    pub(super) barriers: Vec<oneshot::Sender<()>>,
}

impl Queue {
    /// Takes a command; false when the channel closed (None).
    pub(super) fn take(&mut self, cmd: Option<WriteCmd>) -> bool {
        match cmd {
            Some(WriteCmd::Op {
                bridge,
                op,
                permanent,
            }) => {
                self.received += 1;
                let (entry, source) = op.target();
                let key = (bridge, entry, source);
                let queued = self.pending.insert(key, (op, permanent)).is_some();
                if !queued && !self.busy.contains(&key) {
                    self.order.push_back(key);
                }
                true
            }
            Some(WriteCmd::Barrier(tx)) => {
                self.barriers.push(tx);
                true
            }
            None => false,
        }
    }

    /// The next write to start; its entry is busy until [`Queue::done`] or
    /// [`Queue::again`].
    pub(super) fn next(&mut self) -> Option<(Key, Write)> {
        loop {
            let key = self.order.pop_front()?;
            if let Some(w) = self.pending.remove(&key) {
                self.busy.insert(key);
                return Some((key, w));
            }
        }
    }

    /// The write of `key` ended (written or refused): a newer operation for it may go.
    pub(super) fn done(&mut self, key: Key) {
        self.busy.remove(&key);
        if self.pending.contains_key(&key) {
            self.order.push_back(key);
        }
    }

    /// The outcome of `w`, the write of `key`, was lost: it goes again, unless a newer
    /// operation for the entry replaces it (writes are idempotent).
    pub(super) fn again(&mut self, key: Key, w: Write) {
        self.busy.remove(&key);
        self.pending.entry(key).or_insert(w);
        self.order.push_back(key);
    }

    /// When nothing waits and nothing is in flight: `idle` learns how many operations were
    /// received, and the barriers are answered. Returns whether that is so.
    pub(super) fn settle(&mut self, idle: &AtomicU64) -> bool {
        if !self.pending.is_empty() || !self.busy.is_empty() {
            return false;
        }
        idle.store(self.received, Ordering::Release);
        for b in self.barriers.drain(..) {
            let _ = b.send(());
        }
        true
    }
}
