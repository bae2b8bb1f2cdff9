//! Netlink attributes of MDB messages as the kernel sends them (`MDBA_MDB`, `MDBA_ROUTER`
//! and their nests); the attributes of requests are in `request_attribute.rs`.
//!
//! Attribute numbers overlap between the two shapes of MDB message: what the
//! kernel sends (dump replies, `get` replies and notifications: `MDBA_MDB`,
//! `MDBA_ROUTER`) and what userspace sends (`MDBA_SET_ENTRY`,
//! `MDBA_SET_ENTRY_ATTRS`, `MDBA_GET_ENTRY`, `MDBA_GET_ENTRY_ATTRS`). The
//! message parser picks the shape from the `NLM_F_REQUEST` flag, which the
//! kernel never sets and every request carries.
//!
//! Nests are emitted the way their authors do: the kernel's without
//! `NLA_F_NESTED` (`nla_nest_start_noflag`), iproute2's requests with it.
//! Unknown attributes are kept as [`DefaultNla`] and emitted back unchanged.

use std::net::IpAddr;

use netlink_packet_core::{
    emit_u16, emit_u32, parse_u16, parse_u32, parse_u8, DecodeError, DefaultNla, Emitable,
    ErrorContext, Nla, NlaBuffer, Parseable, NLA_F_NESTED,
};

use super::entry::{MdbEntry, MDB_ENTRY_LEN};
use super::nla::{
    addr_len, emit_addr, emit_nested, nested_len, other, parse_addr, parse_nlas, FilterMode,
};
use super::request_attribute::MdbeAttribute;
use crate::constants::*;

// ---------------------------------------------------------------------------
// Top level.

/// A top-level attribute of an MDB message.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum MdbAttribute {
    /// `MDBA_MDB` (kernel): groups, each with its ports' entries.
    Mdb(Vec<MdbGroupAttribute>),
    /// `MDBA_ROUTER` (kernel): multicast router ports.
    Router(Vec<MdbRouterAttribute>),
    /// `MDBA_SET_ENTRY` / `MDBA_GET_ENTRY` (request): the entry.
    Entry(MdbEntry),
    /// `MDBA_SET_ENTRY_ATTRS` / `MDBA_GET_ENTRY_ATTRS` (request): source,
    /// filter mode, source list, protocol.
    EntryAttrs(Vec<MdbeAttribute>),
    /// Anything else, kept as received.
    Other(DefaultNla),
}

impl MdbAttribute {
    /// Parses an attribute of a kernel-originated message.
    pub fn parse_kernel(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        Ok(match nla.kind() {
            MDBA_MDB => Self::Mdb(parse_nlas(
                nla.value(),
                "MDBA_MDB",
                MdbGroupAttribute::parse,
            )?),
            MDBA_ROUTER => Self::Router(parse_nlas(
                nla.value(),
                "MDBA_ROUTER",
                MdbRouterAttribute::parse,
            )?),
            _ => Self::Other(other(nla)?),
        })
    }

    /// Parses an attribute of a request (`NLM_F_REQUEST` set).
    pub fn parse_request(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        Ok(match nla.kind() {
            MDBA_SET_ENTRY => {
                Self::Entry(MdbEntry::parse(nla.value()).context("invalid MDBA_SET_ENTRY")?)
            }
            MDBA_SET_ENTRY_ATTRS => Self::EntryAttrs(parse_nlas(
                nla.value(),
                "MDBA_SET_ENTRY_ATTRS",
                MdbeAttribute::parse,
            )?),
            _ => Self::Other(other(nla)?),
        })
    }
}

impl Nla for MdbAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Mdb(v) => nested_len(v),
            Self::Router(v) => nested_len(v),
            Self::Entry(e) => e.buffer_len(),
            Self::EntryAttrs(v) => nested_len(v),
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Mdb(_) => MDBA_MDB,
            Self::Router(_) => MDBA_ROUTER,
            Self::Entry(_) => MDBA_SET_ENTRY,
            Self::EntryAttrs(_) => MDBA_SET_ENTRY_ATTRS | NLA_F_NESTED,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Mdb(v) => emit_nested(v, buffer),
            Self::Router(v) => emit_nested(v, buffer),
            Self::Entry(e) => e.emit(buffer),
            Self::EntryAttrs(v) => emit_nested(v, buffer),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

// ---------------------------------------------------------------------------
// MDBA_MDB: MDBA_MDB_ENTRY -> MDBA_MDB_ENTRY_INFO -> MDBA_MDB_EATTR_*.

/// An attribute inside `MDBA_MDB`.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum MdbGroupAttribute {
    /// `MDBA_MDB_ENTRY`: one group, with one `Info` per port.
    Entry(Vec<MdbPortAttribute>),
    /// Anything else, kept as received.
    Other(DefaultNla),
}

impl MdbGroupAttribute {
    fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        Ok(match nla.kind() {
            MDBA_MDB_ENTRY => Self::Entry(parse_nlas(
                nla.value(),
                "MDBA_MDB_ENTRY",
                MdbPortAttribute::parse,
            )?),
            _ => Self::Other(other(nla)?),
        })
    }
}

impl Nla for MdbGroupAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Entry(v) => nested_len(v),
            Self::Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            Self::Entry(_) => MDBA_MDB_ENTRY,
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

/// An attribute inside `MDBA_MDB_ENTRY`.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum MdbPortAttribute {
    /// `MDBA_MDB_ENTRY_INFO`: `struct br_mdb_entry` followed by attributes.
    Info(MdbEntryInfo),
    /// Anything else, kept as received.
    Other(DefaultNla),
}

impl MdbPortAttribute {
    fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        Ok(match nla.kind() {
            MDBA_MDB_ENTRY_INFO => Self::Info(MdbEntryInfo::parse_value(nla.value())?),
            _ => Self::Other(other(nla)?),
        })
    }
}

impl Nla for MdbPortAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Info(i) => MDB_ENTRY_LEN + nested_len(&i.attributes),
            Self::Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            Self::Info(_) => MDBA_MDB_ENTRY_INFO,
            Self::Other(nla) => nla.kind(),
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Info(i) => {
                i.entry.emit(&mut buffer[..MDB_ENTRY_LEN]);
                emit_nested(&i.attributes, &mut buffer[MDB_ENTRY_LEN..]);
            }
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

/// The value of `MDBA_MDB_ENTRY_INFO`.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct MdbEntryInfo {
    /// Port, state, flags, VLAN and group.
    pub entry: MdbEntry,
    /// `MDBA_MDB_EATTR_*` that follow the entry.
    pub attributes: Vec<MdbInfoAttribute>,
}

impl MdbEntryInfo {
    fn parse_value(v: &[u8]) -> Result<Self, DecodeError> {
        let entry = MdbEntry::parse(v).context("invalid MDBA_MDB_ENTRY_INFO")?;
        let rest = v.get(MDB_ENTRY_LEN..).unwrap_or(&[]);
        Ok(Self {
            entry,
            attributes: parse_nlas(rest, "MDBA_MDB_ENTRY_INFO", MdbInfoAttribute::parse)?,
        })
    }
}

/// `MDBA_MDB_EATTR_*`: attributes of a port's entry in kernel messages.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum MdbInfoAttribute {
    /// `MDBA_MDB_EATTR_TIMER`: remaining time, centiseconds (USER_HZ).
    Timer(u32),
    /// `MDBA_MDB_EATTR_SRC_LIST` (IGMPv3/MLDv2 bridges only).
    SrcList(Vec<MdbSrcListAttribute>),
    /// `MDBA_MDB_EATTR_GROUP_MODE` (IGMPv3/MLDv2 bridges only).
    GroupMode(FilterMode),
    /// `MDBA_MDB_EATTR_SOURCE`: S of an (S,G) entry.
    Source(IpAddr),
    /// `MDBA_MDB_EATTR_RTPROT`: who installed the entry.
    Protocol(u8),
    /// Anything else (VXLAN `DST`, `VNI`, ...), kept as received.
    Other(DefaultNla),
}

impl MdbInfoAttribute {
    fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        let v = nla.value();
        Ok(match nla.kind() {
            MDBA_MDB_EATTR_TIMER => Self::Timer(parse_u32(v)?),
            MDBA_MDB_EATTR_SRC_LIST => Self::SrcList(parse_nlas(
                v,
                "MDBA_MDB_EATTR_SRC_LIST",
                MdbSrcListAttribute::parse,
            )?),
            MDBA_MDB_EATTR_GROUP_MODE => Self::GroupMode(parse_u8(v)?.into()),
            MDBA_MDB_EATTR_SOURCE => Self::Source(parse_addr(v)?),
            MDBA_MDB_EATTR_RTPROT => Self::Protocol(parse_u8(v)?),
            _ => Self::Other(other(nla)?),
        })
    }
}

impl Nla for MdbInfoAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Timer(_) => 4,
            Self::SrcList(v) => nested_len(v),
            Self::GroupMode(_) | Self::Protocol(_) => 1,
            Self::Source(a) => addr_len(a),
            Self::Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            Self::Timer(_) => MDBA_MDB_EATTR_TIMER,
            Self::SrcList(_) => MDBA_MDB_EATTR_SRC_LIST,
            Self::GroupMode(_) => MDBA_MDB_EATTR_GROUP_MODE,
            Self::Source(_) => MDBA_MDB_EATTR_SOURCE,
            Self::Protocol(_) => MDBA_MDB_EATTR_RTPROT,
            Self::Other(nla) => nla.kind(),
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Timer(t) => emit_u32(buffer, *t).unwrap_or_default(),
            Self::SrcList(v) => emit_nested(v, buffer),
            Self::GroupMode(m) => buffer[0] = (*m).into(),
            Self::Source(a) => emit_addr(a, buffer),
            Self::Protocol(p) => buffer[0] = *p,
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

/// An attribute inside `MDBA_MDB_EATTR_SRC_LIST`.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum MdbSrcListAttribute {
    /// `MDBA_MDB_SRCLIST_ENTRY`: one source.
    Entry(Vec<MdbSrcAttribute>),
    /// Anything else, kept as received.
    Other(DefaultNla),
}

impl MdbSrcListAttribute {
    fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        Ok(match nla.kind() {
            MDBA_MDB_SRCLIST_ENTRY => Self::Entry(parse_nlas(
                nla.value(),
                "MDBA_MDB_SRCLIST_ENTRY",
                MdbSrcAttribute::parse,
            )?),
            _ => Self::Other(other(nla)?),
        })
    }
}

impl Nla for MdbSrcListAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Entry(v) => nested_len(v),
            Self::Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            Self::Entry(_) => MDBA_MDB_SRCLIST_ENTRY,
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

/// `MDBA_MDB_SRCATTR_*`: one source of a source list.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum MdbSrcAttribute {
    /// `MDBA_MDB_SRCATTR_ADDRESS`.
    Address(IpAddr),
    /// `MDBA_MDB_SRCATTR_TIMER`: remaining time, centiseconds.
    Timer(u32),
    /// Anything else, kept as received.
    Other(DefaultNla),
}

impl MdbSrcAttribute {
    fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        Ok(match nla.kind() {
            MDBA_MDB_SRCATTR_ADDRESS => Self::Address(parse_addr(nla.value())?),
            MDBA_MDB_SRCATTR_TIMER => Self::Timer(parse_u32(nla.value())?),
            _ => Self::Other(other(nla)?),
        })
    }
}

impl Nla for MdbSrcAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Address(a) => addr_len(a),
            Self::Timer(_) => 4,
            Self::Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            Self::Address(_) => MDBA_MDB_SRCATTR_ADDRESS,
            Self::Timer(_) => MDBA_MDB_SRCATTR_TIMER,
            Self::Other(nla) => nla.kind(),
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Address(a) => emit_addr(a, buffer),
            Self::Timer(t) => emit_u32(buffer, *t).unwrap_or_default(),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

// ---------------------------------------------------------------------------
// MDBA_ROUTER.

/// An attribute inside `MDBA_ROUTER`.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum MdbRouterAttribute {
    /// `MDBA_ROUTER_PORT`: a `u32` port ifindex, followed by
    /// `MDBA_ROUTER_PATTR_*` in dumps (the ifindex alone in notifications).
    Port(MdbRouterPort),
    /// Anything else, kept as received.
    Other(DefaultNla),
}

/// The value of `MDBA_ROUTER_PORT`.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct MdbRouterPort {
    /// Interface index of the router port.
    pub ifindex: u32,
    /// `MDBA_ROUTER_PATTR_*`.
    pub attributes: Vec<MdbRouterPortAttribute>,
}

impl MdbRouterAttribute {
    fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        Ok(match nla.kind() {
            MDBA_ROUTER_PORT => {
                let v = nla.value();
                let ifindex =
                    parse_u32(v.get(..4).unwrap_or(v)).context("invalid MDBA_ROUTER_PORT")?;
                Self::Port(MdbRouterPort {
                    ifindex,
                    attributes: parse_nlas(
                        &v[4..],
                        "MDBA_ROUTER_PORT",
                        MdbRouterPortAttribute::parse,
                    )?,
                })
            }
            _ => Self::Other(other(nla)?),
        })
    }
}

impl Nla for MdbRouterAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Port(p) => 4 + nested_len(&p.attributes),
            Self::Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            Self::Port(_) => MDBA_ROUTER_PORT,
            Self::Other(nla) => nla.kind(),
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Port(p) => {
                buffer[..4].copy_from_slice(&p.ifindex.to_ne_bytes());
                emit_nested(&p.attributes, &mut buffer[4..]);
            }
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

/// `MDBA_ROUTER_PATTR_*`.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum MdbRouterPortAttribute {
    /// `MDBA_ROUTER_PATTR_TIMER`: centiseconds.
    Timer(u32),
    /// `MDBA_ROUTER_PATTR_TYPE`: `MDB_RTR_TYPE_*` (0 disabled, 1 learned
    /// from queries, 2 permanent, 3 temporary).
    Type(u8),
    /// `MDBA_ROUTER_PATTR_INET_TIMER`: centiseconds.
    InetTimer(u32),
    /// `MDBA_ROUTER_PATTR_INET6_TIMER`: centiseconds.
    Inet6Timer(u32),
    /// `MDBA_ROUTER_PATTR_VID`.
    Vid(u16),
    /// Anything else, kept as received.
    Other(DefaultNla),
}

impl MdbRouterPortAttribute {
    fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        let v = nla.value();
        Ok(match nla.kind() {
            MDBA_ROUTER_PATTR_TIMER => Self::Timer(parse_u32(v)?),
            MDBA_ROUTER_PATTR_TYPE => Self::Type(parse_u8(v)?),
            MDBA_ROUTER_PATTR_INET_TIMER => Self::InetTimer(parse_u32(v)?),
            MDBA_ROUTER_PATTR_INET6_TIMER => Self::Inet6Timer(parse_u32(v)?),
            MDBA_ROUTER_PATTR_VID => Self::Vid(parse_u16(v)?),
            _ => Self::Other(other(nla)?),
        })
    }
}

impl Nla for MdbRouterPortAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Timer(_) | Self::InetTimer(_) | Self::Inet6Timer(_) => 4,
            Self::Type(_) => 1,
            Self::Vid(_) => 2,
            Self::Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            Self::Timer(_) => MDBA_ROUTER_PATTR_TIMER,
            Self::Type(_) => MDBA_ROUTER_PATTR_TYPE,
            Self::InetTimer(_) => MDBA_ROUTER_PATTR_INET_TIMER,
            Self::Inet6Timer(_) => MDBA_ROUTER_PATTR_INET6_TIMER,
            Self::Vid(_) => MDBA_ROUTER_PATTR_VID,
            Self::Other(nla) => nla.kind(),
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Timer(t) | Self::InetTimer(t) | Self::Inet6Timer(t) => {
                emit_u32(buffer, *t).unwrap_or_default()
            }
            Self::Type(t) => buffer[0] = *t,
            Self::Vid(v) => emit_u16(buffer, *v).unwrap_or_default(),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}
