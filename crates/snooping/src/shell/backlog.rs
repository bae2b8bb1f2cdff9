//! The frames between the capture ring's reader and the main loop, per port and bounded
//! in bytes: each port may queue [`PORT_BYTES`], all together [`TOTAL_BYTES`]; a frame
//! over either is dropped and counted for its port. The main loop takes frames port after
//! port, one at a time, so a port that floods queues its own frames only: another port's
//! join waits for one batch, not behind the flood.

use std::collections::{BTreeMap, VecDeque};

/// Bytes one port may have waiting.
pub(super) const PORT_BYTES: usize = 2 << 20;
/// Bytes all ports together may have waiting.
pub(super) const TOTAL_BYTES: usize = 16 << 20;
/// What a queued frame costs beyond its bytes (its vector and queue slot), so that a flood
/// of small frames is bounded too.
const OVERHEAD: usize = 48;

#[derive(Debug, Default)]
struct PortQueue {
    frames: VecDeque<(u16, Vec<u8>)>,
    bytes: usize,
}

/// Per-port frame queues, served in turn.
#[derive(Debug, Default)]
pub(super) struct Backlog {
    queues: BTreeMap<u32, PortQueue>,
    bytes: usize,
    /// The port served last.
    cursor: u32,
    /// Frames dropped per port because its queue (or the whole backlog) was full.
    pub(super) dropped: BTreeMap<u32, u64>,
    /// Frames the ring lost whole (longer than a slot, and the socket queue was full).
    pub(super) lost: u64,
}

impl Backlog {
    /// Queues a frame of `port` (tag `vid`); false (and counted) when there is no room.
    pub(super) fn push(&mut self, port: u32, vid: u16, data: &[u8]) -> bool {
        let cost = data.len() + OVERHEAD;
        let q = self.queues.entry(port).or_default();
        if q.bytes + cost > PORT_BYTES || self.bytes + cost > TOTAL_BYTES {
            *self.dropped.entry(port).or_default() += 1;
            return false;
        }
        q.frames.push_back((vid, data.to_vec()));
        q.bytes += cost;
        self.bytes += cost;
        true
    }

    /// Whether frames wait.
    pub(super) fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Bytes waiting.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Up to `max` frames, one per port in turn (ifindex order, from the port after the
    /// one served last): each with its port and tag.
    pub(super) fn take(&mut self, max: usize, out: &mut Vec<(u32, u16, Vec<u8>)>) {
        while out.len() < max && !self.queues.is_empty() {
            let next = self
                .queues
                .range(self.cursor.saturating_add(1)..)
                .next()
                .or_else(|| self.queues.iter().next())
                .map(|(p, _)| *p);
            let Some(port) = next else { break };
            self.cursor = port;
            let Some(q) = self.queues.get_mut(&port) else {
                break;
            };
            if let Some((vid, data)) = q.frames.pop_front() {
                let cost = data.len() + OVERHEAD;
                q.bytes -= cost;
                self.bytes -= cost;
                out.push((port, vid, data));
            }
            if q.frames.is_empty() {
                self.queues.remove(&port);
            }
        }
    }

    /// Forgets what waits (the capture stopped).
    pub(super) fn clear(&mut self) {
        self.queues.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_served_in_turn_and_a_flooding_port_drops_its_own_frames() {
        let mut b = Backlog::default();
        let big = vec![0u8; 1000];
        let mut flooded = 0;
        while b.push(1, 0, &big) {
            flooded += 1;
        }
        assert_eq!(flooded, PORT_BYTES / (1000 + OVERHEAD));
        assert_eq!(b.dropped[&1], 1);
        // Another port still gets in, and out first after one frame of the flood.
        assert!(b.push(2, 10, &[1, 2, 3]));
        let mut out = Vec::new();
        b.take(2, &mut out);
        let ports: Vec<(u32, u16)> = out.iter().map(|(p, v, _)| (*p, *v)).collect();
        assert_eq!(ports, [(1, 0), (2, 10)]);
        out.clear();
        b.take(usize::MAX, &mut out);
        assert_eq!(out.len(), flooded - 1);
        assert!(b.is_empty());
        assert_eq!(b.bytes(), 0);
    }

    #[test]
    fn the_total_is_bounded_across_ports() {
        let mut b = Backlog::default();
        let frame = vec![0u8; 4000];
        for port in 0..64 {
            while b.push(port, 0, &frame) {}
        }
        assert!(b.bytes() <= TOTAL_BYTES);
        assert!(b.dropped.len() == 64);
    }
}
