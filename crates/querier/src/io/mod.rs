//! The I/O shell: sockets, the clock and the event loop around the sans-IO core.

pub mod daemon;
pub mod monitor;
pub mod packet;
pub mod ring;
pub mod status;
mod sys;
