//! Raw frames for igmpd: AF_PACKET sockets ([`PacketSocket`]), the classic BPF programs
//! that keep everything but IGMP, MLD and PIM in the kernel ([`Filter`]), and the
//! TPACKET_V2 receive ring that captures every port of a bridge ([`CaptureRing`]).
//!
//! The only home of raw-socket `unsafe` in the workspace (`sys.rs`, `ring.rs`): small
//! wrappers around libc calls, each block saying why it is sound. Used by both daemons,
//! the doctor and nothing else; it knows no protocol beyond the filter's byte offsets.

pub mod filter;
pub mod ring;
pub mod socket;
mod sys;

pub use filter::Filter;
pub use ring::{CaptureRing, RingControl, RingFrame};
pub use socket::{PacketSocket, RecvInfo};
pub use sys::PACKET_OUTGOING;
