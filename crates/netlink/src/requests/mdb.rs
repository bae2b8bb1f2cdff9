//! `bridge mdb add|replace|del|show|get|flush` as builder requests.

use std::net::IpAddr;

use futures::{Stream, StreamExt};
use netlink_packet_core::{
    NetlinkMessage, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};

use crate::{
    constants::{MDB_PERMANENT, NLM_F_BULK},
    error::RequestKind,
    mdb::{
        FilterMode, MdbAttribute, MdbEntry, MdbGroup, MdbHeader, MdbItem, MdbMessage, MdbRecord,
        MdbState, MdbeAttribute, MdbeSrcListAttribute,
    },
    Error, Handle, RtnlMessage,
};

/// Entry point of the MDB requests: `handle.mdb()`.
#[derive(Debug, Clone)]
pub struct MdbHandle(Handle);

impl MdbHandle {
    pub(crate) fn new(h: Handle) -> Self {
        Self(h)
    }

    /// Adds `port`'s membership of `group` on `bridge`; equivalent to
    /// `bridge mdb add dev BRIDGE port PORT grp GROUP` (temporary unless
    /// [`MdbAddRequest::permanent`]).
    pub fn add(&self, bridge: u32, port: u32, group: impl Into<MdbGroup>) -> MdbAddRequest {
        MdbAddRequest {
            handle: Some(self.0.clone()),
            ..MdbAddRequest::new(bridge, port, group)
        }
    }

    /// Deletes an entry; equivalent to
    /// `bridge mdb del dev BRIDGE port PORT grp GROUP [src SOURCE] [vid VID]`.
    pub fn del(&self, bridge: u32, port: u32, group: impl Into<MdbGroup>) -> MdbDelRequest {
        MdbDelRequest {
            handle: Some(self.0.clone()),
            ..MdbDelRequest::new(bridge, port, group)
        }
    }

    /// Dumps the MDB and router ports; equivalent to `bridge -d mdb show`
    /// (optionally `dev BRIDGE`, see [`MdbDumpRequest::bridge`]).
    pub fn dump(&self) -> MdbDumpRequest {
        MdbDumpRequest {
            handle: Some(self.0.clone()),
            ..MdbDumpRequest::new()
        }
    }

    /// Gets the entries of one group (one per port); equivalent to
    /// `bridge mdb get dev BRIDGE grp GROUP [src SOURCE] [vid VID]`
    /// (Linux >= 6.8).
    pub fn get(&self, bridge: u32, group: impl Into<MdbGroup>) -> MdbGetRequest {
        MdbGetRequest {
            handle: Some(self.0.clone()),
            ..MdbGetRequest::new(bridge, group)
        }
    }

    /// Deletes every matching entry in one request; equivalent to
    /// `bridge mdb flush dev BRIDGE [port PORT] [vid VID] [proto PROTO]
    /// [permanent | nopermanent]` (`NLM_F_BULK`, Linux >= 6.8).
    pub fn flush(&self, bridge: u32) -> MdbFlushRequest {
        MdbFlushRequest {
            handle: Some(self.0.clone()),
            ..MdbFlushRequest::new(bridge)
        }
    }
}

fn mdb_message(bridge: u32, entry: MdbEntry, attrs: Vec<MdbeAttribute>) -> MdbMessage {
    let mut attributes = vec![MdbAttribute::Entry(entry)];
    if !attrs.is_empty() {
        attributes.push(MdbAttribute::EntryAttrs(attrs));
    }
    MdbMessage {
        header: MdbHeader::new(bridge),
        attributes,
    }
}

fn netlink(msg: RtnlMessage, flags: u16) -> NetlinkMessage<RtnlMessage> {
    let mut m = NetlinkMessage::from(msg);
    m.header.flags = flags;
    m
}

/// What the add, delete and get requests share: which entry they name (`src`, `vid`;
/// each has the fields `entry: MdbEntry` and `source: Option<IpAddr>`).
macro_rules! entry_setters {
    () => {
        /// The (S,G) entry of `SOURCE`: `src SOURCE`.
        pub fn source(mut self, source: IpAddr) -> Self {
            self.source = Some(source);
            self
        }

        /// The entry of VLAN `VID`: `vid VID` (a VLAN-filtering bridge's).
        pub fn vid(mut self, vid: u16) -> Self {
            self.entry.vid = vid;
            self
        }

        /// `MDBE_ATTR_SOURCE` when the request names an (S,G) entry.
        fn source_attr(&self) -> Vec<MdbeAttribute> {
            self.source.map(MdbeAttribute::Source).into_iter().collect()
        }
    };
}

/// `bridge mdb add` / `bridge mdb replace`.
#[derive(Debug, Clone)]
#[must_use = "requests do nothing until executed"]
pub struct MdbAddRequest {
    handle: Option<Handle>,
    bridge: u32,
    entry: MdbEntry,
    source: Option<IpAddr>,
    filter_mode: Option<FilterMode>,
    source_list: Option<Vec<IpAddr>>,
    protocol: Option<u8>,
    replace: bool,
}

impl MdbAddRequest {
    /// A request without a connection, for building its [`message`](Self::message)
    /// (tests, batching); `execute` on it returns [`Error::ConnectionClosed`].
    pub fn new(bridge: u32, port: u32, group: impl Into<MdbGroup>) -> Self {
        Self {
            handle: None,
            bridge,
            entry: MdbEntry::new(port, group.into()),
            source: None,
            filter_mode: None,
            source_list: None,
            protocol: None,
            replace: false,
        }
    }

    entry_setters!();

    /// `permanent`: never ages out.
    pub fn permanent(mut self) -> Self {
        self.entry.state = MdbState::Permanent;
        self
    }

    /// `temp` (the default): ages out after the membership interval.
    pub fn temporary(mut self) -> Self {
        self.entry.state = MdbState::Temporary;
        self
    }

    /// `filter_mode include|exclude` of a (*,G) entry (with `replace`).
    pub fn filter_mode(mut self, mode: FilterMode) -> Self {
        self.filter_mode = Some(mode);
        self
    }

    /// `source_list S1,S2,...` of a (*,G) entry (needs `filter_mode`).
    pub fn source_list(mut self, sources: impl IntoIterator<Item = IpAddr>) -> Self {
        self.source_list = Some(sources.into_iter().collect());
        self
    }

    /// `proto PROTO`: who installed the entry; the kernel requires >= 4.
    pub fn proto(mut self, protocol: u8) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// `bridge mdb replace`: create or replace (`NLM_F_REPLACE`) instead of
    /// failing with [`Error::EntryExists`]; refreshes a temporary entry's timer.
    pub fn replace(mut self) -> Self {
        self.replace = true;
        self
    }

    /// The netlink message this request sends (flags set, sequence 0).
    pub fn message(&self) -> NetlinkMessage<RtnlMessage> {
        let mut attrs = self.source_attr();
        if let Some(m) = self.filter_mode {
            attrs.push(MdbeAttribute::GroupMode(m));
        }
        if let Some(list) = &self.source_list {
            attrs.push(MdbeAttribute::SrcList(
                list.iter()
                    .map(|a| MdbeSrcListAttribute::address(*a))
                    .collect(),
            ));
        }
        if let Some(p) = self.protocol {
            attrs.push(MdbeAttribute::Protocol(p));
        }
        let flags = NLM_F_REQUEST
            | NLM_F_ACK
            | NLM_F_CREATE
            | if self.replace {
                NLM_F_REPLACE
            } else {
                NLM_F_EXCL
            };
        netlink(
            RtnlMessage::NewMdb(mdb_message(self.bridge, self.entry, attrs)),
            flags,
        )
    }

    /// Sends the request and waits for the kernel's ack.
    pub async fn execute(self) -> Result<(), Error> {
        let op = RequestKind::MdbAdd {
            protocol: self.protocol,
        };
        self.handle
            .as_ref()
            .ok_or(Error::ConnectionClosed)?
            .ack(self.message(), op)
            .await
    }
}

/// `bridge mdb del`.
#[derive(Debug, Clone)]
#[must_use = "requests do nothing until executed"]
pub struct MdbDelRequest {
    handle: Option<Handle>,
    bridge: u32,
    entry: MdbEntry,
    source: Option<IpAddr>,
}

impl MdbDelRequest {
    /// A request without a connection, for building its [`message`](Self::message)
    /// (tests, batching); `execute` on it returns [`Error::ConnectionClosed`].
    pub fn new(bridge: u32, port: u32, group: impl Into<MdbGroup>) -> Self {
        Self {
            handle: None,
            bridge,
            entry: MdbEntry::new(port, group.into()),
            source: None,
        }
    }

    entry_setters!();

    /// The netlink message this request sends.
    pub fn message(&self) -> NetlinkMessage<RtnlMessage> {
        netlink(
            RtnlMessage::DelMdb(mdb_message(self.bridge, self.entry, self.source_attr())),
            NLM_F_REQUEST | NLM_F_ACK,
        )
    }

    /// Sends the request and waits for the kernel's ack. A missing entry is
    /// [`Error::EntryNotFound`].
    pub async fn execute(self) -> Result<(), Error> {
        self.handle
            .as_ref()
            .ok_or(Error::ConnectionClosed)?
            .ack(self.message(), RequestKind::MdbDel)
            .await
    }
}

/// `bridge mdb show`.
#[derive(Debug, Clone)]
#[must_use = "requests do nothing until executed"]
pub struct MdbDumpRequest {
    handle: Option<Handle>,
    bridge: Option<u32>,
}

impl Default for MdbDumpRequest {
    fn default() -> Self {
        Self::new()
    }
}

impl MdbDumpRequest {
    /// A request without a connection, for building its [`message`](Self::message)
    /// (tests, batching); `execute` on it returns [`Error::ConnectionClosed`].
    pub fn new() -> Self {
        Self {
            handle: None,
            bridge: None,
        }
    }

    /// Only this bridge's entries and router ports (`dev BRIDGE`; filtered
    /// here, the kernel dumps every bridge).
    pub fn bridge(mut self, bridge: u32) -> Self {
        self.bridge = Some(bridge);
        self
    }

    /// The netlink message this request sends.
    pub fn message(&self) -> NetlinkMessage<RtnlMessage> {
        netlink(
            RtnlMessage::GetMdb(MdbMessage {
                header: MdbHeader::new(0),
                attributes: vec![],
            }),
            NLM_F_REQUEST | NLM_F_DUMP,
        )
    }

    /// Sends the request; the stream yields every entry and router port.
    pub fn execute(self) -> impl Stream<Item = Result<MdbItem, Error>> + Send + use<> {
        let bridge = self.bridge;
        let replies = match self
            .handle
            .as_ref()
            .ok_or(Error::ConnectionClosed)
            .and_then(|h| h.replies(self.message(), RequestKind::Other))
        {
            Ok(r) => r.left_stream(),
            Err(e) => futures::stream::once(async { Err(e) }).right_stream(),
        };
        replies.flat_map(move |r| {
            let items: Vec<Result<MdbItem, Error>> = match r {
                Ok(msg) => match msg.mdb() {
                    Some(m) if bridge.is_none_or(|b| b == m.header.ifindex) => {
                        m.items().into_iter().map(Ok).collect()
                    }
                    Some(_) => vec![],
                    None => vec![Err(Error::UnexpectedMessage(format!("{msg:?}")))],
                },
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(items)
        })
    }
}

/// `bridge mdb get`.
#[derive(Debug, Clone)]
#[must_use = "requests do nothing until executed"]
pub struct MdbGetRequest {
    handle: Option<Handle>,
    bridge: u32,
    entry: MdbEntry,
    source: Option<IpAddr>,
}

impl MdbGetRequest {
    /// A request without a connection, for building its [`message`](Self::message)
    /// (tests, batching); `execute` on it returns [`Error::ConnectionClosed`].
    pub fn new(bridge: u32, group: impl Into<MdbGroup>) -> Self {
        Self {
            handle: None,
            bridge,
            entry: MdbEntry::new(0, group.into()),
            source: None,
        }
    }

    entry_setters!();

    /// The netlink message this request sends.
    pub fn message(&self) -> NetlinkMessage<RtnlMessage> {
        netlink(
            RtnlMessage::GetMdb(mdb_message(self.bridge, self.entry, self.source_attr())),
            NLM_F_REQUEST,
        )
    }

    /// Sends the request; returns the group's entries (one per port). A
    /// group with no entry is [`Error::EntryNotFound`].
    pub async fn execute(self) -> Result<Vec<MdbRecord>, Error> {
        let mut out = Vec::new();
        let handle = self.handle.as_ref().ok_or(Error::ConnectionClosed)?;
        let mut replies = handle.replies(self.message(), RequestKind::MdbGet)?;
        while let Some(r) = replies.next().await {
            let msg = r?;
            let Some(m) = msg.mdb() else {
                return Err(Error::UnexpectedMessage(format!("{msg:?}")));
            };
            out.extend(m.items().into_iter().filter_map(|i| match i {
                MdbItem::Entry(e) => Some(e),
                MdbItem::RouterPort(_) => None,
            }));
        }
        Ok(out)
    }
}

/// `bridge mdb flush`.
#[derive(Debug, Clone)]
#[must_use = "requests do nothing until executed"]
pub struct MdbFlushRequest {
    handle: Option<Handle>,
    bridge: u32,
    entry: MdbEntry,
    protocol: Option<u8>,
    state_mask: Option<u8>,
}

impl MdbFlushRequest {
    /// A request without a connection, for building its [`message`](Self::message)
    /// (tests, batching); `execute` on it returns [`Error::ConnectionClosed`].
    pub fn new(bridge: u32) -> Self {
        Self {
            handle: None,
            bridge,
            entry: MdbEntry::new(0, MdbGroup::Mac([0; 6])),
            protocol: None,
            state_mask: None,
        }
    }

    /// Only entries of this port: `port PORT`.
    pub fn port(mut self, port: u32) -> Self {
        self.entry.ifindex = port;
        self
    }

    /// Only entries of this VLAN: `vid VID`.
    pub fn vid(mut self, vid: u16) -> Self {
        self.entry.vid = vid;
        self
    }

    /// Only entries with this protocol: `proto PROTO`.
    pub fn proto(mut self, protocol: u8) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// Only permanent entries: `permanent`.
    pub fn permanent_only(mut self) -> Self {
        self.entry.state = MdbState::Permanent;
        self.state_mask = Some(MDB_PERMANENT);
        self
    }

    /// Only temporary entries: `nopermanent`.
    pub fn temporary_only(mut self) -> Self {
        self.entry.state = MdbState::Temporary;
        self.state_mask = Some(MDB_PERMANENT);
        self
    }

    /// The netlink message this request sends.
    pub fn message(&self) -> NetlinkMessage<RtnlMessage> {
        let mut attrs = Vec::new();
        if let Some(p) = self.protocol {
            attrs.push(MdbeAttribute::Protocol(p));
        }
        if let Some(m) = self.state_mask {
            attrs.push(MdbeAttribute::StateMask(m));
        }
        // iproute2 sends an all-zero address with proto 0 in a flush.
        netlink(
            RtnlMessage::DelMdb(mdb_message(self.bridge, self.entry, attrs)),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_BULK,
        )
    }

    /// Sends the request and waits for the kernel's ack.
    pub async fn execute(self) -> Result<(), Error> {
        self.handle
            .as_ref()
            .ok_or(Error::ConnectionClosed)?
            .ack(self.message(), RequestKind::Other)
            .await
    }
}
