//! [`RtnlMessage`]: netlink-packet-route's messages plus the MDB messages, so
//! one connection carries both.

use netlink_packet_core::{
    DecodeError, Emitable, NetlinkDeserializable, NetlinkHeader, NetlinkPayload,
    NetlinkSerializable, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::{
    constants::{RTM_DELMDB, RTM_GETMDB, RTM_NEWMDB},
    mdb::MdbMessage,
    vlans::{VlanMessage, RTM_DELVLAN, RTM_GETVLAN, RTM_NEWVLAN},
};

/// Every message of the `NETLINK_ROUTE` protocol: netlink-packet-route's, the
/// bridge MDB ones, and anything that did not decode, kept raw.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum RtnlMessage {
    /// A message netlink-packet-route knows (links, addresses, ...).
    Route(RouteNetlinkMessage),
    /// `RTM_NEWMDB`: add request, added-entry notification, get reply.
    NewMdb(MdbMessage),
    /// `RTM_DELMDB`: delete / flush request, deleted-entry notification.
    DelMdb(MdbMessage),
    /// `RTM_GETMDB`: dump / get request; also the type of dump replies.
    GetMdb(MdbMessage),
    /// `RTM_NEWVLAN` / `RTM_DELVLAN` / `RTM_GETVLAN` (the bridge VLAN database).
    Vlan {
        /// `nlmsg_type`.
        message_type: u16,
        /// The message.
        message: VlanMessage,
    },
    /// A message that did not decode. Deserialization never fails, so the
    /// connection never drops a message silently: it arrives here with the
    /// reason.
    Unparsed {
        /// `nlmsg_type`.
        message_type: u16,
        /// The payload after the netlink header.
        payload: Vec<u8>,
        /// Why it did not decode.
        error: String,
    },
}

impl RtnlMessage {
    /// The MDB message inside, if this is one.
    pub fn mdb(&self) -> Option<&MdbMessage> {
        match self {
            Self::NewMdb(m) | Self::DelMdb(m) | Self::GetMdb(m) => Some(m),
            _ => None,
        }
    }

    /// `nlmsg_type`.
    pub fn message_type(&self) -> u16 {
        match self {
            Self::Route(m) => m.message_type(),
            Self::NewMdb(_) => RTM_NEWMDB,
            Self::DelMdb(_) => RTM_DELMDB,
            Self::GetMdb(_) => RTM_GETMDB,
            Self::Vlan { message_type, .. } => *message_type,
            Self::Unparsed { message_type, .. } => *message_type,
        }
    }

    /// Parses a payload; `header.flags & NLM_F_REQUEST` picks request or
    /// kernel attribute numbering for MDB messages. Returns a typed error;
    /// [`NetlinkDeserializable::deserialize`] turns it into
    /// [`RtnlMessage::Unparsed`].
    pub fn parse(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, DecodeError> {
        let request = header.flags & NLM_F_REQUEST != 0;
        Ok(match header.message_type {
            RTM_NEWMDB => Self::NewMdb(MdbMessage::parse_with_direction(payload, request)?),
            RTM_DELMDB => Self::DelMdb(MdbMessage::parse_with_direction(payload, request)?),
            RTM_GETMDB => Self::GetMdb(MdbMessage::parse_with_direction(payload, request)?),
            RTM_NEWVLAN | RTM_DELVLAN | RTM_GETVLAN => Self::Vlan {
                message_type: header.message_type,
                message: VlanMessage::parse(payload)?,
            },
            _ => Self::Route(RouteNetlinkMessage::deserialize(header, payload)?),
        })
    }
}

impl Emitable for RtnlMessage {
    fn buffer_len(&self) -> usize {
        match self {
            Self::Route(m) => Emitable::buffer_len(m),
            Self::NewMdb(m) | Self::DelMdb(m) | Self::GetMdb(m) => m.buffer_len(),
            Self::Vlan { message, .. } => 8 + message.attributes.len(),
            Self::Unparsed { payload, .. } => payload.len(),
        }
    }

    fn emit(&self, buffer: &mut [u8]) {
        match self {
            Self::Route(m) => Emitable::emit(m, buffer),
            Self::NewMdb(m) | Self::DelMdb(m) | Self::GetMdb(m) => m.emit(buffer),
            Self::Vlan { message, .. } => {
                let b = message.to_bytes();
                buffer[..b.len()].copy_from_slice(&b)
            }
            Self::Unparsed { payload, .. } => buffer[..payload.len()].copy_from_slice(payload),
        }
    }
}

impl NetlinkSerializable for RtnlMessage {
    fn message_type(&self) -> u16 {
        RtnlMessage::message_type(self)
    }

    fn buffer_len(&self) -> usize {
        Emitable::buffer_len(self)
    }

    fn serialize(&self, buffer: &mut [u8]) {
        Emitable::emit(self, buffer)
    }
}

impl NetlinkDeserializable for RtnlMessage {
    type Error = DecodeError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, Self::Error> {
        Ok(
            Self::parse(header, payload).unwrap_or_else(|e| Self::Unparsed {
                message_type: header.message_type,
                payload: payload.to_vec(),
                error: e.to_string(),
            }),
        )
    }
}

impl From<RtnlMessage> for NetlinkPayload<RtnlMessage> {
    fn from(m: RtnlMessage) -> Self {
        NetlinkPayload::InnerMessage(m)
    }
}

impl From<RouteNetlinkMessage> for RtnlMessage {
    fn from(m: RouteNetlinkMessage) -> Self {
        Self::Route(m)
    }
}
