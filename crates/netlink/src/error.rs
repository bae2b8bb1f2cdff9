//! Typed errors, with the kernel's errno and extended-ack message.

use std::{fmt, io};

use netlink_packet_core::{
    parse_string, parse_u32, ErrorMessage, NlasIterator, NLA_TYPE_MASK, NLM_F_CAPPED,
};

use crate::constants::{MDBE_ATTR_RTPROT, NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS};

/// What the kernel said when it refused a request: `errno` (positive) and the
/// extended ack message and attribute offset, when it gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// Positive errno (`EINVAL` = 22, ...).
    pub errno: i32,
    /// `NLMSGERR_ATTR_MSG`, e.g. "bridge: Bridge device is not running".
    pub message: Option<String>,
    /// `NLMSGERR_ATTR_OFFS`: offset of the offending attribute in the request.
    pub offset: Option<u32>,
    /// nla_type of the attribute at `offset`, if the request was echoed back.
    pub offending_attribute: Option<u16>,
}

impl KernelError {
    /// Decodes an `NLMSG_ERROR` payload; `flags` are the error message's
    /// header flags (`NLM_F_CAPPED`, `NLM_F_ACK_TLVS`).
    pub fn from_error_message(err: &ErrorMessage, flags: u16) -> Self {
        let errno = err.raw_code().saturating_abs();
        let data = &err.header;
        // The echoed request: its header only if capped, else all of it.
        let orig_len = if flags & NLM_F_CAPPED != 0 {
            16
        } else {
            data.get(..4)
                .and_then(|b| parse_u32(b).ok())
                .map_or(data.len(), |l| l as usize)
        };
        let tlv_start = (orig_len + 3) & !3;
        let mut message = None;
        let mut offset = None;
        if let Some(tlvs) = data.get(tlv_start..) {
            for nla in NlasIterator::new(tlvs).flatten() {
                match nla.kind() {
                    NLMSGERR_ATTR_MSG => {
                        message = parse_string(nla.value()).ok().filter(|s| !s.is_empty())
                    }
                    NLMSGERR_ATTR_OFFS => offset = parse_u32(nla.value()).ok(),
                    _ => {}
                }
            }
        }
        let offending_attribute = offset.and_then(|o| {
            let o = o as usize;
            if flags & NLM_F_CAPPED != 0 || o + 4 > orig_len.min(data.len()) {
                return None;
            }
            Some(u16::from_ne_bytes([data[o + 2], data[o + 3]]) & NLA_TYPE_MASK)
        });
        Self {
            errno,
            message,
            offset,
            offending_attribute,
        }
    }

    /// The errno as an [`io::Error`].
    pub fn io_error(&self) -> io::Error {
        io::Error::from_raw_os_error(self.errno)
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => write!(f, "{m} ({})", self.io_error()),
            None => write!(f, "{}", self.io_error()),
        }
    }
}

/// Errors of this crate's requests.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bridge has multicast snooping off (`mcast_snooping 0`).
    #[error("bridge multicast snooping is disabled: {0}")]
    SnoopingDisabled(KernelError),
    /// The bridge device is down.
    #[error("bridge is down: {0}")]
    BridgeDown(KernelError),
    /// The port is down / in STP disabled state (temporary entries only).
    #[error("bridge port is disabled: {0}")]
    PortDisabled(KernelError),
    /// The entry already exists (add without replace).
    #[error("MDB entry exists: {0}")]
    EntryExists(KernelError),
    /// No such entry (delete / get).
    #[error("MDB entry not found: {0}")]
    EntryNotFound(KernelError),
    /// The protocol value was refused (the kernel requires >= 4, RTPROT_STATIC).
    #[error("bad MDB entry protocol: {0}")]
    BadProtocol(KernelError),
    /// Any other refusal.
    #[error("kernel refused the request: {0}")]
    Kernel(KernelError),
    /// The kernel answered with something that is not the expected reply.
    #[error("unexpected netlink reply: {0}")]
    UnexpectedMessage(String),
    /// The connection task is gone.
    #[error("netlink connection closed")]
    ConnectionClosed,
    /// Socket error.
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
}

impl Error {
    /// The kernel's side of the error, if it came from the kernel.
    pub fn kernel(&self) -> Option<&KernelError> {
        match self {
            Self::SnoopingDisabled(k)
            | Self::BridgeDown(k)
            | Self::PortDisabled(k)
            | Self::EntryExists(k)
            | Self::EntryNotFound(k)
            | Self::BadProtocol(k)
            | Self::Kernel(k) => Some(k),
            _ => None,
        }
    }

    /// errno of a kernel error.
    pub fn errno(&self) -> Option<i32> {
        self.kernel().map(|k| k.errno)
    }
}

/// What kind of request failed; picks the mapping of ambiguous errnos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `bridge mdb add|replace`, with the protocol it asked for.
    MdbAdd {
        /// `MDBE_ATTR_RTPROT` of the request.
        protocol: Option<u8>,
    },
    /// `bridge mdb del`.
    MdbDel,
    /// `bridge mdb get`.
    MdbGet,
    /// Anything else.
    Other,
}

impl Error {
    /// Maps the kernel's refusal of a request of kind `kind` to a typed error.
    pub fn from_kernel(kind: RequestKind, k: KernelError) -> Self {
        classify(kind, k)
    }
}

pub(crate) fn classify(op: RequestKind, k: KernelError) -> Error {
    let msg = k.message.clone().unwrap_or_default();
    if msg.contains("multicast processing is disabled") {
        return Error::SnoopingDisabled(k);
    }
    if msg.contains("Bridge device is not running") {
        return Error::BridgeDown(k);
    }
    if msg.contains("disabled state") {
        return Error::PortDisabled(k);
    }
    if let RequestKind::MdbAdd { protocol } = op {
        let rtprot_attr = k.offending_attribute == Some(MDBE_ATTR_RTPROT);
        let low = protocol.is_some_and(|p| p < crate::constants::RTPROT_STATIC);
        // The netlink policy (NLA_POLICY_MIN) refuses it with ERANGE, "integer
        // out of range" and the offset of MDBE_ATTR_RTPROT.
        let range = k.errno == libc_errno::ERANGE || k.errno == libc_errno::EINVAL;
        if range && (rtprot_attr || (low && msg.contains("out of range"))) {
            return Error::BadProtocol(k);
        }
    }
    match (op, k.errno) {
        (RequestKind::MdbAdd { .. }, libc_errno::EEXIST) => Error::EntryExists(k),
        (RequestKind::MdbDel | RequestKind::MdbGet, libc_errno::ENOENT) => Error::EntryNotFound(k),
        // br_mdb_del() answers EINVAL without a message when nothing matched.
        (RequestKind::MdbDel, libc_errno::EINVAL) if k.message.is_none() => Error::EntryNotFound(k),
        _ => Error::Kernel(k),
    }
}

/// The few errno values needed, without a libc dependency.
pub(crate) mod libc_errno {
    pub const ENOENT: i32 = 2;
    pub const EEXIST: i32 = 17;
    pub const EINVAL: i32 = 22;
    pub const ERANGE: i32 = 34;
}
