//! Many rtnetlink requests in one `send`, on a raw `NETLINK_ROUTE` socket of the caller's
//! own, and their acks read back per sequence number.
//!
//! The kernel's rtnetlink handles every message of one `send` inside that call and queues
//! one ack (`NLMSG_ERROR`, error 0 for success) per request that asked for one; so a batch
//! costs one system call for the requests and a few for the acks, instead of a call, a
//! future and a wake-up per request as on the shared [`Connection`](crate::Connection).
//! Nothing here knows what the requests are: the caller builds them (e.g. with
//! [`MdbAddRequest::message`](crate::MdbAddRequest::message)), keeps what it needs per
//! sequence number, and maps a refusal with [`Error::from_kernel`](crate::Error::from_kernel).
//!
//! The socket is non-blocking; to wait for acks, register it with the caller's reactor.
//!
//! ```no_run
//! # fn f() -> std::io::Result<()> {
//! use std::net::Ipv4Addr;
//! use igmpd_netlink::batch::{self, Batch};
//! use igmpd_netlink::MdbAddRequest;
//! let sock = batch::route_socket()?;
//! let mut b = Batch::new();
//! let seq = b.push(MdbAddRequest::new(2, 4, Ipv4Addr::new(239, 1, 1, 1)).message());
//! batch::send(&sock, &b)?;
//! let mut buf = vec![0u8; 16 * 1024];
//! batch::recv(&sock, &mut buf, |s, result| assert!(s == seq && result.is_ok()))?;
//! # Ok(()) }
//! ```

use std::io::{self, Read};

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use socket2::{Domain, Protocol, Socket, Type};

use crate::{KernelError, RtnlMessage};

/// `struct nlmsghdr`.
const NETLINK_HEADER_LEN: usize = 16;

/// A non-blocking, close-on-exec `NETLINK_ROUTE` socket (unbound: the kernel binds it at
/// the first send), for requests and their acks only, in the calling thread's network
/// namespace.
pub fn route_socket() -> io::Result<Socket> {
    let s = Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::RAW.cloexec(),
        Some(Protocol::from(libc::NETLINK_ROUTE)),
    )?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Requests serialized back to back for one `send`, each with a sequence number of its own.
///
/// Sequence numbers count up across [`clear`](Batch::clear) (never 0), so acks of an
/// earlier batch cannot be taken for this one's.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    buf: Vec<u8>,
    count: usize,
    seq: u32,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `bytes` of requests.
    pub fn with_capacity(bytes: usize) -> Self {
        Batch {
            buf: Vec::with_capacity(bytes),
            ..Self::default()
        }
    }

    /// Appends `msg` with the next sequence number (its header's length is set here) and
    /// returns that number: its ack carries it.
    pub fn push(&mut self, mut msg: NetlinkMessage<RtnlMessage>) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        msg.header.sequence_number = self.seq;
        msg.finalize();
        let start = self.buf.len();
        self.buf.resize(start + msg.buffer_len(), 0);
        msg.serialize(&mut self.buf[start..]);
        self.count += 1;
        self.seq
    }

    /// Requests in the batch.
    pub fn len(&self) -> usize {
        self.count
    }

    /// No requests.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The bytes to send.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Empties the batch (keeping its buffer and its sequence numbers).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.count = 0;
    }
}

/// Sends `batch` in one call, again if interrupted. A send to the kernel is handled in the
/// call and does not wait for room; `WouldBlock` is passed on all the same.
pub fn send(sock: &Socket, batch: &Batch) -> io::Result<()> {
    loop {
        match sock.send(batch.bytes()) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads one datagram of answers into `buf` (again if interrupted) and calls
/// `f(seq, result)` for each ack in it ([`acks`]). Returns the bytes read; 0 when the
/// socket had nothing to give. `WouldBlock` (nothing waiting) and `ENOBUFS` (answers were
/// lost: the socket's receive queue overflowed) are errors for the caller to handle.
pub fn recv(
    sock: &Socket,
    buf: &mut [u8],
    f: impl FnMut(u32, Result<(), KernelError>),
) -> io::Result<usize> {
    let n = loop {
        match (&*sock).read(buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    acks(&buf[..n], f);
    Ok(n)
}

/// Calls `f(seq, Ok(()))` for each ack in `buf`, `f(seq, Err(error))` for each refusal, in
/// order. Other messages (multi-part replies, `NLMSG_DONE`, notifications) are skipped, and
/// so is a message that does not parse; a truncated message ends the buffer. Never panics.
pub fn acks(mut buf: &[u8], mut f: impl FnMut(u32, Result<(), KernelError>)) {
    while buf.len() >= NETLINK_HEADER_LEN {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < NETLINK_HEADER_LEN || len > buf.len() {
            return;
        }
        if let Ok(m) = NetlinkMessage::<RtnlMessage>::deserialize(&buf[..len]) {
            if let NetlinkPayload::Error(e) = &m.payload {
                let seq = m.header.sequence_number;
                if e.code.is_none() {
                    f(seq, Ok(()));
                } else {
                    f(seq, Err(KernelError::from_error_message(e, m.header.flags)));
                }
            }
        }
        // Messages are 4-byte aligned.
        buf = &buf[((len + 3) & !3).min(buf.len())..];
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::constants::NLMSGERR_ATTR_MSG;
    use crate::{MdbAddRequest, MdbDelRequest};

    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const NLM_F_MULTI: u16 = 2;
    const NLM_F_CAPPED: u16 = 0x100;
    const NLM_F_ACK_TLVS: u16 = 0x200;

    /// A netlink message: header, then `payload`, padded to 4 bytes.
    fn msg(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = 16 + payload.len();
        let mut b = Vec::new();
        b.extend_from_slice(&(len as u32).to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(payload);
        b.resize((len + 3) & !3, 0);
        b
    }

    /// `NLMSG_ERROR` for request `seq`: `errno` 0 is an ack. The echoed request is its
    /// header only (`NLM_F_CAPPED`), then `text` as `NLMSGERR_ATTR_MSG` if given.
    fn error(seq: u32, errno: i32, text: Option<&str>) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&(-errno).to_ne_bytes());
        p.extend_from_slice(&msg(84, 1, seq, &[])[..16]);
        let mut flags = NLM_F_CAPPED;
        if let Some(t) = text {
            flags |= NLM_F_ACK_TLVS;
            let mut v = t.as_bytes().to_vec();
            v.push(0);
            let alen = 4 + v.len();
            p.extend_from_slice(&(alen as u16).to_ne_bytes());
            p.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
            p.extend_from_slice(&v);
            p.resize((p.len() + 3) & !3, 0);
        }
        msg(NLMSG_ERROR, flags, seq, &p)
    }

    fn collect(buf: &[u8]) -> Vec<(u32, Result<(), i32>)> {
        let mut out = Vec::new();
        acks(buf, |seq, r| out.push((seq, r.map_err(|k| k.errno))));
        out
    }

    #[test]
    fn acks_and_refusals_come_back_per_sequence_number_in_order() {
        let mut b = error(7, 0, None);
        b.extend(error(
            8,
            libc::EINVAL,
            Some("bridge: Bridge device is not running"),
        ));
        b.extend(error(9, 0, None));
        assert_eq!(
            collect(&b),
            [(7, Ok(())), (8, Err(libc::EINVAL)), (9, Ok(()))]
        );
        let mut text = None;
        acks(&error(8, libc::EINVAL, Some("port is down")), |_, r| {
            text = r.err().and_then(|k| k.message)
        });
        assert_eq!(text.as_deref(), Some("port is down"));
    }

    #[test]
    fn multi_part_replies_and_done_are_not_acks() {
        let mut b = msg(86, NLM_F_MULTI, 5, &[0; 12]);
        b.extend(error(5, 0, None));
        b.extend(msg(NLMSG_DONE, NLM_F_MULTI, 6, &0i32.to_ne_bytes()));
        b.extend(error(6, libc::ENOENT, None));
        assert_eq!(collect(&b), [(5, Ok(())), (6, Err(libc::ENOENT))]);
    }

    #[test]
    fn truncated_or_garbled_buffers_end_quietly() {
        let whole = {
            let mut b = error(1, 0, None);
            b.extend(error(2, libc::EEXIST, Some("exists")));
            b
        };
        // Every prefix: the complete messages in it, never a panic.
        for cut in 0..whole.len() {
            let got = collect(&whole[..cut]);
            assert!(got.len() <= 2, "{cut}");
            if cut >= error(1, 0, None).len() {
                assert_eq!(got[0], (1, Ok(())), "{cut}");
            }
        }
        // A length below the header, or beyond the buffer.
        let mut short = error(3, 0, None);
        short[..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(collect(&short).is_empty());
        let mut long = error(3, 0, None);
        long[..4].copy_from_slice(&4096u32.to_ne_bytes());
        assert!(collect(&long).is_empty());
        // An error message too short for its error code is skipped, the next one read.
        let mut b = msg(NLMSG_ERROR, 0, 4, &[1, 2]);
        b.extend(error(5, 0, None));
        assert_eq!(collect(&b), [(5, Ok(()))]);
        // Noise.
        let noise: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let _ = collect(&noise);
    }

    #[test]
    fn a_batch_numbers_its_requests_and_keeps_counting_after_clear() {
        let mut b = Batch::with_capacity(256);
        let g = Ipv4Addr::new(239, 1, 1, 1);
        assert!(b.is_empty());
        let s1 = b.push(MdbAddRequest::new(2, 4, g).permanent().message());
        let s2 = b.push(MdbDelRequest::new(2, 4, g).message());
        assert_eq!((s1, s2, b.len()), (1, 2, 2));
        // Two whole messages back to back, each with its length and number.
        let bytes = b.bytes().to_vec();
        let len1 = u32::from_ne_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(len1 % 4, 0);
        let m1 = NetlinkMessage::<RtnlMessage>::deserialize(&bytes[..len1]).unwrap();
        let m2 = NetlinkMessage::<RtnlMessage>::deserialize(&bytes[len1..]).unwrap();
        assert_eq!(
            (m1.header.sequence_number, m2.header.sequence_number),
            (1, 2)
        );
        assert_eq!(len1 + m2.header.length as usize, bytes.len());
        b.clear();
        assert!(b.is_empty() && b.bytes().is_empty());
        assert_eq!(b.push(MdbDelRequest::new(2, 4, g).message()), 3);
    }

    #[test]
    fn sequence_numbers_skip_zero_when_they_wrap() {
        let mut b = Batch {
            seq: u32::MAX,
            ..Batch::new()
        };
        let g = Ipv4Addr::new(239, 1, 1, 1);
        assert_eq!(b.push(MdbDelRequest::new(2, 4, g).message()), 1);
    }
}
