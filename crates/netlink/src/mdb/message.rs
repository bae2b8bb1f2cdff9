//! [`MdbMessage`]: header plus attributes.

use netlink_packet_core::{DecodeError, Emitable, ErrorContext, Parseable};

use super::{
    attribute::MdbAttribute,
    header::{MdbHeader, MDB_HEADER_LEN},
    nla::parse_nlas,
};

/// An `RTM_NEWMDB` / `RTM_DELMDB` / `RTM_GETMDB` message body.
#[derive(Debug, PartialEq, Eq, Clone, Default)]
pub struct MdbMessage {
    /// `struct br_port_msg`.
    pub header: MdbHeader,
    /// Attributes, in wire order.
    pub attributes: Vec<MdbAttribute>,
}

impl MdbMessage {
    /// Parses a message body. `request` selects the attribute numbering:
    /// `true` for messages with `NLM_F_REQUEST` (sent by userspace: `MDBA_SET_ENTRY`,
    /// `MDBA_GET_ENTRY`), `false` for what the kernel sends (`MDBA_MDB`,
    /// `MDBA_ROUTER`).
    pub fn parse_with_direction(buf: &[u8], request: bool) -> Result<Self, DecodeError> {
        let header = MdbHeader::parse(buf).context("invalid MDB message header")?;
        let rest = buf.get(MDB_HEADER_LEN..).unwrap_or(&[]);
        let attributes = if request {
            parse_nlas(rest, "MDB request", MdbAttribute::parse_request)?
        } else {
            parse_nlas(rest, "MDB message", MdbAttribute::parse_kernel)?
        };
        Ok(Self { header, attributes })
    }
}

impl Emitable for MdbMessage {
    fn buffer_len(&self) -> usize {
        MDB_HEADER_LEN + self.attributes.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.header.emit(buffer);
        self.attributes
            .as_slice()
            .emit(&mut buffer[MDB_HEADER_LEN..]);
    }
}
