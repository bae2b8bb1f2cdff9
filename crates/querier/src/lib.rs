//! The router side of IGMPv1/v2/v3 (RFC 1112, RFC 2236, RFC 9776) and MLDv1/v2
//! (RFC 2710, RFC 9777).
//!
//! - [`core`] is sans-IO: it takes inputs (packets, address and link changes, the current
//!   time) and returns actions (queries to send, state-change events) plus the next instant
//!   it wants to be called again. It never sleeps, reads a clock or touches a socket, so
//!   its tests run whole protocol timelines in virtual time.
//! - [`adapter`] is the one place between the wire codec and the core: decoded messages
//!   become core inputs, the core's queries become frames.
//! - [`monitor`] turns core events into the runtime's `igmpd monitor` events.
//! - [`view`] turns core state into the typed status documents of `igmpd status`.
//! - [`shell`] is the `igmpd query` daemon around them (sockets, netlink, the event loop).
//!   Other crates use `core`, `adapter`, `monitor` and `view`, never the shell.

pub mod adapter;
pub mod core;
pub mod monitor;
pub mod shell;
pub mod view;
