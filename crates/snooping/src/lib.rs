//! IGMP/MLD snooping for a Linux bridge (RFC 4541), programming the kernel's multicast
//! database (MDB).
//!
//! [`core`] is sans-IO: per bridge, VLAN, family and port it keeps the router-side
//! membership state of RFC 9776 §6 / RFC 9777 §7 (the querier crate's
//! [`Membership`](igmpd_querier::core::Membership), with no "Send Q(..)" of its own), one
//! bridge-level querier [`Instance`](igmpd_querier::core::Instance) per VLAN and family
//! (active with `--querier`, passive otherwise: it then only follows the election and adopts
//! the querier's QRV/QQIC), the multicast router ports (RFC 4541 §2.1.1, RFC 4286) and the
//! desired MDB, diffed against what was programmed. [`io`] is the tokio shell: per-port
//! AF_PACKET capture, the nftables table that stops the kernel from learning, report
//! forwarding to router ports, batched MDB writes and rtnetlink events.

pub mod core;
pub mod shell;
