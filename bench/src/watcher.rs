//! The MDB watcher: a NETLINK_ROUTE socket subscribed to RTNLGRP_MDB in the switch
//! namespace (64 MiB receive buffer), so no dump sits on the measured path. Overruns
//! (ENOBUFS) are counted, not hidden.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use igmpd_netns_tests::in_netns;

use crate::{join, sys};

/// One IPv4 entry added to or deleted from the MDB.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MdbEvent {
    /// When the watcher received it.
    pub(crate) at: Instant,
    /// RTM_NEWMDB (else RTM_DELMDB).
    pub(crate) added: bool,
    /// The bridge port's ifindex.
    pub(crate) port: u32,
    /// The IPv4 group (0.0.0.0 for an IPv6 one, which only [`Watcher::start_both`]
    /// reports).
    pub(crate) group: Ipv4Addr,
    /// The group, either family.
    pub(crate) ip: IpAddr,
}

/// A thread in the switch namespace that turns RTNLGRP_MDB notifications into
/// [`MdbEvent`]s.
pub(crate) struct Watcher {
    stop: Arc<AtomicBool>,
    /// The events, in the order the kernel sent them.
    pub(crate) rx: mpsc::Receiver<MdbEvent>,
    handle: Option<std::thread::JoinHandle<Result<u64>>>,
}

impl Watcher {
    /// Starts watching IPv4 entries in namespace `ns`; returns once subscribed.
    pub(crate) fn start(ns: &str) -> Result<Watcher> {
        Watcher::start_with(ns, false)
    }

    /// The same for IPv4 and IPv6 entries.
    pub(crate) fn start_both(ns: &str) -> Result<Watcher> {
        Watcher::start_with(ns, true)
    }

    fn start_with(ns: &str, v6: bool) -> Result<Watcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let st = Arc::clone(&stop);
        let handle = in_netns(ns, move || watch(st, tx, ready_tx, v6));
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(()) => {}
            Err(_) => {
                let r = join(handle);
                bail!("MDB watcher did not start: {:?}", r.err());
            }
        }
        Ok(Watcher {
            stop,
            rx,
            handle: Some(handle),
        })
    }

    /// Stops; returns the number of overruns (ENOBUFS) seen.
    pub(crate) fn finish(mut self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        join(self.handle.take().context("watcher already finished")?)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn watch(
    stop: Arc<AtomicBool>,
    tx: mpsc::Sender<MdbEvent>,
    ready: mpsc::Sender<()>,
    v6: bool,
) -> Result<u64> {
    let fd = sys::mdb_event_socket()?;
    let _ = ready.send(());
    let mut buf = vec![0u8; 1 << 20];
    let mut overruns = 0;
    while !stop.load(Ordering::Relaxed) {
        let n = sys::recv(&fd, &mut buf);
        let at = Instant::now();
        let n = match n {
            Ok(n) => n,
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => continue,
                Some(libc::ENOBUFS) => {
                    overruns += 1;
                    continue;
                }
                _ => return Err(e).context("recv netlink"),
            },
        };
        parse_nl(&buf[..n], at, &tx, v6);
    }
    Ok(overruns)
}

fn u16_at(b: &[u8], o: usize) -> usize {
    u16::from_ne_bytes([b[o], b[o + 1]]) as usize
}

fn parse_nl(mut b: &[u8], at: Instant, tx: &mpsc::Sender<MdbEvent>, v6: bool) {
    const RTM_NEWMDB: u16 = 84;
    const RTM_DELMDB: u16 = 85;
    while b.len() >= 16 {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let ty = u16::from_ne_bytes([b[4], b[5]]);
        if len < 16 || len > b.len() {
            return;
        }
        let msg = &b[16..len];
        if (ty == RTM_NEWMDB || ty == RTM_DELMDB) && msg.len() >= 8 {
            attrs(&msg[8..], 0, &mut |info| {
                // struct br_mdb_entry: ifindex u32, state u8, flags u8, vid u16,
                // addr (16 bytes union), proto be16
                if info.len() < 26 {
                    return;
                }
                let port = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]);
                let (group, ip) = match u16::from_be_bytes([info[24], info[25]]) {
                    0x0800 => {
                        let g = Ipv4Addr::new(info[8], info[9], info[10], info[11]);
                        (g, IpAddr::V4(g))
                    }
                    0x86dd if v6 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(&info[8..24]);
                        (Ipv4Addr::UNSPECIFIED, IpAddr::V6(Ipv6Addr::from(a)))
                    }
                    _ => return,
                };
                let _ = tx.send(MdbEvent {
                    at,
                    added: ty == RTM_NEWMDB,
                    port,
                    group,
                    ip,
                });
            });
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
}

/// Walks MDBA_MDB (1) > MDBA_MDB_ENTRY (1) > MDBA_MDB_ENTRY_INFO (1), calling `f` with
/// each entry-info payload.
fn attrs(mut b: &[u8], depth: u8, f: &mut dyn FnMut(&[u8])) {
    while b.len() >= 4 {
        let len = u16_at(b, 0);
        let ty = u16_at(b, 2) & 0x3fff;
        if len < 4 || len > b.len() {
            return;
        }
        let payload = &b[4..len];
        if ty == 1 {
            if depth == 2 {
                f(payload);
            } else {
                attrs(payload, depth + 1, f);
            }
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
}
