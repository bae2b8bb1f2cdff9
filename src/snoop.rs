//! `igmpd snoop BRIDGE`: the snooping daemon.

use anyhow::Result;
use igmpd_snooping::shell::SnoopDaemon;
use tokio::sync::mpsc;
use tracing::info;

use crate::cli::SnoopArgs;
use crate::control::ControlSocket;
use crate::settings::Bridge;

/// The bridge `igmpd snoop` runs: its flags, no VLAN sections, no startup flags.
pub fn bridge(args: SnoopArgs) -> Result<Bridge> {
    let startup = crate::options::builtin();
    Bridge::new(args.bridge, &args.protocol, &startup, args.snooping)
}

/// Runs the snooper until SIGINT or SIGTERM, then hands the bridge back to the kernel.
pub fn run(args: SnoopArgs) -> Result<()> {
    let socket = args.control_socket.clone();
    let bridge = bridge(args)?;
    let settings = bridge.settings(&socket);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let daemon = SnoopDaemon::start(settings).await?;
        let control = ControlSocket::bind(&socket)?;
        let (tx, rx) = mpsc::channel(16);
        let server = tokio::spawn(control.serve(tx));
        info!(bridge = %bridge.name, querier = bridge.snooping.querier, control_socket = %socket.display(), "igmpd snoop running");
        let r = daemon.run(rx, crate::query::shutdown_signal()).await;
        server.abort();
        let _ = server.await;
        r?;
        info!("stopped");
        Ok(())
    })
}
