//! `igmpd snoop BRIDGE`: the snooping daemon.

use anyhow::Result;
use igmpd_runtime::events::Events;
use igmpd_snooping::shell::SnoopDaemon;
use tracing::info;

use super::{block_on, shutdown_signal, with_control};
use crate::cli::SnoopArgs;
use crate::settings::Bridge;

/// The bridge `igmpd snoop` runs: its flags, no VLAN sections, no startup flags.
pub fn bridge(args: SnoopArgs) -> Result<Bridge> {
    let startup = crate::options::builtin();
    let policy = crate::settings::policy(&args.policy, Default::default(), Vec::new())?;
    Bridge::new(
        args.bridge,
        &args.protocol,
        &startup,
        args.snooping,
        policy,
        &args.router_guard,
        &args.fast_leave,
    )
}

/// Runs the snooper until SIGINT or SIGTERM, then hands the bridge back to the kernel.
pub fn run(args: SnoopArgs) -> Result<()> {
    let socket = args.control_socket.clone();
    let listen = args.metrics.metrics_listen;
    let bridge = bridge(args)?;
    let metrics = super::bind_metrics(listen)?;
    // Before the daemon starts its writer and capture threads, so that they inherit it.
    crate::privs::restrict()?;
    block_on(async {
        let events = Events::new();
        let daemon = SnoopDaemon::start(bridge.settings(&socket))
            .await?
            .with_events(events.clone());
        let (bridge, socket) = (&bridge, &socket);
        with_control(socket, metrics, events, |rx| async move {
            info!(bridge = %bridge.name, querier = bridge.snooping.querier, control_socket = %socket.display(), metrics_listen = ?listen.map(|a| a.0), "igmpd snoop running");
            daemon.run(rx, shutdown_signal()).await
        })
        .await??;
        info!("stopped");
        Ok(())
    })?
}
