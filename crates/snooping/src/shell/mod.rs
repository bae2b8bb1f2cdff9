//! The `igmpd snoop` daemon around the core: one capture ring for every port, the nftables
//! table that keeps the kernel from learning, report forwarding, batched MDB writes,
//! rtnetlink events.

pub mod daemon;
pub mod nft;
pub mod writer;

pub use daemon::{SnoopDaemon, SnoopSettings, StartError, MDB_PROTO};
