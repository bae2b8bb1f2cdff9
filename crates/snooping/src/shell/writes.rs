//! The daemon's MDB write path: the core's operations go to the [`writer`] thread, or,
//! when they are few and everything is quiet, are written here and now with the
//! [`InlineWriter`]; refusals come back to the daemon ([`SnoopDaemon::write_failed`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use igmpd_netlink::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::warn;

use super::writer::{self, Dialect, InlineWriter, WriteCmd, WriteError};
use super::{SnoopDaemon, MDB_PROTO};
use crate::core::MdbOp;

/// MDB writes this long after the previous ones may be written on the main thread (see
/// [`Writes::write`]).
const INLINE_QUIET: Duration = Duration::from_millis(2);

/// The writer thread, the inline writer, and what the daemon knows of them.
pub(super) struct Writes {
    tx: mpsc::UnboundedSender<WriteCmd>,
    /// Operations sent to the writer, against `state.idle` (what it had received when it
    /// last had nothing to do): equal means the writer is idle.
    sent: u64,
    state: Arc<writer::WriterState>,
    /// For the few writes of a quiet moment (see [`InlineWriter`]).
    inline: Option<InlineWriter>,
    last: Option<std::time::Instant>,
    task: Option<JoinHandle<()>>,
    /// The writer's refusals.
    pub(super) errors: mpsc::UnboundedReceiver<WriteError>,
    /// Writes refused so far.
    pub(super) failed: u64,
    /// Writes handed to the kernel so far (by either writer; refused ones included).
    pub(super) written: u64,
    /// How requests are written for this kernel (shared with both writers).
    pub(super) dialect: Arc<Dialect>,
}

/// How long a barrier waits for the writer to catch up.
pub(super) const BARRIER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long closing waits for the writer thread.
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

impl Writes {
    /// Starts the writer thread (on `handle` if it cannot have a socket of its own).
    pub(super) fn start(handle: Handle) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (etx, errors) = mpsc::unbounded_channel();
        let state = Arc::new(writer::WriterState::default());
        let dialect = Arc::new(Dialect::new(MDB_PROTO));
        let task = writer::spawn(handle, dialect.clone(), rx, etx, state.clone());
        Writes {
            tx,
            sent: 0,
            state,
            inline: InlineWriter::open(dialect.clone()).ok(),
            dialect,
            last: None,
            task: Some(task),
            errors,
            failed: 0,
            written: 0,
        }
    }

    /// Queues one MDB write with the writer thread.
    pub(super) fn queue(&mut self, bridge: u32, op: MdbOp, permanent: bool) {
        if self
            .tx
            .send(WriteCmd::Op {
                bridge,
                op,
                permanent,
            })
            .is_ok()
        {
            self.sent += 1;
            self.written += 1;
        }
    }

    /// Sends of the writer thread that failed (and were sent again).
    pub(super) fn send_failures(&self) -> u64 {
        self.state.send_failures.load(Ordering::Relaxed)
    }

    /// Writes `ops`: here and now when they are few, the writer thread is idle and the
    /// last writes were a while ago (one thread wake-up less on the way of a single join),
    /// else through the writer. In a burst the writer keeps them all: written here, their
    /// kernel work would stop this thread from reading the burst (measured: 4000 joins
    /// took 77 ms instead of 45). Returns the refusals of what was written here.
    fn write(&mut self, bridge: u32, ops: Vec<MdbOp>) -> Vec<WriteError> {
        let now = std::time::Instant::now();
        let quiet = self
            .last
            .is_none_or(|t| now.duration_since(t) >= INLINE_QUIET);
        self.last = Some(now);
        let idle = self.state.idle.load(Ordering::Acquire) == self.sent;
        let n = ops.len();
        let (ops, refused) = match &mut self.inline {
            Some(w) if quiet && idle && ops.len() <= writer::INLINE_MAX => w.write(bridge, ops),
            _ => (ops, Vec::new()),
        };
        // Written here; the rest is counted as it is queued.
        self.written += (n - ops.len()) as u64;
        for op in ops {
            self.queue(bridge, op, true);
        }
        refused
    }

    /// Waits (10 s at most) until everything queued before is written.
    pub(super) async fn barrier(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(WriteCmd::Barrier(tx)).is_ok() {
            let _ = tokio::time::timeout(BARRIER_TIMEOUT, rx).await;
        }
    }

    /// Closes the queue and waits (5 s at most) for the writer to finish.
    pub(super) async fn close(&mut self) {
        let (tx, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(w) = self.task.take() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, w).await;
        }
    }
}

impl SnoopDaemon {
    /// Writes `ops` on the bridge (see [`Writes::write`]).
    pub(super) fn write_mdb(&mut self, bridge: u32, ops: Vec<MdbOp>) {
        for e in self.writes.write(bridge, ops) {
            self.write_failed(e);
        }
    }

    /// A write the kernel refused: the core writes the entry again, with back-off.
    pub(super) fn write_failed(&mut self, e: WriteError) {
        self.writes.failed += 1;
        if Some(e.bridge) == self.bridge_ifindex() && e.set {
            let now = self.now();
            self.snooper
                .mdb_write_failed(now, &e.key, &e.error.to_string());
        }
        let port = self.ports.get(&e.key.port).map_or("?", |p| p.name.as_str());
        warn!(bridge = %self.settings.bridge, port, group = %e.key.group, vid = e.key.vid, error = %e.error, "MDB write failed");
    }
}
