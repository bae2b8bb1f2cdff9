//! `igmpd query IFACE...`: the querier daemon.

use anyhow::Result;
use igmpd_querier::shell::{InterfaceSettings, QueryDaemon};
use igmpd_runtime::events::Events;
use tracing::info;

use super::{block_on, shutdown_signal, with_control};
use crate::cli::QueryArgs;
use crate::settings::families;

/// Runs the querier until SIGINT or SIGTERM.
pub fn run(args: QueryArgs) -> Result<()> {
    let (igmp, mld) = families(&args.protocol, &args.startup, args.passive.passive)?;
    let joins = crate::settings::joins(&args.host)?;
    let mut names = args.ifaces.clone();
    names.sort();
    names.dedup();
    let settings: Vec<InterfaceSettings> = names
        .into_iter()
        .map(|name| InterfaceSettings {
            name,
            igmp: igmp.clone(),
            mld: mld.clone(),
            joins: joins.clone(),
        })
        .collect();
    let metrics = super::bind_metrics(args.metrics.metrics_listen)?;
    crate::privs::restrict()?;
    block_on(async move {
        let events = Events::new();
        let daemon = QueryDaemon::start(settings)
            .await?
            .with_events(events.clone());
        let (ifaces, socket) = (&args.ifaces, &args.control_socket);
        with_control(socket, metrics, events, |rx| async move {
            info!(interfaces = ?ifaces, control_socket = %socket.display(), metrics_listen = ?args.metrics.metrics_listen.map(|a| a.0), "igmpd query running");
            daemon.run(rx, shutdown_signal()).await;
        })
        .await?;
        info!("stopped");
        Ok(())
    })?
}
