//! What a daemon's event loop answers on behalf of the control socket (the socket itself,
//! its permission check and its line protocol are the binary's: `src/control.rs`).

use tokio::sync::oneshot;

use crate::status::StatusDoc;

/// A request from the control socket to one daemon.
#[derive(Debug)]
pub enum ControlRequest {
    /// The state as `igmpd status --json` prints it.
    Status(oneshot::Sender<StatusDoc>),
}
