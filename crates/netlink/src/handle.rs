//! [`Handle`]: sends requests over the connection.

use futures::{Stream, StreamExt};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_proto::{sys::SocketAddr, ConnectionHandle};

use crate::{
    error::{classify, KernelError, RequestKind},
    requests::{link::LinkHandle, mdb::MdbHandle},
    vlans::VlanHandle,
    Error, RtnlMessage,
};

/// A cheap, cloneable handle to a [`Connection`](crate::Connection).
#[derive(Clone, Debug)]
pub struct Handle(ConnectionHandle<RtnlMessage>);

impl Handle {
    pub(crate) fn new(h: ConnectionHandle<RtnlMessage>) -> Self {
        Self(h)
    }

    /// Bridge MDB requests (`bridge mdb ...`).
    pub fn mdb(&self) -> MdbHandle {
        MdbHandle::new(self.clone())
    }

    /// Link, bridge and bridge port requests (`ip link`, `bridge link`).
    pub fn link(&self) -> LinkHandle {
        LinkHandle::new(self.clone())
    }

    /// Bridge VLAN database requests (`bridge vlan ...`).
    pub fn vlan(&self) -> VlanHandle {
        VlanHandle::new(self.clone())
    }

    /// Sends any message and returns the raw replies (acks and `NLMSG_DONE`
    /// end the stream and are not part of it; errors are).
    pub fn request(
        &self,
        message: NetlinkMessage<RtnlMessage>,
    ) -> Result<impl Stream<Item = NetlinkMessage<RtnlMessage>> + use<>, Error> {
        self.0
            .request(message, SocketAddr::new(0, 0))
            .map_err(|_| Error::ConnectionClosed)
    }

    /// Sends a request and collects its non-error replies; a kernel error
    /// becomes a typed [`Error`].
    pub async fn execute(
        &self,
        message: NetlinkMessage<RtnlMessage>,
    ) -> Result<Vec<RtnlMessage>, Error> {
        self.replies(message, RequestKind::Other)?
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    pub fn replies(
        &self,
        message: NetlinkMessage<RtnlMessage>,
        op: RequestKind,
    ) -> Result<impl Stream<Item = Result<RtnlMessage, Error>> + use<>, Error> {
        Ok(self.request(message)?.filter_map(move |m| {
            let flags = m.header.flags;
            let r = match m.payload {
                NetlinkPayload::InnerMessage(inner) => Some(Ok(inner)),
                NetlinkPayload::Error(e) if e.code.is_some() => Some(Err(classify(
                    op,
                    KernelError::from_error_message(&e, flags),
                ))),
                NetlinkPayload::Error(_) | NetlinkPayload::Done(_) | NetlinkPayload::Noop => None,
                other => Some(Err(Error::UnexpectedMessage(format!("{other:?}")))),
            };
            futures::future::ready(r)
        }))
    }

    /// Sends a request that expects only an ack (the connection forwards
    /// acks, see [`new_connection`](crate::new_connection)); a stream that
    /// ends without one means the connection went away.
    pub async fn ack(
        &self,
        message: NetlinkMessage<RtnlMessage>,
        op: RequestKind,
    ) -> Result<(), Error> {
        let mut replies = self.request(message)?;
        while let Some(m) = replies.next().await {
            if let NetlinkPayload::Error(e) = m.payload {
                return match e.code {
                    None => Ok(()),
                    Some(_) => Err(classify(
                        op,
                        KernelError::from_error_message(&e, m.header.flags),
                    )),
                };
            }
        }
        Err(Error::ConnectionClosed)
    }
}
