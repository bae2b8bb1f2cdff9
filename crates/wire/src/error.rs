//! Why a packet was not accepted.

/// Every reason a parser rejects bytes. The daemon counts drops per variant, so each
/// variant has a stable snake_case [`DecodeError::reason`] name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the headers or declared lengths require.
    #[error("truncated: {layer} needs {needed} bytes, {available} present")]
    Truncated {
        /// Which header or message was cut short.
        layer: &'static str,
        /// Bytes that layer requires.
        needed: usize,
        /// Bytes that were there.
        available: usize,
    },
    /// The IGMP, ICMPv6 or PIM checksum does not verify.
    #[error("bad checksum")]
    BadChecksum,
    /// The IPv4 header checksum does not verify.
    #[error("bad IPv4 header checksum")]
    BadIpChecksum,
    /// An IGMP or ICMPv6 type this codec does not decode.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// A message length that no version of the protocol defines (RFC 9776 §7.1: a query
    /// of 9-11 bytes; an MLD query of 25-27 bytes; a fixed-size message of a wrong size).
    #[error("bad length {0} for this message type")]
    BadLength(usize),
    /// A group address that must be multicast is not.
    #[error("group address is not multicast")]
    NotMulticast,
    /// The source or record count does not fit in the message length.
    #[error("more sources or records than the message length holds")]
    TooManySources,
    /// Neither IPv4 nor IPv6 (or a bad version nibble).
    #[error("unsupported EtherType {0:#06x}")]
    UnsupportedEtherType(u16),
    /// An IP header that is malformed (version, header length, option layout).
    #[error("malformed IP header: {0}")]
    BadIpHeader(&'static str),
    /// A fragment: IGMP and MLD messages are never fragmented in practice.
    #[error("fragmented IP packet")]
    Fragmented,
    /// An IP payload that is not IGMP, ICMPv6 MLD/MRD or PIM.
    #[error("not an IGMP, MLD or PIM packet (protocol {0})")]
    UnsupportedProtocol(u8),
    /// A PIM message other than a version-2 hello.
    #[error("PIM message that is not a v2 hello")]
    NotPimHello,
}

impl DecodeError {
    /// Every reason name, in a fixed order, for drop counters.
    pub const REASONS: [&'static str; 12] = [
        "truncated",
        "bad_checksum",
        "bad_ip_checksum",
        "unknown_type",
        "bad_length",
        "not_multicast",
        "too_many_sources",
        "unsupported_ethertype",
        "bad_ip_header",
        "fragmented",
        "unsupported_protocol",
        "not_pim_hello",
    ];

    /// The stable snake_case name of the reason, as used in drop counters.
    pub fn reason(&self) -> &'static str {
        Self::REASONS[self.reason_index()]
    }

    /// Index of [`DecodeError::reason`] in [`DecodeError::REASONS`].
    pub fn reason_index(&self) -> usize {
        match self {
            DecodeError::Truncated { .. } => 0,
            DecodeError::BadChecksum => 1,
            DecodeError::BadIpChecksum => 2,
            DecodeError::UnknownType(_) => 3,
            DecodeError::BadLength(_) => 4,
            DecodeError::NotMulticast => 5,
            DecodeError::TooManySources => 6,
            DecodeError::UnsupportedEtherType(_) => 7,
            DecodeError::BadIpHeader(_) => 8,
            DecodeError::Fragmented => 9,
            DecodeError::UnsupportedProtocol(_) => 10,
            DecodeError::NotPimHello => 11,
        }
    }
}

/// Returns `Err(Truncated)` unless `buf` holds at least `needed` bytes.
pub(crate) fn need(layer: &'static str, buf: &[u8], needed: usize) -> Result<(), DecodeError> {
    if buf.len() < needed {
        Err(DecodeError::Truncated {
            layer,
            needed,
            available: buf.len(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_names_are_distinct_and_indexed() {
        let all = [
            DecodeError::Truncated {
                layer: "x",
                needed: 1,
                available: 0,
            },
            DecodeError::BadChecksum,
            DecodeError::BadIpChecksum,
            DecodeError::UnknownType(9),
            DecodeError::BadLength(9),
            DecodeError::NotMulticast,
            DecodeError::TooManySources,
            DecodeError::UnsupportedEtherType(0x8888),
            DecodeError::BadIpHeader("x"),
            DecodeError::Fragmented,
            DecodeError::UnsupportedProtocol(6),
            DecodeError::NotPimHello,
        ];
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.reason_index(), i);
            assert_eq!(e.reason(), DecodeError::REASONS[i]);
        }
    }
}
