//! A TPACKET_V3 receive ring (packet(7), Documentation/networking/packet_mmap.rst): one
//! AF_PACKET socket that captures the IGMP/MLD/PIM frames of every port of a bridge into
//! memory shared with the kernel.
//!
//! Why not a socket per port read with `recvmmsg`: in a re-join flood (300k reports/s) the
//! receive system call cost more than everything igmpd does with a report (perf: 1.7 µs
//! per frame in `recvmmsg`, mostly freeing the clone the sender's CPU allocated and copying
//! 50 bytes through the iovec machinery, against 0.6 µs of parsing and state). With a ring
//! the kernel copies the frame into the ring on the CPU that received it, frees its buffer
//! there, and wakes the reader once per block of frames: igmpd reads frames where they
//! lie. One ring for all ports keeps the memory fixed however many ports the bridge has.
//!
//! The kernel hands a block over when it is full or when `retire_blk_tov` (1 ms) passed
//! since its first frame; a lone join waits at most that long.
//!
//! `unsafe` here: the mapping itself and reads of the blocks the kernel handed over; each
//! block says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use socket2::{Domain, SockFilter, Socket, Type};

use super::packet::Filter;
use super::sys;

// <linux/if_packet.h>
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_VERSION: libc::c_int = 10;
const TPACKET_V3: libc::c_int = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;

/// Block geometry: 32 blocks of 64 KiB. An IGMPv2 report takes 128 bytes of a block
/// (header, address, frame, alignment), so the ring holds about 16 000 reports: a burst
/// of 10 000 joins at line rate fits even if igmpd does not run at all meanwhile.
const BLOCK_SIZE: u32 = 64 * 1024;
const BLOCK_NR: u32 = 32;
/// Only used by the kernel to check the request (`frame_nr * frame_size` must equal the
/// ring's size); V3 frames have variable length up to a block.
const FRAME_SIZE: u32 = 2048;
/// Milliseconds before the kernel hands over a block that is not full.
const RETIRE_TOV_MS: u32 = 1;

/// struct tpacket_req3.
#[repr(C)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

// struct tpacket_block_desc: version, offset_to_priv, then struct tpacket_hdr_v1.
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;
// struct tpacket3_hdr (48 bytes), followed by the struct sockaddr_ll at TPACKET_ALIGN(48).
const HDR_NEXT: usize = 0;
const HDR_SNAPLEN: usize = 12;
const HDR_LEN: usize = 16;
const HDR_STATUS: usize = 20;
const HDR_MAC: usize = 24;
const HDR_VLAN_TCI: usize = 32;
const HDR_SIZE: usize = 48;
const SLL_IFINDEX: usize = HDR_SIZE + 4;
const SLL_PKTTYPE: usize = HDR_SIZE + 10;
const SLL_END: usize = HDR_SIZE + 20;

/// One captured frame, borrowed from the ring.
#[derive(Debug, Clone, Copy)]
pub struct RingFrame<'a> {
    /// The interface it arrived on.
    pub ifindex: u32,
    /// `sll_pkttype` (the filter already dropped outgoing frames).
    pub pkttype: u8,
    /// The 802.1Q VID when the frame carried a tag (the kernel strips it).
    pub vlan: Option<u16>,
    /// The frame from its Ethernet header on.
    pub data: &'a [u8],
    /// Its length on the wire (larger than `data` if it did not fit a block).
    pub wire_len: usize,
}

/// The receive side: the mapped ring. Owned by the one task that reads it.
#[derive(Debug)]
pub struct CaptureRing {
    socket: Socket,
    map: NonNull<u8>,
    len: usize,
    /// The block to look at next.
    next: usize,
}

// SAFETY: the mapping belongs to this value alone (unmapped in Drop) and is only read or
// written through `&mut self`; the kernel's side of the sharing is the block-status
// protocol, not thread affinity.
unsafe impl Send for CaptureRing {}

/// The control side of the same socket (a duplicate descriptor): which ports it captures,
/// and its drop counter.
#[derive(Debug)]
pub struct RingControl {
    socket: Socket,
    filter: Filter,
}

impl CaptureRing {
    /// Opens the ring on every interface, capturing nothing until
    /// [`RingControl::set_ports`] names the ports. Needs CAP_NET_RAW.
    pub fn open(filter: Filter) -> io::Result<(CaptureRing, RingControl)> {
        // Protocol 0: no frame is captured before the filter and the ring are in place;
        // bind() below starts the capture.
        let socket = Socket::new(Domain::PACKET, Type::RAW.nonblocking().cloexec(), None)?;
        socket.attach_filter(&[SockFilter::new(0x06, 0, 0, 0)])?;
        sys::setsockopt(
            socket.as_fd(),
            libc::SOL_PACKET,
            PACKET_VERSION,
            &TPACKET_V3,
        )?;
        let req = TpacketReq3 {
            block_size: BLOCK_SIZE,
            block_nr: BLOCK_NR,
            frame_size: FRAME_SIZE,
            frame_nr: BLOCK_SIZE / FRAME_SIZE * BLOCK_NR,
            retire_blk_tov: RETIRE_TOV_MS,
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        sys::setsockopt(socket.as_fd(), libc::SOL_PACKET, PACKET_RX_RING, &req)?;
        let len = (BLOCK_SIZE * BLOCK_NR) as usize;
        // SAFETY: a fresh shared mapping of the ring the kernel just allocated for this
        // descriptor, at a place of the kernel's choosing; checked for MAP_FAILED below and
        // unmapped exactly once in Drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                socket.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map = NonNull::new(p.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        let ring = CaptureRing {
            socket,
            map,
            len,
            next: 0,
        };
        sys::bind_packet(ring.socket.as_fd(), 0)?;
        let control = RingControl {
            socket: ring.socket.try_clone()?,
            filter,
        };
        Ok((ring, control))
    }

    /// Hands every frame of the blocks the kernel has filled to `f`, at most `max_blocks`
    /// blocks, and gives the blocks back. Returns how many blocks it read (0: none ready).
    pub fn read(&mut self, max_blocks: usize, mut f: impl FnMut(RingFrame<'_>)) -> usize {
        let mut done = 0;
        while done < max_blocks {
            let base = self.next * BLOCK_SIZE as usize;
            let status = self.status(base);
            // Acquire: the frames the kernel wrote before it set TP_STATUS_USER are seen.
            if status.load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                break;
            }
            // SAFETY: the block is ours until its status goes back to TP_STATUS_KERNEL
            // (the kernel neither writes nor reads it meanwhile), it lies inside the
            // mapping, and the slice does not outlive this iteration.
            let block = unsafe {
                std::slice::from_raw_parts(self.map.as_ptr().add(base), BLOCK_SIZE as usize)
            };
            for_each_frame(block, &mut f);
            // Release: our reads of the block happen before the kernel may reuse it.
            status.store(TP_STATUS_KERNEL, Ordering::Release);
            self.next = (self.next + 1) % BLOCK_NR as usize;
            done += 1;
        }
        done
    }

    /// The status word of the block at `base`.
    fn status(&self, base: usize) -> &AtomicU32 {
        // SAFETY: `base + BLOCK_STATUS` is 4-byte aligned (blocks are page aligned) and
        // inside the mapping, which lives as long as `self`; the kernel writes the word
        // concurrently, hence an atomic.
        unsafe { AtomicU32::from_ptr(self.map.as_ptr().add(base + BLOCK_STATUS).cast()) }
    }
}

/// The frames of one handed-over block. Every offset comes from the kernel and is still
/// checked against the block: a bad one ends the walk instead of reading past it.
fn for_each_frame(block: &[u8], f: &mut impl FnMut(RingFrame<'_>)) {
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let u16_at = |b: &[u8], at: usize| -> Option<u16> {
        Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
    };
    let (Some(n), Some(first)) = (
        u32_at(block, BLOCK_NUM_PKTS),
        u32_at(block, BLOCK_FIRST_PKT),
    ) else {
        return;
    };
    let mut at = first as usize;
    for i in 0..n {
        let Some(h) = block.get(at..) else { return };
        if h.len() < SLL_END {
            return;
        }
        let (Some(next), Some(snap), Some(len), Some(status), Some(mac), Some(tci), Some(ifx)) = (
            u32_at(h, HDR_NEXT),
            u32_at(h, HDR_SNAPLEN),
            u32_at(h, HDR_LEN),
            u32_at(h, HDR_STATUS),
            u16_at(h, HDR_MAC),
            u32_at(h, HDR_VLAN_TCI),
            u32_at(h, SLL_IFINDEX),
        ) else {
            return;
        };
        let start = usize::from(mac);
        let Some(data) = h.get(start..start + snap as usize) else {
            return;
        };
        f(RingFrame {
            ifindex: ifx,
            pkttype: h[SLL_PKTTYPE],
            vlan: (status & TP_STATUS_VLAN_VALID != 0).then_some((tci & 0x0fff) as u16),
            data,
            wire_len: len as usize,
        });
        if i + 1 < n {
            if next == 0 {
                return;
            }
            at += next as usize;
        }
    }
}

impl Drop for CaptureRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `open`, unmapped once; no slice into it outlives a
        // `read` call.
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.len);
        }
    }
}

impl AsRawFd for CaptureRing {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl AsFd for CaptureRing {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl RingControl {
    /// Captures on exactly `ports` (ifindexes): the filter of [`Filter::on_ports`]. Also
    /// asks each port for every multicast frame (PACKET_MR_ALLMULTI), for NICs that filter
    /// multicast MACs; the kernel drops a membership when its interface goes away.
    pub fn set_ports(&self, ports: &[u32]) -> io::Result<()> {
        self.socket.attach_filter(&self.filter.on_ports(ports))
    }

    /// PACKET_MR_ALLMULTI on `ifindex` for this socket.
    pub fn add_allmulti(&self, ifindex: u32) -> io::Result<()> {
        sys::add_allmulti(self.socket.as_fd(), ifindex)
    }

    /// Undoes [`RingControl::add_allmulti`].
    pub fn drop_allmulti(&self, ifindex: u32) -> io::Result<()> {
        sys::drop_allmulti(self.socket.as_fd(), ifindex)
    }

    /// Frames captured and dropped (ring full) since the last call (PACKET_STATISTICS).
    pub fn stats(&self) -> io::Result<(u32, u32)> {
        sys::packet_stats(self.socket.as_fd())
    }
}

/// Registers the ring with the tokio reactor for readability (the kernel wakes the reader
/// when it hands over a block).
pub fn into_async(ring: CaptureRing) -> io::Result<tokio::io::unix::AsyncFd<CaptureRing>> {
    sys::register_ring(ring)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block as the kernel lays it out, with `frames` (ifindex, vlan, bytes).
    fn block(frames: &[(u32, Option<u16>, &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        let first = 48usize;
        b[BLOCK_NUM_PKTS..BLOCK_NUM_PKTS + 4].copy_from_slice(&(frames.len() as u32).to_ne_bytes());
        b[BLOCK_FIRST_PKT..BLOCK_FIRST_PKT + 4].copy_from_slice(&(first as u32).to_ne_bytes());
        let mut at = first;
        for (i, (ifx, vlan, data)) in frames.iter().enumerate() {
            let mac = 82usize;
            let size = (mac + data.len()).div_ceil(16) * 16;
            let h = &mut b[at..at + size];
            let next = if i + 1 < frames.len() { size as u32 } else { 0 };
            h[HDR_NEXT..HDR_NEXT + 4].copy_from_slice(&next.to_ne_bytes());
            h[HDR_SNAPLEN..HDR_SNAPLEN + 4].copy_from_slice(&(data.len() as u32).to_ne_bytes());
            h[HDR_LEN..HDR_LEN + 4].copy_from_slice(&(data.len() as u32).to_ne_bytes());
            let status = if vlan.is_some() {
                TP_STATUS_VLAN_VALID | 1
            } else {
                1
            };
            h[HDR_STATUS..HDR_STATUS + 4].copy_from_slice(&status.to_ne_bytes());
            h[HDR_MAC..HDR_MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
            let tci = u32::from(vlan.unwrap_or(0)) | 0x2000; // priority bits are masked
            h[HDR_VLAN_TCI..HDR_VLAN_TCI + 4].copy_from_slice(&tci.to_ne_bytes());
            h[SLL_IFINDEX..SLL_IFINDEX + 4].copy_from_slice(&ifx.to_ne_bytes());
            h[SLL_PKTTYPE] = 2;
            h[mac..mac + data.len()].copy_from_slice(data);
            at += size;
        }
        b
    }

    fn walk(b: &[u8]) -> Vec<(u32, Option<u16>, Vec<u8>)> {
        let mut out = Vec::new();
        for_each_frame(b, &mut |f: RingFrame<'_>| {
            out.push((f.ifindex, f.vlan, f.data.to_vec()))
        });
        out
    }

    #[test]
    fn walks_the_frames_of_a_block() {
        let b = block(&[(7, None, b"first frame"), (9, Some(100), &[0xab; 60])]);
        assert_eq!(
            walk(&b),
            vec![
                (7, None, b"first frame".to_vec()),
                (9, Some(100), vec![0xab; 60])
            ]
        );
    }

    #[test]
    fn bad_offsets_end_the_walk_without_reading_past_the_block() {
        let mut b = block(&[(7, None, b"one"), (8, None, b"two")]);
        // The first frame claims a snap length beyond the block.
        b[48 + HDR_SNAPLEN..48 + HDR_SNAPLEN + 4].copy_from_slice(&100_000u32.to_ne_bytes());
        assert!(walk(&b).is_empty());
        // A next offset that leaves the block.
        let mut b = block(&[(7, None, b"one"), (8, None, b"two")]);
        b[48..52].copy_from_slice(&50_000u32.to_ne_bytes());
        assert_eq!(walk(&b).len(), 1);
        // More frames announced than there are.
        let mut b = block(&[(7, None, b"one")]);
        b[BLOCK_NUM_PKTS..BLOCK_NUM_PKTS + 4].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(walk(&b).len(), 1);
        // Garbage in a short buffer.
        assert!(walk(&[0xff; 30]).is_empty());
    }
}
