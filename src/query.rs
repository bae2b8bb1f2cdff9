//! `igmpd query IFACE...`: the querier daemon.

use anyhow::Result;
use igmpd_querier::shell::{InterfaceSettings, QueryDaemon};
use tokio::sync::mpsc;
use tracing::info;

use crate::cli::QueryArgs;
use crate::control::ControlSocket;
use crate::settings::families;

/// Runs the querier until SIGINT or SIGTERM.
pub fn run(args: QueryArgs) -> Result<()> {
    let (igmp, mld) = families(&args.protocol, &args.startup, args.passive.passive)?;
    let mut names = args.ifaces.clone();
    names.sort();
    names.dedup();
    let settings: Vec<InterfaceSettings> = names
        .into_iter()
        .map(|name| InterfaceSettings {
            name,
            igmp: igmp.clone(),
            mld: mld.clone(),
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let daemon = QueryDaemon::start(settings).await?;
        let control = ControlSocket::bind(&args.control_socket)?;
        let (tx, rx) = mpsc::channel(16);
        let server = tokio::spawn(control.serve(tx));
        info!(interfaces = ?args.ifaces, control_socket = %args.control_socket.display(), "igmpd query running");
        daemon.run(rx, shutdown_signal()).await;
        server.abort();
        let _ = server.await;
        info!("stopped");
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
