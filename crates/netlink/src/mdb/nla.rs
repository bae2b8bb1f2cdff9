//! What both shapes of MDB attributes share: parsing a nest without panicking, addresses of
//! either family, nests, unknown attributes, and the (*,G) filter mode.

use std::net::IpAddr;

use netlink_packet_core::{
    parse_ip, DecodeError, DefaultNla, Emitable, ErrorContext, Nla, NlaBuffer, NlasIterator,
    Parseable,
};

/// Parses every attribute in `buf` with `f`; the first malformed one is an
/// error (with `ctx` as context), never a panic.
pub(crate) fn parse_nlas<T>(
    buf: &[u8],
    ctx: &str,
    f: impl Fn(&NlaBuffer<&[u8]>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut out = Vec::new();
    for nla in NlasIterator::new(buf) {
        let nla = nla.with_context(|| format!("invalid {ctx} attribute"))?;
        out.push(f(&nla).with_context(|| format!("invalid {ctx} attribute"))?);
    }
    Ok(out)
}

pub(crate) fn parse_addr(v: &[u8]) -> Result<IpAddr, DecodeError> {
    parse_ip(v)
}

pub(crate) fn addr_len(a: &IpAddr) -> usize {
    match a {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 16,
    }
}

pub(crate) fn emit_addr(a: &IpAddr, buf: &mut [u8]) {
    match a {
        IpAddr::V4(a) => buf[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => buf[..16].copy_from_slice(&a.octets()),
    }
}

pub(crate) fn emit_nested<T: Nla>(v: &[T], buf: &mut [u8]) {
    v.emit(buf)
}

pub(crate) fn nested_len<T: Nla>(v: &[T]) -> usize {
    v.buffer_len()
}

pub(crate) fn other(nla: &NlaBuffer<&[u8]>) -> Result<DefaultNla, DecodeError> {
    DefaultNla::parse(nla)
}

/// Filter mode of a (*,G) entry (`MDBA_MDB_EATTR_GROUP_MODE`,
/// `MDBE_ATTR_GROUP_MODE`), with the values of `MCAST_INCLUDE` and
/// `MCAST_EXCLUDE`.
#[derive(Debug, PartialEq, Eq, Clone, Copy, Hash)]
pub enum FilterMode {
    /// `MCAST_EXCLUDE` (0).
    Exclude,
    /// `MCAST_INCLUDE` (1).
    Include,
    /// A value this crate does not know.
    Other(u8),
}

impl From<u8> for FilterMode {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::Exclude,
            1 => Self::Include,
            v => Self::Other(v),
        }
    }
}

impl From<FilterMode> for u8 {
    fn from(v: FilterMode) -> u8 {
        match v {
            FilterMode::Exclude => 0,
            FilterMode::Include => 1,
            FilterMode::Other(v) => v,
        }
    }
}
