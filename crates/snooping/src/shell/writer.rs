//! MDB writes off the hot path: the core's operations are queued, coalesced per entry
//! (only the latest state of an entry is written) and sent with many requests in flight on
//! one netlink socket; never two at once for the same entry, so they cannot be reordered.
//!
//! Requests go out in batches ([`igmpd_netlink::batch`]): up to [`BATCH`] messages in one
//! `send` on a socket of the writer's own (the kernel's rtnetlink handles every message of
//! one send in that call), and the acks are read back in bulk. Measured (scripts/bench.sh):
//! one request per syscall through the shared connection cost ~25 µs per new group
//! against the kernel's own ~9 µs learning; the batch removes the per-request syscalls,
//! futures and wake-ups. What is here is igmpd's part: which entry an operation writes, the
//! request for it, and the queue ([`Queue`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use igmpd_netlink::batch::{self, Batch};
use igmpd_netlink::mdb::FilterMode;
use igmpd_netlink::netlink_packet_core::NetlinkMessage;
use igmpd_netlink::probe::MdbFeatures;
use igmpd_netlink::{Error, Handle, MdbAddRequest, MdbDelRequest, RequestKind, RtnlMessage};
use igmpd_runtime::reactor::register_readable;
use socket2::Socket;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};

use crate::core::{EntryFilter, EntryKey, MdbOp};

/// Requests in flight at once. Measured: a few hundred keep the kernel busy without
/// growing the socket's queue without bound.
pub const MAX_IN_FLIGHT: usize = 256;

/// Messages per `send` of the batched writer.
pub const BATCH: usize = 64;

/// At most this many operations are written inline; more go to the writer thread.
pub const INLINE_MAX: usize = 16;

/// What the writer shares with its sender: how many operations it had received when it
/// last had nothing to do (see [`InlineWriter`]), and how many of its sends failed.
#[derive(Debug, Default)]
pub struct WriterState {
    pub idle: AtomicU64,
    pub send_failures: AtomicU64,
}

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

mod queue;
use queue::{Key, Queue, Write};

/// Starts the writer on a thread of its own and returns a task that ends when it does.
///
/// Every MDB write costs its kernel work (`br_mdb_add`, the notification, the ack) in the
/// writing thread's `send`; measured with `perf` during the 10 000-group convergence of
/// scripts/bench.sh that was a third of the daemon's thread, done in series with reading
/// and parsing the reports. On a thread of its own it runs beside them, on another CPU.
/// If no thread can be had, the writer runs as a task of the caller's runtime.
pub fn spawn(
    handle: Handle,
    dialect: Arc<Dialect>,
    rx: mpsc::UnboundedReceiver<WriteCmd>,
    errors: mpsc::UnboundedSender<WriteError>,
    state: Arc<WriterState>,
) -> tokio::task::JoinHandle<()> {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!(error = %e, "MDB writer: no runtime of its own; sharing the main thread");
            return tokio::spawn(run(handle, dialect, rx, errors, state));
        }
    };
    // The arguments follow once the thread exists, so that they are still here if it
    // cannot be started.
    let (args_tx, args_rx) = std::sync::mpsc::sync_channel(1);
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("mdb-writer".into())
        .spawn(move || {
            if let Ok((handle, dialect, rx, errors, state)) = args_rx.recv() {
                rt.block_on(run(handle, dialect, rx, errors, state));
            }
            let _ = done_tx.send(());
        });
    match thread {
        Ok(_) => {
            let _ = args_tx.send((handle, dialect, rx, errors, state));
            tokio::spawn(async move {
                let _ = done_rx.await;
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "MDB writer: no thread of its own; sharing the main thread");
            tokio::spawn(run(handle, dialect, rx, errors, state))
        }
    }
}

/// Runs until `rx` closes and everything is written: batched on a socket of its own, or,
/// when that socket cannot be opened, one request at a time through `handle`.
///
/// Whenever nothing is queued or in flight, `state.idle` is set to the number of operations
/// received so far: a sender that has sent exactly that many knows the writer has
/// nothing of its own to write (see [`InlineWriter`]).
pub async fn run(
    handle: Handle,
    dialect: Arc<Dialect>,
    rx: mpsc::UnboundedReceiver<WriteCmd>,
    errors: mpsc::UnboundedSender<WriteError>,
    state: Arc<WriterState>,
) {
    match open_socket() {
        Ok(sock) => run_batched(sock, dialect, rx, errors, state).await,
        Err(e) => {
            tracing::warn!(error = %e, "MDB writer: no netlink socket of its own; writing one request at a time");
            run_single(handle, dialect, rx, errors, state).await
        }
    }
}

fn open_socket() -> std::io::Result<AsyncFd<Socket>> {
    let s = batch::route_socket()?;
    // Room for the acks of everything in flight (rmem_max caps it; overruns re-send).
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(1 << 20);
    register_readable(s)
}

/// Writes on the caller's thread, for the few writes of a quiet moment.
///
/// The writer thread buys throughput in bursts at the price of a thread wake-up per write;
/// on a busy two-CPU machine that wake-up put the p99 of a single join's way to the MDB
/// at 3-5 ms (scripts/bench.sh). When the writer is idle (it has received every operation
/// sent to it and has nothing queued or in flight) the caller may write a handful itself:
/// rtnetlink handles requests inside the `send`, so the acks are queued when it returns.
/// Only the caller sends to the writer, so nothing can overtake these writes.
#[derive(Debug)]
pub struct InlineWriter {
    sock: Socket,
    dialect: Arc<Dialect>,
    batch: Batch,
    buf: Vec<u8>,
}

impl InlineWriter {
    /// A netlink socket of its own.
    pub fn open(dialect: Arc<Dialect>) -> std::io::Result<Self> {
        Ok(InlineWriter {
            sock: batch::route_socket()?,
            dialect,
            batch: Batch::new(),
            buf: vec![0u8; 16 * 1024],
        })
    }

    /// Writes `ops` on `bridge`. Returns the operations whose outcome it did not see (to
    /// be handed to the writer thread; writes are idempotent) and the refusals.
    pub fn write(&mut self, bridge: u32, ops: Vec<MdbOp>) -> (Vec<MdbOp>, Vec<WriteError>) {
        let mut sent: HashMap<u32, MdbOp> = HashMap::with_capacity(ops.len());
        self.batch.clear();
        for op in ops {
            let (pre, msg) = messages(&self.dialect, bridge, &op, true);
            if let Some(pre) = pre {
                // Its ack has no entry in `sent`: an error there is no refusal.
                self.batch.push(pre);
            }
            let seq = self.batch.push(msg);
            sent.insert(seq, op);
        }
        if batch::send(&self.sock, &self.batch).is_err() {
            return (sent.into_values().collect(), Vec::new());
        }
        let mut refused = Vec::new();
        let d = &self.dialect;
        while !sent.is_empty() {
            let r = batch::recv(&self.sock, &mut self.buf, |seq, result| {
                let Some(op) = sent.remove(&seq) else { return };
                refused.extend(result.err().and_then(|k| refusal(d, bridge, &op, k)));
            });
            if !matches!(r, Ok(n) if n > 0) {
                break;
            }
        }
        (sent.into_values().collect(), refused)
    }
}

/// How requests are written for the running kernel: igmpd's protocol value where the
/// kernel takes one, and, where it takes no `NLM_F_REPLACE` (before 6.3: an add over an
/// entry is EEXIST), every add goes after a delete of the same entry in the same batch.
/// Set once the kernel was probed; requests built before that use the current kernel's
/// form.
#[derive(Debug)]
pub struct Dialect {
    proto: u8,
    protocol: AtomicBool,
    replace: AtomicBool,
}

impl Dialect {
    /// A current kernel's dialect with igmpd's protocol value `proto`.
    pub fn new(proto: u8) -> Self {
        Dialect {
            proto,
            protocol: AtomicBool::new(true),
            replace: AtomicBool::new(true),
        }
    }

    /// What the probe found.
    pub fn set(&self, f: &MdbFeatures) {
        self.protocol.store(f.protocol, Ordering::Relaxed);
        self.replace.store(f.replace, Ordering::Relaxed);
    }

    /// The protocol value to send, if the kernel takes one.
    fn proto(&self) -> Option<u8> {
        self.protocol.load(Ordering::Relaxed).then_some(self.proto)
    }

    fn replace(&self) -> bool {
        self.replace.load(Ordering::Relaxed)
    }
}

/// The requests that write `op` on `bridge`: the request itself, and before it, on a
/// kernel without replace, the delete that makes room for an add.
fn messages(
    d: &Dialect,
    bridge: u32,
    op: &MdbOp,
    permanent: bool,
) -> (
    Option<NetlinkMessage<RtnlMessage>>,
    NetlinkMessage<RtnlMessage>,
) {
    let pre = (op.is_set() && !d.replace()).then(|| message(d, bridge, &op.undo(), true));
    (pre, message(d, bridge, op, permanent))
}

/// The request that writes `op` on `bridge`.
fn message(d: &Dialect, bridge: u32, op: &MdbOp, permanent: bool) -> NetlinkMessage<RtnlMessage> {
    let (k, source) = op.target();
    if !op.is_set() {
        let mut req = MdbDelRequest::new(bridge, k.port, k.group);
        if k.vid != 0 {
            req = req.vid(k.vid);
        }
        if let Some(s) = source {
            req = req.source(s);
        }
        return req.message();
    }
    let mut req = MdbAddRequest::new(bridge, k.port, k.group);
    if let Some(p) = d.proto() {
        req = req.proto(p);
    }
    if d.replace() {
        req = req.replace();
    }
    if k.vid != 0 {
        req = req.vid(k.vid);
    }
    if let Some(s) = source {
        req = req.source(s);
    }
    req = if permanent {
        req.permanent()
    } else {
        req.temporary()
    };
    req = match op {
        MdbOp::Set(_, EntryFilter::Include(s)) => req
            .filter_mode(FilterMode::Include)
            .source_list(s.iter().copied()),
        MdbOp::Set(_, EntryFilter::Exclude(s)) => req
            .filter_mode(FilterMode::Exclude)
            .source_list(s.iter().copied()),
        _ => req,
    };
    req.message()
}

/// What the kernel's answer to `op` is checked as.
fn kind(d: &Dialect, op: &MdbOp) -> RequestKind {
    if op.is_set() {
        RequestKind::MdbAdd {
            protocol: d.proto(),
        }
    } else {
        RequestKind::MdbDel
    }
}

/// The kernel's refusal of `op` as a [`WriteError`]; None for deleting what is not there,
/// which is what a delete wants.
fn refusal(
    d: &Dialect,
    bridge: u32,
    op: &MdbOp,
    k: igmpd_netlink::KernelError,
) -> Option<WriteError> {
    refused(bridge, op, Error::from_kernel(kind(d, op), k))
}

/// [`refusal`] for an error already typed.
fn refused(bridge: u32, op: &MdbOp, error: Error) -> Option<WriteError> {
    let set = op.is_set();
    match error {
        Error::EntryNotFound(_) if !set => None,
        error => Some(WriteError {
            bridge,
            key: op.target().0,
            set,
            error,
        }),
    }
}

/// Takes every command waiting in `rx` after `first`, so that batches fill. False when
/// the channel closed.
fn take_all(
    q: &mut Queue,
    rx: &mut mpsc::UnboundedReceiver<WriteCmd>,
    first: Option<WriteCmd>,
) -> bool {
    let mut next = first;
    loop {
        if !q.take(next) {
            return false;
        }
        next = match rx.try_recv() {
            Ok(c) => Some(c),
            Err(mpsc::error::TryRecvError::Empty) => return true,
            Err(mpsc::error::TryRecvError::Disconnected) => None,
        };
    }
}

/// Writes in flight by sequence number.
type InFlight = HashMap<u32, (Key, Write)>;

/// Empties `out` and fills it with the next writes of `q`: at most [`BATCH`], and no more
/// than [`MAX_IN_FLIGHT`] in flight. The sequence numbers of the writes put in flight
/// (empty when there is nothing to send).
fn fill(q: &mut Queue, out: &mut Batch, in_flight: &mut InFlight, d: &Dialect) -> Vec<u32> {
    out.clear();
    let mut seqs = Vec::new();
    while out.len() < BATCH && in_flight.len() < MAX_IN_FLIGHT {
        let Some((key, w)) = q.next() else { break };
        let (pre, msg) = messages(d, key.0, &w.0, w.1);
        if let Some(pre) = pre {
            // Not in flight: its ack is read and dropped.
            out.push(pre);
        }
        let seq = out.push(msg);
        in_flight.insert(seq, (key, w));
        seqs.push(seq);
    }
    seqs
}

/// A batch that could not be sent: its writes wait in `q` again (their entries are no
/// longer busy), to go out with the next batch.
fn unsent(q: &mut Queue, in_flight: &mut InFlight, seqs: &[u32]) {
    for seq in seqs {
        if let Some((key, w)) = in_flight.remove(seq) {
            q.again(key, w);
        }
    }
}

/// Failure injection for the end-to-end tests, in debug builds only (release builds never
/// fail here): `IGMPD_TEST_WRITER_SEND_FAILS=N` makes the batched writer's first N sends
/// fail, as a send the kernel refuses outright would.
fn injected_send_failure() -> Option<std::io::Error> {
    #[cfg(debug_assertions)]
    {
        use std::sync::atomic::AtomicI64;
        // -1: not read yet.
        static LEFT: AtomicI64 = AtomicI64::new(-1);
        if LEFT.load(Ordering::Relaxed) == -1 {
            let n = std::env::var("IGMPD_TEST_WRITER_SEND_FAILS")
                .ok()
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0);
            let _ = LEFT.compare_exchange(-1, n.max(0), Ordering::Relaxed, Ordering::Relaxed);
        }
        if LEFT
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n > 0).then(|| n - 1)
            })
            .is_ok()
        {
            return Some(std::io::Error::other("injected send failure"));
        }
    }
    None
}

/// The pause after a failed send, doubling from 10 ms to 1 s while sends keep failing.
fn send_backoff(failures: u32) -> Duration {
    igmpd_runtime::clock::backoff(failures, Duration::from_millis(10), Duration::from_secs(1))
}

async fn run_batched(
    sock: AsyncFd<Socket>,
    dialect: Arc<Dialect>,
    mut rx: mpsc::UnboundedReceiver<WriteCmd>,
    errors: mpsc::UnboundedSender<WriteError>,
    state: Arc<WriterState>,
) {
    let mut q = Queue::default();
    let mut in_flight = InFlight::new();
    let mut open = true;
    let mut out = Batch::with_capacity(BATCH * 128);
    let mut buf = vec![0u8; 256 * 1024];
    let mut failures = 0u32;
    loop {
        // Send what may go, in batches.
        'send: while in_flight.len() < MAX_IN_FLIGHT {
            let seqs = fill(&mut q, &mut out, &mut in_flight, &dialect);
            if seqs.is_empty() {
                break;
            }
            loop {
                match injected_send_failure().map_or_else(|| batch::send(sock.get_ref(), &out), Err)
                {
                    Ok(()) => {
                        failures = 0;
                        break;
                    }
                    // The kernel takes requests inside the call; should it ever say
                    // "later", try again shortly (the socket is registered for reading).
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    // No ack will come for these: they wait again (else their entries
                    // stayed busy for good) and go out after a pause, from here (nothing
                    // else would wake the loop for them).
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        state.send_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, writes = seqs.len(), "MDB writer: send failed; writing again shortly");
                        unsent(&mut q, &mut in_flight, &seqs);
                        tokio::time::sleep(send_backoff(failures)).await;
                        continue 'send;
                    }
                }
            }
        }
        if q.settle(&state.idle) && !open {
            return;
        }
        tokio::select! {
            cmd = rx.recv(), if open => open = take_all(&mut q, &mut rx, cmd),
            g = sock.readable(), if !in_flight.is_empty() => {
                let Ok(mut g) = g else { continue };
                loop {
                    let r = batch::recv(g.get_inner(), &mut buf, |seq, result| {
                        let Some((key, (op, _))) = in_flight.remove(&seq) else { return };
                        q.done(key);
                        if let Some(e) = result.err().and_then(|k| refusal(&dialect, key.0, &op, k)) {
                            let _ = errors.send(e);
                        }
                    });
                    match r {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            g.clear_ready();
                            break;
                        }
                        Err(e) => {
                            // ENOBUFS: acks were lost. Writes are idempotent (replace;
                            // deleting what is gone is fine): send them all again.
                            tracing::debug!(error = %e, "MDB writer: ack overrun; re-sending in-flight writes");
                            for (_, (key, w)) in in_flight.drain() {
                                q.again(key, w);
                            }
                            break;
                        }
                    }
                }
            }
        }
    }
}

async fn run_single(
    handle: Handle,
    dialect: Arc<Dialect>,
    mut rx: mpsc::UnboundedReceiver<WriteCmd>,
    errors: mpsc::UnboundedSender<WriteError>,
    state: Arc<WriterState>,
) {
    let mut q = Queue::default();
    let mut futs = FuturesUnordered::new();
    let mut open = true;
    loop {
        while futs.len() < MAX_IN_FLIGHT {
            let Some((key, (op, permanent))) = q.next() else {
                break;
            };
            let h = handle.clone();
            let (pre, msg) = messages(&dialect, key.0, &op, permanent);
            let kind = kind(&dialect, &op);
            futs.push(async move {
                if let Some(pre) = pre {
                    let _ = h.ack(pre, RequestKind::MdbDel).await;
                }
                let r = h.ack(msg, kind).await;
                (key, op, r)
            });
        }
        if q.settle(&state.idle) && !open {
            return;
        }
        tokio::select! {
            cmd = rx.recv(), if open => open = q.take(cmd),
            Some((key, op, r)) = futs.next(), if !futs.is_empty() => {
                q.done(key);
                if let Some(e) = r.err().and_then(|error| refused(key.0, &op, error)) {
                    let _ = errors.send(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
