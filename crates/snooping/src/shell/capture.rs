//! Capture: one TPACKET_V2 ring (AF_PACKET, the ports' frames by a BPF filter on their
//! ifindexes) captures the IGMP, MLD and PIM frames of every port; its reader task copies
//! them into the per-port [`Backlog`], from which the main loop takes them port after port,
//! hands each to the core and forwards reports out of router ports through the ports'
//! send-only sockets (RFC 4541 §2.1.1).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use igmpd_packet::{CaptureRing, Filter, RingControl};
use igmpd_querier::core::Instant;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::backlog::Backlog;
use super::SnoopDaemon;

/// Frames the main loop takes from the backlog at a time, before it looks at its other
/// events (status requests, netlink) again.
const BATCH: usize = 256;

/// Frames the reader copies per wake-up before it pauses (a drain that stops early always
/// pauses, and the frames left are reported again after the pause).
const DRAIN_MAX: usize = 4096;

/// A capture wake-up that found this many frames starts a pause (see `read_ring`).
const MODERATE_AT: usize = 4;
/// The pause: the runtime's timer resolution (1-2 ms in practice); the ring holds 10 912
/// frames, 36 ms of a 300k/s flood.
const MODERATION: Duration = Duration::from_millis(1);

/// The reader's thread and how to stop it.
struct Reader {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        // Dropping the sender (or sending) ends the thread's loop at its next await.
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The capture ring of all ports while snooping is active, its reader, and what was lost.
pub(super) struct Capture {
    control: Option<RingControl>,
    reader: Option<Reader>,
    /// Frames the kernel dropped or lost whole, over every activation.
    pub(super) drops: u64,
    /// Frames that did not decode.
    pub(super) decode_drops: u64,
    /// Frames waiting for the main loop.
    pub(super) backlog: Arc<Mutex<Backlog>>,
    wake_tx: mpsc::Sender<()>,
    /// Frames wait in the backlog.
    pub(super) wake: mpsc::Receiver<()>,
    /// What the main loop took, kept to spare an allocation per batch.
    taken: Vec<(u32, u16, Vec<u8>)>,
}

impl Capture {
    pub(super) fn new() -> Self {
        let (wake_tx, wake) = mpsc::channel(1);
        Capture {
            control: None,
            reader: None,
            drops: 0,
            decode_drops: 0,
            backlog: Arc::new(Mutex::new(Backlog::default())),
            wake_tx,
            wake,
            taken: Vec::with_capacity(BATCH),
        }
    }

    /// Opens the ring (a ring left from an activation that failed half-way goes first) and
    /// starts its reader. The filter lets nothing through until [`Capture::set_ports`].
    pub(super) fn start(&mut self) -> std::io::Result<()> {
        self.stop();
        let (ring, control) = CaptureRing::open(Filter::IgmpMldPim)?;
        let (backlog, wake) = (Arc::clone(&self.backlog), self.wake_tx.clone());
        let (stop, stopped) = oneshot::channel();
        // The reader has a thread (and a small runtime) of its own: it drains the ring
        // while the main loop is busy (building a status document, a burst of MDB work),
        // so the kernel drops no frame of a quiet port then; the per-port backlog holds
        // them.
        let thread = std::thread::Builder::new()
            .name("igmpd-capture".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        warn!(error = %e, "capture reader: no runtime");
                        return;
                    }
                };
                rt.block_on(async move {
                    tokio::select! {
                        () = read_ring(ring, backlog, wake) => {}
                        _ = stopped => {}
                    }
                });
            })?;
        self.reader = Some(Reader {
            stop: Some(stop),
            thread: Some(thread),
        });
        self.control = Some(control);
        Ok(())
    }

    pub(super) fn stop(&mut self) {
        // Joins the reader's thread (it ends at once: its loop waits on the stop signal).
        self.reader = None;
        self.collect_drops();
        if let Ok(mut b) = self.backlog.lock() {
            b.clear();
        }
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

    /// Frames each port lost because its share of the backlog was full.
    pub(super) fn backlog_drops(&self) -> std::collections::BTreeMap<u32, u64> {
        self.backlog
            .lock()
            .map_or_else(|_| Default::default(), |b| b.dropped.clone())
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
    /// Up to [`BATCH`] frames from the backlog, port after port: each to the core, reports
    /// forwarded as they came. Wakes itself again while frames wait, so that the loop
    /// serves its other events in between.
    pub(super) fn handle_backlog(&mut self, now: Instant) {
        let mut taken = std::mem::take(&mut self.capture.taken);
        let more = match self.capture.backlog.lock() {
            Ok(mut b) => {
                b.take(BATCH, &mut taken);
                self.capture.drops += std::mem::take(&mut b.lost);
                !b.is_empty()
            }
            Err(_) => false,
        };
        if more {
            let _ = self.capture.wake_tx.try_send(());
        }
        if self.active {
            let mut fwd = std::mem::take(&mut self.forward);
            for (port, vid, bytes) in &taken {
                self.handle_frame(now, *port, *vid, bytes, &mut fwd);
            }
            self.forward = fwd;
            self.flush_outputs();
        }
        taken.clear();
        self.capture.taken = taken;
    }

    fn handle_frame(
        &mut self,
        now: Instant,
        port: u32,
        vid: u16,
        bytes: &[u8],
        fwd: &mut Vec<u32>,
    ) {
        let frame = match igmpd_wire::parse_ethernet(bytes) {
            Ok(f) => f,
            Err(e) => {
                self.capture.decode_drops += 1;
                debug!(port, reason = e.reason(), "dropped undecodable frame");
                return;
            }
        };
        fwd.clear();
        self.snooper.receive(now, port, vid, &frame.packet, fwd);
        if fwd.is_empty() {
            return;
        }
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
        for target in fwd.iter() {
            self.send_on_port(*target, out, vlan);
        }
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

/// Reads the capture ring: every frame the kernel handed over, copied into the backlog
/// (the slots go straight back to the kernel), then wakes the main loop.
///
/// Interrupt moderation, as NAPI does for a NIC: a wake-up that found at least
/// [`MODERATE_AT`] frames means reports are streaming in, so the reader takes the ring out
/// of the reactor and pauses for [`MODERATION`], then reads all that arrived meanwhile.
/// The kernel signals readiness for every frame it writes into a V2 ring; in a re-join
/// flood those wake-ups (on the receiving CPU, which the sender shares) cut the rate the
/// sender reached from ~300k to ~275k reports/s. A lone join is still read at once.
async fn read_ring(mut ring: CaptureRing, backlog: Arc<Mutex<Backlog>>, wake: mpsc::Sender<()>) {
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
            let taken = drain_ring(guard.get_inner_mut(), &backlog, &wake);
            if wake.is_closed() {
                return;
            }
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

/// Copies the frames waiting in the ring into the backlog (a frame over its port's budget
/// is dropped there and counted), [`BATCH`] at a time under the backlog's lock, at most
/// [`DRAIN_MAX`] per call, and wakes the main loop after each chunk. Returns how many were
/// read.
fn drain_ring(ring: &mut CaptureRing, backlog: &Mutex<Backlog>, wake: &mpsc::Sender<()>) -> usize {
    let mut taken = 0;
    while taken < DRAIN_MAX {
        let n = {
            let Ok(mut b) = backlog.lock() else {
                return taken;
            };
            ring.read(BATCH, |f| {
                if f.data.len() < f.wire_len {
                    // Truncated, and its whole copy lost (the socket's queue was full).
                    b.lost += 1;
                    return;
                }
                b.push(f.ifindex, f.vlan.unwrap_or(0), f.data);
            })
        };
        if n == 0 {
            break;
        }
        taken += n;
        // Each chunk wakes the main loop at once: it works on them while this thread reads
        // on (a wake-up already pending absorbs this one).
        let _ = wake.try_send(());
    }
    taken
}
