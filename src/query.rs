//! `igmpd query IFACE...`: the querier daemon.

use anyhow::{Context, Result};
use igmpd_querier::core::{Config, Generation, Proto};
use igmpd_querier::shell::{InterfaceSettings, QueryDaemon};
use tokio::sync::mpsc;
use tracing::info;

use crate::control::ControlSocket;
use crate::{ProtocolArgs, QueryArgs};

/// Builds and checks the per-family configuration from the flags.
pub fn configs(
    p: &ProtocolArgs,
    startup_interval: Option<std::time::Duration>,
    startup_count: Option<u8>,
    passive: bool,
) -> Result<(Option<Config>, Option<Config>)> {
    if p.no_igmp && p.no_mld {
        anyhow::bail!("--no-igmp and --no-mld together leave nothing to do");
    }
    let make = |proto: Proto, version: u8| -> Result<Config> {
        let mut c = Config::new(proto);
        c.version = Generation::from_version(proto, version)
            .with_context(|| format!("{} has no version {version}", proto.name()))?;
        c.query_interval = p.query_interval;
        c.query_response_interval = p.query_response_interval;
        c.robustness = p.robustness;
        c.last_member_query_interval = p.last_member_query_interval;
        c.last_member_query_count = p.last_member_query_count;
        c.startup_query_interval = startup_interval;
        c.startup_query_count = startup_count;
        c.passive = passive;
        c.validate().map_err(|e| {
            anyhow::anyhow!("invalid {} settings: {e}", proto.name().to_uppercase())
        })?;
        Ok(c)
    };
    let igmp = (!p.no_igmp)
        .then(|| make(Proto::Igmp, p.igmp_version))
        .transpose()?;
    let mld = (!p.no_mld)
        .then(|| make(Proto::Mld, p.mld_version))
        .transpose()?;
    Ok((igmp, mld))
}

/// Runs the querier until SIGINT or SIGTERM.
pub fn run(args: QueryArgs) -> Result<()> {
    let (igmp, mld) = configs(
        &args.protocol,
        args.startup_query_interval,
        args.startup_query_count,
        args.passive,
    )?;
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
