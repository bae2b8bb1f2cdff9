//! What the daemon shells of igmpd (`igmpd query`, `igmpd snoop`, `igmpd run`) share, written
//! once: the clock and the deadline sleep ([`clock`]), registering sockets with the tokio
//! reactor ([`reactor`]), the findings log ([`findings`]), the control-socket protocol
//! ([`control`]), the typed status documents ([`status`]), the metrics document with its
//! Prometheus text encoding ([`metrics`]) and the event stream of `igmpd monitor`
//! ([`events`]).
//!
//! It knows nothing of the protocol crates: they depend on it, never the other way round
//! (docs/architecture.md).

pub mod clock;
pub mod control;
pub mod events;
pub mod findings;
pub mod metrics;
pub mod reactor;
pub mod status;
