//! IGMP/MLD snooping for a Linux bridge (RFC 4541), programming the kernel's multicast
//! database (MDB).
//!
//! [`core`] is sans-IO: per bridge, VLAN, family and port it keeps the router-side
//! membership state of RFC 9776 §6 / RFC 9777 §7 (the querier crate's
//! [`Membership`](igmpd_querier::core::Membership), with no "Send Q(..)" of its own), one
//! bridge-level querier with the observer of the bridge
//! ([`Segment`](igmpd_querier::core::Segment)) per VLAN and family (active with
//! `--querier`, passive otherwise: it then only follows the election and adopts the
//! querier's QRV/QQIC), the multicast router ports (RFC 4541 §2.1.1, RFC 4286) and the
//! desired MDB, diffed against what was programmed. Frames reach it through the querier
//! crate's [`adapter`](igmpd_querier::adapter), as for `igmpd query`. [`shell`] is the
//! tokio daemon: one TPACKET_V2 ring captures every port (the ports' packet sockets only
//! send, forwarding reports to router ports), the nftables table that stops the kernel from
//! learning, batched MDB writes ([`igmpd_netlink::batch`]) and rtnetlink events.

pub mod core;
pub mod shell;
