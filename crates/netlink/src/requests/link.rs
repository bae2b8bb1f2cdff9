//! Link, bridge and bridge-port requests over the same connection.

use futures::{Stream, StreamExt};
use netlink_packet_core::{DefaultNla, NetlinkMessage, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::{
    link::{
        BridgeMulticastRouterType, InfoBridge, InfoData, InfoKind, LinkAttribute, LinkExtentMask,
        LinkFlags, LinkInfo, LinkMessage, LinkProtoInfoBridge,
    },
    AddressFamily, RouteNetlinkMessage,
};

use crate::{
    constants::{IFLA_BRPORT_MCAST_FLOOD, IFLA_BRPORT_MULTICAST_ROUTER},
    error::RequestKind,
    Error, Handle, RtnlMessage,
};

/// Entry point of the link requests: `handle.link()`.
#[derive(Debug, Clone)]
pub struct LinkHandle(Handle);

fn netlink(msg: RouteNetlinkMessage, flags: u16) -> NetlinkMessage<RtnlMessage> {
    let mut m = NetlinkMessage::from(RtnlMessage::Route(msg));
    m.header.flags = flags;
    m
}

fn link_message(family: AddressFamily, index: u32, attributes: Vec<LinkAttribute>) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.interface_family = family;
    m.header.index = index;
    m.attributes = attributes;
    m
}

impl LinkHandle {
    pub(crate) fn new(h: Handle) -> Self {
        Self(h)
    }

    /// The `RTM_SETLINK` (`AF_BRIDGE`, `IFLA_PROTINFO`) message of
    /// [`LinkHandle::set_port_mcast_router`].
    pub fn set_port_mcast_router_message(
        port: u32,
        mode: BridgeMulticastRouterType,
    ) -> NetlinkMessage<RtnlMessage> {
        let protinfo = vec![LinkProtoInfoBridge::Other(DefaultNla::new(
            IFLA_BRPORT_MULTICAST_ROUTER,
            vec![mode.into()],
        ))];
        netlink(
            RouteNetlinkMessage::SetLink(link_message(
                AddressFamily::Bridge,
                port,
                vec![LinkAttribute::ProtoInfoBridge(protinfo)],
            )),
            NLM_F_REQUEST | NLM_F_ACK,
        )
    }

    /// Sets a bridge port's multicast router mode (0 disabled, 1 learn from
    /// queries, 2 permanent, 3 temporary); equivalent to
    /// `bridge link set dev PORT mcast_router MODE`.
    pub async fn set_port_mcast_router(
        &self,
        port: u32,
        mode: BridgeMulticastRouterType,
    ) -> Result<(), Error> {
        self.0
            .ack(
                Self::set_port_mcast_router_message(port, mode),
                RequestKind::Other,
            )
            .await
    }

    /// Sets a bridge port's `mcast_flood` flag (unregistered multicast may leave through
    /// the port); equivalent to `bridge link set dev PORT mcast_flood on|off`.
    pub async fn set_port_mcast_flood(&self, port: u32, on: bool) -> Result<(), Error> {
        let protinfo = vec![LinkProtoInfoBridge::Other(DefaultNla::new(
            IFLA_BRPORT_MCAST_FLOOD,
            vec![u8::from(on)],
        ))];
        let msg = netlink(
            RouteNetlinkMessage::SetLink(link_message(
                AddressFamily::Bridge,
                port,
                vec![LinkAttribute::ProtoInfoBridge(protinfo)],
            )),
            NLM_F_REQUEST | NLM_F_ACK,
        );
        self.0.ack(msg, RequestKind::Other).await
    }

    /// Sets bridge options; equivalent to
    /// `ip link set BRIDGE type bridge OPTION VALUE...`.
    pub async fn set_bridge(&self, bridge: u32, options: Vec<InfoBridge>) -> Result<(), Error> {
        let msg = link_message(
            AddressFamily::Unspec,
            bridge,
            vec![LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Bridge),
                LinkInfo::Data(InfoData::Bridge(options)),
            ])],
        );
        self.0
            .ack(
                netlink(RouteNetlinkMessage::NewLink(msg), NLM_F_REQUEST | NLM_F_ACK),
                RequestKind::Other,
            )
            .await
    }

    /// Turns IGMP/MLD snooping on or off; equivalent to
    /// `ip link set BRIDGE type bridge mcast_snooping 0|1`.
    pub async fn set_bridge_mcast_snooping(&self, bridge: u32, on: bool) -> Result<(), Error> {
        self.set_bridge(bridge, vec![InfoBridge::MulticastSnooping(on)])
            .await
    }

    /// Sets a link up or down; equivalent to `ip link set DEV up|down`.
    pub async fn set_up(&self, index: u32, up: bool) -> Result<(), Error> {
        let mut msg = link_message(AddressFamily::Unspec, index, vec![]);
        msg.header.change_mask = LinkFlags::Up;
        if up {
            msg.header.flags = LinkFlags::Up;
        }
        self.0
            .ack(
                netlink(RouteNetlinkMessage::SetLink(msg), NLM_F_REQUEST | NLM_F_ACK),
                RequestKind::Other,
            )
            .await
    }

    /// One link by index; equivalent to `ip -d link show dev DEV`.
    pub async fn get(&self, index: u32) -> Result<LinkMessage, Error> {
        let msg = link_message(AddressFamily::Unspec, index, vec![]);
        self.get_one(msg).await
    }

    /// One link by name.
    pub async fn get_by_name(&self, name: &str) -> Result<LinkMessage, Error> {
        let msg = link_message(
            AddressFamily::Unspec,
            0,
            vec![LinkAttribute::IfName(name.to_string())],
        );
        self.get_one(msg).await
    }

    async fn get_one(&self, msg: LinkMessage) -> Result<LinkMessage, Error> {
        let mut replies = self.0.replies(
            netlink(RouteNetlinkMessage::GetLink(msg), NLM_F_REQUEST),
            RequestKind::Other,
        )?;
        match replies.next().await {
            Some(Ok(RtnlMessage::Route(RouteNetlinkMessage::NewLink(l)))) => Ok(l),
            Some(Ok(other)) => Err(Error::UnexpectedMessage(format!("{other:?}"))),
            Some(Err(e)) => Err(e),
            None => Err(Error::ConnectionClosed),
        }
    }

    /// Every bridge port's VLANs (`bridge vlan show`): an `AF_BRIDGE` dump with
    /// `RTEXT_FILTER_BRVLAN`; read them with [`crate::links::port_vlans`].
    pub fn dump_bridge_vlans(
        &self,
    ) -> impl Stream<Item = Result<LinkMessage, Error>> + Send + use<> {
        self.dump_with(
            AddressFamily::Bridge,
            vec![LinkAttribute::ExtMask(vec![LinkExtentMask::Brvlan])],
        )
    }

    /// All links (`AF_UNSPEC`), or bridge ports with their `IFLA_PROTINFO`
    /// (`AF_BRIDGE`, like `bridge -d link show`).
    pub fn dump(
        &self,
        family: AddressFamily,
    ) -> impl Stream<Item = Result<LinkMessage, Error>> + Send + use<> {
        self.dump_with(family, Vec::new())
    }

    fn dump_with(
        &self,
        family: AddressFamily,
        attributes: Vec<LinkAttribute>,
    ) -> impl Stream<Item = Result<LinkMessage, Error>> + Send + use<> {
        let msg = netlink(
            RouteNetlinkMessage::GetLink(link_message(family, 0, attributes)),
            NLM_F_REQUEST | NLM_F_DUMP,
        );
        let replies = match self.0.replies(msg, RequestKind::Other) {
            Ok(r) => r.left_stream(),
            Err(e) => futures::stream::once(async { Err(e) }).right_stream(),
        };
        replies.filter_map(|r| {
            futures::future::ready(match r {
                Ok(RtnlMessage::Route(RouteNetlinkMessage::NewLink(l))) => Some(Ok(l)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
        })
    }
}
