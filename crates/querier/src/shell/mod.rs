//! `igmpd query`: one task owns every interface's protocol instances and sleeps until the
//! earliest deadline, a frame, a system change or a control request. No periodic ticks, no
//! thread per interface: per-interface socket readers are tasks that wake only when their
//! socket is readable.
//!
//! - this module: the daemon, its loop, frames in and queries out;
//! - [`family`]: an interface and its per-family state, IGMP and MLD behind one trait;
//! - `join`: the box's own memberships (host joins) held by the kernel; `own`: what the
//!   router part learns of them;
//! - `system`: links and addresses as rtnetlink reports them;
//! - `status`: the status document and the findings log;
//! - `reader`: the socket reader tasks; `log`: protocol events as log lines.

mod family;
mod join;
mod log;
mod own;
mod reader;
mod status;
mod system;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use igmpd_netlink::{Monitor, SystemEvent};
use igmpd_packet::{Filter, PacketSocket};
use igmpd_runtime::clock::Clock;
use igmpd_runtime::control::{no_bridges, ControlRequest};
use igmpd_runtime::events::{Events, Scope};
use igmpd_runtime::findings::FindingsLog;
use igmpd_wire::Packet;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

pub use family::InterfaceSettings;

use self::family::{Addr, Iface};
use self::reader::{read_frames, RxFrame};
use crate::adapter::{self, Heard, Input, Message};
use crate::core::{Action, Instant, QueryIn};
use crate::monitor;

/// A new set of interfaces and settings for a running daemon (`igmpd run` reload).
/// Interfaces whose settings did not change keep their state; changed ones get fresh
/// instances; interfaces no longer listed stop.
#[derive(Debug)]
pub struct Reconfigure {
    /// The complete new set.
    pub settings: Vec<InterfaceSettings>,
    /// Err with the reason when the set was rejected (nothing was changed then).
    pub done: oneshot::Sender<Result<(), String>>,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No interface of that name.
    #[error("no such interface: {0}")]
    NoSuchInterface(String),
    /// Opening a packet socket was refused.
    #[error("cannot open a packet socket on {iface}: {source}{hint}")]
    Socket {
        /// The interface.
        iface: String,
        /// What the kernel said.
        source: std::io::Error,
        /// A hint when the cause is a missing capability.
        hint: &'static str,
    },
    /// rtnetlink failed.
    #[error("cannot read interfaces over netlink: {0}")]
    Netlink(std::io::Error),
}

/// The querier daemon: every configured interface, its sockets and instances.
#[allow(missing_debug_implementations)]
pub struct QueryDaemon {
    clock: Clock,
    ifaces: Vec<Iface>,
    findings: FindingsLog,
    /// `igmpd monitor`'s bus.
    events: Events,
    monitor: Monitor,
    frames_tx: mpsc::Sender<RxFrame>,
    frames_rx: mpsc::Receiver<RxFrame>,
}

impl QueryDaemon {
    /// Resolves the interfaces, opens their sockets and subscribes to system changes.
    /// Nothing is sent until [`QueryDaemon::run`].
    pub async fn start(settings: Vec<InterfaceSettings>) -> Result<Self, StartError> {
        let monitor = Monitor::new().map_err(StartError::Netlink)?;
        let names: Vec<&str> = settings.iter().map(|s| s.name.as_str()).collect();
        let events = monitor
            .dump_named(&names)
            .await
            .map_err(StartError::Netlink)?;
        let (frames_tx, frames_rx) = mpsc::channel(4096);
        let mut d = QueryDaemon {
            clock: Clock::new(),
            ifaces: settings.into_iter().map(Iface::new).collect(),
            findings: FindingsLog::new(),
            events: Events::new(),
            monitor,
            frames_tx,
            frames_rx,
        };
        // Apply the dump silently: nothing runs until every interface is known.
        for e in &events {
            d.apply_system_event(e, false);
        }
        if let Some(missing) = d.ifaces.iter().find(|i| i.ifindex.is_none()) {
            return Err(StartError::NoSuchInterface(missing.name.clone()));
        }
        for i in 0..d.ifaces.len() {
            d.open_socket(i)?;
        }
        Ok(d)
    }

    /// Emits this daemon's events (memberships, querier role, findings) on `events`
    /// (`igmpd run` gives its daemons one bus).
    pub fn with_events(mut self, events: Events) -> Self {
        self.findings =
            std::mem::take(&mut self.findings).emitting(events.clone(), Scope::Interface);
        self.events = events;
        self
    }

    fn now(&self) -> Instant {
        Instant::from_millis(self.clock.now_ms())
    }

    fn open_socket(&mut self, i: usize) -> Result<(), StartError> {
        let iface = &mut self.ifaces[i];
        let Some(ifindex) = iface.ifindex else {
            return Ok(());
        };
        let error = |source: std::io::Error| StartError::Socket {
            iface: iface.name.clone(),
            hint: if source.raw_os_error() == Some(libc::EPERM) {
                " (needs CAP_NET_RAW: run as root or grant the capability)"
            } else {
                ""
            },
            source,
        };
        let sock = PacketSocket::open(ifindex, Filter::IgmpMld)
            .and_then(PacketSocket::into_async)
            .map_err(error)?;
        let fd = Arc::new(sock);
        iface.socket = Some(fd.clone());
        iface.stop_reader();
        iface.reader = Some(tokio::spawn(read_frames(fd, self.frames_tx.clone())));
        Ok(())
    }

    /// Runs until `shutdown` resolves, serving `control` requests.
    pub async fn run(
        self,
        control: mpsc::Receiver<ControlRequest>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        // A channel without a sender: the reconfigure branch is never taken.
        let (_, none) = mpsc::channel(1);
        self.run_reconfigurable(control, none, shutdown).await
    }

    /// [`QueryDaemon::run`], also applying each [`Reconfigure`] from `reconfigure`.
    pub async fn run_reconfigurable(
        mut self,
        mut control: mpsc::Receiver<ControlRequest>,
        mut reconfigure: mpsc::Receiver<Reconfigure>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let now = self.now();
        for i in 0..self.ifaces.len() {
            self.refresh_family_state(i, now);
        }
        let mut following = true;
        // After the event stream ended: when to connect again, and how many tries failed.
        let mut reconnect: Option<(tokio::time::Instant, u32)> = None;
        loop {
            let deadline = self.next_deadline().map(Instant::as_millis);
            tokio::select! {
                _ = &mut shutdown => break,
                Some(f) = self.frames_rx.recv() => {
                    let now = self.now();
                    self.handle_frame(now, f);
                    // Frames come in bursts: take what is queued before sleeping again.
                    while let Ok(f) = self.frames_rx.try_recv() {
                        self.handle_frame(now, f);
                    }
                }
                events = self.monitor.next(), if following => {
                    match events {
                        Some(events) => {
                            for e in events {
                                self.handle_system_event(&e).await;
                            }
                        }
                        // Its socket failed: links and addresses are no longer followed.
                        None => {
                            warn!("rtnetlink event stream ended: connecting again");
                            following = false;
                            reconnect = Some((tokio::time::Instant::now(), 0));
                        }
                    }
                }
                // Only while reconnecting: no wake-up otherwise.
                _ = async {
                    match reconnect {
                        Some((t, _)) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let failures = reconnect.take().map_or(0, |(_, n)| n);
                    match Monitor::new() {
                        Ok(m) => {
                            self.monitor = m;
                            following = true;
                            // What happened meanwhile.
                            self.reread_links().await;
                            info!("rtnetlink connected again; links and addresses read again");
                        }
                        Err(e) => {
                            let delay = igmpd_runtime::clock::backoff(
                                failures + 1,
                                std::time::Duration::from_secs(1),
                                std::time::Duration::from_secs(30),
                            );
                            warn!(error = %e, retry_in = ?delay, "cannot connect to rtnetlink");
                            reconnect = Some((tokio::time::Instant::now() + delay, failures + 1));
                        }
                    }
                }
                Some(req) = control.recv() => {
                    match req {
                        ControlRequest::Status(reply) => {
                            let _ = reply.send(self.status());
                        }
                        ControlRequest::Metrics(reply) => {
                            let _ = reply.send(self.metrics());
                        }
                        ControlRequest::Ping(reply) => {
                            let _ = reply.send(());
                        }
                        ControlRequest::Refresh(done) => {
                            self.reread_links().await;
                            let _ = done.send(());
                        }
                        ControlRequest::Static(r, reply) => {
                            let _ = reply.send(Err(no_bridges(&r.bridge)));
                        }
                        ControlRequest::Flush(r, reply) => {
                            let _ = reply.send(Err(no_bridges(&r.bridge)));
                        }
                    }
                }
                Some(r) = reconfigure.recv() => {
                    let result = self.reconfigure(r.settings).await;
                    let _ = r.done.send(result);
                }
                () = self.clock.sleep_until(deadline) => {}
            }
            let now = self.now();
            self.poll(now);
            self.update_findings(now);
        }
        for iface in &mut self.ifaces {
            iface.stop_reader();
        }
    }

    /// Reads every interface's link and addresses again and applies them as events, as if
    /// they had just been announced: memberships and timers stay. Also what follows the
    /// system again after the event stream was lost.
    async fn reread_links(&mut self) {
        let names: Vec<String> = self.ifaces.iter().map(|i| i.name.clone()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        match self.monitor.dump_named(&names).await {
            Ok(events) => {
                for e in &events {
                    self.handle_system_event(e).await;
                }
                info!(interfaces = names.len(), "links and addresses read again");
            }
            Err(e) => warn!(error = %e, "cannot read links and addresses again"),
        }
    }

    /// Applies a new set of interfaces (see [`Reconfigure`]). Every new interface must
    /// exist; otherwise nothing changes.
    async fn reconfigure(&mut self, settings: Vec<InterfaceSettings>) -> Result<(), String> {
        let names: Vec<&str> = settings.iter().map(|s| s.name.as_str()).collect();
        let events = self
            .monitor
            .dump_named(&names)
            .await
            .map_err(|e| e.to_string())?;
        for s in &settings {
            let known = self.ifaces.iter().any(|i| i.name == s.name)
                || events
                    .iter()
                    .any(|e| matches!(e, SystemEvent::Link { name, .. } if *name == s.name));
            if !known {
                return Err(StartError::NoSuchInterface(s.name.clone()).to_string());
            }
        }
        let now = self.now();
        self.ifaces.retain_mut(|iface| {
            let keep = settings.iter().any(|s| s.name == iface.name);
            if !keep {
                info!(iface = %iface.name, "interface no longer configured: stopped");
                iface.stop_reader();
            }
            keep
        });
        for s in settings {
            if let Some(i) = self.ifaces.iter().position(|x| x.name == s.name) {
                if self.ifaces[i].host.joins() != s.joins {
                    self.set_joins(i, now, &s.joins);
                }
                if self.ifaces[i].runs(&s) {
                    continue;
                }
                info!(iface = %s.name, "settings changed: restarting its queriers");
                let fresh = Iface::new(s);
                let iface = &mut self.ifaces[i];
                iface.igmp = fresh.igmp;
                iface.mld = fresh.mld;
                self.refresh_family_state(i, now);
                continue;
            }
            info!(iface = %s.name, "interface added");
            self.ifaces.push(Iface::new(s));
            let i = self.ifaces.len() - 1;
            for e in &events {
                self.apply_system_event(e, false);
            }
            if let Err(e) = self.open_socket(i) {
                warn!(iface = %self.ifaces[i].name, error = %e, "cannot open socket");
            }
            self.refresh_family_state(i, now);
        }
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.ifaces
            .iter()
            .flat_map(|i| {
                [
                    i.igmp
                        .as_ref()
                        .and_then(|f| f.seg.instance().next_deadline()),
                    i.mld
                        .as_ref()
                        .and_then(|f| f.seg.instance().next_deadline()),
                ]
            })
            .flatten()
            .min()
    }

    fn poll(&mut self, now: Instant) {
        for i in 0..self.ifaces.len() {
            self.poll_family::<std::net::Ipv4Addr>(i, now);
            self.poll_family::<std::net::Ipv6Addr>(i, now);
        }
    }

    fn poll_family<A: Addr>(&mut self, i: usize, now: Instant) {
        let Some(f) = A::family_mut(&mut self.ifaces[i]) else {
            return;
        };
        let inst = f.seg.instance_mut();
        if inst.next_deadline().is_some_and(|d| d <= now) {
            let acts = inst.poll(now);
            self.act::<A>(i, now, acts);
        }
    }

    fn handle_frame(&mut self, now: Instant, f: RxFrame) {
        let Some(i) = self
            .ifaces
            .iter()
            .position(|x| x.ifindex == Some(f.ifindex))
        else {
            return;
        };
        let frame = match igmpd_wire::parse_ethernet(&f.data) {
            Ok(frame) => frame,
            Err(e) => {
                debug!(iface = %self.ifaces[i].name, reason = e.reason(), "dropped undecodable frame");
                let iface = &mut self.ifaces[i];
                if f.data.get(12..14) == Some(&[0x86, 0xdd]) {
                    if let Some(m) = iface.mld.as_mut() {
                        m.count_drop(e.reason_index());
                    }
                } else if let Some(g) = iface.igmp.as_mut() {
                    g.count_drop(e.reason_index());
                }
                return;
            }
        };
        if f.vlan.is_some() || frame.ethernet.vlan.is_some() {
            // A trunk's tagged frames are the VLAN's, not this untagged instance's.
            let iface = &mut self.ifaces[i];
            let tagged = family::extra_drop("vlan_tagged");
            match &frame.packet {
                Packet::Igmp { .. } => iface.igmp.as_mut().map(|g| g.count_drop(tagged)),
                Packet::Mld { .. } => iface.mld.as_mut().map(|m| m.count_drop(tagged)),
                _ => None,
            };
            return;
        }
        match adapter::heard(&frame.packet) {
            Heard::Igmp(m) => self.feed(i, now, m),
            Heard::Mld(m) => self.feed(i, now, m),
            Heard::MldBadSource => {
                if let Some(m) = self.ifaces[i].mld.as_mut() {
                    m.count_drop(family::extra_drop("source_not_link_local"));
                }
            }
            // Router discovery and PIM concern the snooper, not the querier.
            Heard::Mrd(..) | Heard::PimHello(..) => {}
        }
    }

    /// One received message: the observer sees it, the instance acts on it.
    fn feed<A: Addr>(&mut self, i: usize, now: Instant, m: Message<A>) {
        let Some(fam) = A::family_mut(&mut self.ifaces[i]) else {
            return;
        };
        m.input.count(&mut fam.received);
        let acts = match &m.input {
            Input::Query(q) => {
                let acts = fam.seg.query(now, m.src, q);
                // The kernel answers it on the wire; the router part hears of it here.
                self.act::<A>(i, now, acts);
                self.own_answer(i, now, q);
                return;
            }
            Input::Reports(rs) => rs
                .iter()
                .flat_map(|r| fam.seg.report(now, m.src, r, m.gen, true))
                .collect(),
            Input::Ignored => Vec::new(),
        };
        self.act::<A>(i, now, acts);
    }

    fn act<A: Addr>(&mut self, i: usize, now: Instant, acts: Vec<Action<A>>) {
        for a in acts {
            match a {
                Action::Send(q) => {
                    let iface = &mut self.ifaces[i];
                    let Some(frame) = A::query_frame(iface.mac, &q) else {
                        continue;
                    };
                    if let Some(f) = A::family_mut(iface) {
                        f.seg.sent(now, &q);
                    }
                    self.send(i, &frame.to_bytes(), A::PROTO.name());
                    // The local kernel never hears it (AF_PACKET): answer for the box.
                    self.own_answer(i, now, &QueryIn::from(&q));
                }
                Action::Event(e) => {
                    let iface = &self.ifaces[i];
                    log::event(&iface.name, A::PROTO, &e);
                    self.events.emit(|| match &e {
                        crate::core::Event::Membership(c) => {
                            let m = A::family(iface).map(|f| f.seg.instance().membership());
                            monitor::membership(&iface.place, c, |g| {
                                m.and_then(|m| m.last_reporter(&g))
                            })
                        }
                        e => monitor::querier(
                            &iface.place,
                            A::PROTO,
                            e,
                            A::family(iface).and_then(|f| f.seg.instance().address()),
                        ),
                    });
                }
            }
        }
    }

    fn send(&self, i: usize, bytes: &[u8], what: &str) {
        let iface = &self.ifaces[i];
        match &iface.socket {
            Some(s) => {
                if let Err(e) = s.get_ref().send(bytes) {
                    warn!(iface = %iface.name, error = %e, "sending {what} query failed");
                }
            }
            None => debug!(iface = %iface.name, "no socket; {what} query not sent"),
        }
    }
}
