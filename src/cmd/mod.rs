//! One module per subcommand, and what the daemons among them share: a current-thread
//! runtime, a single daemon's control socket, SIGINT and SIGTERM, SIGHUP.

pub mod check_config;
pub mod cleanup;
pub mod decode;
pub mod doctor;
pub mod generate;
pub mod monitor;
pub mod query;
pub mod reload;
pub mod run;
pub mod snoop;
pub mod statics;
pub mod status;

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use igmpd_runtime::control::ControlRequest;
use igmpd_runtime::events::Events;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tracing::info;

use crate::cli::Command;
use crate::control::ControlSocket;
use crate::metrics::MetricsServer;

/// Binds the metrics endpoint if `addr` is given (before the daemon starts: a port in use
/// stops igmpd at once, with the address in the error).
pub fn bind_metrics(addr: Option<crate::options::ListenAddr>) -> Result<Option<MetricsServer>> {
    addr.map(|a| MetricsServer::bind(a.0)).transpose()
}

/// Runs `command`; its exit status.
pub fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::Run(args) => run::run(args),
        Command::CheckConfig { path } => check_config::run(&path),
        Command::Cleanup(args) => return cleanup::run(args),
        Command::Reload { control_socket } => reload::run(&control_socket),
        Command::Static(args) => statics::run_static(args),
        Command::Flush(args) => statics::run_flush(args),
        Command::Query(args) => query::run(args),
        Command::Snoop(args) => snoop::run(args),
        Command::Status {
            json,
            pretty,
            control_socket,
        } => status::run(json, pretty, &control_socket),
        Command::Monitor {
            json,
            control_socket,
        } => monitor::run(json, &control_socket),
        Command::Doctor(args) => return doctor::run(args),
        Command::Decode { hex, layer } => decode::run(&hex, layer),
        Command::Generate(what) => generate::run(what),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(&e, ExitCode::FAILURE),
    }
}

/// Says why a command failed: one line, no backtrace (these are users' errors, not ours).
pub fn failed(e: &anyhow::Error, code: ExitCode) -> ExitCode {
    eprintln!("igmpd: {e:#}");
    code
}

/// Runs `f` to completion on a current-thread runtime: every daemon is one thread (which
/// dropping capabilities relies on, see `crate::privs`).
///
/// The only other threads of the runtime are its blocking pool's, which encode and write
/// status replies (`crate::control`), started at the first request, after the capabilities
/// are dropped (which happens before the control socket is served), so they inherit the
/// reduced sets. They keep the loop's priority: at nice +10 a flood that kept the loop
/// busy starved them, and status took 340 ms instead of 64.
pub fn block_on<F: Future>(f: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}

/// Serves a single daemon's control socket at `path` (`igmpd query`, `igmpd snoop`), and
/// its metrics endpoint if bound, while `daemon`, given the requests, runs; stops serving
/// when it returns. `monitor` clients get what the daemon emits on `events`.
pub async fn with_control<F, Fut>(
    path: &Path,
    metrics: Option<MetricsServer>,
    events: Events,
    daemon: F,
) -> Result<Fut::Output>
where
    F: FnOnce(mpsc::Receiver<ControlRequest>) -> Fut,
    Fut: Future,
{
    let control = ControlSocket::bind(path)?.with_events(events);
    let (tx, rx) = mpsc::channel(16);
    // SIGHUP re-reads links and addresses; registered before the daemon runs, so that
    // from here on it never ends the process (its default action).
    let hup = tokio::spawn(refresh_on_hangup(signal(SignalKind::hangup())?, tx.clone()));
    let metrics = metrics.map(|m| tokio::spawn(m.serve_daemon(tx.clone())));
    let server = tokio::spawn(control.serve(tx));
    let out = daemon(rx).await;
    if let Some(m) = metrics {
        m.abort();
        let _ = m.await;
    }
    server.abort();
    hup.abort();
    let _ = server.await;
    let _ = hup.await;
    Ok(out)
}

/// Asks the daemon to read links and addresses again on every SIGHUP, one at a time.
async fn refresh_on_hangup(mut hup: Signal, daemon: mpsc::Sender<ControlRequest>) {
    while hup.recv().await.is_some() {
        info!("SIGHUP: reading links and addresses again; state is kept");
        let (done, answered) = oneshot::channel();
        if daemon.send(ControlRequest::Refresh(done)).await.is_err() {
            return;
        }
        let _ = answered.await;
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
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
