//! `igmpd snoop BRIDGE`: the snooping daemon.

use anyhow::Result;
use igmpd_snooping::shell::{SnoopDaemon, SnoopSettings};
use tokio::sync::mpsc;
use tracing::info;

use crate::control::ControlSocket;
use crate::SnoopArgs;

/// Runs the snooper until SIGINT or SIGTERM, then hands the bridge back to the kernel.
pub fn run(args: SnoopArgs) -> Result<()> {
    // The timers drive the per-port membership state; the versions the queries (with
    // --querier). Without --querier the instances are passive.
    let (igmp, mld) = crate::query::configs(&args.protocol, None, None, !args.querier)?;
    let settings = SnoopSettings {
        bridge: args.bridge.clone(),
        igmp,
        mld,
        querier: args.querier,
        router_ports: args.router_port.clone(),
        raise_hash_max: args.raise_hash_max,
        vlans: Default::default(),
        // Next to the control socket: the ports' `mcast_router` settings from before
        // igmpd, so that a restart after SIGKILL still restores them.
        state_dir: args
            .control_socket
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(std::path::Path::to_path_buf),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let daemon = SnoopDaemon::start(settings).await?;
        let control = ControlSocket::bind(&args.control_socket)?;
        let (tx, rx) = mpsc::channel(16);
        let server = tokio::spawn(control.serve(tx));
        info!(bridge = %args.bridge, querier = args.querier, control_socket = %args.control_socket.display(), "igmpd snoop running");
        let r = daemon.run(rx, crate::query::shutdown_signal()).await;
        server.abort();
        let _ = server.await;
        r?;
        info!("stopped");
        Ok(())
    })
}
