//! The event loop of `igmpd query`: one task owns every interface's protocol instances and
//! sleeps until the earliest deadline, a frame, a system change or a control request. No
//! periodic ticks, no thread per interface: per-interface socket readers are tasks that
//! wake only when their socket is readable.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use igmpd_wire::frame::Packet;
use igmpd_wire::DecodeError;
use serde_json::Value;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::monitor::{Monitor, SystemEvent};
use super::packet::{Filter, PacketSocket};
use super::status::{
    FamilyStatus, FindingDoc, GroupStatus, IfaceStatus, ReporterStatus, SourceStatus, StatusDoc,
};
use super::sys::PACKET_OUTGOING;
use crate::codec::{self, Input};
use crate::core::membership::Change;
use crate::core::observer::{Finding, Observer};
use crate::core::{Action, Config, Event, Generation, Instance, Instant, Proto};

/// Drop reasons counted besides the codec's [`DecodeError::REASONS`].
const EXTRA_DROPS: [&str; 1] = [
    // RFC 9777 §5.1.14, §5.2.13: MLD messages must come from a link-local source (a report
    // may also come from ::).
    "source_not_link_local",
];

/// What to run on one interface.
#[derive(Debug, Clone)]
pub struct InterfaceSettings {
    /// Interface name.
    pub name: String,
    /// IGMP settings, None to leave IGMP alone.
    pub igmp: Option<Config>,
    /// MLD settings, None to leave MLD alone.
    pub mld: Option<Config>,
}

/// A request from the control socket.
#[derive(Debug)]
pub enum ControlRequest {
    /// The state as `igmpd status --json` prints it.
    Status(oneshot::Sender<StatusDoc>),
}

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

struct Family<A> {
    inst: Instance<A>,
    observer: Observer<A>,
    drops: Vec<u64>,
}

impl<A: Ord + Copy + std::hash::Hash + std::fmt::Debug + std::fmt::Display> Family<A> {
    /// One received message: the observer sees it, the instance acts on it.
    fn feed(
        &mut self,
        now: Instant,
        src: Option<A>,
        input: Input<A>,
        gen: Generation,
    ) -> Vec<Action<A>> {
        match input {
            Input::Query(q) => {
                self.observer.query(now, src, &q, false);
                self.inst.handle_query(now, src, &q)
            }
            Input::Reports(rs) => {
                let mut acts = Vec::new();
                for r in &rs {
                    self.observer.report(now, src, r, gen);
                    acts.extend(self.inst.handle_report(now, src, r));
                }
                acts
            }
            Input::Ignored => Vec::new(),
        }
    }
}

impl<A> Family<A> {
    fn drop_reason(&mut self, i: usize) {
        if let Some(d) = self.drops.get_mut(i) {
            *d += 1;
        }
    }
}

struct Iface {
    name: String,
    ifindex: Option<u32>,
    mac: [u8; 6],
    up: bool,
    v4: BTreeSet<Ipv4Addr>,
    v6_ll: BTreeSet<Ipv6Addr>,
    igmp: Option<Family<Ipv4Addr>>,
    mld: Option<Family<Ipv6Addr>>,
    socket: Option<Arc<AsyncFd<PacketSocket>>>,
    reader: Option<JoinHandle<()>>,
}

impl Iface {
    /// A configured interface not yet seen on the system (the dump or a link event fills
    /// in the rest).
    fn new(s: InterfaceSettings) -> Self {
        Iface {
            name: s.name,
            ifindex: None,
            mac: [0; 6],
            up: false,
            v4: BTreeSet::new(),
            v6_ll: BTreeSet::new(),
            igmp: s.igmp.map(new_family),
            mld: s.mld.map(new_family),
            socket: None,
            reader: None,
        }
    }
}

/// One frame from a reader task.
struct RxFrame {
    ifindex: u32,
    data: Vec<u8>,
}

/// The querier daemon: every configured interface, its sockets and instances.
#[allow(missing_debug_implementations)]
pub struct QueryDaemon {
    epoch: tokio::time::Instant,
    ifaces: Vec<Iface>,
    /// Findings as last evaluated, to log each new one once.
    findings: Vec<Finding>,
    findings_at: Option<Instant>,
    monitor: Monitor,
    frames_tx: mpsc::Sender<RxFrame>,
    frames_rx: mpsc::Receiver<RxFrame>,
}

fn new_family<A: Ord + Copy + std::hash::Hash + std::fmt::Debug + std::fmt::Display>(
    cfg: Config,
) -> Family<A> {
    let proto = cfg.proto;
    Family {
        inst: Instance::new(cfg, None),
        observer: Observer::new(proto, Instant::ZERO),
        drops: vec![0; DecodeError::REASONS.len() + EXTRA_DROPS.len()],
    }
}

use crate::codec::{igmp_report_gen, mld_report_gen};

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
        let ifaces = settings.into_iter().map(Iface::new).collect();
        let mut d = QueryDaemon {
            epoch: tokio::time::Instant::now(),
            ifaces,
            findings: Vec::new(),
            findings_at: None,
            monitor,
            frames_tx,
            frames_rx,
        };
        // Apply the dump silently: nothing runs until every interface is known.
        for e in &events {
            d.apply_system_event(e, false);
        }
        for iface in &d.ifaces {
            if iface.ifindex.is_none() {
                return Err(StartError::NoSuchInterface(iface.name.clone()));
            }
        }
        for i in 0..d.ifaces.len() {
            d.open_socket(i)?;
        }
        Ok(d)
    }

    fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn open_socket(&mut self, i: usize) -> Result<(), StartError> {
        let iface = &mut self.ifaces[i];
        let Some(ifindex) = iface.ifindex else {
            return Ok(());
        };
        let sock =
            PacketSocket::open(ifindex, Filter::IgmpMld).map_err(|source| StartError::Socket {
                iface: iface.name.clone(),
                hint: if source.raw_os_error() == Some(libc::EPERM) {
                    " (needs CAP_NET_RAW: run as root or grant the capability)"
                } else {
                    ""
                },
                source,
            })?;
        let fd =
            Arc::new(
                super::packet::into_async(sock).map_err(|source| StartError::Socket {
                    iface: iface.name.clone(),
                    source,
                    hint: "",
                })?,
            );
        iface.socket = Some(fd.clone());
        if let Some(old) = iface.reader.take() {
            old.abort();
        }
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
        loop {
            let deadline = self
                .next_deadline()
                .map(|t| self.epoch + Duration::from_millis(t.as_millis()));
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
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
                events = self.monitor.next() => {
                    match events {
                        Some(events) => {
                            for e in events {
                                self.handle_system_event(&e).await;
                            }
                        }
                        None => {
                            warn!("rtnetlink event stream ended; no longer following interface changes");
                            std::future::pending::<()>().await;
                        }
                    }
                }
                Some(req) = control.recv() => {
                    match req {
                        ControlRequest::Status(reply) => {
                            let _ = reply.send(self.status());
                        }
                    }
                }
                Some(r) = reconfigure.recv() => {
                    let result = self.reconfigure(r.settings).await;
                    let _ = r.done.send(result);
                }
                () = sleep => {}
            }
            let now = self.now();
            self.poll(now);
            self.update_findings(now);
        }
        for iface in &mut self.ifaces {
            if let Some(r) = iface.reader.take() {
                r.abort();
            }
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
        let mut k = 0;
        while k < self.ifaces.len() {
            if settings.iter().any(|s| s.name == self.ifaces[k].name) {
                k += 1;
                continue;
            }
            let mut gone = self.ifaces.remove(k);
            info!(iface = %gone.name, "interface no longer configured: stopped");
            if let Some(r) = gone.reader.take() {
                r.abort();
            }
        }
        for s in settings {
            if let Some(i) = self.ifaces.iter().position(|x| x.name == s.name) {
                let iface = &mut self.ifaces[i];
                let same = iface.igmp.as_ref().map(|f| f.inst.config()) == s.igmp.as_ref()
                    && iface.mld.as_ref().map(|f| f.inst.config()) == s.mld.as_ref();
                if same {
                    continue;
                }
                info!(iface = %s.name, "settings changed: restarting its queriers");
                iface.igmp = s.igmp.map(new_family);
                iface.mld = s.mld.map(new_family);
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
                    i.igmp.as_ref().and_then(|f| f.inst.next_deadline()),
                    i.mld.as_ref().and_then(|f| f.inst.next_deadline()),
                ]
            })
            .flatten()
            .min()
    }

    fn poll(&mut self, now: Instant) {
        for i in 0..self.ifaces.len() {
            if let Some(f) = self.ifaces[i].igmp.as_mut() {
                if f.inst.next_deadline().is_some_and(|d| d <= now) {
                    let acts = f.inst.poll(now);
                    self.act_v4(i, acts);
                }
            }
            if let Some(f) = self.ifaces[i].mld.as_mut() {
                if f.inst.next_deadline().is_some_and(|d| d <= now) {
                    let acts = f.inst.poll(now);
                    self.act_v6(i, acts);
                }
            }
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
        let is_v6 = f.data.get(12..14) == Some(&[0x86, 0xdd]);
        let frame = match igmpd_wire::parse_ethernet(&f.data) {
            Ok(frame) => frame,
            Err(e) => {
                debug!(iface = %self.ifaces[i].name, reason = e.reason(), "dropped undecodable frame");
                let iface = &mut self.ifaces[i];
                if is_v6 {
                    if let Some(m) = iface.mld.as_mut() {
                        m.drop_reason(e.reason_index());
                    }
                } else if let Some(g) = iface.igmp.as_mut() {
                    g.drop_reason(e.reason_index());
                }
                return;
            }
        };
        match frame.packet {
            Packet::Igmp { ip, igmp } => {
                let Some(fam) = self.ifaces[i].igmp.as_mut() else {
                    return;
                };
                let src = (!ip.src.is_unspecified()).then_some(ip.src);
                let acts = fam.feed(now, src, codec::igmp_input(&igmp), igmp_report_gen(&igmp));
                self.act_v4(i, acts);
            }
            Packet::Mld { ip, mld } => {
                let Some(fam) = self.ifaces[i].mld.as_mut() else {
                    return;
                };
                let input = codec::mld_input(&mld);
                let link_local = codec::is_link_local(&ip.src);
                let ok = match input {
                    Input::Query(_) => link_local,
                    _ => link_local || ip.src.is_unspecified(),
                };
                if !ok {
                    fam.drop_reason(DecodeError::REASONS.len());
                    return;
                }
                let src = (!ip.src.is_unspecified()).then_some(ip.src);
                let acts = fam.feed(now, src, input, mld_report_gen(&mld));
                self.act_v6(i, acts);
            }
            Packet::PimHelloV4 { .. } | Packet::PimHelloV6 { .. } => {}
        }
    }

    fn act_v4(&mut self, i: usize, acts: Vec<Action<Ipv4Addr>>) {
        for a in acts {
            match a {
                Action::Send(q) => {
                    let frame = codec::igmp_query_frame(self.ifaces[i].mac, &q);
                    let now = self.now();
                    if let (Some(f), igmpd_wire::Packet::Igmp { igmp, .. }) =
                        (self.ifaces[i].igmp.as_mut(), &frame.packet)
                    {
                        if let Input::Query(qin) = codec::igmp_input(igmp) {
                            f.observer.query(now, q.src, &qin, true);
                        }
                    }
                    self.send(i, &frame.to_bytes(), "igmp");
                }
                Action::Event(e) => log_event(&self.ifaces[i].name, Proto::Igmp, &e),
            }
        }
    }

    fn act_v6(&mut self, i: usize, acts: Vec<Action<Ipv6Addr>>) {
        for a in acts {
            match a {
                Action::Send(q) => {
                    if let Some(frame) = codec::mld_query_frame(self.ifaces[i].mac, &q) {
                        let now = self.now();
                        if let (Some(f), igmpd_wire::Packet::Mld { mld, .. }) =
                            (self.ifaces[i].mld.as_mut(), &frame.packet)
                        {
                            if let Input::Query(qin) = codec::mld_input(mld) {
                                f.observer.query(now, q.src, &qin, true);
                            }
                        }
                        self.send(i, &frame.to_bytes(), "mld");
                    }
                }
                Action::Event(e) => log_event(&self.ifaces[i].name, Proto::Mld, &e),
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

    async fn handle_system_event(&mut self, e: &SystemEvent) {
        if *e == SystemEvent::Resync {
            warn!("rtnetlink events were lost; reading interfaces again");
            match self.monitor.dump().await {
                Ok(events) => {
                    for e in &events {
                        self.apply_system_event(e, true);
                    }
                }
                Err(err) => warn!(error = %err, "re-reading interfaces failed"),
            }
            return;
        }
        self.apply_system_event(e, true);
    }

    /// Updates the interface view; when `live`, also reopens sockets and tells the
    /// instances (at start the dump is applied first and the instances started after).
    fn apply_system_event(&mut self, e: &SystemEvent, live: bool) {
        let now = self.now();
        match e {
            SystemEvent::Link {
                ifindex,
                name,
                up,
                mac,
            } => {
                let Some(i) = self
                    .ifaces
                    .iter()
                    .position(|x| &x.name == name || x.ifindex == Some(*ifindex))
                else {
                    return;
                };
                let iface = &mut self.ifaces[i];
                if iface.name != *name {
                    // Renamed away from the configured name: treat as gone.
                    if live {
                        self.link_gone(i, now);
                    }
                    return;
                }
                let recreated = iface.ifindex.is_some_and(|old| old != *ifindex);
                if recreated && live {
                    self.link_gone(i, now);
                }
                let iface = &mut self.ifaces[i];
                let new = iface.ifindex.is_none();
                iface.ifindex = Some(*ifindex);
                if let Some(m) = mac {
                    iface.mac = *m;
                }
                let was_up = iface.up;
                iface.up = *up;
                if live {
                    if new {
                        info!(iface = %name, ifindex, "interface appeared");
                        if let Err(e) = self.open_socket(i) {
                            warn!(iface = %name, error = %e, "cannot open socket");
                        }
                    }
                    if was_up != *up || new {
                        info!(iface = %name, up, "link state");
                        self.refresh_family_state(i, now);
                    }
                }
            }
            SystemEvent::LinkRemoved { ifindex, name } => {
                let Some(i) = self.ifaces.iter().position(|x| x.ifindex == Some(*ifindex)) else {
                    return;
                };
                info!(iface = %name, ifindex, "interface deleted");
                self.link_gone(i, now);
            }
            SystemEvent::Address {
                ifindex,
                addr,
                present,
                usable,
                ..
            } => {
                let Some(i) = self.ifaces.iter().position(|x| x.ifindex == Some(*ifindex)) else {
                    return;
                };
                let iface = &mut self.ifaces[i];
                let keep = *present && *usable;
                match addr {
                    IpAddr::V4(a) => {
                        if keep {
                            iface.v4.insert(*a)
                        } else {
                            iface.v4.remove(a)
                        };
                    }
                    IpAddr::V6(a) if codec::is_link_local(a) => {
                        if keep {
                            iface.v6_ll.insert(*a)
                        } else {
                            iface.v6_ll.remove(a)
                        };
                    }
                    IpAddr::V6(_) => return,
                }
                if live {
                    debug!(iface = %iface.name, %addr, present, usable, "address change");
                    self.refresh_family_state(i, now);
                }
            }
            SystemEvent::Resync => {}
        }
    }

    fn link_gone(&mut self, i: usize, now: Instant) {
        let iface = &mut self.ifaces[i];
        iface.ifindex = None;
        iface.up = false;
        iface.v4.clear();
        iface.v6_ll.clear();
        iface.socket = None;
        if let Some(r) = iface.reader.take() {
            r.abort();
        }
        self.refresh_family_state(i, now);
    }

    /// Brings each instance in line with the interface: link state, then address. The
    /// querier uses the lowest usable address of the family (IPv6: link-local).
    fn refresh_family_state(&mut self, i: usize, now: Instant) {
        let up = self.ifaces[i].up && self.ifaces[i].socket.is_some();
        let v4 = self.ifaces[i].v4.first().copied();
        let v6 = self.ifaces[i].v6_ll.first().copied();
        if let Some(f) = self.ifaces[i].igmp.as_mut() {
            let mut acts = f.inst.set_address(now, v4);
            if up && !is_running(&f.inst) {
                acts.extend(f.inst.link_up(now));
            } else if !up && is_running(&f.inst) {
                acts.extend(f.inst.link_down(now));
            }
            self.act_v4(i, acts);
        }
        if let Some(f) = self.ifaces[i].mld.as_mut() {
            let mut acts = f.inst.set_address(now, v6);
            if up && !is_running(&f.inst) {
                acts.extend(f.inst.link_up(now));
            } else if !up && is_running(&f.inst) {
                acts.extend(f.inst.link_down(now));
            }
            self.act_v6(i, acts);
        }
    }

    /// The status document (`igmpd status --json`).
    pub fn status(&self) -> StatusDoc {
        let now = self.now();
        let interfaces = self
            .ifaces
            .iter()
            .map(|i| IfaceStatus {
                name: i.name.clone(),
                ifindex: i.ifindex,
                up: i.up,
                igmp: i.igmp.as_ref().map(|f| family_status(f, now, Proto::Igmp)),
                mld: i.mld.as_ref().map(|f| family_status(f, now, Proto::Mld)),
            })
            .collect();
        StatusDoc {
            interfaces: Some(interfaces),
            bridges: None,
            findings: self
                .current_findings(now)
                .iter()
                .map(FindingDoc::from)
                .collect(),
        }
    }

    fn current_findings(&self, now: Instant) -> Vec<Finding> {
        let mut out = Vec::new();
        for i in &self.ifaces {
            if let Some(f) = &i.igmp {
                out.extend(family_findings(f, &i.name, now));
            }
            if let Some(f) = &i.mld {
                out.extend(family_findings(f, &i.name, now));
            }
        }
        out
    }

    /// Re-evaluates findings (at most once a second, when the loop wakes anyway) and logs
    /// each new one once, and each cleared one.
    fn update_findings(&mut self, now: Instant) {
        if self
            .findings_at
            .is_some_and(|t| now.saturating_since(t) < Duration::from_secs(1))
        {
            return;
        }
        self.findings_at = Some(now);
        let new = self.current_findings(now);
        log_finding_changes(&self.findings, &new);
        self.findings = new;
    }
}

/// Logs each finding of `new` that is not in `old` (by [`Finding::key`]) once, at info for
/// info findings and warn otherwise, and each finding of `old` that `new` no longer has as
/// cleared. Shared by `igmpd query` and `igmpd snoop`.
pub fn log_finding_changes(old: &[Finding], new: &[Finding]) {
    for f in new {
        if !old.iter().any(|o| o.key() == f.key()) {
            match f.severity {
                crate::core::observer::Severity::Info => {
                    info!(iface = %f.iface, code = f.code, host = ?f.host, group = ?f.group, hint = %f.hint, "{}", f.message)
                }
                _ => {
                    warn!(iface = %f.iface, code = f.code, host = ?f.host, group = ?f.group, hint = %f.hint, "{}", f.message)
                }
            }
        }
    }
    for o in old {
        if !new.iter().any(|f| f.key() == o.key()) {
            info!(iface = %o.iface, code = o.code, host = ?o.host, group = ?o.group, "cleared");
        }
    }
}

fn family_findings<A>(f: &Family<A>, iface: &str, now: Instant) -> Vec<Finding>
where
    A: Ord + Copy + std::hash::Hash + std::fmt::Debug + std::fmt::Display,
{
    if !f.inst.link_is_up() {
        return Vec::new();
    }
    let we_query = matches!(
        f.inst.role(),
        crate::core::Role::Querier | crate::core::Role::Proxy | crate::core::Role::NonQuerier
    );
    f.observer.findings(
        now,
        iface,
        f.inst.other_querier_present_interval(),
        we_query,
    )
}

/// A finding as JSON (the contract: code, severity, iface, host?, group?, message, hint).
pub fn finding_json(f: &Finding) -> Value {
    serde_json::to_value(FindingDoc::from(f)).unwrap_or(Value::Null)
}

fn is_running<A: Ord + Copy + std::hash::Hash + std::fmt::Debug>(inst: &Instance<A>) -> bool {
    inst.link_is_up()
}

fn ms_until(now: Instant, t: Instant) -> u64 {
    t.saturating_since(now).as_millis() as u64
}

fn family_status<A>(f: &Family<A>, now: Instant, proto: Proto) -> FamilyStatus
where
    A: Ord + Copy + std::hash::Hash + std::fmt::Debug + std::fmt::Display,
{
    let drops = DecodeError::REASONS
        .iter()
        .chain(EXTRA_DROPS.iter())
        .copied()
        .zip(f.drops.iter().copied())
        .collect();
    let mut s = instance_status(&f.inst, now, proto, drops);
    // Only the querier's own view keeps per-host report times.
    for (doc, g) in s.groups.iter_mut().zip(f.inst.membership().groups()) {
        doc.reporters = Some(
            g.reporters
                .iter()
                .map(|(r, t)| ReporterStatus {
                    address: r.to_string(),
                    last_report_ms_ago: now.saturating_since(*t).as_millis() as u64,
                })
                .collect(),
        );
    }
    s
}

/// The querier section of one instance: election, timers in use and its groups.
pub fn instance_status<A>(
    inst: &Instance<A>,
    now: Instant,
    proto: Proto,
    drops: BTreeMap<&'static str, u64>,
) -> FamilyStatus
where
    A: Ord + Copy + std::hash::Hash + std::fmt::Debug + std::fmt::Display,
{
    let ms = |t: Instant| ms_until(now, t);
    FamilyStatus {
        version: inst.effective_version().version(proto),
        configured_version: inst.config().version.version(proto),
        role: inst.role().name(),
        address: inst.address().map(|a| a.to_string()),
        querier_address: inst.querier_address().map(|a| a.to_string()),
        other_querier_expires_in_ms: inst.other_querier_expires().map_or(0, ms),
        robustness: inst.robustness(),
        query_interval_ms: inst.query_interval().as_millis() as u64,
        queries_sent: inst.queries_sent(),
        drops,
        groups: inst
            .membership()
            .groups()
            .map(|g| GroupStatus {
                group: g.group.to_string(),
                filter_mode: g.mode.name(),
                sources: g
                    .sources
                    .iter()
                    .map(|(s, t)| SourceStatus {
                        address: s.to_string(),
                        expires_in_ms: t.map_or(0, ms),
                    })
                    .collect(),
                last_reporter: g.last_reporter.map(|r| r.to_string()),
                reporters: None,
                compat_version: g.compat.version(proto),
                expires_in_ms: g.expires.map_or(0, ms),
            })
            .collect(),
    }
}

fn log_event<A: std::fmt::Display + std::fmt::Debug>(iface: &str, proto: Proto, e: &Event<A>) {
    let p = proto.name();
    match e {
        Event::Elected => info!(iface, proto = p, "elected querier"),
        Event::LostElection { querier } => {
            info!(iface, proto = p, querier = %querier, "lost election: another querier has a lower address")
        }
        Event::OlderQuerier { gen, from } => {
            warn!(iface, proto = p, version = gen.version(proto), from = ?from.as_ref().map(ToString::to_string), "older-version querier present: falling back to its version")
        }
        Event::VersionRestored { gen } => info!(
            iface,
            proto = p,
            version = gen.version(proto),
            "no older querier left: configured version restored"
        ),
        Event::Membership(Change::GroupAdded { group }) => {
            info!(iface, proto = p, group = %group, "group added")
        }
        Event::Membership(Change::GroupRemoved { group }) => {
            info!(iface, proto = p, group = %group, "group expired")
        }
        Event::Membership(Change::Compat { group, mode }) => {
            info!(iface, proto = p, group = %group, version = mode.version(proto), "host compatibility mode")
        }
        Event::Membership(Change::Forwarding { group }) => {
            debug!(iface, proto = p, group = %group, "forwarding state changed")
        }
    }
}

/// Reads frames from one socket and hands them to the main loop; skips our own.
async fn read_frames(sock: Arc<AsyncFd<PacketSocket>>, tx: mpsc::Sender<RxFrame>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let mut guard = match sock.readable().await {
            Ok(g) => g,
            Err(e) => {
                warn!(error = %e, "packet socket failed");
                return;
            }
        };
        loop {
            match guard.get_inner().recv(&mut buf) {
                Ok(Some(info)) => {
                    if info.pkttype == PACKET_OUTGOING {
                        continue;
                    }
                    let f = RxFrame {
                        ifindex: guard.get_inner().ifindex(),
                        data: buf[..info.len].to_vec(),
                    };
                    if tx.send(f).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    guard.clear_ready();
                    break;
                }
                Err(e) => {
                    warn!(error = %e, "receiving on packet socket failed");
                    guard.clear_ready();
                    break;
                }
            }
        }
    }
}
