//! Capture: one TPACKET_V2 ring (AF_PACKET, the ports' frames by a BPF filter on their
//! ifindexes) captures the IGMP, MLD and PIM frames of every port; its reader task copies
//! them into batches for the main loop, which hands each to the core and forwards reports
//! out of router ports through the ports' send-only sockets (RFC 4541 §2.1.1).

use std::time::Duration;

use igmpd_packet::{CaptureRing, Filter, RingControl};
use igmpd_querier::core::Instant;
use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::SnoopDaemon;

/// Frames per batch handed from the reader to the main loop.
const BATCH: usize = 256;
/// Bytes per batch: a batch is handed over at [`BATCH`] frames or this many bytes.
const BATCH_BYTES: usize = 64 * 1024;
/// Batches waiting for the main loop.
const BACKLOG: usize = 1024;
/// Bytes (in KiB) of frames between the capture and the core: each batch holds permits
/// for its bytes until the main loop has handled it. When the backlog is full the reader
/// waits, and the ring (then the kernel, which counts its drops) holds the rest.
const BACKLOG_KIB: usize = 16 * 1024;

/// A capture wake-up that found this many frames starts a pause (see `read_ring`).
const MODERATE_AT: usize = 4;
/// The pause: the runtime's timer resolution (1-2 ms in practice); the ring holds 10 912
/// frames, 36 ms of a 300k/s flood.
const MODERATION: Duration = Duration::from_millis(1);

/// Frames from the capture ring, copied out: (start, length, VID, port) into `data`.
pub(super) struct RxBatch {
    data: Vec<u8>,
    frames: Vec<(usize, usize, u16, u32)>,
    /// Frames longer than a ring slot whose whole copy was lost (the socket's queue was
    /// full): counted with the capture drops.
    lost: u64,
    /// The batch's share of [`BACKLOG_KIB`], given back when it is dropped.
    _bytes: Option<OwnedSemaphorePermit>,
}

/// The capture ring of all ports while snooping is active, its reader, and what was lost.
pub(super) struct Capture {
    control: Option<RingControl>,
    reader: Option<JoinHandle<()>>,
    /// Frames the kernel dropped or lost whole, over every activation.
    pub(super) drops: u64,
    /// Frames that did not decode.
    pub(super) decode_drops: u64,
    tx: mpsc::Sender<RxBatch>,
    pub(super) rx: mpsc::Receiver<RxBatch>,
}

impl Capture {
    pub(super) fn new() -> Self {
        let (tx, rx) = mpsc::channel(BACKLOG);
        Capture {
            control: None,
            reader: None,
            drops: 0,
            decode_drops: 0,
            tx,
            rx,
        }
    }

    /// Opens the ring (a ring left from an activation that failed half-way goes first) and
    /// starts its reader. The filter lets nothing through until [`Capture::set_ports`].
    pub(super) fn start(&mut self) -> std::io::Result<()> {
        self.stop();
        let (ring, control) = CaptureRing::open(Filter::IgmpMldPim)?;
        let backlog = Arc::new(Semaphore::new(BACKLOG_KIB));
        self.reader = Some(tokio::spawn(read_ring(ring, self.tx.clone(), backlog)));
        self.control = Some(control);
        Ok(())
    }

    pub(super) fn stop(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        self.collect_drops();
        self.control = None;
    }

    /// Adds the kernel's drop counter (read and reset) to [`Capture::drops`].
    pub(super) fn collect_drops(&mut self) {
        if let Some(c) = &self.control {
            if let Ok((_, drops)) = c.stats() {
                self.drops += u64::from(drops);
            }
        }
    }

    /// Points the ring's filter at `ports` (nothing without a ring).
    pub(super) fn set_ports(&self, ports: &[u32]) -> std::io::Result<()> {
        match &self.control {
            Some(c) => c.set_ports(ports),
            None => Ok(()),
        }
    }

    /// `PACKET_MR_ALLMULTI` on `ifindex` for the ring (or off again), so that the port
    /// hands over multicast it would otherwise filter (nothing without a ring).
    pub(super) fn allmulti(&self, ifindex: u32, on: bool) -> std::io::Result<()> {
        match (&self.control, on) {
            (Some(c), true) => c.add_allmulti(ifindex),
            (Some(c), false) => c.drop_allmulti(ifindex),
            (None, _) => Ok(()),
        }
    }
}

impl SnoopDaemon {
    /// Frames the reader copied out: each to the core, reports forwarded as they came.
    pub(super) fn handle_batch(&mut self, now: Instant, b: RxBatch) {
        if !self.active {
            return;
        }
        self.capture.drops += b.lost;
        let mut fwd = std::mem::take(&mut self.forward);
        for &(start, len, vid, port) in &b.frames {
            let bytes = &b.data[start..start + len];
            let frame = match igmpd_wire::parse_ethernet(bytes) {
                Ok(f) => f,
                Err(e) => {
                    self.capture.decode_drops += 1;
                    debug!(port, reason = e.reason(), "dropped undecodable frame");
                    continue;
                }
            };
            fwd.clear();
            self.snooper
                .receive(now, port, vid, &frame.packet, &mut fwd);
            if !fwd.is_empty() {
                let vlan = self.snooper.egress_vlan(port, vid);
                // The ACL took records or sources out: what is left goes instead.
                let rewritten = self.snooper.take_rewritten().map(|packet| {
                    igmpd_wire::Frame {
                        ethernet: frame.ethernet,
                        packet,
                    }
                    .to_bytes()
                });
                let out = rewritten.as_deref().unwrap_or(bytes);
                for target in &fwd {
                    self.send_on_port(*target, out, vlan);
                }
            }
        }
        self.forward = fwd;
        self.flush_outputs();
    }

    /// RFC 4541 §2.1.1: the captured report, as it arrived, out of a router port.
    /// Never out of a port that STP does not let forward (listening, learning, blocking,
    /// disabled): the bridge itself sends nothing there either.
    /// On a VLAN-filtering bridge only into a port in `vid`, tagged unless the port's
    /// egress for `vid` is untagged (as the bridge itself would send it).
    pub(super) fn send_on_port(&self, port: u32, bytes: &[u8], vid: u16) {
        let Some(s) = self
            .ports
            .get(&port)
            .filter(|p| p.forwarding)
            .and_then(|p| p.socket.as_ref())
        else {
            return;
        };
        let vlans = self.snooper.port_vlans(port);
        if vid != 0 && vlans.is_some_and(|v| !v.vids.contains(&vid)) {
            return;
        }
        let untagged = vlans.is_some_and(|v| v.untagged.contains(&vid));
        let r = if vid == 0 || untagged {
            s.send(bytes)
        } else {
            s.send(&tag(bytes, vid))
        };
        if let Err(e) = r {
            debug!(port, error = %e, "forwarding a report failed");
        }
    }
}

/// `bytes` with an 802.1Q tag for `vid` after the MAC addresses (the kernel strips tags
/// before packet sockets see frames).
pub(super) fn tag(bytes: &[u8], vid: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 4);
    out.extend_from_slice(&bytes[..12.min(bytes.len())]);
    out.extend_from_slice(&[0x81, 0x00]);
    out.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    out.extend_from_slice(bytes.get(12..).unwrap_or(&[]));
    out
}

/// Reads the capture ring: every frame the kernel handed over, copied into batches for
/// the main loop (the slots go straight back to the kernel).
///
/// Interrupt moderation, as NAPI does for a NIC: a wake-up that found at least
/// [`MODERATE_AT`] frames means reports are streaming in, so the reader takes the ring out
/// of the reactor and pauses for [`MODERATION`], then reads all that arrived meanwhile.
/// The kernel signals readiness for every frame it writes into a V2 ring; in a re-join
/// flood those wake-ups (on the receiving CPU, which the sender shares) cut the rate the
/// sender reached from ~300k to ~275k reports/s. A lone join is still read at once.
async fn read_ring(mut ring: CaptureRing, tx: mpsc::Sender<RxBatch>, backlog: Arc<Semaphore>) {
    loop {
        let mut afd = match ring.into_async() {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "capture ring: cannot wait for frames");
                return;
            }
        };
        loop {
            let mut guard = match afd.readable_mut().await {
                Ok(g) => g,
                Err(e) => {
                    warn!(error = %e, "capture ring failed");
                    return;
                }
            };
            let Some(taken) = drain_ring(guard.get_inner_mut(), &tx, &backlog).await else {
                return;
            };
            // Readiness is cleared only if no frame was handed over since it was reported
            // (the runtime compares event ticks), so none is missed.
            guard.clear_ready();
            if taken >= MODERATE_AT {
                break;
            }
        }
        // Out of the reactor, the kernel's readiness events wake nobody; registered again
        // after the pause, the frames that wait are reported at once.
        ring = afd.into_inner();
        tokio::time::sleep(MODERATION).await;
    }
}

/// Reads every frame waiting in the ring into batches for the main loop. Returns how many
/// (None: the main loop is gone).
async fn drain_ring(
    ring: &mut CaptureRing,
    tx: &mpsc::Sender<RxBatch>,
    backlog: &Arc<Semaphore>,
) -> Option<usize> {
    let mut batch = new_batch();
    let mut taken = 0;
    loop {
        // A batch at a time, so a long burst reaches the main loop in pieces (its MDB
        // writes then start while the rest is read).
        let n = ring.read(BATCH - batch.frames.len(), |f| {
            if f.data.len() < f.wire_len {
                // Truncated, and its whole copy lost (the socket's queue was full).
                batch.lost += 1;
                return;
            }
            let start = batch.data.len();
            batch.data.extend_from_slice(f.data);
            batch
                .frames
                .push((start, f.data.len(), f.vlan.unwrap_or(0), f.ifindex));
        });
        if n == 0 {
            break;
        }
        taken += n;
        if batch.frames.len() >= BATCH || batch.data.len() >= BATCH_BYTES {
            let full = std::mem::replace(&mut batch, new_batch());
            send(tx, backlog, full).await?;
            // Let the main loop take this batch now: its MDB writes then go to the
            // writer thread while we read on, instead of after the ring is empty (a
            // burst of joins reached the MDB in one lump at the end).
            tokio::task::yield_now().await;
        }
    }
    if !batch.frames.is_empty() || batch.lost > 0 {
        send(tx, backlog, batch).await?;
    }
    Some(taken)
}

/// Hands `batch` to the main loop once the backlog has room for its bytes (None: the main
/// loop is gone).
async fn send(
    tx: &mpsc::Sender<RxBatch>,
    backlog: &Arc<Semaphore>,
    mut batch: RxBatch,
) -> Option<()> {
    let kib = batch.data.len().div_ceil(1024).clamp(1, BACKLOG_KIB) as u32;
    batch._bytes = Some(backlog.clone().acquire_many_owned(kib).await.ok()?);
    tx.send(batch).await.ok()
}

fn new_batch() -> RxBatch {
    RxBatch {
        data: Vec::with_capacity(16 * 1024),
        frames: Vec::with_capacity(BATCH),
        lost: 0,
        _bytes: None,
    }
}
