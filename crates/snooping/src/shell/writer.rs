//! MDB writes off the hot path: the core's operations are queued, coalesced per entry
//! (only the latest state of an entry is written) and sent with many requests in flight on
//! one netlink socket; never two at once for the same entry, so they cannot be reordered.
//!
//! Requests go out in batches: up to [`BATCH`] messages in one `send` on a socket of the
//! writer's own (the kernel's rtnetlink handles every message of one send in that call),
//! and the acks are read back in bulk. Measured (scripts/bench.sh): one request per
//! syscall through the shared connection cost ~25 µs per new group against the kernel's
//! own ~9 µs learning; the batch removes the per-request syscalls, futures and wake-ups.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use igmpd_netlink::mdb::FilterMode;
use igmpd_netlink::netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use igmpd_netlink::{
    Error, Handle, KernelError, MdbAddRequest, MdbDelRequest, RequestKind, RtnlMessage,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
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

/// Messages per `send` of the batched writer.
pub const BATCH: usize = 64;

/// Starts the writer on a thread of its own and returns a task that ends when it does.
///
/// Every MDB write costs its kernel work (`br_mdb_add`, the notification, the ack) in the
/// writing thread's `send`; measured with `perf` during the 10 000-group convergence of
/// scripts/bench.sh that was a third of the daemon's thread, done in series with reading
/// and parsing the reports. On a thread of its own it runs beside them, on another CPU.
/// If no thread can be had, the writer runs as a task of the caller's runtime.
pub fn spawn(
    handle: Handle,
    proto: u8,
    rx: mpsc::UnboundedReceiver<WriteCmd>,
    errors: mpsc::UnboundedSender<WriteError>,
    idle: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!(error = %e, "MDB writer: no runtime of its own; sharing the main thread");
            return tokio::spawn(run(handle, proto, rx, errors, idle));
        }
    };
    // The arguments follow once the thread exists, so that they are still here if it
    // cannot be started.
    let (args_tx, args_rx) = std::sync::mpsc::sync_channel(1);
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("mdb-writer".into())
        .spawn(move || {
            if let Ok((handle, rx, errors, idle)) = args_rx.recv() {
                rt.block_on(run(handle, proto, rx, errors, idle));
            }
            let _ = done_tx.send(());
        });
    match thread {
        Ok(_) => {
            let _ = args_tx.send((handle, rx, errors, idle));
            tokio::spawn(async move {
                let _ = done_rx.await;
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "MDB writer: no thread of its own; sharing the main thread");
            tokio::spawn(run(handle, proto, rx, errors, idle))
        }
    }
}

/// Runs until `rx` closes and everything is written: batched on a socket of its own, or,
/// when that socket cannot be opened, one request at a time through `handle`.
///
/// Whenever nothing is queued or in flight, `idle` is set to the number of operations
/// received so far: a sender that has sent exactly that many knows the writer has
/// nothing of its own to write (see [`InlineWriter`]).
pub async fn run(
    handle: Handle,
    proto: u8,
    rx: mpsc::UnboundedReceiver<WriteCmd>,
    errors: mpsc::UnboundedSender<WriteError>,
    idle: Arc<AtomicU64>,
) {
    match open_socket() {
        Ok(sock) => run_batched(sock, proto, rx, errors, idle).await,
        Err(e) => {
            tracing::warn!(error = %e, "MDB writer: no netlink socket of its own; writing one request at a time");
            run_single(handle, proto, rx, errors, idle).await
        }
    }
}

/// A non-blocking rtnetlink socket of the writer's own (requests and their acks only).
fn route_socket() -> std::io::Result<Socket> {
    let s = Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::RAW.cloexec(),
        Some(Protocol::from(libc::NETLINK_ROUTE)),
    )?;
    s.set_nonblocking(true)?;
    Ok(s)
}

fn open_socket() -> std::io::Result<AsyncFd<Socket>> {
    let s = route_socket()?;
    // Room for the acks of everything in flight (rmem_max caps it; overruns re-send).
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(1 << 20);
    // The AsyncFd owns the socket for its whole life: no other handle to the descriptor
    // exists, which is what the deprecation of `new` asks callers to guarantee.
    #[allow(deprecated)]
    AsyncFd::new(s)
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
    proto: u8,
    seq: u32,
    out: Vec<u8>,
    buf: Vec<u8>,
}

/// At most this many operations are written inline; more go to the writer thread.
pub const INLINE_MAX: usize = 16;

impl InlineWriter {
    /// A netlink socket of its own.
    pub fn open(proto: u8) -> std::io::Result<Self> {
        Ok(InlineWriter {
            sock: route_socket()?,
            proto,
            seq: 0,
            out: Vec::new(),
            buf: vec![0u8; 16 * 1024],
        })
    }

    /// Writes `ops` on `bridge`. Returns the operations whose outcome it did not see (to
    /// be handed to the writer thread; writes are idempotent) and the refusals.
    pub fn write(&mut self, bridge: u32, ops: Vec<MdbOp>) -> (Vec<MdbOp>, Vec<WriteError>) {
        let mut sent: HashMap<u32, MdbOp> = HashMap::with_capacity(ops.len());
        self.out.clear();
        for op in ops {
            self.seq = self.seq.wrapping_add(1).max(1);
            encode(&mut self.out, self.seq, self.proto, bridge, &op, true);
            sent.insert(self.seq, op);
        }
        if self.sock.send(&self.out).is_err() {
            return (sent.into_values().collect(), Vec::new());
        }
        let mut refused = Vec::new();
        let proto = self.proto;
        while !sent.is_empty() {
            let n = match self.sock.read(&mut self.buf) {
                Ok(n) if n > 0 => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                _ => break,
            };
            acks(&self.buf[..n], &mut |seq, result| {
                let Some(op) = sent.remove(&seq) else { return };
                if let Some(k) = result {
                    let error = Error::from_kernel(kind(proto, &op), k);
                    refused.extend(refusal(bridge, &op, error));
                }
            });
        }
        (sent.into_values().collect(), refused)
    }
}

struct Sent {
    key: Key,
    /// The write itself, to send again if its ack is lost.
    op: (MdbOp, bool),
}

/// Appends `op` as one request with sequence number `seq` to `out`.
fn encode(out: &mut Vec<u8>, seq: u32, proto: u8, bridge: u32, op: &MdbOp, permanent: bool) {
    let mut m = message(proto, bridge, op, permanent);
    m.header.sequence_number = seq;
    m.finalize();
    let start = out.len();
    out.resize(start + m.buffer_len(), 0);
    m.serialize(&mut out[start..]);
}

/// What the kernel's answer to `op` is checked as.
fn kind(proto: u8, op: &MdbOp) -> RequestKind {
    match op {
        MdbOp::Set(..) => RequestKind::MdbAdd {
            protocol: Some(proto),
        },
        MdbOp::Delete(_) => RequestKind::MdbDel,
    }
}

/// The entry `op` writes.
fn entry(op: &MdbOp) -> EntryKey {
    match op {
        MdbOp::Set(k, _) | MdbOp::Delete(k) => *k,
    }
}

/// A kernel refusal of `op` as a [`WriteError`]; None for deleting what is not there,
/// which is what a delete wants.
fn refusal(bridge: u32, op: &MdbOp, error: Error) -> Option<WriteError> {
    let set = matches!(op, MdbOp::Set(..));
    match error {
        Error::EntryNotFound(_) if !set => None,
        error => Some(WriteError {
            bridge,
            key: entry(op),
            set,
            error,
        }),
    }
}

fn message(proto: u8, bridge: u32, op: &MdbOp, permanent: bool) -> NetlinkMessage<RtnlMessage> {
    match op {
        MdbOp::Set(k, f) => {
            let mut req = MdbAddRequest::new(bridge, k.port, k.group)
                .proto(proto)
                .replace();
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
            req.message()
        }
        MdbOp::Delete(k) => {
            let mut req = MdbDelRequest::new(bridge, k.port, k.group);
            if k.vid != 0 {
                req = req.vid(k.vid);
            }
            req.message()
        }
    }
}

async fn run_batched(
    sock: AsyncFd<Socket>,
    proto: u8,
    mut rx: mpsc::UnboundedReceiver<WriteCmd>,
    errors: mpsc::UnboundedSender<WriteError>,
    idle: Arc<AtomicU64>,
) {
    let mut received: u64 = 0;
    let mut pending: HashMap<Key, (MdbOp, bool)> = HashMap::new();
    let mut queue: VecDeque<Key> = VecDeque::new();
    let mut in_flight: HashMap<u32, Sent> = HashMap::new();
    let mut busy: HashSet<Key> = HashSet::new();
    let mut barriers: Vec<oneshot::Sender<()>> = Vec::new();
    let mut open = true;
    let mut seq: u32 = 1;
    let mut out: Vec<u8> = Vec::with_capacity(BATCH * 128);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        // Send what may go, in batches.
        while in_flight.len() < MAX_IN_FLIGHT && !queue.is_empty() {
            out.clear();
            let mut n = 0;
            while n < BATCH && in_flight.len() < MAX_IN_FLIGHT {
                let Some(key) = queue.pop_front() else { break };
                let Some((op, permanent)) = pending.remove(&key) else {
                    continue;
                };
                seq = seq.wrapping_add(1).max(1);
                encode(&mut out, seq, proto, key.0, &op, permanent);
                busy.insert(key);
                in_flight.insert(
                    seq,
                    Sent {
                        key,
                        op: (op, permanent),
                    },
                );
                n += 1;
            }
            if out.is_empty() {
                break;
            }
            loop {
                let r = sock.get_ref().send(&out);
                match r {
                    Ok(_) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if let Ok(mut g) = sock.writable().await {
                            g.clear_ready();
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "MDB writer: send failed");
                        break;
                    }
                }
            }
        }
        if pending.is_empty() && in_flight.is_empty() {
            idle.store(received, Ordering::Release);
            for b in barriers.drain(..) {
                let _ = b.send(());
            }
            if !open {
                return;
            }
        }
        tokio::select! {
            cmd = rx.recv(), if open => {
                let mut next = cmd;
                // Take everything queued now, so that batches fill.
                loop {
                    match next {
                        Some(WriteCmd::Op { bridge, op, permanent }) => {
                            received += 1;
                            let key = (bridge, entry(&op));
                            let queued = pending.insert(key, (op, permanent)).is_some();
                            if !queued && !busy.contains(&key) {
                                queue.push_back(key);
                            }
                        }
                        Some(WriteCmd::Barrier(tx)) => barriers.push(tx),
                        None => {
                            open = false;
                            break;
                        }
                    }
                    match rx.try_recv() {
                        Ok(c) => next = Some(c),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => next = None,
                    }
                }
            }
            g = sock.readable(), if !in_flight.is_empty() => {
                let Ok(mut g) = g else { continue };
                loop {
                    let r = g.get_inner().read(&mut buf);
                    let n = match r {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            g.clear_ready();
                            break;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            // ENOBUFS: acks were lost. Writes are idempotent (replace;
                            // deleting what is gone is fine): send them all again.
                            tracing::debug!(error = %e, "MDB writer: ack overrun; re-sending in-flight writes");
                            for (_, s) in in_flight.drain() {
                                busy.remove(&s.key);
                                pending.entry(s.key).or_insert(s.op);
                                queue.push_back(s.key);
                            }
                            break;
                        }
                    };
                    acks(&buf[..n], &mut |seq, result| {
                        let Some(s) = in_flight.remove(&seq) else { return };
                        busy.remove(&s.key);
                        if pending.contains_key(&s.key) {
                            queue.push_back(s.key);
                        }
                        if let Some(k) = result {
                            let op = &s.op.0;
                            if let Some(e) = refusal(s.key.0, op, Error::from_kernel(kind(proto, op), k)) {
                                let _ = errors.send(e);
                            }
                        }
                    });
                }
            }
        }
    }
}

/// Calls `f(seq, None)` for each ack in `b`, `f(seq, Some(error))` for each refusal.
fn acks(mut b: &[u8], f: &mut dyn FnMut(u32, Option<KernelError>)) {
    while b.len() >= 16 {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < 16 || len > b.len() {
            return;
        }
        let seq = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
        if let Ok(m) = NetlinkMessage::<RtnlMessage>::deserialize(&b[..len]) {
            if let NetlinkPayload::Error(e) = &m.payload {
                if e.code.is_none() {
                    f(seq, None);
                } else {
                    f(
                        seq,
                        Some(KernelError::from_error_message(e, m.header.flags)),
                    );
                }
            }
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
}

async fn run_single(
    handle: Handle,
    proto: u8,
    mut rx: mpsc::UnboundedReceiver<WriteCmd>,
    errors: mpsc::UnboundedSender<WriteError>,
    idle: Arc<AtomicU64>,
) {
    let mut received: u64 = 0;
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
                let r = h
                    .ack(message(proto, key.0, &op, permanent), kind(proto, &op))
                    .await;
                (key, op, r)
            });
        }
        if pending.is_empty() && futs.is_empty() {
            idle.store(received, Ordering::Release);
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
                    received += 1;
                    let key = (bridge, entry(&op));
                    let queued = pending.insert(key, (op, permanent)).is_some();
                    if !queued && !in_flight.contains(&key) {
                        queue.push_back(key);
                    }
                }
                Some(WriteCmd::Barrier(tx)) => barriers.push(tx),
                None => open = false,
            },
            Some((key, op, r)) = futs.next(), if !futs.is_empty() => {
                in_flight.remove(&key);
                if pending.contains_key(&key) {
                    queue.push_back(key);
                }
                if let Some(e) = r.err().and_then(|error| refusal(key.0, &op, error)) {
                    let _ = errors.send(e);
                }
            }
        }
    }
}
