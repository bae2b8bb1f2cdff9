//! The event loop of `igmpd snoop BRIDGE`: one task owns the [`Snooper`]; per-port reader
//! tasks hand it batches of captured frames; MDB writes go to the [`writer`] task; link and
//! address changes arrive over rtnetlink. The loop sleeps until the core's next deadline.
//!
//! Start (and every time the bridge comes up): the nftables table, a packet socket per
//! port, the MDB dump (entries with igmpd's protocol value are adopted), router ports.
//! Clean exit: pending writes finish, igmpd's entries become temporary (the kernel ages or
//! refreshes them), the table goes (the kernel learns again), `mcast_router` is restored.
//! The ports' `mcast_router` values from before igmpd are saved next to the control socket
//! before igmpd first changes one, so that an igmpd restarted after SIGKILL restores those,
//! not the `2` its predecessor left. Findings (the core's observers, plus
//! `snooping-without-querier`) are in `status --json` and each new or cleared one is logged
//! once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use igmpd_netlink::mdb::{FilterMode, MdbItem, MdbState};
use igmpd_netlink::monitor::{address_event, SystemEvent};
use igmpd_netlink::netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use igmpd_netlink::netlink_packet_route::address::AddressMessage;
use igmpd_netlink::netlink_packet_route::link::{
    BridgeMulticastRouterType, InfoBridge, InfoBridgePort, InfoData, InfoKind, InfoPortData,
    LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use igmpd_netlink::netlink_packet_route::RouteNetlinkMessage;
use igmpd_netlink::{Event as NlEvent, Group, Handle, RtnlMessage};
use igmpd_packet::{CaptureRing, Filter, PacketSocket, RingControl};
use igmpd_querier::adapter;
use igmpd_querier::core::{Config, Instant, Proto};
use igmpd_querier::view::instance_status;
use igmpd_runtime::clock::Clock;
use igmpd_runtime::control::ControlRequest;
use igmpd_runtime::findings::FindingsLog;
use igmpd_runtime::status::{
    BridgeCounters, BridgeQuerierStatus, BridgeStatus, FindingDoc, IfaceStatus, PortGroupStatus,
    PortStatus, RouterPortStatus, SourceStatus, StatusDoc,
};
use igmpd_wire::VlanTag;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::{nft, writer};
use crate::core::{
    AnyQuery, EntryFilter, EntryKey, MdbOp, Output, SnoopConfig, SnoopEvent, Snooper,
};

/// igmpd's MDB protocol value (`proto 73` in `bridge mdb show`): not used by iproute2's
/// `rt_protos` or FRR. Entries with it are igmpd's; every other entry is left alone.
pub const MDB_PROTO: u8 = 73;

/// Frames per batch handed from a reader to the main loop.
const BATCH: usize = 256;

/// A capture wake-up that found this many frames starts a pause (see `read_ring`).
const MODERATE_AT: usize = 4;
/// The pause: the runtime's timer resolution (1-2 ms in practice); the ring holds 10 912
/// frames, 36 ms of a 300k/s flood.
const MODERATION: Duration = Duration::from_millis(1);

/// MDB writes this long after the previous ones may be written on the main thread (see
/// `SnoopDaemon::write_mdb`).
const INLINE_QUIET: Duration = Duration::from_millis(2);

/// What to snoop.
#[derive(Debug, Clone)]
pub struct SnoopSettings {
    /// Bridge name.
    pub bridge: String,
    /// IGMP settings (None: not snooped).
    pub igmp: Option<Config>,
    /// MLD settings (None: not snooped).
    pub mld: Option<Config>,
    /// Run the querier on the bridge.
    pub querier: bool,
    /// Configured router port names.
    pub router_ports: Vec<String>,
    /// Raise the bridge's `mcast_hash_max` to this at start.
    pub raise_hash_max: Option<u32>,
    /// Per-VLAN (IGMP, MLD) settings that differ from the bridge's.
    pub vlans: BTreeMap<u16, (Option<Config>, Option<Config>)>,
    /// Where to keep the ports' `mcast_router` settings from before igmpd changed them
    /// (a file per bridge and network namespace), so that igmpd restarted after a crash
    /// still restores them at exit; None: only in memory.
    pub state_dir: Option<std::path::PathBuf>,
}

/// Why `igmpd snoop` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No interface of that name.
    #[error("no such bridge: {0}")]
    NoSuchBridge(String),
    /// The interface is not a bridge.
    #[error("{0} is not a bridge")]
    NotABridge(String),
    /// Kernel snooping is off: MDB writes would fail.
    #[error("multicast snooping is off on {0}; MDB entries need it (ip link set {0} type bridge mcast_snooping 1)")]
    SnoopingOff(String),
    /// A configured router port is not a port of the bridge.
    #[error("--router-port {0}: not a port of {1}")]
    NotAPort(String, String),
    /// rtnetlink failed.
    #[error("netlink: {0}")]
    Netlink(String),
    /// nft failed.
    #[error("cannot install the nftables table: {0}")]
    Nft(std::io::Error),
    /// The capture ring could not be set up.
    #[error("cannot open the packet capture ring (AF_PACKET, TPACKET_V2; needs CAP_NET_RAW): {0}")]
    Capture(std::io::Error),
}

/// Frames from the capture ring, copied out: (start, length, VID, port) into `data`.
struct RxBatch {
    data: Vec<u8>,
    frames: Vec<(usize, usize, u16, u32)>,
    /// Frames longer than a ring slot whose whole copy was lost (the socket's queue was
    /// full): counted with the capture drops.
    lost: u64,
}

struct Port {
    name: String,
    up: bool,
    /// Sends reports forwarded out of the port (receives nothing: the ring captures).
    socket: Option<PacketSocket>,
    /// `mcast_router` before igmpd changed it.
    original_router: u8,
    /// `mcast_router` as igmpd last set it (or found it).
    current_router: u8,
}

struct BridgeInfo {
    ifindex: u32,
    mac: [u8; 6],
    up: bool,
    hash_max: u32,
    igmp_v3: bool,
    mld_v2: bool,
    snooping: bool,
    kernel_querier: bool,
}

/// The `igmpd snoop` daemon.
#[allow(missing_debug_implementations)]
pub struct SnoopDaemon {
    settings: SnoopSettings,
    clock: Clock,
    handle: Handle,
    events: Box<dyn Stream<Item = NlEvent> + Send + Unpin>,
    bridge: Option<BridgeInfo>,
    active: bool,
    ports: BTreeMap<u32, Port>,
    /// Sends the queries (the bridge floods them); receives nothing.
    bridge_socket: Option<PacketSocket>,
    /// The capture ring of all ports while snooping is active, and its reader.
    capture: Option<RingControl>,
    capture_reader: Option<JoinHandle<()>>,
    capture_drops: u64,
    v4: BTreeSet<Ipv4Addr>,
    v6_ll: BTreeSet<Ipv6Addr>,
    snooper: Snooper,
    writes: mpsc::UnboundedSender<writer::WriteCmd>,
    /// Operations sent to the writer, against `writer_idle` (what it had received when it
    /// last had nothing to do): equal means the writer is idle.
    writes_sent: u64,
    writer_idle: Arc<AtomicU64>,
    /// For the few writes of a quiet moment (see [`writer::InlineWriter`]).
    inline_writer: Option<writer::InlineWriter>,
    last_mdb_write: Option<std::time::Instant>,
    writer: Option<JoinHandle<()>>,
    write_errors: mpsc::UnboundedReceiver<writer::WriteError>,
    frames_tx: mpsc::Sender<RxBatch>,
    frames_rx: mpsc::Receiver<RxBatch>,
    mdb_errors: u64,
    decode_drops: u64,
    adopted: u64,
    foreign_keys: usize,
    forward: Vec<u32>,
    /// Findings as last evaluated, to log each new and each cleared one once.
    findings: FindingsLog,
    /// When the nftables port set is to be rewritten after ports left.
    nft_due: Option<Instant>,
    /// `mcast_router` settings from before igmpd, by port ifindex, as an earlier run
    /// saved them for this bridge.
    saved_router: BTreeMap<u32, (String, u8)>,
}

/// How long a port's removal waits before it leaves the nftables port set (see
/// [`SnoopDaemon::on_link`]).
const NFT_PORT_GONE_DELAY: Duration = Duration::from_millis(500);

fn nl(e: impl std::fmt::Display) -> StartError {
    StartError::Netlink(e.to_string())
}

fn link_name(m: &LinkMessage) -> Option<&str> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

fn link_master(m: &LinkMessage) -> Option<u32> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::Controller(c) => Some(*c),
        _ => None,
    })
}

fn link_up(m: &LinkMessage) -> bool {
    m.header.flags.contains(LinkFlags::Up) && m.header.flags.contains(LinkFlags::Running)
}

fn link_infos(m: &LinkMessage) -> impl Iterator<Item = &LinkInfo> {
    m.attributes
        .iter()
        .filter_map(|a| match a {
            LinkAttribute::LinkInfo(i) => Some(i),
            _ => None,
        })
        .flatten()
}

fn is_bridge(m: &LinkMessage) -> bool {
    link_infos(m).any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge)))
}

fn bridge_info(m: &LinkMessage) -> BridgeInfo {
    let mut b = BridgeInfo {
        ifindex: m.header.index,
        mac: [0; 6],
        up: link_up(m),
        hash_max: 4096,
        igmp_v3: false,
        mld_v2: false,
        snooping: true,
        kernel_querier: false,
    };
    for a in &m.attributes {
        if let LinkAttribute::Address(mac) = a {
            if mac.len() == 6 {
                b.mac.copy_from_slice(mac);
            }
        }
    }
    for i in link_infos(m) {
        if let LinkInfo::Data(InfoData::Bridge(opts)) = i {
            for o in opts {
                match o {
                    InfoBridge::MulticastHashMax(v) => b.hash_max = *v,
                    InfoBridge::MulticastIgmpVersion(v) => b.igmp_v3 = *v >= 3,
                    InfoBridge::MulticastMldVersion(v) => b.mld_v2 = *v >= 2,
                    InfoBridge::MulticastSnooping(v) => b.snooping = *v,
                    InfoBridge::MulticastQuerier(v) => b.kernel_querier = *v,
                    _ => {}
                }
            }
        }
    }
    b
}

fn port_router_mode(m: &LinkMessage) -> Option<u8> {
    link_infos(m).find_map(|i| match i {
        LinkInfo::PortData(InfoPortData::BridgePort(attrs)) => attrs.iter().find_map(|a| match a {
            InfoBridgePort::MulticastRouter(t) => Some(u8::from(*t)),
            _ => None,
        }),
        _ => None,
    })
}

/// The kernel keeps only a few hundred keys free of its hash limit for entries it learns
/// itself (the bridge's own joins) or others add: igmpd stays this far below.
fn reserve(hash_max: u32) -> usize {
    (hash_max as usize / 64).max(16)
}

impl SnoopDaemon {
    /// Finds the bridge, checks it, applies `--raise-hash-max`, subscribes to changes and
    /// starts the MDB writer. Snooping starts in [`SnoopDaemon::run`].
    pub async fn start(settings: SnoopSettings) -> Result<Self, StartError> {
        let (mut conn, handle, rx) = igmpd_netlink::new_connection().map_err(nl)?;
        igmpd_netlink::subscribe(
            &mut conn,
            &[Group::Link, Group::Ipv4Ifaddr, Group::Ipv6Ifaddr],
        )
        .map_err(nl)?;
        let _ = igmpd_netlink::set_receive_buffer(&mut conn, 4 << 20);
        tokio::spawn(conn);
        let events = Box::new(igmpd_netlink::events(rx));
        let link = handle
            .link()
            .get_by_name(&settings.bridge)
            .await
            .map_err(|_| StartError::NoSuchBridge(settings.bridge.clone()))?;
        if !is_bridge(&link) {
            return Err(StartError::NotABridge(settings.bridge.clone()));
        }
        let mut info = bridge_info(&link);
        if !info.snooping {
            return Err(StartError::SnoopingOff(settings.bridge.clone()));
        }
        if let Some(n) = settings.raise_hash_max {
            if n > info.hash_max {
                handle
                    .link()
                    .set_bridge(info.ifindex, vec![InfoBridge::MulticastHashMax(n)])
                    .await
                    .map_err(nl)?;
                info!(bridge = %settings.bridge, from = info.hash_max, to = n, "raised mcast_hash_max");
                info.hash_max = n;
            }
        }
        if info.kernel_querier && !settings.querier {
            warn!(bridge = %settings.bridge, "the kernel's own querier (mcast_querier 1) never sees leaves once igmpd snoops, so it sends no last-member queries and leaves take a membership interval; use igmpd snoop --querier with mcast_querier 0");
        }
        let cfg = SnoopConfig {
            igmp: settings.igmp.clone(),
            mld: settings.mld.clone(),
            querier: settings.querier,
            router_ports: BTreeSet::new(),
            source_filtering_v4: info.igmp_v3,
            source_filtering_v6: info.mld_v2,
            entry_limit: (info.hash_max as usize).saturating_sub(reserve(info.hash_max)),
            vlans: settings.vlans.clone(),
        };
        let (writes, wrx) = mpsc::unbounded_channel();
        let (etx, write_errors) = mpsc::unbounded_channel();
        let writer_idle = Arc::new(AtomicU64::new(0));
        let writer = writer::spawn(handle.clone(), MDB_PROTO, wrx, etx, writer_idle.clone());
        let (frames_tx, frames_rx) = mpsc::channel(1024);
        let mut d = SnoopDaemon {
            settings,
            clock: Clock::new(),
            handle,
            events,
            bridge: Some(info),
            active: false,
            ports: BTreeMap::new(),
            bridge_socket: None,
            capture: None,
            capture_reader: None,
            capture_drops: 0,
            v4: BTreeSet::new(),
            v6_ll: BTreeSet::new(),
            snooper: Snooper::new(cfg),
            writes,
            writes_sent: 0,
            writer_idle,
            inline_writer: writer::InlineWriter::open(MDB_PROTO).ok(),
            last_mdb_write: None,
            writer: Some(writer),
            write_errors,
            frames_tx,
            frames_rx,
            mdb_errors: 0,
            decode_drops: 0,
            adopted: 0,
            foreign_keys: 0,
            forward: Vec::with_capacity(16),
            findings: FindingsLog::new(),
            nft_due: None,
            saved_router: BTreeMap::new(),
        };
        d.configure_router_ports().await?;
        Ok(d)
    }

    fn now(&self) -> Instant {
        Instant::from_millis(self.clock.now_ms())
    }

    fn bridge_ifindex(&self) -> Option<u32> {
        self.bridge.as_ref().map(|b| b.ifindex)
    }

    /// Resolves `--router-port` names to ifindexes (at start, and after the bridge is
    /// recreated).
    async fn configure_router_ports(&mut self) -> Result<(), StartError> {
        let mut set = BTreeSet::new();
        for name in &self.settings.router_ports {
            let l =
                self.handle.link().get_by_name(name).await.map_err(|_| {
                    StartError::NotAPort(name.clone(), self.settings.bridge.clone())
                })?;
            if link_master(&l) != self.bridge_ifindex() {
                return Err(StartError::NotAPort(
                    name.clone(),
                    self.settings.bridge.clone(),
                ));
            }
            set.insert(l.header.index);
        }
        let mut cfg = self.snooper.config().clone();
        cfg.router_ports = set;
        self.snooper = Snooper::new(cfg);
        Ok(())
    }

    /// Everything that happens when the bridge is (or comes) up.
    async fn activate(&mut self) -> Result<(), StartError> {
        let Some(bridge) = self.bridge_ifindex() else {
            return Ok(());
        };
        let now = self.now();
        // The capture first: add_port names each port to its filter. (A ring left from an
        // activation that failed half-way goes.)
        self.stop_capture();
        let (ring, control) = CaptureRing::open(Filter::IgmpMldPim).map_err(StartError::Capture)?;
        self.capture_reader = Some(tokio::spawn(read_ring(ring, self.frames_tx.clone())));
        self.capture = Some(control);
        // Ports and their router mode.
        let links: Vec<LinkMessage> = self
            .handle
            .link()
            .dump(Default::default())
            .try_collect()
            .await
            .map_err(nl)?;
        self.saved_router = self.load_router_state();
        let mut names = Vec::new();
        for l in &links {
            if link_master(l) == Some(bridge) {
                let name = link_name(l).unwrap_or_default().to_owned();
                names.push(name.clone());
                self.add_port(
                    l.header.index,
                    name,
                    link_up(l),
                    port_router_mode(l).unwrap_or(1),
                );
            }
        }
        self.nft_due = None;
        nft::install(&self.settings.bridge, &self.port_ifindexes()).map_err(StartError::Nft)?;
        self.update_capture();
        // Our socket on the bridge device sends the queries (the bridge floods them).
        if self.settings.querier {
            match PacketSocket::open_tx(bridge) {
                Ok(s) => self.bridge_socket = Some(s),
                Err(e) => {
                    warn!(bridge = %self.settings.bridge, error = %e, "cannot open a packet socket on the bridge: no queries")
                }
            }
        }
        self.snooper.bridge_up(now);
        self.refresh_addresses().await;
        // Adopt what an earlier igmpd left (SIGKILL, or a clean exit's temporary entries).
        let items: Vec<MdbItem> = self
            .handle
            .mdb()
            .dump()
            .bridge(bridge)
            .execute()
            .try_collect()
            .await
            .map_err(nl)?;
        let mut foreign = BTreeSet::new();
        let mut adopted = 0;
        for item in items {
            let MdbItem::Entry(e) = item else { continue };
            let Some(group) = e.group.ip() else { continue };
            if e.protocol != Some(MDB_PROTO) {
                foreign.insert((e.vid, group, e.source));
                continue;
            }
            if e.source.is_some() {
                // The kernel's (S,G) children of our (*,G) entries.
                continue;
            }
            let sources: Vec<IpAddr> = e.sources.iter().map(|s| s.address).collect();
            let filter = match (e.filter_mode, sources.is_empty()) {
                (Some(FilterMode::Include), _) => EntryFilter::Include(sources),
                (_, false) => EntryFilter::Exclude(sources),
                _ => EntryFilter::Any,
            };
            let key = EntryKey {
                port: e.port,
                vid: e.vid,
                group,
            };
            self.snooper
                .adopt(now, key, filter, e.state == MdbState::Permanent);
            adopted += 1;
        }
        self.foreign_keys = foreign.len();
        let hash_max = self.bridge.as_ref().map_or(4096, |b| b.hash_max) as usize;
        self.snooper
            .set_entry_limit(hash_max.saturating_sub(reserve(hash_max as u32) + self.foreign_keys));
        self.adopted += adopted;
        info!(bridge = %self.settings.bridge, ports = names.len(), adopted, other_entries = self.foreign_keys, limit = self.snooper.mdb().limit(), "snooping");
        self.active = true;
        self.flush_outputs();
        Ok(())
    }

    /// The bridge went down or away.
    fn deactivate(&mut self) {
        if !self.active {
            return;
        }
        self.active = false;
        self.ports.clear();
        self.stop_capture();
        self.bridge_socket = None;
        self.snooper.bridge_down();
        self.snooper.drain().for_each(drop);
        info!(bridge = %self.settings.bridge, "bridge down: snooping paused");
    }

    fn add_port(&mut self, ifindex: u32, name: String, up: bool, current_router: u8) {
        if self.ports.contains_key(&ifindex) {
            return;
        }
        // A run before this one (killed) may have made it a router port: its saved value
        // is the one from before igmpd.
        let original_router = match self.saved_router.get(&ifindex) {
            Some((n, v)) if *n == name => *v,
            _ => current_router,
        };
        let mut port = Port {
            name: name.clone(),
            up,
            socket: None,
            original_router,
            current_router,
        };
        match PacketSocket::open_tx(ifindex) {
            Ok(s) => port.socket = Some(s),
            Err(e) => {
                warn!(port = %name, error = %e, "cannot open a packet socket on the port: reports are not forwarded out of it")
            }
        }
        if let Some(c) = &self.capture {
            if let Err(e) = c.add_allmulti(ifindex) {
                debug!(port = %name, error = %e, "PACKET_MR_ALLMULTI failed");
            }
        }
        info!(bridge = %self.settings.bridge, port = %name, up, "port added");
        self.ports.insert(ifindex, port);
        // While activating, the filter is set once for all ports.
        if self.active {
            self.update_capture();
        }
        if up {
            self.snooper.port_up(ifindex);
        }
    }

    fn remove_port(&mut self, ifindex: u32) {
        if let Some(p) = self.ports.remove(&ifindex) {
            if let Some(c) = &self.capture {
                // Fails when the interface is already gone (the kernel dropped it then).
                let _ = c.drop_allmulti(ifindex);
            }
            self.update_capture();
            info!(bridge = %self.settings.bridge, port = %p.name, "port removed");
            self.snooper.port_down(ifindex);
        }
    }

    fn port_ifindexes(&self) -> Vec<u32> {
        self.ports.keys().copied().collect()
    }

    /// Points the capture ring's filter at the current ports.
    fn update_capture(&self) {
        if let Some(c) = &self.capture {
            if let Err(e) = c.set_ports(&self.port_ifindexes()) {
                warn!(bridge = %self.settings.bridge, error = %e, "cannot set the capture filter");
            }
        }
    }

    fn stop_capture(&mut self) {
        if let Some(r) = self.capture_reader.take() {
            r.abort();
        }
        self.collect_capture_drops();
        self.capture = None;
    }

    fn collect_capture_drops(&mut self) {
        if let Some(c) = &self.capture {
            if let Ok((_, drops)) = c.stats() {
                self.capture_drops += u64::from(drops);
            }
        }
    }

    fn reinstall_nft(&mut self) {
        self.nft_due = None;
        if let Err(e) = nft::install(&self.settings.bridge, &self.port_ifindexes()) {
            warn!(bridge = %self.settings.bridge, error = %e, "cannot update the nftables table");
        }
    }

    async fn refresh_addresses(&mut self) {
        let Some(bridge) = self.bridge_ifindex() else {
            return;
        };
        let mut msg = NetlinkMessage::from(RtnlMessage::Route(RouteNetlinkMessage::GetAddress(
            AddressMessage::default(),
        )));
        msg.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let Ok(mut replies) = self.handle.request(msg) else {
            return;
        };
        self.v4.clear();
        self.v6_ll.clear();
        while let Some(m) = replies.next().await {
            if let NetlinkPayload::InnerMessage(RtnlMessage::Route(
                RouteNetlinkMessage::NewAddress(a),
            )) = m.payload
            {
                if a.header.index == bridge {
                    self.apply_address(&a, true);
                }
            }
        }
        self.push_addresses();
    }

    fn apply_address(&mut self, m: &AddressMessage, present: bool) {
        let Some(SystemEvent::Address {
            addr,
            present,
            usable,
            ..
        }) = address_event(m, present)
        else {
            return;
        };
        let keep = present && usable;
        match addr {
            IpAddr::V4(a) => {
                if keep {
                    self.v4.insert(a);
                } else {
                    self.v4.remove(&a);
                }
            }
            IpAddr::V6(a) if adapter::is_link_local(&a) => {
                if keep {
                    self.v6_ll.insert(a);
                } else {
                    self.v6_ll.remove(&a);
                }
            }
            IpAddr::V6(_) => {}
        }
    }

    fn push_addresses(&mut self) {
        let now = self.now();
        let (v4, v6) = (self.v4.first().copied(), self.v6_ll.first().copied());
        self.snooper.set_addresses(now, v4, v6);
        self.flush_outputs();
    }

    /// Runs until `shutdown` resolves, then leaves the bridge as the kernel alone would
    /// run it.
    pub async fn run(
        mut self,
        mut control: mpsc::Receiver<ControlRequest>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), StartError> {
        tokio::pin!(shutdown);
        if self.bridge.as_ref().is_some_and(|b| b.up) {
            self.activate().await?;
        } else {
            info!(bridge = %self.settings.bridge, "bridge is down: waiting for it");
        }
        loop {
            let findings_due = self.findings.due_ms().map(Instant::from_millis);
            let deadline = [self.snooper.next_deadline(), findings_due, self.nft_due]
                .into_iter()
                .flatten()
                .min()
                .map(Instant::as_millis);
            tokio::select! {
                _ = &mut shutdown => break,
                Some(b) = self.frames_rx.recv() => {
                    let now = self.now();
                    self.handle_batch(now, b);
                    while let Ok(b) = self.frames_rx.try_recv() {
                        self.handle_batch(now, b);
                    }
                }
                Some(e) = self.events.next() => self.handle_event(e).await,
                Some(err) = self.write_errors.recv() => self.write_failed(err),
                Some(req) = control.recv() => match req {
                    ControlRequest::Status(reply) => {
                        let _ = reply.send(self.status());
                    }
                },
                () = self.clock.sleep_until(deadline) => {}
            }
            if self.active {
                let now = self.now();
                if self.snooper.next_deadline().is_some_and(|t| t <= now) {
                    self.snooper.poll(now);
                }
            }
            self.flush_outputs();
            self.update_findings();
            if self.nft_due.is_some_and(|t| t <= self.now()) {
                self.nft_due = None;
                if self.active {
                    self.reinstall_nft();
                }
            }
        }
        self.shutdown().await;
        Ok(())
    }

    /// Re-evaluates the findings (at most once a second) and logs each new one once, and
    /// each cleared one.
    fn update_findings(&mut self) {
        let now = self.now();
        let (snooper, bridge) = (&self.snooper, &self.settings.bridge);
        self.findings.update(now.as_millis(), || {
            snooper
                .findings(now, bridge)
                .iter()
                .map(FindingDoc::from)
                .collect()
        });
    }

    fn write_failed(&mut self, e: writer::WriteError) {
        self.mdb_errors += 1;
        if Some(e.bridge) == self.bridge_ifindex() && e.set {
            self.snooper.mdb_write_failed(&e.key);
        }
        let port = self.ports.get(&e.key.port).map_or("?", |p| p.name.as_str());
        warn!(bridge = %self.settings.bridge, port, group = %e.key.group, vid = e.key.vid, error = %e.error, "MDB write failed");
    }

    fn handle_batch(&mut self, now: Instant, b: RxBatch) {
        if !self.active {
            return;
        }
        self.capture_drops += b.lost;
        let mut fwd = std::mem::take(&mut self.forward);
        for &(start, len, vid, port) in &b.frames {
            let bytes = &b.data[start..start + len];
            let frame = match igmpd_wire::parse_ethernet(bytes) {
                Ok(f) => f,
                Err(e) => {
                    self.decode_drops += 1;
                    debug!(port, reason = e.reason(), "dropped undecodable frame");
                    continue;
                }
            };
            fwd.clear();
            self.snooper
                .receive(now, port, vid, &frame.packet, &mut fwd);
            for target in &fwd {
                self.send_on_port(*target, bytes, vid);
            }
        }
        self.forward = fwd;
        self.flush_outputs();
    }

    /// RFC 4541 §2.1.1: the captured report, as it arrived, out of a router port.
    fn send_on_port(&self, port: u32, bytes: &[u8], vid: u16) {
        let Some(s) = self.ports.get(&port).and_then(|p| p.socket.as_ref()) else {
            return;
        };
        let r = if vid == 0 {
            s.send(bytes)
        } else {
            s.send(&tag(bytes, vid))
        };
        if let Err(e) = r {
            debug!(port, error = %e, "forwarding a report failed");
        }
    }

    /// Queues one MDB write with the writer thread.
    fn queue_write(&mut self, bridge: u32, op: MdbOp, permanent: bool) {
        if self
            .writes
            .send(writer::WriteCmd::Op {
                bridge,
                op,
                permanent,
            })
            .is_ok()
        {
            self.writes_sent += 1;
        }
    }

    /// Writes `ops`: here and now when they are few, the writer thread is idle and the
    /// last writes were a while ago (one thread wake-up less on the way of a single join),
    /// else through the writer. In a burst the writer keeps them all: written here, their
    /// kernel work would stop this thread from reading the burst (measured: 4000 joins
    /// took 77 ms instead of 45).
    fn write_mdb(&mut self, bridge: u32, ops: Vec<MdbOp>) {
        let now = std::time::Instant::now();
        let quiet = self
            .last_mdb_write
            .is_none_or(|t| now.duration_since(t) >= INLINE_QUIET);
        self.last_mdb_write = Some(now);
        let idle = self.writer_idle.load(Ordering::Acquire) == self.writes_sent;
        let ops = match &mut self.inline_writer {
            Some(w) if quiet && idle && ops.len() <= writer::INLINE_MAX => {
                let (unconfirmed, refused) = w.write(bridge, ops);
                for e in refused {
                    self.write_failed(e);
                }
                unconfirmed
            }
            _ => ops,
        };
        for op in ops {
            self.queue_write(bridge, op, true);
        }
    }

    fn flush_outputs(&mut self) {
        let bridge = self.bridge_ifindex();
        let outs: Vec<Output> = self.snooper.drain().collect();
        let mut mdb = Vec::new();
        for o in outs {
            match o {
                Output::Mdb(op) => {
                    if bridge.is_some() {
                        mdb.push(op);
                    }
                }
                Output::Query { vid, query } => self.send_query(vid, &query),
                Output::RouterPort { port, router } => {
                    if router {
                        self.save_router_state();
                    }
                    let Some(p) = self.ports.get_mut(&port) else {
                        continue;
                    };
                    let mode = if router { 2 } else { p.original_router };
                    p.current_router = mode;
                    info!(bridge = %self.settings.bridge, port = %p.name, router, "multicast router port");
                    let h = self.handle.clone();
                    let name = p.name.clone();
                    tokio::spawn(async move {
                        if let Err(e) = h
                            .link()
                            .set_port_mcast_router(port, BridgeMulticastRouterType::from(mode))
                            .await
                        {
                            warn!(port = %name, error = %e, "cannot set mcast_router");
                        }
                    });
                }
                Output::Event(e) => self.log_event(&e),
            }
        }
        if let (Some(bridge), false) = (bridge, mdb.is_empty()) {
            self.write_mdb(bridge, mdb);
        }
    }

    fn log_event(&self, e: &SnoopEvent) {
        let name = |p: &u32| {
            self.ports
                .get(p)
                .map_or_else(|| p.to_string(), |x| x.name.clone())
        };
        match e {
            SnoopEvent::PortGroup {
                port,
                vid,
                group,
                added,
            } => {
                debug!(port = %name(port), vid, %group, added, "membership")
            }
            // One line for the first ten, then at every power of two: a flood of joins
            // at the limit must not become a flood of log lines.
            SnoopEvent::Refused { port, vid, group }
                if {
                    let n = self.snooper.mdb().refused_total();
                    n <= 10 || n.is_power_of_two()
                } =>
            {
                warn!(
                    bridge = %self.settings.bridge, port = %name(port), vid, %group,
                    limit = self.snooper.mdb().limit(),
                    refused = self.snooper.mdb().refused_total(),
                    "group refused: the bridge's MDB is at igmpd's limit below mcast_hash_max (the kernel would turn snooping off at the limit); raise it with --raise-hash-max"
                )
            }
            SnoopEvent::Refused { .. } => {}
            SnoopEvent::Querier { vid, proto, event } => {
                info!(bridge = %self.settings.bridge, vid, proto = proto.name(), event = ?event, "querier")
            }
        }
    }

    fn send_query(&self, vid: u16, q: &AnyQuery) {
        let (Some(s), Some(b)) = (&self.bridge_socket, &self.bridge) else {
            return;
        };
        let frame = match q {
            AnyQuery::V4(q) => Some(adapter::igmp_query_frame(b.mac, q)),
            AnyQuery::V6(q) => adapter::mld_query_frame(b.mac, q),
        };
        let Some(mut frame) = frame else { return };
        if vid != 0 {
            frame.ethernet.vlan = Some(VlanTag::new(vid));
        }
        if let Err(e) = s.send(&frame.to_bytes()) {
            warn!(bridge = %self.settings.bridge, error = %e, "sending a query failed");
        }
    }

    async fn handle_event(&mut self, e: NlEvent) {
        match e {
            NlEvent::Route(RouteNetlinkMessage::NewLink(m)) => self.on_link(&m, false).await,
            NlEvent::Route(RouteNetlinkMessage::DelLink(m)) => self.on_link(&m, true).await,
            NlEvent::Route(RouteNetlinkMessage::NewAddress(a))
                if Some(a.header.index) == self.bridge_ifindex() =>
            {
                self.apply_address(&a, true);
                self.push_addresses();
            }
            NlEvent::Route(RouteNetlinkMessage::DelAddress(a))
                if Some(a.header.index) == self.bridge_ifindex() =>
            {
                self.apply_address(&a, false);
                self.push_addresses();
            }
            NlEvent::Overrun => {
                warn!("rtnetlink events were lost; reading links again");
                self.resync_links().await;
            }
            _ => {}
        }
    }

    async fn resync_links(&mut self) {
        let Ok(links) = self
            .handle
            .link()
            .dump(Default::default())
            .try_collect::<Vec<LinkMessage>>()
            .await
        else {
            return;
        };
        if !links
            .iter()
            .any(|l| link_name(l) == Some(self.settings.bridge.as_str()))
        {
            self.bridge_gone();
        }
        let current: BTreeSet<u32> = links
            .iter()
            .filter(|l| self.bridge_ifindex().is_some() && link_master(l) == self.bridge_ifindex())
            .map(|l| l.header.index)
            .collect();
        for p in self.ports.keys().copied().collect::<Vec<_>>() {
            if !current.contains(&p) {
                self.remove_port(p);
            }
        }
        for l in &links {
            self.on_link(l, false).await;
        }
        self.refresh_addresses().await;
    }

    fn bridge_gone(&mut self) {
        self.nft_due = None;
        self.deactivate();
        self.bridge = None;
        info!(bridge = %self.settings.bridge, "bridge deleted: waiting for it to come back");
    }

    async fn on_link(&mut self, m: &LinkMessage, removed: bool) {
        let index = m.header.index;
        let name = link_name(m);
        let is_ours = Some(index) == self.bridge_ifindex()
            || (name == Some(self.settings.bridge.as_str()) && is_bridge(m));
        if is_ours {
            if removed {
                self.bridge_gone();
                return;
            }
            // AF_BRIDGE notifications about the bridge carry no link info.
            if !is_bridge(m) {
                return;
            }
            let info = bridge_info(m);
            let recreated = self.bridge.as_ref().is_some_and(|b| b.ifindex != index);
            if recreated {
                self.bridge_gone();
            }
            let was_up = self.bridge.as_ref().is_some_and(|b| b.up) && self.active;
            let filtering = (info.igmp_v3, info.mld_v2);
            let fresh = self.bridge.is_none();
            self.bridge = Some(info);
            self.snooper.set_source_filtering(filtering.0, filtering.1);
            if fresh {
                if let Err(e) = self.configure_router_ports().await {
                    warn!(error = %e, "configured router ports");
                }
            }
            let up = self.bridge.as_ref().is_some_and(|b| b.up);
            if up && !was_up {
                if let Err(e) = self.activate().await {
                    warn!(bridge = %self.settings.bridge, error = %e, "cannot start snooping");
                }
            } else if !up && was_up {
                self.deactivate();
            }
            return;
        }
        if !self.active {
            return;
        }
        let master = link_master(m);
        let known = self.ports.contains_key(&index);
        let bridge = self.bridge_ifindex();
        if removed
            || (known && master.is_some_and(|x| Some(x) != bridge))
            || (known && master.is_none() && m.header.interface_family == Default::default())
        {
            if known {
                self.remove_port(index);
                // Not at once: `ip link del BRIDGE` removes every port before the bridge
                // goes; if it does, the table keeps the old names until the bridge comes
                // back, so that the kernel does not learn on the recreated bridge's ports
                // before igmpd snoops them again.
                self.nft_due = Some(self.now() + NFT_PORT_GONE_DELAY);
            }
            return;
        }
        if master.is_none() || master != bridge {
            return;
        }
        let up = link_up(m);
        if !known {
            let mode = match port_router_mode(m) {
                Some(r) => r,
                None => match self.handle.link().get(index).await {
                    Ok(l) => port_router_mode(&l).unwrap_or(1),
                    Err(_) => 1,
                },
            };
            let name = name.unwrap_or_default().to_owned();
            self.add_port(index, name, up, mode);
            self.reinstall_nft();
            return;
        }
        let Some(p) = self.ports.get_mut(&index) else {
            return;
        };
        if let Some(n) = name {
            if n != p.name {
                p.name = n.to_owned();
                self.reinstall_nft();
            }
        }
        let Some(p) = self.ports.get_mut(&index) else {
            return;
        };
        if p.up != up {
            p.up = up;
            info!(bridge = %self.settings.bridge, port = %p.name, up, "port state");
            if up {
                self.snooper.port_up(index);
            } else {
                self.snooper.port_down(index);
            }
        }
    }

    /// Clean exit: finish writes, hand the entries to the kernel as temporary ones (it
    /// ages them, and refreshes them from reports once the table is gone), remove the
    /// table, restore `mcast_router`.
    async fn shutdown(mut self) {
        self.stop_capture();
        self.barrier().await;
        if let Some(bridge) = self.bridge_ifindex() {
            let entries: Vec<(EntryKey, EntryFilter)> = self
                .snooper
                .mdb()
                .programmed()
                .map(|(k, f, _)| (*k, f.clone()))
                .collect();
            let n = entries.len();
            for (k, f) in entries {
                self.queue_write(bridge, MdbOp::Set(k, f), false);
            }
            self.barrier().await;
            info!(bridge = %self.settings.bridge, entries = n, "entries handed to the kernel as temporary");
            for (port, p) in &self.ports {
                if p.current_router != p.original_router {
                    let mode = BridgeMulticastRouterType::from(p.original_router);
                    if let Err(e) = self.handle.link().set_port_mcast_router(*port, mode).await {
                        warn!(port = %p.name, error = %e, "cannot restore mcast_router");
                    }
                }
            }
        }
        if let Some(f) = self.state_file() {
            let _ = std::fs::remove_file(f);
        }
        if let Err(e) = nft::remove(&self.settings.bridge) {
            warn!(bridge = %self.settings.bridge, error = %e, "cannot remove the nftables table");
        }
        let (tx, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.writes, tx));
        if let Some(w) = self.writer.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
        }
    }

    /// `STATE_DIR/igmpd-snoop-BRIDGE-netINODE.json`: per bridge and network namespace.
    fn state_file(&self) -> Option<std::path::PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let dir = self.settings.state_dir.as_ref()?;
        let ns = std::fs::metadata("/proc/self/ns/net").ok()?.ino();
        let clean: String = self
            .settings
            .bridge
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Some(dir.join(format!("igmpd-snoop-{clean}-net{ns}.json")))
    }

    /// Writes every port's `mcast_router` from before igmpd, before igmpd changes one.
    fn save_router_state(&self) {
        let (Some(f), Some(b)) = (self.state_file(), self.bridge.as_ref()) else {
            return;
        };
        let ports: serde_json::Map<String, Value> = self
            .ports
            .iter()
            .map(|(i, p)| {
                (
                    i.to_string(),
                    json!({"name": p.name, "mcast_router": p.original_router}),
                )
            })
            .collect();
        let doc = json!({"bridge": self.settings.bridge, "ifindex": b.ifindex, "mac": mac_string(&b.mac), "ports": ports});
        let tmp = f.with_extension("tmp");
        let r = std::fs::write(&tmp, doc.to_string()).and_then(|()| std::fs::rename(&tmp, &f));
        if let Err(e) = r {
            warn!(file = %f.display(), error = %e, "cannot save the ports' mcast_router settings");
        }
    }

    /// The saved settings, if they are this bridge's (same ifindex and MAC: not a bridge of
    /// the same name created since).
    fn load_router_state(&self) -> BTreeMap<u32, (String, u8)> {
        let mut out = BTreeMap::new();
        let (Some(f), Some(b)) = (self.state_file(), self.bridge.as_ref()) else {
            return out;
        };
        let Ok(text) = std::fs::read_to_string(&f) else {
            return out;
        };
        let Ok(doc) = serde_json::from_str::<Value>(&text) else {
            return out;
        };
        if doc["ifindex"].as_u64() != Some(u64::from(b.ifindex))
            || doc["mac"].as_str() != Some(mac_string(&b.mac).as_str())
        {
            debug!(file = %f.display(), "saved mcast_router settings are of another bridge");
            return out;
        }
        for (i, p) in doc["ports"].as_object().into_iter().flatten() {
            let (Ok(i), Some(n), Some(v)) = (
                i.parse::<u32>(),
                p["name"].as_str(),
                p["mcast_router"]
                    .as_u64()
                    .and_then(|v| u8::try_from(v).ok()),
            ) else {
                continue;
            };
            out.insert(i, (n.to_owned(), v));
        }
        info!(file = %f.display(), ports = out.len(), "found the ports' mcast_router settings from before igmpd");
        out
    }

    async fn barrier(&self) {
        let (tx, rx) = oneshot::channel();
        if self.writes.send(writer::WriteCmd::Barrier(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
        }
    }

    /// The status document: `bridges` (and `interfaces` with `--querier`).
    pub fn status(&mut self) -> StatusDoc {
        let now = self.now();
        self.collect_capture_drops();
        let name = |p: u32| {
            self.ports
                .get(&p)
                .map_or_else(|| p.to_string(), |x| x.name.clone())
        };
        let ms = |t: Instant| t.saturating_since(now).as_millis() as u64;
        let mut groups: BTreeMap<u32, Vec<PortGroupStatus>> =
            self.ports.keys().map(|p| (*p, Vec::new())).collect();
        for vid in self.snooper.vids().collect::<Vec<_>>() {
            if let Some(d) = self.snooper.igmp(vid) {
                for (port, m) in d.ports() {
                    groups
                        .entry(port)
                        .or_default()
                        .extend(port_groups(m, vid, now, Proto::Igmp));
                }
            }
            if let Some(d) = self.snooper.mld(vid) {
                for (port, m) in d.ports() {
                    groups
                        .entry(port)
                        .or_default()
                        .extend(port_groups(m, vid, now, Proto::Mld));
                }
            }
        }
        let ports = groups
            .into_iter()
            .map(|(p, groups)| PortStatus {
                name: name(p),
                ifindex: p,
                up: self.ports.get(&p).is_some_and(|x| x.up),
                groups,
            })
            .collect();
        let routers = self.snooper.routers();
        let mut router_ports: Vec<RouterPortStatus> = routers
            .configured()
            .iter()
            .map(|p| RouterPortStatus {
                name: name(*p),
                vid: None,
                reasons: vec!["configured"],
                families: vec!["igmp", "mld"],
                expires_in_ms: None,
            })
            .collect();
        for ((vid, p), l) in routers.learned() {
            let reasons: BTreeSet<&'static str> = l.timers.keys().map(|(_, r)| r.name()).collect();
            let families: BTreeSet<&'static str> = l.timers.keys().map(|(f, _)| f.name()).collect();
            router_ports.push(RouterPortStatus {
                name: name(*p),
                vid: (*vid != 0).then_some(*vid),
                reasons: reasons.into_iter().collect(),
                families: families.into_iter().collect(),
                expires_in_ms: l.timers.values().max().map(|t| ms(*t)),
            });
        }
        let c = self.snooper.counters();
        let mdb = self.snooper.mdb();
        let b = self.bridge.as_ref();
        let bridge = BridgeStatus {
            name: self.settings.bridge.clone(),
            ifindex: b.map(|b| b.ifindex),
            up: b.is_some_and(|b| b.up),
            active: self.active,
            querier: self.settings.querier,
            mcast_hash_max: b.map(|b| b.hash_max),
            entry_limit: mdb.limit(),
            mdb_keys: mdb.keys_in_use(),
            mdb_entries: mdb.programmed().count(),
            igmp: self.snooper.igmp(0).map(|d| bridge_querier(d.instance())),
            mld: self.snooper.mld(0).map(|d| bridge_querier(d.instance())),
            counters: BridgeCounters {
                reports: c.reports,
                queries: c.queries,
                forwarded: c.forwarded,
                groups_refused: mdb.refused_total(),
                groups_refused_now: mdb.refused_now() as u64,
                source_lists_degraded: mdb.degraded_total(),
                mdb_errors: self.mdb_errors,
                capture_drops: self.capture_drops,
                decode_drops: self.decode_drops,
                mld_bad_source: c.bad_source,
                adopted: self.adopted,
            },
            router_ports,
            ports,
        };
        StatusDoc {
            interfaces: self
                .settings
                .querier
                .then(|| vec![self.interface_status(now)]),
            bridges: Some(vec![bridge]),
            findings: self
                .snooper
                .findings(now, &self.settings.bridge)
                .iter()
                .map(FindingDoc::from)
                .collect(),
        }
    }

    /// The querier sections as `igmpd query` shows them, for the bridge (untagged).
    fn interface_status(&self, now: Instant) -> IfaceStatus {
        let b = self.bridge.as_ref();
        IfaceStatus {
            name: self.settings.bridge.clone(),
            ifindex: b.map(|b| b.ifindex),
            up: b.is_some_and(|b| b.up),
            igmp: self
                .snooper
                .igmp(0)
                .map(|d| instance_status(d.instance(), now, Proto::Igmp, BTreeMap::new())),
            mld: self
                .snooper
                .mld(0)
                .map(|d| instance_status(d.instance(), now, Proto::Mld, BTreeMap::new())),
        }
    }
}

/// The querier a bridge follows, as its (untagged) instance knows it.
fn bridge_querier<A>(i: &igmpd_querier::core::Instance<A>) -> BridgeQuerierStatus
where
    A: Ord + Copy + std::hash::Hash + std::fmt::Debug + std::fmt::Display,
{
    BridgeQuerierStatus {
        querier_address: i.querier_address().map(|a| a.to_string()),
        robustness: i.robustness(),
        query_interval_ms: i.query_interval().as_millis() as u64,
        group_membership_interval_ms: i.group_membership_interval().as_millis() as u64,
    }
}

fn port_groups<A>(
    m: &igmpd_querier::core::Membership<A>,
    vid: u16,
    now: Instant,
    proto: Proto,
) -> Vec<PortGroupStatus>
where
    A: Ord + Copy + std::hash::Hash + std::fmt::Display,
{
    let ms = |t: Instant| t.saturating_since(now).as_millis() as u64;
    m.groups()
        .map(|g| PortGroupStatus {
            group: g.group.to_string(),
            vid: (vid != 0).then_some(vid),
            filter_mode: g.mode.name(),
            sources: g
                .sources
                .iter()
                .map(|(s, t)| SourceStatus {
                    address: s.to_string(),
                    expires_in_ms: t.map_or(0, ms),
                })
                .collect(),
            hosts: g.reporters.iter().map(|(r, _)| r.to_string()).collect(),
            compat_version: g.compat.version(proto),
            expires_in_ms: g.expires.map_or(0, ms),
        })
        .collect()
}

fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `bytes` with an 802.1Q tag for `vid` after the MAC addresses (the kernel strips tags
/// before packet sockets see frames).
fn tag(bytes: &[u8], vid: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 4);
    out.extend_from_slice(&bytes[..12.min(bytes.len())]);
    out.extend_from_slice(&[0x81, 0x00]);
    out.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    out.extend_from_slice(bytes.get(12..).unwrap_or(&[]));
    out
}

/// Reads the capture ring: every frame the kernel handed over, copied into batches for
/// the main loop (the slots go straight back to the kernel).
///
/// Interrupt moderation, as NAPI does for a NIC: a wake-up that found at least
/// [`MODERATE_AT`] frames means reports are streaming in, so the reader takes the ring out
/// of the reactor and pauses for [`MODERATION`], then reads all that arrived meanwhile.
/// The kernel signals readiness for every frame it writes into a V2 ring; in a re-join
/// flood those wake-ups (on the receiving CPU, which the sender shares) cut the rate the
/// sender reached from ~300k to ~275k reports/s. A lone join is still read at once.
async fn read_ring(mut ring: CaptureRing, tx: mpsc::Sender<RxBatch>) {
    loop {
        let mut afd = match ring.into_async() {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "capture ring: cannot wait for frames");
                return;
            }
        };
        loop {
            let mut guard = match afd.readable_mut().await {
                Ok(g) => g,
                Err(e) => {
                    warn!(error = %e, "capture ring failed");
                    return;
                }
            };
            let Some(taken) = drain_ring(guard.get_inner_mut(), &tx).await else {
                return;
            };
            // Readiness is cleared only if no frame was handed over since it was reported
            // (the runtime compares event ticks), so none is missed.
            guard.clear_ready();
            if taken >= MODERATE_AT {
                break;
            }
        }
        // Out of the reactor, the kernel's readiness events wake nobody; registered again
        // after the pause, the frames that wait are reported at once.
        ring = afd.into_inner();
        tokio::time::sleep(MODERATION).await;
    }
}

/// Reads every frame waiting in the ring into batches for the main loop. Returns how many
/// (None: the main loop is gone).
async fn drain_ring(ring: &mut CaptureRing, tx: &mpsc::Sender<RxBatch>) -> Option<usize> {
    let mut batch = new_batch();
    let mut taken = 0;
    loop {
        // A batch at a time, so a long burst reaches the main loop in pieces (its MDB
        // writes then start while the rest is read).
        let n = ring.read(BATCH, |f| {
            if f.data.len() < f.wire_len {
                // Truncated, and its whole copy lost (the socket's queue was full).
                batch.lost += 1;
                return;
            }
            let start = batch.data.len();
            batch.data.extend_from_slice(f.data);
            batch
                .frames
                .push((start, f.data.len(), f.vlan.unwrap_or(0), f.ifindex));
        });
        if n == 0 {
            break;
        }
        taken += n;
        if batch.frames.len() >= BATCH {
            let full = std::mem::replace(&mut batch, new_batch());
            tx.send(full).await.ok()?;
            // Let the main loop take this batch now: its MDB writes then go to the
            // writer thread while we read on, instead of after the ring is empty (a
            // burst of joins reached the MDB in one lump at the end).
            tokio::task::yield_now().await;
        }
    }
    if !batch.frames.is_empty() || batch.lost > 0 {
        tx.send(batch).await.ok()?;
    }
    Some(taken)
}

fn new_batch() -> RxBatch {
    RxBatch {
        data: Vec::with_capacity(16 * 1024),
        frames: Vec::with_capacity(BATCH),
        lost: 0,
    }
}
