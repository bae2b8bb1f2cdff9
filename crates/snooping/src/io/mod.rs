//! The I/O shell of `igmpd snoop`: per-port capture, the nftables table that keeps the
//! kernel from learning, report forwarding, batched MDB writes, rtnetlink events.

pub mod daemon;
pub mod nft;
pub mod writer;
