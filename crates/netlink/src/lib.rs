//! Linux bridge multicast database (MDB) over rtnetlink.
//!
//! netlink-packet-route has no MDB messages; this crate adds them
//! ([`mdb`]), a message type that carries both them and
//! netlink-packet-route's ([`RtnlMessage`]), one connection for everything
//! ([`new_connection`]), builder requests equivalent to `bridge mdb ...`
//! ([`Handle::mdb`]) and to the bridge/port settings igmpd needs
//! ([`Handle::link`]), typed notifications ([`events`]) including socket
//! overruns, typed kernel errors ([`Error`]), link attributes ([`links`]), the
//! system monitor ([`monitor`]), what the running kernel takes ([`probe`]), many requests
//! per `send` on a socket of the caller's own with their acks read back per sequence
//! number ([`batch`]), and an nf_tables table owned by its socket ([`nftables`]).
//!
//! ```no_run
//! # async fn f() -> Result<(), igmpd_netlink::Error> {
//! use std::net::Ipv4Addr;
//! let (connection, handle, _events) = igmpd_netlink::new_connection()?;
//! tokio::spawn(connection);
//! // bridge mdb replace dev br0 port p1 grp 239.1.1.1 permanent proto 42
//! handle
//!     .mdb()
//!     .add(2, 4, Ipv4Addr::new(239, 1, 1, 1))
//!     .permanent()
//!     .proto(42)
//!     .replace()
//!     .execute()
//!     .await?;
//! # Ok(()) }
//! ```

pub mod batch;
mod connection;
pub mod constants;
mod error;
mod handle;
pub mod links;
pub mod mdb;
mod message;
pub mod monitor;
pub mod nftables;
pub mod probe;
pub mod requests;
pub mod vlans;

pub use connection::{
    events, new_connection, set_receive_buffer, subscribe, Connection, Event, Group, Unsolicited,
};
pub use error::{Error, KernelError, RequestKind};
pub use handle::Handle;
pub use message::RtnlMessage;
pub use monitor::{Monitor, SystemEvent};
pub use requests::{
    link::LinkHandle,
    mdb::{
        MdbAddRequest, MdbDelRequest, MdbDumpRequest, MdbFlushRequest, MdbGetRequest, MdbHandle,
    },
};
pub use vlans::VlanHandle;

pub use netlink_packet_core;
pub use netlink_packet_route;
pub use netlink_proto;
