//! The `igmpd snoop` daemon around the core: one TPACKET_V2 capture ring for every port
//! (the ports' packet sockets only send: reports forwarded out of router ports), the
//! nftables table that keeps the kernel from learning, batched MDB writes, rtnetlink
//! events.
//!
//! [`daemon`] has the settings and the event loop; beside it, by concern: `capture` (the
//! ring's reader, batches, forwarding), `ports` (ports, router mode), `adopt` (MDB entries
//! found at start), `writes` (the daemon's MDB write path), [`writer`] (the writer
//! thread and the inline writer), [`nft`] (the table), `router_state` (the saved
//! `mcast_router` values), `events` (rtnetlink), `outputs` (what the core asks for),
//! `status` (the status document).

mod adopt;
mod capture;
pub mod daemon;
mod events;
pub mod nft;
mod outputs;
mod ports;
mod router_state;
mod status;
pub mod writer;
mod writes;

pub use daemon::{SnoopDaemon, SnoopSettings, StartError, MDB_PROTO};
