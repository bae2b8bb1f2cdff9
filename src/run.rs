//! `igmpd run`: everything the config file says in one process with one control socket.
//! One [`QueryDaemon`] holds every querier interface (reconfigured in place on reload);
//! each bridge runs its own [`SnoopDaemon`], restarted only when its settings change. A
//! coordinator task owns the control socket, SIGHUP, sd_notify and the watchdog.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use igmpd_querier::shell::{QueryDaemon, Reconfigure};
use igmpd_runtime::control::ControlRequest;
use igmpd_runtime::status::StatusDoc;
use igmpd_snooping::shell::SnoopDaemon;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::cli::RunArgs;
use crate::config::{self, RunConfig};
use crate::control::{self, Admins, ControlSocket, Request};
use crate::sdnotify::{self, Notifier};
use crate::settings::Bridge;

/// How long a daemon may take to answer a status request before the watchdog stays quiet.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

struct Running {
    cfg: Bridge,
    control: mpsc::Sender<ControlRequest>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Runs until SIGINT or SIGTERM.
pub fn run(args: RunArgs) -> Result<()> {
    let cfg = config::load(&args.config).map_err(|e| anyhow::anyhow!("{}", e.join("; ")))?;
    let socket = args
        .control_socket
        .clone()
        .or_else(|| cfg.control_socket.clone())
        .unwrap_or_else(|| PathBuf::from(control::DEFAULT_PATH));
    let admins = Admins {
        gid: cfg
            .control_group
            .as_deref()
            .map(control::resolve_group)
            .transpose()?,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    rt.block_on(local.run_until(async move {
        let control = ControlSocket::bind(&socket)?;
        // Everything that needed more than the network capabilities is done: the config is
        // read and the socket bound. One thread so far, so this covers the process.
        crate::privs::drop_to_net_caps().context("cannot drop capabilities")?;
        let mut hup = signal(SignalKind::hangup())?;
        let notifier = Notifier::from_env();
        let (ctl_tx, mut ctl_rx) = mpsc::channel(16);
        let server = tokio::task::spawn_local(control.serve_requests(ctl_tx, admins));

        let daemon = QueryDaemon::start(cfg.interfaces.clone()).await?;
        let (q_ctl, q_ctl_rx) = mpsc::channel(16);
        let (q_rec, q_rec_rx) = mpsc::channel(1);
        let (q_stop, q_stop_rx) = oneshot::channel::<()>();
        let querier = tokio::task::spawn_local(daemon.run_reconfigurable(
            q_ctl_rx,
            q_rec_rx,
            async move {
                let _ = q_stop_rx.await;
            },
        ));
        let mut bridges = BTreeMap::new();
        for b in &cfg.bridges {
            let r = start_bridge(b.clone(), &socket).await?;
            bridges.insert(b.name.clone(), r);
        }
        let mut current = cfg;
        info!(config = %args.config.display(), interfaces = current.interfaces.len(), bridges = current.bridges.len(), control_socket = %socket.display(), "igmpd running");
        notifier.ready("running");

        let watchdog = sdnotify::watchdog_interval();
        let mut tick = watchdog.map(|d| tokio::time::interval(d.max(Duration::from_millis(10))));
        let shutdown = crate::query::shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = hup.recv() => {
                    info!("SIGHUP: reloading");
                    let _ = reload(&args.config, &socket, &mut current, &q_rec, &mut bridges, &notifier).await;
                }
                Some(req) = ctl_rx.recv() => match req {
                    Request::Status(reply) => {
                        // None drops `reply`: the client hears "a daemon did not answer".
                        if let Some(doc) = status(&q_ctl, &bridges).await {
                            let _ = reply.send(doc);
                        }
                    }
                    Request::Reload(reply) => {
                        info!("reload requested on the control socket");
                        let r = reload(&args.config, &socket, &mut current, &q_rec, &mut bridges, &notifier).await;
                        let _ = reply.send(r);
                    }
                },
                // Only exists with a watchdog: no wake-ups otherwise.
                _ = async { match tick.as_mut() { Some(t) => { t.tick().await; } None => std::future::pending().await } } => {
                    // Every event loop must answer, or systemd hears nothing.
                    if status(&q_ctl, &bridges).await.is_some() {
                        notifier.notify("WATCHDOG=1");
                    } else {
                        warn!("a daemon loop did not answer: no watchdog ping");
                    }
                }
            }
        }
        notifier.stopping();
        info!("stopping");
        let _ = q_stop.send(());
        let _ = querier.await;
        for (_, b) in std::mem::take(&mut bridges) {
            stop_bridge(b).await;
        }
        server.abort();
        let _ = server.await;
        info!("stopped");
        Ok(())
    }))
}

async fn start_bridge(b: Bridge, socket: &Path) -> Result<Running> {
    let daemon = SnoopDaemon::start(b.settings(socket))
        .await
        .with_context(|| format!("bridge {}", b.name))?;
    let (control, rx) = mpsc::channel(16);
    let (stop, stop_rx) = oneshot::channel::<()>();
    let name = b.name.clone();
    let task = tokio::task::spawn_local(async move {
        let r = daemon
            .run(rx, async move {
                let _ = stop_rx.await;
            })
            .await;
        if let Err(e) = r {
            error!(bridge = %name, error = %e, "snooping stopped");
        }
    });
    info!(bridge = %b.name, querier = b.snooping.querier, "snooping");
    Ok(Running {
        cfg: b,
        control,
        stop,
        task,
    })
}

async fn stop_bridge(b: Running) {
    let _ = b.stop.send(());
    let mut task = b.task;
    if tokio::time::timeout(Duration::from_secs(10), &mut task)
        .await
        .is_err()
    {
        warn!(bridge = %b.cfg.name, "snooping did not stop within 10s");
        task.abort();
    }
}

/// Asks every daemon for its status and merges the documents; None if one did not answer.
async fn status(
    querier: &mpsc::Sender<ControlRequest>,
    bridges: &BTreeMap<String, Running>,
) -> Option<StatusDoc> {
    async fn ask(c: &mpsc::Sender<ControlRequest>) -> Option<StatusDoc> {
        let (tx, rx) = oneshot::channel();
        c.send(ControlRequest::Status(tx)).await.ok()?;
        tokio::time::timeout(ANSWER_TIMEOUT, rx).await.ok()?.ok()
    }
    let mut doc = ask(querier).await?;
    // `igmpd run` always shows both lists, empty or not.
    doc.interfaces.get_or_insert_with(Vec::new);
    doc.bridges.get_or_insert_with(Vec::new);
    for b in bridges.values() {
        let d = ask(&b.control).await?;
        // A bridge's querier section belongs to `igmpd snoop --querier`'s own status;
        // here the bridge list says it.
        doc.merge(StatusDoc {
            interfaces: None,
            ..d
        });
    }
    Some(doc)
}

/// Re-reads the file and applies it; a bad file changes nothing.
async fn reload(
    path: &Path,
    socket: &Path,
    current: &mut RunConfig,
    querier: &mpsc::Sender<Reconfigure>,
    bridges: &mut BTreeMap<String, Running>,
    notifier: &Notifier,
) -> Result<(), String> {
    notifier.reloading();
    let r = apply(path, socket, current, querier, bridges).await;
    if let Err(e) = &r {
        error!(config = %path.display(), "reload rejected, running configuration kept: {e}");
    }
    notifier.ready("running");
    r
}

async fn apply(
    path: &Path,
    socket: &Path,
    current: &mut RunConfig,
    querier: &mpsc::Sender<Reconfigure>,
    bridges: &mut BTreeMap<String, Running>,
) -> Result<(), String> {
    let new = config::load(path).map_err(|e| e.join("; "))?;
    if new.control_socket != current.control_socket || new.control_group != current.control_group {
        warn!("control_socket and control_group changes take effect at the next start");
    }
    let (done, rx) = oneshot::channel();
    querier
        .send(Reconfigure {
            settings: new.interfaces.clone(),
            done,
        })
        .await
        .map_err(|_| "the querier loop is gone".to_string())?;
    rx.await
        .map_err(|_| "the querier loop is gone".to_string())??;
    let mut failures = Vec::new();
    let names: Vec<String> = bridges.keys().cloned().collect();
    for name in names {
        let keep = new
            .bridges
            .iter()
            .any(|b| b.name == name && bridges.get(&name).is_some_and(|r| r.cfg == *b));
        if !keep {
            if let Some(r) = bridges.remove(&name) {
                info!(bridge = %name, "settings changed or bridge removed: stopping its snooping");
                stop_bridge(r).await;
            }
        }
    }
    for b in &new.bridges {
        if bridges.contains_key(&b.name) {
            continue;
        }
        match start_bridge(b.clone(), socket).await {
            Ok(r) => {
                bridges.insert(b.name.clone(), r);
            }
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    *current = new;
    if failures.is_empty() {
        info!("reloaded");
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
