//! `igmpd run`: everything the config file says in one process with one control socket.
//! One [`QueryDaemon`] holds every querier interface (reconfigured in place on reload);
//! each bridge runs its own [`SnoopDaemon`], restarted only when its settings change. A
//! coordinator task owns the control socket, the metrics endpoint (one for every
//! interface and bridge), SIGHUP, sd_notify and the watchdog.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use igmpd_querier::shell::{QueryDaemon, Reconfigure};
use igmpd_runtime::control::{no_bridges, ControlRequest};
use igmpd_runtime::events::Events;
use igmpd_runtime::metrics::MetricsDoc;
use igmpd_runtime::status::StatusDoc;
use igmpd_snooping::shell::SnoopDaemon;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{spawn_local, JoinHandle};
use tracing::{error, info, warn};

use super::{block_on, shutdown_signal};
use crate::cli::RunArgs;
use crate::config::{self, RunConfig};
use crate::control::{self, Admins, ControlSocket, Request};
use crate::metrics::MetricsServer;
use crate::sdnotify::{self, Notifier};
use crate::settings::Bridge;

/// How long a daemon may take to answer a status request or a ping (the watchdog stays
/// quiet when one does not).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

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
    let listen = args
        .metrics
        .metrics_listen
        .map(|a| a.0)
        .or(cfg.metrics_listen);
    let metrics = listen.map(MetricsServer::bind).transpose()?;
    let local = tokio::task::LocalSet::new();
    block_on(local.run_until(async move {
        // One bus for every daemon: `igmpd monitor` sees the querier and all bridges.
        let events = Events::new();
        let control = ControlSocket::bind(&socket)?.with_events(events.clone());
        // The config is read and the socket bound. One thread so far, so this covers the
        // process and every thread the daemons start.
        crate::privs::restrict()?;
        let mut hup = signal(SignalKind::hangup())?;
        let notifier = Notifier::from_env();
        let (ctl_tx, mut ctl_rx) = mpsc::channel(16);
        let server = spawn_local(control.serve_requests(ctl_tx, admins));
        let (metrics_tx, mut metrics_rx) = mpsc::channel::<crate::metrics::Ask>(4);
        let metrics = metrics.map(|m| spawn_local(m.serve(metrics_tx)));

        let (interfaces, bridges) = (cfg.interfaces.len(), cfg.bridges.len());
        let mut daemons = Daemons::start(args.config.clone(), socket.clone(), cfg, events).await?;
        info!(config = %args.config.display(), interfaces, bridges, control_socket = %socket.display(), metrics_listen = ?listen, "igmpd running");
        notifier.ready("running");

        let watchdog = sdnotify::watchdog_interval();
        let mut tick = watchdog.map(|d| tokio::time::interval(d.max(Duration::from_millis(10))));
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = hup.recv() => {
                    info!("SIGHUP: reloading");
                    let _ = daemons.reload(&notifier).await;
                }
                Some(req) = ctl_rx.recv() => match req {
                    Request::Status(reply) => {
                        // None drops `reply`: the client hears "a daemon did not answer".
                        if let Some(doc) = daemons.status().await {
                            let _ = reply.send(doc);
                        }
                    }
                    Request::Reload(reply) => {
                        info!("reload requested on the control socket");
                        let _ = reply.send(daemons.reload(&notifier).await);
                    }
                    Request::Daemon(r) => daemons.to_bridge(r).await,
                },
                // Never taken without a metrics endpoint (no sender left).
                Some(ask) = metrics_rx.recv() => {
                    // None drops `ask`: the scrape hears 503.
                    if let Some(doc) = daemons.metrics().await {
                        let _ = ask.send(doc);
                    }
                }
                // Only exists with a watchdog: no wake-ups otherwise.
                _ = async { match tick.as_mut() { Some(t) => { t.tick().await; } None => std::future::pending().await } } => {
                    // Every event loop must answer, or systemd hears nothing. A ping, not
                    // a status document: its cost does not grow with the state.
                    if daemons.ping().await {
                        notifier.notify("WATCHDOG=1");
                    } else {
                        warn!("a daemon loop did not answer: no watchdog ping");
                    }
                }
            }
        }
        notifier.stopping();
        info!("stopping");
        daemons.stop().await;
        server.abort();
        let _ = server.await;
        if let Some(m) = metrics {
            m.abort();
            let _ = m.await;
        }
        info!("stopped");
        Ok(())
    }))?
}

/// The querier task: one [`QueryDaemon`] for every interface of the config.
struct Querier {
    control: mpsc::Sender<ControlRequest>,
    reconfigure: mpsc::Sender<Reconfigure>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// One bridge's [`SnoopDaemon`] task and the settings it runs with.
struct Running {
    cfg: Bridge,
    control: mpsc::Sender<ControlRequest>,
    /// Taken when the stop is sent.
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// What `igmpd run` runs: the config file, the configuration it runs, and its daemons.
struct Daemons {
    /// The config file.
    path: PathBuf,
    /// The control socket (the bridges keep their state next to it).
    socket: PathBuf,
    current: RunConfig,
    querier: Querier,
    bridges: BTreeMap<String, Running>,
    /// `igmpd monitor`'s bus, given to every daemon (bridges started on reload too).
    events: Events,
}

impl Daemons {
    async fn start(
        path: PathBuf,
        socket: PathBuf,
        cfg: RunConfig,
        events: Events,
    ) -> Result<Daemons> {
        let daemon = QueryDaemon::start(cfg.interfaces.clone())
            .await?
            .with_events(events.clone());
        let (control, control_rx) = mpsc::channel(16);
        let (reconfigure, reconfigure_rx) = mpsc::channel(1);
        let (stop, stop_rx) = oneshot::channel::<()>();
        let task =
            spawn_local(daemon.run_reconfigurable(control_rx, reconfigure_rx, until(stop_rx)));
        let querier = Querier {
            control,
            reconfigure,
            stop,
            task,
        };
        let mut bridges = BTreeMap::new();
        for b in &cfg.bridges {
            let r = Running::start(b.clone(), &socket, &events).await?;
            bridges.insert(b.name.clone(), r);
        }
        Ok(Daemons {
            path,
            socket,
            current: cfg,
            querier,
            bridges,
            events,
        })
    }

    /// Asks every daemon for its status and merges the documents; None if one did not
    /// answer.
    async fn status(&self) -> Option<StatusDoc> {
        let querier = ask(&self.querier.control).await?;
        let mut bridges = Vec::with_capacity(self.bridges.len());
        for b in self.bridges.values() {
            bridges.push(ask(&b.control).await?);
        }
        Some(merged(querier, bridges))
    }

    /// Asks every daemon for its counters (the querier's interfaces, each bridge) and
    /// merges them; None if one did not answer.
    async fn metrics(&self) -> Option<MetricsDoc> {
        let mut doc = ask_metrics(&self.querier.control).await?;
        for b in self.bridges.values() {
            doc.merge(ask_metrics(&b.control).await?);
        }
        Some(doc)
    }

    /// Whether every daemon's loop answers a ping within [`ANSWER_TIMEOUT`].
    async fn ping(&self) -> bool {
        let controls =
            std::iter::once(&self.querier.control).chain(self.bridges.values().map(|b| &b.control));
        for c in controls {
            let (tx, rx) = oneshot::channel();
            if c.send(ControlRequest::Ping(tx)).await.is_err() {
                return false;
            }
            if !matches!(tokio::time::timeout(ANSWER_TIMEOUT, rx).await, Ok(Ok(()))) {
                return false;
            }
        }
        true
    }

    /// Hands a bridge's request (`static`, `flush`) to that bridge's daemon; one for no
    /// bridge of the config is answered here.
    async fn to_bridge(&self, r: ControlRequest) {
        let target = Request::bridge(&r).and_then(|b| self.bridges.get(b));
        match (target, r) {
            (Some(b), r) => {
                // A stopped loop drops the reply: the client hears "did not answer".
                let _ = b.control.send(r).await;
            }
            (None, ControlRequest::Static(s, reply)) => {
                let _ = reply.send(Err(no_bridges(&s.bridge)));
            }
            (None, ControlRequest::Flush(f, reply)) => {
                let _ = reply.send(Err(no_bridges(&f.bridge)));
            }
            (None, _) => {}
        }
    }

    /// Re-reads the file and applies it; a bad file changes nothing.
    async fn reload(&mut self, notifier: &Notifier) -> Result<(), String> {
        notifier.reloading();
        let r = self.apply().await;
        if let Err(e) = &r {
            error!(config = %self.path.display(), "reload rejected, running configuration kept: {e}");
        }
        notifier.ready("running");
        r
    }

    async fn apply(&mut self) -> Result<(), String> {
        let new = config::load(&self.path).map_err(|e| e.join("; "))?;
        let current = &self.current;
        if new.control_socket != current.control_socket
            || new.control_group != current.control_group
        {
            warn!("control_socket and control_group changes take effect at the next start");
        }
        if new.metrics_listen != current.metrics_listen {
            warn!("metrics_listen changes take effect at the next start");
        }
        let gone = || "the querier loop is gone".to_string();
        let (done, rx) = oneshot::channel();
        self.querier
            .reconfigure
            .send(Reconfigure {
                settings: new.interfaces.clone(),
                done,
            })
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())??;
        let mut failures = Vec::new();
        let names: Vec<String> = self.bridges.keys().cloned().collect();
        for name in names {
            let keep = new
                .bridges
                .iter()
                .any(|b| b.name == name && self.bridges.get(&name).is_some_and(|r| r.cfg == *b));
            if !keep {
                if let Some(r) = self.bridges.remove(&name) {
                    info!(bridge = %name, "settings changed or bridge removed: stopping its snooping");
                    r.stop().await;
                }
            }
        }
        for b in &new.bridges {
            if self.bridges.contains_key(&b.name) {
                continue;
            }
            match Running::start(b.clone(), &self.socket, &self.events).await {
                Ok(r) => {
                    self.bridges.insert(b.name.clone(), r);
                }
                Err(e) => failures.push(format!("{e:#}")),
            }
        }
        self.current = new;
        if failures.is_empty() {
            info!("reloaded");
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    /// Stops the querier, then every bridge at once (each hands itself back to the kernel
    /// within its bound, so the whole stop takes one bound, not one per bridge).
    async fn stop(self) {
        let _ = self.querier.stop.send(());
        let mut task = self.querier.task;
        // The querier has nothing to hand back: its readers stop at once.
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            warn!("the querier did not stop in time");
            task.abort();
        }
        let mut bridges: Vec<Running> = self.bridges.into_values().collect();
        let deadlines: Vec<tokio::time::Instant> =
            bridges.iter_mut().map(Running::signal_stop).collect();
        for (b, deadline) in bridges.into_iter().zip(deadlines) {
            b.wait(deadline).await;
        }
    }
}

/// One daemon's status; None if it did not answer in time.
async fn ask(c: &mpsc::Sender<ControlRequest>) -> Option<StatusDoc> {
    let (tx, rx) = oneshot::channel();
    c.send(ControlRequest::Status(tx)).await.ok()?;
    tokio::time::timeout(ANSWER_TIMEOUT, rx).await.ok()?.ok()
}

/// One daemon's metrics; None if it did not answer in time.
async fn ask_metrics(c: &mpsc::Sender<ControlRequest>) -> Option<MetricsDoc> {
    let (tx, rx) = oneshot::channel();
    c.send(ControlRequest::Metrics(tx)).await.ok()?;
    tokio::time::timeout(ANSWER_TIMEOUT, rx).await.ok()?.ok()
}

/// `igmpd run`'s status document: the querier's and every bridge's. Both lists are always
/// there, empty or not. A bridge's querier section belongs to `igmpd snoop --querier`'s own
/// status; here the bridge list says it.
fn merged(querier: StatusDoc, bridges: impl IntoIterator<Item = StatusDoc>) -> StatusDoc {
    let mut doc = querier;
    doc.interfaces.get_or_insert_with(Vec::new);
    doc.bridges.get_or_insert_with(Vec::new);
    for d in bridges {
        doc.merge(StatusDoc {
            interfaces: None,
            ..d
        });
    }
    doc
}

impl Running {
    async fn start(b: Bridge, socket: &Path, events: &Events) -> Result<Running> {
        let daemon = SnoopDaemon::start(b.settings(socket))
            .await
            .with_context(|| format!("bridge {}", b.name))?
            .with_events(events.clone());
        let (control, rx) = mpsc::channel(16);
        let (stop, stop_rx) = oneshot::channel::<()>();
        let name = b.name.clone();
        let task = spawn_local(async move {
            if let Err(e) = daemon.run(rx, until(stop_rx)).await {
                error!(bridge = %name, error = %e, "snooping stopped");
            }
        });
        info!(bridge = %b.name, querier = b.snooping.querier, "snooping");
        Ok(Running {
            cfg: b,
            control,
            stop: Some(stop),
            task,
        })
    }

    async fn stop(mut self) {
        let deadline = self.signal_stop();
        self.wait(deadline).await;
    }

    /// Tells the snooper to stop; by when it will have (its own bound on its cleanup,
    /// and a second to spare).
    fn signal_stop(&mut self) -> tokio::time::Instant {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::Instant::now() + igmpd_snooping::shell::SHUTDOWN_BOUND + Duration::from_secs(1)
    }

    /// Waits for the snooper until `deadline`, then ends its task.
    async fn wait(self, deadline: tokio::time::Instant) {
        let mut task = self.task;
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            warn!(bridge = %self.cfg.name, "snooping did not stop in time");
            task.abort();
        }
    }
}

/// Resolves when `stop` is sent (or dropped): a daemon's shutdown future.
async fn until(stop: oneshot::Receiver<()>) {
    let _ = stop.await;
}

#[cfg(test)]
mod tests {
    use igmpd_runtime::status::StatusDoc;
    use serde_json::json;

    use crate::status::tests::{bridge, down_iface, finding, querier_iface};

    #[test]
    fn status_merges_the_querier_and_every_bridge_and_shows_both_lists() {
        let querier = StatusDoc {
            interfaces: Some(vec![querier_iface()]),
            bridges: None,
            findings: vec![finding("member-silent", "error", "")],
            kernel: None,
        };
        // `igmpd snoop --querier` lists its bridge as an interface too: not here.
        let snooper = StatusDoc {
            interfaces: Some(vec![down_iface()]),
            bridges: Some(vec![bridge()]),
            findings: vec![finding("no-querier", "warning", "")],
            kernel: None,
        };
        let doc = serde_json::to_value(super::merged(querier, [snooper])).unwrap();
        let names = |list: &str| -> Vec<String> {
            doc[list]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(names("interfaces"), ["eth0"]);
        assert_eq!(names("bridges"), ["br0"]);
        let codes: Vec<&str> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["member-silent", "no-querier"]);
        assert_eq!(
            serde_json::to_value(super::merged(StatusDoc::default(), [])).unwrap(),
            json!({"interfaces": [], "bridges": [], "findings": []})
        );
    }
}
