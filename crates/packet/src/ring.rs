//! A TPACKET_V2 receive ring (packet(7), Documentation/networking/packet_mmap.rst): one
//! AF_PACKET socket that captures the IGMP/MLD/PIM frames of every port of a bridge into
//! memory shared with the kernel.
//!
//! Why a ring, and why V2 (measured; docs/architecture.md, "Decisions"): the kernel copies
//! each frame into a slot on the CPU that received it and igmpd reads it in place, with no
//! system call while frames keep coming, where a socket per port cost more per frame in
//! `recvmmsg` than all of igmpd's work; V2 hands each slot over at once, where V3 holds a
//! block back for at least 1 ms. A frame too long for its slot arrives truncated in the
//! ring and whole on the socket's queue (PACKET_COPY_THRESH, in ring order);
//! [`CaptureRing::read`] takes it from there.
//!
//! `unsafe` here: the mapping itself and reads of the slots the kernel handed over; each
//! block says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use socket2::{Domain, SockFilter, Socket, Type};

use igmpd_runtime::reactor::{self, OwnedSocket};

use crate::filter::Filter;
use crate::sys;

// <linux/if_packet.h>
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_COPY_THRESH: libc::c_int = 7;
const PACKET_VERSION: libc::c_int = 10;
const TPACKET_V2: libc::c_int = 1;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_COPY: u32 = 1 << 1;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;

/// Slot size: 66 bytes of header and address before the frame leave 126 bytes of frame,
/// enough for IGMPv1/v2, MLDv1 and IGMPv3/MLDv2 reports of a record or two; longer ones take
/// the copy path. 341 slots in each of 32 blocks of 64 KiB: 10 912 frames in 2 MiB, so a
/// burst of 10 000 joins at line rate fits even if igmpd does not run meanwhile.
const FRAME_SIZE: u32 = 192;
const BLOCK_SIZE: u32 = 64 * 1024;
const BLOCK_NR: u32 = 32;
const FRAMES_PER_BLOCK: u32 = BLOCK_SIZE / FRAME_SIZE;
const FRAME_NR: u32 = FRAMES_PER_BLOCK * BLOCK_NR;
/// Receive buffer for the copies of long frames.
const COPY_MAX: usize = 65_536;

/// struct tpacket_req.
#[repr(C)]
struct TpacketReq {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
}

// struct tpacket2_hdr (32 bytes), followed by the struct sockaddr_ll at TPACKET_ALIGN(32).
const HDR_STATUS: usize = 0;
const HDR_LEN: usize = 4;
const HDR_SNAPLEN: usize = 8;
const HDR_MAC: usize = 12;
const HDR_VLAN_TCI: usize = 24;
const HDR_SIZE: usize = 32;
const SLL_IFINDEX: usize = HDR_SIZE + 4;
const SLL_END: usize = HDR_SIZE + 20;

/// One captured frame, borrowed from the ring (or the copy buffer).
#[derive(Debug, Clone, Copy)]
pub struct RingFrame<'a> {
    /// The interface it arrived on.
    pub ifindex: u32,
    /// The 802.1Q VID when the frame carried a tag (the kernel strips it).
    pub vlan: Option<u16>,
    /// The frame from its Ethernet header on.
    pub data: &'a [u8],
    /// Its length on the wire (larger than `data` when it was truncated and its copy was
    /// lost: the socket's queue was full).
    pub wire_len: usize,
}

/// The receive side: the mapped ring. Owned by the one task that reads it.
#[derive(Debug)]
pub struct CaptureRing {
    socket: Socket,
    map: NonNull<u8>,
    len: usize,
    /// The slot to look at next.
    next: u32,
    /// For the whole copies of frames longer than a slot; allocated when first needed.
    copy: Vec<u8>,
}

// SAFETY: the mapping belongs to this value alone (unmapped in Drop) and is only read or
// written through `&mut self`; the kernel's side of the sharing is the slot-status
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
        let fd = socket.as_fd();
        sys::setsockopt(fd, libc::SOL_PACKET, PACKET_VERSION, &TPACKET_V2)?;
        let req = TpacketReq {
            block_size: BLOCK_SIZE,
            block_nr: BLOCK_NR,
            frame_size: FRAME_SIZE,
            frame_nr: FRAME_NR,
        };
        sys::setsockopt(fd, libc::SOL_PACKET, PACKET_RX_RING, &req)?;
        let on: libc::c_int = 1;
        sys::setsockopt(fd, libc::SOL_PACKET, PACKET_COPY_THRESH, &on)?;
        sys::set_rcvbuf(fd, 1 << 20)?;
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
            copy: Vec::new(),
        };
        sys::bind_packet(ring.socket.as_fd(), 0)?;
        let control = RingControl {
            socket: ring.socket.try_clone()?,
            filter,
        };
        Ok((ring, control))
    }

    /// Hands up to `max` frames the kernel has written to `f`, oldest first, and gives
    /// their slots back. Returns how many it read (0: none is waiting).
    pub fn read(&mut self, max: usize, mut f: impl FnMut(RingFrame<'_>)) -> usize {
        let mut done = 0;
        while done < max {
            let base = slot_offset(self.next);
            let status = status_at(self.map, base);
            // Acquire: the frame the kernel wrote before it set TP_STATUS_USER is seen.
            let st = status.load(Ordering::Acquire);
            if st & TP_STATUS_USER == 0 {
                break;
            }
            // SAFETY: the slot is ours until its status goes back to TP_STATUS_KERNEL (the
            // kernel neither writes nor reads it meanwhile), it lies inside the mapping,
            // and the slice does not outlive this iteration.
            let slot = unsafe {
                std::slice::from_raw_parts(self.map.as_ptr().add(base), FRAME_SIZE as usize)
            };
            // The whole frame of a truncated slot is next on the socket's queue (queued in
            // ring order): taken off even if the slot turns out unreadable, so the next
            // copy pairs with its own slot.
            let mut whole = None;
            if st & TP_STATUS_COPY != 0 {
                if self.copy.is_empty() {
                    self.copy = vec![0; COPY_MAX];
                }
                if let Ok(Some(info)) = sys::recv(self.socket.as_fd(), &mut self.copy) {
                    whole = Some(info);
                }
            }
            if let Some(mut frame) = parse_slot(slot) {
                if let Some(info) = whole {
                    frame.data = &self.copy[..info.len];
                    frame.wire_len = info.wire_len;
                }
                f(frame);
            }
            // Release: our reads of the slot happen before the kernel may reuse it.
            status.store(TP_STATUS_KERNEL, Ordering::Release);
            self.next = (self.next + 1) % FRAME_NR;
            done += 1;
        }
        done
    }
}

/// The status word of the slot at `base` of the mapping at `map`. Used only inside
/// [`CaptureRing::read`], while the ring (and so the mapping) is borrowed.
fn status_at<'a>(map: NonNull<u8>, base: usize) -> &'a AtomicU32 {
    // SAFETY: `base` is 16-byte aligned (192-byte slots in page-aligned blocks) and inside
    // the mapping, which outlives the caller's use; the kernel writes the word
    // concurrently, hence an atomic.
    unsafe { AtomicU32::from_ptr(map.as_ptr().add(base + HDR_STATUS).cast()) }
}

/// Where slot `i` starts: slots do not straddle blocks.
fn slot_offset(i: u32) -> usize {
    ((i / FRAMES_PER_BLOCK) * BLOCK_SIZE + (i % FRAMES_PER_BLOCK) * FRAME_SIZE) as usize
}

/// The frame in one handed-over slot. The offsets come from the kernel and are still
/// checked against the slot: a bad one skips the frame instead of reading past it.
fn parse_slot(slot: &[u8]) -> Option<RingFrame<'_>> {
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(slot.get(at..at + 4)?.try_into().ok()?))
    };
    let u16_at = |at: usize| -> Option<u16> {
        Some(u16::from_ne_bytes(slot.get(at..at + 2)?.try_into().ok()?))
    };
    if slot.len() < SLL_END {
        return None;
    }
    let status = u32_at(HDR_STATUS)?;
    let len = u32_at(HDR_LEN)?;
    let snap = u32_at(HDR_SNAPLEN)?;
    let mac = usize::from(u16_at(HDR_MAC)?);
    let tci = u16_at(HDR_VLAN_TCI)?;
    let data = slot.get(mac..mac.checked_add(snap as usize)?)?;
    Some(RingFrame {
        ifindex: u32_at(SLL_IFINDEX)?,
        vlan: (status & TP_STATUS_VLAN_VALID != 0).then_some(tci & 0x0fff),
        data,
        wire_len: len as usize,
    })
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

/// The ring's socket is owned by it for its whole life.
impl OwnedSocket for CaptureRing {}

impl CaptureRing {
    /// Registers the ring with the tokio reactor for readability (the kernel wakes the
    /// reader when it hands over a frame).
    pub fn into_async(self) -> io::Result<tokio::io::unix::AsyncFd<CaptureRing>> {
        reactor::register_readable(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot as the kernel lays it out.
    fn slot(ifindex: u32, vlan: Option<u16>, data: &[u8], wire_len: usize) -> Vec<u8> {
        let mut b = vec![0u8; FRAME_SIZE as usize];
        let mac = 66usize;
        let status = TP_STATUS_USER
            | if vlan.is_some() {
                TP_STATUS_VLAN_VALID
            } else {
                0
            };
        b[HDR_STATUS..HDR_STATUS + 4].copy_from_slice(&status.to_ne_bytes());
        b[HDR_LEN..HDR_LEN + 4].copy_from_slice(&(wire_len as u32).to_ne_bytes());
        b[HDR_SNAPLEN..HDR_SNAPLEN + 4].copy_from_slice(&(data.len() as u32).to_ne_bytes());
        b[HDR_MAC..HDR_MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
        // Priority bits are masked off.
        let tci = vlan.unwrap_or(0) | 0x2000;
        b[HDR_VLAN_TCI..HDR_VLAN_TCI + 2].copy_from_slice(&tci.to_ne_bytes());
        b[SLL_IFINDEX..SLL_IFINDEX + 4].copy_from_slice(&ifindex.to_ne_bytes());
        b[mac..mac + data.len()].copy_from_slice(data);
        b
    }

    #[test]
    fn reads_a_slot() {
        let s = slot(7, None, b"a frame", 7);
        let f = parse_slot(&s).unwrap();
        assert_eq!(
            (f.ifindex, f.vlan, f.data, f.wire_len),
            (7, None, &b"a frame"[..], 7)
        );
        let s = slot(9, Some(100), &[0xab; 126], 1500);
        let f = parse_slot(&s).unwrap();
        assert_eq!(
            (f.ifindex, f.vlan, f.data.len(), f.wire_len),
            (9, Some(100), 126, 1500)
        );
    }

    #[test]
    fn bad_offsets_skip_the_frame_without_reading_past_the_slot() {
        let mut s = slot(7, None, b"one", 3);
        s[HDR_SNAPLEN..HDR_SNAPLEN + 4].copy_from_slice(&100_000u32.to_ne_bytes());
        assert!(parse_slot(&s).is_none());
        let mut s = slot(7, None, b"one", 3);
        s[HDR_MAC..HDR_MAC + 2].copy_from_slice(&u16::MAX.to_ne_bytes());
        assert!(parse_slot(&s).is_none());
        assert!(parse_slot(&[0xff; 30]).is_none());
    }

    #[test]
    fn slots_stay_inside_their_blocks() {
        for i in [0, 1, FRAMES_PER_BLOCK - 1, FRAMES_PER_BLOCK, FRAME_NR - 1] {
            let at = slot_offset(i);
            let block = at / BLOCK_SIZE as usize;
            assert_eq!(
                (at + FRAME_SIZE as usize - 1) / BLOCK_SIZE as usize,
                block,
                "slot {i}"
            );
            assert!(at + (FRAME_SIZE as usize) <= (BLOCK_SIZE * BLOCK_NR) as usize);
            assert_eq!(at % 16, 0);
        }
    }
}
