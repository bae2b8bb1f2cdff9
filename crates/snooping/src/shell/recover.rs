//! What brings a snooper back from failures: an activation retried on a back-off schedule,
//! a new rtnetlink connection when the event stream ended, and `igmpd cleanup`'s hand-back
//! of a bridge a dead igmpd left.

use tracing::{info, warn};

use igmpd_runtime::clock::backoff;

use super::{connect, nft, state, SnoopDaemon, SnoopSettings, StartError, RETRY_MAX, SECOND};

impl SnoopDaemon {
    /// [`activate`](Self::activate) when the bridge came (back) up at runtime. A failure
    /// is undone (capture stopped, ports forgotten: nothing half-running stays) and tried
    /// again after 1, 2, 4 ... 30 s, not at every link event (no busy loop).
    pub(super) async fn try_activate(&mut self) {
        match self.activate().await {
            Ok(()) => self.activate_retry = None,
            Err(e) => {
                let failures = self.activate_retry.map_or(0, |(_, n)| n) + 1;
                self.activation_failures += 1;
                let delay = backoff(failures, SECOND, RETRY_MAX);
                warn!(bridge = %self.settings.bridge, error = %e, retry_in = ?delay, "cannot start snooping");
                self.stop_snooping();
                self.activate_retry = Some((self.now() + delay, failures));
            }
        }
    }

    /// The rtnetlink connection ended (its socket failed): links, addresses and VLANs are
    /// no longer followed and requests cannot be made, so a new connection is made at once,
    /// then after 1, 2, 4 ... 30 s while that fails.
    pub(super) fn events_ended(&mut self) {
        warn!(bridge = %self.settings.bridge, "rtnetlink event stream ended: connecting again");
        self.reconnects += 1;
        self.reconnect = Some((self.now(), 0));
    }

    pub(super) async fn reconnect(&mut self) {
        let failures = self.reconnect.map_or(0, |(_, n)| n);
        match connect() {
            Ok((handle, events)) => {
                self.handle = handle;
                self.events = events;
                self.reconnect = None;
                // What happened meanwhile: every link and address read again.
                self.resync_links().await;
                info!(bridge = %self.settings.bridge, "rtnetlink connected again; links and addresses read again");
            }
            Err(e) => {
                let delay = backoff(failures + 1, SECOND, RETRY_MAX);
                warn!(bridge = %self.settings.bridge, error = %e, retry_in = ?delay, "cannot connect to rtnetlink");
                self.reconnect = Some((self.now() + delay, failures + 1));
            }
        }
    }

    /// Whether an igmpd left `settings.bridge` without a clean exit (SIGKILL, a crash):
    /// its state file holds settings to restore (see `state::left_behind`), or its
    /// nftables table is there (one not owned, on a kernel without the flag).
    pub fn left_behind(settings: &SnoopSettings) -> bool {
        let table = nft::table_exists(&settings.bridge).unwrap_or(false);
        state::left_behind(settings) || table
    }

    /// `igmpd cleanup`: what a clean exit does, for a bridge an igmpd left behind: its
    /// entries are adopted and handed to the kernel as temporary ones, the ports'
    /// `mcast_router` and `mcast_flood` and the bridge's versions are restored as the
    /// state file saved them, and the table is removed. The number of entries handed back. A bridge that is down
    /// cannot be read: its table is removed, the rest waits (error).
    pub async fn hand_back(mut self) -> Result<u64, StartError> {
        if !self.bridge.as_ref().is_some_and(|b| b.up) {
            let _ = nft::remove_table(&self.settings.bridge);
            return Err(StartError::Down(self.settings.bridge.clone()));
        }
        self.activate().await?;
        let n = self.adopted;
        self.shutdown().await;
        Ok(n)
    }
}
