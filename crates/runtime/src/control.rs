//! What a daemon's event loop answers on behalf of the control socket (the socket itself,
//! its permission check and its line protocol are the binary's: `src/control.rs`).

use tokio::sync::oneshot;

use crate::metrics::MetricsDoc;
use crate::status::StatusDoc;

/// A request from the control socket to one daemon.
#[derive(Debug)]
pub enum ControlRequest {
    /// The state as `igmpd status --json` prints it.
    Status(oneshot::Sender<StatusDoc>),
    /// Counters and gauges for `GET /metrics`: no group lists, so its cost on the loop
    /// does not grow with the memberships.
    Metrics(oneshot::Sender<MetricsDoc>),
    /// Answered at once: the loop turns (`igmpd run`'s watchdog; its cost does not grow
    /// with the state, as a status document's does).
    Ping(oneshot::Sender<()>),
    /// Read links and addresses again, keeping every membership and timer (SIGHUP in
    /// `igmpd query` and `igmpd snoop`); answered when done.
    Refresh(oneshot::Sender<()>),
}
