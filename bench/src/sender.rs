//! The sender: prebuilt IGMPv2 frames (igmpd-wire) sent from a host namespace through one
//! AF_PACKET socket with `sendmmsg`, the same for the kernel and for igmpd.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use igmpd_netns_tests::in_netns;
use igmpd_wire::{Frame, IgmpRepr, Ipv4Header};

use crate::sys;

/// One AF_PACKET socket that sends prebuilt frames.
pub(crate) struct Sender {
    fd: OwnedFd,
}

impl Sender {
    /// An AF_PACKET socket bound to `ifname` (of the calling thread's namespace) that
    /// receives nothing.
    pub(crate) fn open(ifname: &str) -> Result<Sender> {
        Ok(Sender {
            fd: sys::packet_sender(ifname)?,
        })
    }

    /// Sends `frames[from..from + n]` (cyclically) with one sendmmsg per 64 frames; returns
    /// how many the kernel took.
    pub(crate) fn send_batch(&self, frames: &[Vec<u8>], from: usize, n: usize) -> Result<usize> {
        sys::send_frames(&self.fd, frames, from, n)
    }

    /// Sends every frame once, as fast as possible.
    pub(crate) fn blast(&self, frames: &[Vec<u8>]) -> Result<usize> {
        let mut sent = 0;
        while sent < frames.len() {
            let n = (frames.len() - sent).min(64);
            sent += self.send_batch(frames, sent, n)?;
        }
        Ok(sent)
    }

    /// Sends `frames` cyclically at `rate` per second for `dur`; returns the number sent
    /// and the time taken.
    pub(crate) fn paced(
        &self,
        frames: &[Vec<u8>],
        rate: u64,
        dur: Duration,
    ) -> Result<(u64, Duration)> {
        let start = Instant::now();
        let total = (rate as f64 * dur.as_secs_f64()) as u64;
        let mut sent: u64 = 0;
        while sent < total {
            let el = start.elapsed();
            if el > dur * 3 {
                break; // the sender cannot keep up; report what it achieved
            }
            let due = ((rate as f64 * el.as_secs_f64()) as u64).min(total);
            if due > sent {
                let n = (due - sent).min(64) as usize;
                sent += self.send_batch(frames, (sent % frames.len() as u64) as usize, n)? as u64;
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        Ok((sent, start.elapsed()))
    }
}

pub(crate) fn v2_report_frames(
    src_mac: [u8; 6],
    src: Ipv4Addr,
    groups: &[Ipv4Addr],
) -> Vec<Vec<u8>> {
    groups
        .iter()
        .map(|g| {
            Frame::igmp(
                src_mac,
                None,
                Ipv4Header::igmp(src, *g),
                IgmpRepr::V2Report { group: *g },
            )
            .to_bytes()
        })
        .collect()
}

pub(crate) fn v2_leave_frame(src_mac: [u8; 6], src: Ipv4Addr, group: Ipv4Addr) -> Vec<u8> {
    Frame::igmp(
        src_mac,
        None,
        Ipv4Header::igmp(src, Ipv4Addr::new(224, 0, 0, 2)),
        IgmpRepr::V2Leave { group },
    )
    .to_bytes()
}

/// `n` distinct groups 239.10.0.0 + i (never link-local 224.0.0.x).
/// From namespace `ns`'s eth0, sends `frames[k]` alone at `first + k * every` (a host
/// joining one group after another) and reports each send time on `sent`.
pub(crate) fn one_by_one(
    ns: &str,
    frames: Vec<Vec<u8>>,
    first: Duration,
    every: Duration,
    sent: mpsc::Sender<(usize, Instant)>,
) -> JoinHandle<Result<()>> {
    in_netns(ns, move || -> Result<()> {
        let s = Sender::open("eth0")?;
        let start = Instant::now();
        for k in 0..frames.len() {
            let due = start + first + every * k as u32;
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            let t = Instant::now();
            s.send_batch(&frames, k, 1)?;
            let _ = sent.send((k, t));
        }
        Ok(())
    })
}

pub(crate) fn groups(n: usize) -> Vec<Ipv4Addr> {
    (0..n as u32)
        .map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(239, 10, 0, 1)) + i))
        .collect()
}

pub(crate) fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let mut m = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    ensure!(parts.len() == 6, "bad MAC {s}");
    for (o, p) in m.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16)?;
    }
    Ok(m)
}
