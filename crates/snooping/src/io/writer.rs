//! MDB writes off the hot path: the core's operations are queued, coalesced per entry
//! (only the latest state of an entry is written) and sent with many requests in flight on
//! one netlink socket; never two at once for the same entry, so they cannot be reordered.

use std::collections::{HashMap, HashSet, VecDeque};

use futures::stream::{FuturesUnordered, StreamExt};
use igmpd_netlink::mdb::FilterMode;
use igmpd_netlink::{Error, Handle};
use tokio::sync::{mpsc, oneshot};

use crate::core::{EntryFilter, EntryKey, MdbOp};

/// Requests in flight at once. Measured: a few hundred keep the kernel busy without
/// growing the socket's queue without bound.
pub const MAX_IN_FLIGHT: usize = 256;

/// A command for the writer task.
#[derive(Debug)]
pub enum WriteCmd {
    /// Write this operation on `bridge` (permanent entries unless `permanent` is false).
    Op {
        /// Bridge ifindex.
        bridge: u32,
        /// The operation.
        op: MdbOp,
        /// Permanent (normal) or temporary (at a clean exit, so the kernel ages them).
        permanent: bool,
    },
    /// Answer once everything queued before has been written.
    Barrier(oneshot::Sender<()>),
}

/// A write the kernel refused.
#[derive(Debug)]
pub struct WriteError {
    /// Bridge ifindex.
    pub bridge: u32,
    /// The entry.
    pub key: EntryKey,
    /// True for a set, false for a delete.
    pub set: bool,
    /// What the kernel said.
    pub error: Error,
}

type Key = (u32, EntryKey);

/// Runs until `rx` closes and everything is written.
pub async fn run(
    handle: Handle,
    proto: u8,
    mut rx: mpsc::UnboundedReceiver<WriteCmd>,
    errors: mpsc::UnboundedSender<WriteError>,
) {
    let mut pending: HashMap<Key, (MdbOp, bool)> = HashMap::new();
    let mut queue: VecDeque<Key> = VecDeque::new();
    let mut in_flight: HashSet<Key> = HashSet::new();
    let mut futs = FuturesUnordered::new();
    let mut barriers: Vec<oneshot::Sender<()>> = Vec::new();
    let mut open = true;
    loop {
        while futs.len() < MAX_IN_FLIGHT {
            let Some(key) = queue.pop_front() else { break };
            let Some((op, permanent)) = pending.remove(&key) else {
                continue;
            };
            in_flight.insert(key);
            let h = handle.clone();
            futs.push(async move {
                let r = write(&h, proto, key.0, &op, permanent).await;
                (key, matches!(op, MdbOp::Set(..)), r)
            });
        }
        if pending.is_empty() && futs.is_empty() {
            for b in barriers.drain(..) {
                let _ = b.send(());
            }
            if !open {
                return;
            }
        }
        tokio::select! {
            cmd = rx.recv(), if open => match cmd {
                Some(WriteCmd::Op { bridge, op, permanent }) => {
                    let key = (bridge, match &op { MdbOp::Set(k, _) | MdbOp::Delete(k) => *k });
                    let queued = pending.insert(key, (op, permanent)).is_some();
                    if !queued && !in_flight.contains(&key) {
                        queue.push_back(key);
                    }
                }
                Some(WriteCmd::Barrier(tx)) => barriers.push(tx),
                None => open = false,
            },
            Some((key, set, r)) = futs.next(), if !futs.is_empty() => {
                in_flight.remove(&key);
                if pending.contains_key(&key) {
                    queue.push_back(key);
                }
                match r {
                    Ok(()) => {}
                    // Deleting what is not there is what we wanted.
                    Err(Error::EntryNotFound(_)) if !set => {}
                    Err(error) => {
                        let _ = errors.send(WriteError { bridge: key.0, key: key.1, set, error });
                    }
                }
            }
        }
    }
}

async fn write(
    h: &Handle,
    proto: u8,
    bridge: u32,
    op: &MdbOp,
    permanent: bool,
) -> Result<(), Error> {
    match op {
        MdbOp::Set(k, f) => {
            let mut req = h.mdb().add(bridge, k.port, k.group).proto(proto).replace();
            if k.vid != 0 {
                req = req.vid(k.vid);
            }
            req = if permanent {
                req.permanent()
            } else {
                req.temporary()
            };
            req = match f {
                EntryFilter::Any => req,
                EntryFilter::Include(s) => req
                    .filter_mode(FilterMode::Include)
                    .source_list(s.iter().copied()),
                EntryFilter::Exclude(s) => req
                    .filter_mode(FilterMode::Exclude)
                    .source_list(s.iter().copied()),
            };
            req.execute().await
        }
        MdbOp::Delete(k) => {
            let mut req = h.mdb().del(bridge, k.port, k.group);
            if k.vid != 0 {
                req = req.vid(k.vid);
            }
            req.execute().await
        }
    }
}
