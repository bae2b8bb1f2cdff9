//! `struct br_port_msg`, the fixed header of every MDB message.

use netlink_packet_core::{DecodeError, Emitable, Parseable};

use crate::constants::AF_BRIDGE;

/// Length of `struct br_port_msg` on the wire: `u8 family`, 3 bytes of
/// padding, `u32 ifindex`.
pub const MDB_HEADER_LEN: usize = 8;

/// The fixed header of an MDB message (`struct br_port_msg`).
///
/// ```text
/// 0                8                16              24               32
/// +----------------+----------------+----------------+----------------+
/// |     family     |                     padding                      |
/// +----------------+----------------+----------------+----------------+
/// |                      bridge interface index                       |
/// +----------------+----------------+----------------+----------------+
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct MdbHeader {
    /// Address family, `AF_BRIDGE` (7) in everything the kernel sends.
    pub family: u8,
    /// Interface index of the bridge (0 in a dump request: all bridges).
    pub ifindex: u32,
}

impl Default for MdbHeader {
    fn default() -> Self {
        Self {
            family: AF_BRIDGE,
            ifindex: 0,
        }
    }
}

impl MdbHeader {
    /// A header for the bridge with interface index `ifindex`.
    pub fn new(ifindex: u32) -> Self {
        Self {
            family: AF_BRIDGE,
            ifindex,
        }
    }
}

impl<T: AsRef<[u8]> + ?Sized> Parseable<T> for MdbHeader {
    fn parse(buf: &T) -> Result<Self, DecodeError> {
        let buf = buf.as_ref();
        if buf.len() < MDB_HEADER_LEN {
            return Err(DecodeError::invalid_buffer(
                "br_port_msg",
                buf.len(),
                MDB_HEADER_LEN,
            ));
        }
        Ok(Self {
            family: buf[0],
            ifindex: u32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]),
        })
    }
}

impl Emitable for MdbHeader {
    fn buffer_len(&self) -> usize {
        MDB_HEADER_LEN
    }

    fn emit(&self, buffer: &mut [u8]) {
        buffer[0] = self.family;
        buffer[1..4].fill(0);
        buffer[4..8].copy_from_slice(&self.ifindex.to_ne_bytes());
    }
}
