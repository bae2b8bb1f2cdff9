//! The sans-IO protocol core.
//!
//! - [`time`]: the virtual clock's instants.
//! - [`config`]: the protocol variables of RFC 9776 §8 / RFC 9777 §9 and their checks.
//! - [`host`]: the box's own joins (host joins) as the router part sees them.
//! - [`membership`]: router-side membership state per group (RFC 9776 §6), written once
//!   and used by the querier per interface and by the snooper per port.
//! - [`instance`]: one querier on one interface for one family: election, general and
//!   specific queries, compatibility modes.
//! - [`observer`]: what was heard on a link (queriers, reporting hosts) and the findings
//!   it leads to.
//! - [`segment`]: an instance and the observer of its link, fed by one call.

pub mod config;
pub mod host;
pub mod instance;
pub mod membership;
pub mod observer;
pub mod query;
pub mod segment;
pub mod time;

pub use config::{Config, ConfigError, Generation, Proto};
pub use host::{HostJoin, JoinError};
pub use instance::{Action, Event, Instance, QueryIn, QueryOut, Role};
pub use membership::{FilterMode, Forwarding, GroupView, Membership, Report, Timing};
pub use observer::{Finding, Observer, Severity};
pub use segment::Segment;
pub use time::Instant;

#[cfg(test)]
mod tests;
