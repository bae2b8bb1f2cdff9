//! Group records of IGMPv3 reports (RFC 9776 §4.2.4) and multicast address records of
//! MLDv2 reports (RFC 9777 §5.2.4): one generic type over the address family.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{need, DecodeError};

/// An IPv4 or IPv6 address as it sits in IGMP/MLD messages.
pub trait Address: Copy + Eq + std::fmt::Debug + private::Sealed {
    /// Bytes on the wire: 4 or 16.
    const LEN: usize;
    /// Reads an address from exactly `LEN` bytes.
    fn read(bytes: &[u8]) -> Self;
    /// Appends the address to `out`.
    fn write(&self, out: &mut Vec<u8>);
    /// True for multicast addresses (224/4, ff00::/8).
    fn is_multicast_addr(&self) -> bool;
}

mod private {
    pub trait Sealed {}
    impl Sealed for std::net::Ipv4Addr {}
    impl Sealed for std::net::Ipv6Addr {}
}

impl Address for Ipv4Addr {
    const LEN: usize = 4;
    fn read(bytes: &[u8]) -> Self {
        Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.octets());
    }
    fn is_multicast_addr(&self) -> bool {
        self.is_multicast()
    }
}

impl Address for Ipv6Addr {
    const LEN: usize = 16;
    fn read(bytes: &[u8]) -> Self {
        let mut a = [0u8; 16];
        a.copy_from_slice(&bytes[..16]);
        Ipv6Addr::from(a)
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.octets());
    }
    fn is_multicast_addr(&self) -> bool {
        self.is_multicast()
    }
}

/// Record Type (RFC 9776 §4.2.12, RFC 9777 §5.2.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// MODE_IS_INCLUDE (1): current-state record.
    ModeIsInclude,
    /// MODE_IS_EXCLUDE (2): current-state record.
    ModeIsExclude,
    /// CHANGE_TO_INCLUDE_MODE (3): filter-mode-change record.
    ChangeToInclude,
    /// CHANGE_TO_EXCLUDE_MODE (4): filter-mode-change record.
    ChangeToExclude,
    /// ALLOW_NEW_SOURCES (5): source-list-change record.
    AllowNew,
    /// BLOCK_OLD_SOURCES (6): source-list-change record.
    BlockOld,
    /// Any other value. RFC 9776 §4.2.12: receivers silently ignore such records, so the
    /// parser keeps them (with their addresses) for the caller to skip.
    Unknown(u8),
}

impl RecordType {
    /// The wire value.
    pub fn code(self) -> u8 {
        match self {
            RecordType::ModeIsInclude => 1,
            RecordType::ModeIsExclude => 2,
            RecordType::ChangeToInclude => 3,
            RecordType::ChangeToExclude => 4,
            RecordType::AllowNew => 5,
            RecordType::BlockOld => 6,
            RecordType::Unknown(c) => c,
        }
    }

    /// From the wire value; values other than 1-6 become [`RecordType::Unknown`].
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => RecordType::ModeIsInclude,
            2 => RecordType::ModeIsExclude,
            3 => RecordType::ChangeToInclude,
            4 => RecordType::ChangeToExclude,
            5 => RecordType::AllowNew,
            6 => RecordType::BlockOld,
            c => RecordType::Unknown(c),
        }
    }

    /// The names RFC 9776 §6.4 uses in its state tables: IS_IN, IS_EX, TO_IN, TO_EX,
    /// ALLOW, BLOCK.
    pub fn rfc_name(self) -> &'static str {
        match self {
            RecordType::ModeIsInclude => "IS_IN",
            RecordType::ModeIsExclude => "IS_EX",
            RecordType::ChangeToInclude => "TO_IN",
            RecordType::ChangeToExclude => "TO_EX",
            RecordType::AllowNew => "ALLOW",
            RecordType::BlockOld => "BLOCK",
            RecordType::Unknown(_) => "UNKNOWN",
        }
    }
}

/// One group record (IGMPv3) or multicast address record (MLDv2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord<A: Address> {
    /// What the record says about the group.
    pub record_type: RecordType,
    /// The multicast group.
    pub group: A,
    /// The source list.
    pub sources: Vec<A>,
    /// Auxiliary data; its length is a multiple of 4 bytes (emit pads with zeros).
    pub aux_data: Vec<u8>,
}

impl<A: Address> GroupRecord<A> {
    /// Bytes this record takes on the wire.
    pub fn buffer_len(&self) -> usize {
        4 + A::LEN + self.sources.len() * A::LEN + self.aux_data.len().div_ceil(4) * 4
    }

    /// Appends the record to `out`.
    ///
    /// The caller keeps within the wire's limits: at most 65535 sources and 1020 bytes of
    /// aux data (longer lists are cut, as the fields cannot say more).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let aux_words = self.aux_data.len().div_ceil(4).min(255);
        let nsrc = self.sources.len().min(usize::from(u16::MAX));
        out.push(self.record_type.code());
        out.push(aux_words as u8);
        out.extend_from_slice(&(nsrc as u16).to_be_bytes());
        self.group.write(out);
        for s in &self.sources[..nsrc] {
            s.write(out);
        }
        let aux = &self.aux_data[..self.aux_data.len().min(aux_words * 4)];
        out.extend_from_slice(aux);
        out.resize(out.len() + (aux_words * 4 - aux.len()), 0);
    }
}

/// Parses `count` records from `buf`, which must hold exactly them (trailing bytes are
/// tolerated, as RFC 9776 §4.2 lets a report carry nothing after its last record).
pub(crate) fn parse_records<A: Address>(
    buf: &[u8],
    count: usize,
) -> Result<Vec<GroupRecord<A>>, DecodeError> {
    // Each record takes at least 4 + LEN bytes: a count that cannot fit is rejected before
    // any allocation, so a hostile count cannot make us reserve memory.
    if count * (4 + A::LEN) > buf.len() {
        return Err(DecodeError::TooManySources);
    }
    let mut records = Vec::with_capacity(count);
    let mut rest = buf;
    for _ in 0..count {
        need("group record", rest, 4 + A::LEN)?;
        let record_type = RecordType::from_code(rest[0]);
        let aux_len = usize::from(rest[1]) * 4;
        let nsrc = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let group = A::read(&rest[4..4 + A::LEN]);
        let len = 4 + A::LEN + nsrc * A::LEN + aux_len;
        if len > rest.len() {
            return Err(DecodeError::TooManySources);
        }
        if !group.is_multicast_addr() {
            return Err(DecodeError::NotMulticast);
        }
        let src_start = 4 + A::LEN;
        let sources = rest[src_start..src_start + nsrc * A::LEN]
            .chunks_exact(A::LEN)
            .map(A::read)
            .collect();
        let aux_data = rest[src_start + nsrc * A::LEN..len].to_vec();
        records.push(GroupRecord {
            record_type,
            group,
            sources,
            aux_data,
        });
        rest = &rest[len..];
    }
    Ok(records)
}

/// Reads `count` addresses from the start of `buf`, or `TooManySources` if they do not fit.
pub(crate) fn parse_sources<A: Address>(buf: &[u8], count: usize) -> Result<Vec<A>, DecodeError> {
    if count * A::LEN > buf.len() {
        return Err(DecodeError::TooManySources);
    }
    Ok(buf[..count * A::LEN]
        .chunks_exact(A::LEN)
        .map(A::read)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_type_codes_round_trip() {
        for c in 0..=u8::MAX {
            assert_eq!(RecordType::from_code(c).code(), c);
        }
        assert_eq!(RecordType::from_code(3).rfc_name(), "TO_IN");
    }

    #[test]
    fn record_emit_pads_aux_data() {
        let r = GroupRecord {
            record_type: RecordType::AllowNew,
            group: Ipv4Addr::new(239, 1, 1, 1),
            sources: vec![Ipv4Addr::new(10, 0, 0, 1)],
            aux_data: vec![1, 2, 3],
        };
        let mut out = Vec::new();
        r.emit(&mut out);
        assert_eq!(out.len(), r.buffer_len());
        assert_eq!(out, [5, 1, 0, 1, 239, 1, 1, 1, 10, 0, 0, 1, 1, 2, 3, 0]);
    }

    #[test]
    fn record_count_beyond_buffer_is_rejected_without_allocating() {
        let buf = [4u8, 0, 0, 0, 239, 1, 1, 1];
        assert_eq!(
            parse_records::<Ipv4Addr>(&buf, 65535),
            Err(DecodeError::TooManySources)
        );
        assert_eq!(parse_records::<Ipv4Addr>(&buf, 1).unwrap().len(), 1);
    }

    #[test]
    fn record_source_count_beyond_buffer() {
        let buf = [1u8, 0, 0, 2, 239, 1, 1, 1, 10, 0, 0, 1];
        assert_eq!(
            parse_records::<Ipv4Addr>(&buf, 1),
            Err(DecodeError::TooManySources)
        );
    }

    #[test]
    fn record_group_must_be_multicast() {
        let buf = [1u8, 0, 0, 0, 10, 1, 1, 1];
        assert_eq!(
            parse_records::<Ipv4Addr>(&buf, 1),
            Err(DecodeError::NotMulticast)
        );
    }
}
