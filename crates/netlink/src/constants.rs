//! Kernel constants from `include/uapi/linux/rtnetlink.h` and
//! `include/uapi/linux/if_bridge.h` (Linux 6.18) that neither `libc` nor
//! netlink-packet-route exports.

/// `RTM_NEWMDB`: add an MDB entry (request) / entry added or dump reply (kernel).
pub const RTM_NEWMDB: u16 = 84;
/// `RTM_DELMDB`: delete an MDB entry (request) / entry deleted (kernel).
pub const RTM_DELMDB: u16 = 85;
/// `RTM_GETMDB`: dump or get MDB entries; the kernel also uses this type for
/// its dump replies.
pub const RTM_GETMDB: u16 = 86;

/// `AF_BRIDGE`.
pub const AF_BRIDGE: u8 = 7;

/// `NLM_F_BULK` (request flag for delete requests, Linux >= 5.19).
pub const NLM_F_BULK: u16 = 0x200;

// rtnetlink multicast groups (enum rtnetlink_groups).
/// `RTNLGRP_LINK`.
pub const RTNLGRP_LINK: u32 = 1;
/// `RTNLGRP_IPV4_IFADDR`.
pub const RTNLGRP_IPV4_IFADDR: u32 = 5;
/// `RTNLGRP_IPV6_IFADDR`.
pub const RTNLGRP_IPV6_IFADDR: u32 = 9;
/// `RTNLGRP_MDB`.
pub const RTNLGRP_MDB: u32 = 26;
/// `RTNLGRP_BRVLAN`.
pub const RTNLGRP_BRVLAN: u32 = 33;

// Top level attributes of kernel-originated MDB messages (MDBA_*).
pub const MDBA_MDB: u16 = 1;
pub const MDBA_ROUTER: u16 = 2;
// Top level attributes of requests (MDBA_SET_ENTRY_* / MDBA_GET_ENTRY_*).
pub const MDBA_SET_ENTRY: u16 = 1;
pub const MDBA_SET_ENTRY_ATTRS: u16 = 2;

pub const MDBA_MDB_ENTRY: u16 = 1;
pub const MDBA_MDB_ENTRY_INFO: u16 = 1;

pub const MDBA_MDB_EATTR_TIMER: u16 = 1;
pub const MDBA_MDB_EATTR_SRC_LIST: u16 = 2;
pub const MDBA_MDB_EATTR_GROUP_MODE: u16 = 3;
pub const MDBA_MDB_EATTR_SOURCE: u16 = 4;
pub const MDBA_MDB_EATTR_RTPROT: u16 = 5;

pub const MDBA_MDB_SRCLIST_ENTRY: u16 = 1;
pub const MDBA_MDB_SRCATTR_ADDRESS: u16 = 1;
pub const MDBA_MDB_SRCATTR_TIMER: u16 = 2;

pub const MDBA_ROUTER_PORT: u16 = 1;
pub const MDBA_ROUTER_PATTR_TIMER: u16 = 1;
pub const MDBA_ROUTER_PATTR_TYPE: u16 = 2;
pub const MDBA_ROUTER_PATTR_INET_TIMER: u16 = 3;
pub const MDBA_ROUTER_PATTR_INET6_TIMER: u16 = 4;
pub const MDBA_ROUTER_PATTR_VID: u16 = 5;

pub const MDBE_ATTR_SOURCE: u16 = 1;
pub const MDBE_ATTR_SRC_LIST: u16 = 2;
pub const MDBE_ATTR_GROUP_MODE: u16 = 3;
pub const MDBE_ATTR_RTPROT: u16 = 4;
pub const MDBE_ATTR_STATE_MASK: u16 = 10;

pub const MDBE_SRC_LIST_ENTRY: u16 = 1;
pub const MDBE_SRCATTR_ADDRESS: u16 = 1;

/// `MDB_TEMPORARY`.
pub const MDB_TEMPORARY: u8 = 0;
/// `MDB_PERMANENT`.
pub const MDB_PERMANENT: u8 = 1;

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;

/// `IFLA_BRPORT_MULTICAST_ROUTER`.
pub const IFLA_BRPORT_MULTICAST_ROUTER: u16 = 25;
/// `IFLA_BRPORT_MCAST_FLOOD`: where unregistered multicast may go (`mcast_flood`).
pub const IFLA_BRPORT_MCAST_FLOOD: u16 = 27;

/// `RTPROT_STATIC`: the smallest protocol value the kernel accepts from
/// userspace in an MDB entry.
pub const RTPROT_STATIC: u8 = 4;
/// `RTPROT_KERNEL`: entries the bridge learned itself.
pub const RTPROT_KERNEL: u8 = 2;

// Extended ack attributes (enum nlmsgerr_attrs).
pub const NLMSGERR_ATTR_MSG: u16 = 1;
pub const NLMSGERR_ATTR_OFFS: u16 = 2;
