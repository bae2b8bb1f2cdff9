//! The router side of IGMPv1/v2/v3 (RFC 1112, RFC 2236, RFC 9776) and MLDv1/v2
//! (RFC 2710, RFC 9777).
//!
//! [`core`] is sans-IO: it takes inputs (packets, address and link changes, the current
//! time) and returns actions (queries to send, state-change events) plus the next instant
//! it wants to be called again. It never sleeps, reads a clock or touches a socket, so
//! its tests run whole protocol timelines in virtual time.

pub mod codec;
pub mod core;
pub mod io;
