//! Netlink attributes of MDB requests: `MDBA_SET_ENTRY_ATTRS` / `MDBA_GET_ENTRY_ATTRS`
//! (`MDBE_ATTR_*`), what userspace sends with an add, delete, get or flush. Attribute
//! numbers overlap with the kernel's shapes in `attribute.rs`; the message parser picks
//! the shape from `NLM_F_REQUEST`.

use std::net::IpAddr;

use netlink_packet_core::{parse_u8, DecodeError, DefaultNla, Nla, NlaBuffer, NLA_F_NESTED};

use super::nla::{
    addr_len, emit_addr, emit_nested, nested_len, other, parse_addr, parse_nlas, FilterMode,
};
use crate::constants::*;

/// `MDBE_ATTR_*`: attributes of an add, delete, get or flush request.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum MdbeAttribute {
    /// `MDBE_ATTR_SOURCE`: S of an (S,G) entry.
    Source(IpAddr),
    /// `MDBE_ATTR_SRC_LIST`: sources of a (*,G) entry (at most 32).
    SrcList(Vec<MdbeSrcListAttribute>),
    /// `MDBE_ATTR_GROUP_MODE`: filter mode of a (*,G) entry.
    GroupMode(FilterMode),
    /// `MDBE_ATTR_RTPROT`: protocol; the kernel rejects values below
    /// `RTPROT_STATIC` (4).
    Protocol(u8),
    /// `MDBE_ATTR_STATE_MASK` (flush): which bits of the entry's state to match.
    StateMask(u8),
    /// Anything else, kept as received.
    Other(DefaultNla),
}

impl MdbeAttribute {
    pub(super) fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        let v = nla.value();
        Ok(match nla.kind() {
            MDBE_ATTR_SOURCE => Self::Source(parse_addr(v)?),
            MDBE_ATTR_SRC_LIST => Self::SrcList(parse_nlas(
                v,
                "MDBE_ATTR_SRC_LIST",
                MdbeSrcListAttribute::parse,
            )?),
            MDBE_ATTR_GROUP_MODE => Self::GroupMode(parse_u8(v)?.into()),
            MDBE_ATTR_RTPROT => Self::Protocol(parse_u8(v)?),
            MDBE_ATTR_STATE_MASK => Self::StateMask(parse_u8(v)?),
            _ => Self::Other(other(nla)?),
        })
    }
}

impl Nla for MdbeAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Source(a) => addr_len(a),
            Self::SrcList(v) => nested_len(v),
            Self::GroupMode(_) | Self::Protocol(_) | Self::StateMask(_) => 1,
            Self::Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            Self::Source(_) => MDBE_ATTR_SOURCE,
            Self::SrcList(_) => MDBE_ATTR_SRC_LIST | NLA_F_NESTED,
            Self::GroupMode(_) => MDBE_ATTR_GROUP_MODE,
            Self::Protocol(_) => MDBE_ATTR_RTPROT,
            Self::StateMask(_) => MDBE_ATTR_STATE_MASK,
            Self::Other(nla) => nla.kind(),
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Source(a) => emit_addr(a, buffer),
            Self::SrcList(v) => emit_nested(v, buffer),
            Self::GroupMode(m) => buffer[0] = (*m).into(),
            Self::Protocol(p) | Self::StateMask(p) => buffer[0] = *p,
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

/// An attribute inside `MDBE_ATTR_SRC_LIST`.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum MdbeSrcListAttribute {
    /// `MDBE_SRC_LIST_ENTRY`: one source.
    Entry(Vec<MdbeSrcAttribute>),
    /// Anything else, kept as received.
    Other(DefaultNla),
}

impl MdbeSrcListAttribute {
    /// A source list entry for `addr`.
    pub fn address(addr: IpAddr) -> Self {
        Self::Entry(vec![MdbeSrcAttribute::Address(addr)])
    }

    pub(super) fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        Ok(match nla.kind() {
            MDBE_SRC_LIST_ENTRY => Self::Entry(parse_nlas(
                nla.value(),
                "MDBE_SRC_LIST_ENTRY",
                MdbeSrcAttribute::parse,
            )?),
            _ => Self::Other(other(nla)?),
        })
    }
}

impl Nla for MdbeSrcListAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Entry(v) => nested_len(v),
            Self::Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            Self::Entry(_) => MDBE_SRC_LIST_ENTRY | NLA_F_NESTED,
            Self::Other(nla) => nla.kind(),
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Entry(v) => emit_nested(v, buffer),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

/// `MDBE_SRCATTR_*`: one source of a request's source list.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum MdbeSrcAttribute {
    /// `MDBE_SRCATTR_ADDRESS`.
    Address(IpAddr),
    /// Anything else, kept as received.
    Other(DefaultNla),
}

impl MdbeSrcAttribute {
    pub(super) fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        Ok(match nla.kind() {
            MDBE_SRCATTR_ADDRESS => Self::Address(parse_addr(nla.value())?),
            _ => Self::Other(other(nla)?),
        })
    }
}

impl Nla for MdbeSrcAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Address(a) => addr_len(a),
            Self::Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            Self::Address(_) => MDBE_SRCATTR_ADDRESS,
            Self::Other(nla) => nla.kind(),
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Address(a) => emit_addr(a, buffer),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}
