//! The `igmpd snoop` daemon around the core: one TPACKET_V2 capture ring for every port
//! (the ports' packet sockets only send: reports forwarded out of router ports), the
//! nftables table that keeps the kernel from learning, batched MDB writes, rtnetlink
//! events.
//!
//! This module has the settings and the event loop; beside it, by concern: `capture` (the
//! ring's reader, batches, forwarding), `ports` (ports, router mode), `adopt` (MDB entries
//! found at start), `writes` (the daemon's MDB write path), [`writer`] (the writer
//! thread and the inline writer), [`nft`] (the table), `state` (the state file),
//! `kernel` (what the kernel's MDB takes; the bridge's source filtering), `events`
//! (rtnetlink), `outputs` (what the core asks for), `status` (the status document),
//! `recover` (activation retries, reconnects, `igmpd cleanup`'s hand-back).
//!
//! The event loop of `igmpd snoop BRIDGE`: one task owns the [`Snooper`]; one capture
//! ring (TPACKET_V2) captures the IGMP, MLD and PIM frames of every port and its reader
//! task hands the loop batches of them (`capture`); the ports' packet sockets only send
//! (reports forwarded out of router ports) and so does the bridge's (queries); MDB writes
//! go to the [`writer`](self::writer) thread (`writes`); link and address changes arrive
//! over rtnetlink (`events`). The loop sleeps until the core's next deadline.
//!
//! Start (and every time the bridge comes up): the capture ring, the ports (`ports`), the
//! kernel probe and the bridge's IGMP/MLD versions (`kernel`), the nftables table
//! ([`nft`](self::nft)), the MDB dump (igmpd's own entries are adopted: `adopt`), router
//! ports. Clean exit: pending writes finish, igmpd's entries become temporary (the kernel
//! ages or refreshes them), the table goes (the kernel learns again), `mcast_router`, `mcast_flood` and
//! the versions are restored. What an igmpd restarted after SIGKILL must know (the
//! settings from before igmpd, and on kernels before 6.3 which entries are igmpd's) is in
//! a state file next to the control socket (`state`). Findings (the core's observers, plus `snooping-without-querier`) are in
//! `status --json` (`status`) and each new or cleared one is logged once.

mod admin;
mod adopt;
mod backlog;
mod capture;
mod events;
mod kernel;
mod metrics;
pub mod nft;
mod outputs;
mod ports;
mod recover;
mod state;
mod status;
mod vlans;
pub mod writer;
mod writes;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use futures::{Stream, StreamExt, TryStreamExt};
use igmpd_netlink::links::{self, BridgeLink};
use igmpd_netlink::netlink_packet_route::link::{InfoBridge, LinkMessage};
use igmpd_netlink::probe::MdbFeatures;
use igmpd_netlink::{Event as NlEvent, Group, Handle};
use igmpd_packet::PacketSocket;
use igmpd_querier::core::{Config, Instant};
use igmpd_runtime::clock::Clock;
use igmpd_runtime::control::ControlRequest;
use igmpd_runtime::findings::FindingsLog;
use igmpd_runtime::status::FindingDoc;
use tokio::sync::mpsc;
use tracing::{info, warn};

use self::adopt::entry_limit;
use self::capture::Capture;
use self::ports::Port;
use self::writes::Writes;
use crate::core::{Policies, PortPolicy, SnoopConfig, Snooper};

/// igmpd's MDB protocol value (`proto 73` in `bridge mdb show`): not used by iproute2's
/// `rt_protos` or FRR. Entries with it are igmpd's; every other entry is left alone.
pub const MDB_PROTO: u8 = 73;

/// The retries of what the system refused (activation, the rtnetlink connection): 1 s,
/// doubling, at most 30 s apart.
const SECOND: std::time::Duration = std::time::Duration::from_secs(1);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a clean exit waits for the settings to be restored (netlink requests the
/// kernel answers in milliseconds).
const RESTORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The longest a clean exit (SIGTERM) may take: two writer barriers (what was queued, then
/// the entries rewritten as temporary), the settings restored, and the writer closed.
/// `igmpd run` waits this long for each bridge, and the unit's TimeoutStopSec is above it.
pub const SHUTDOWN_BOUND: std::time::Duration = std::time::Duration::from_secs(
    2 * writes::BARRIER_TIMEOUT.as_secs()
        + RESTORE_TIMEOUT.as_secs()
        + writes::CLOSE_TIMEOUT.as_secs(),
);

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
    /// What every port may do (`[bridge.B]`, `igmpd snoop`'s flags).
    pub policy: PortPolicy,
    /// Ports with a policy of their own (`[bridge.B.port.P]`, `--router-guard P`), by
    /// name: applied whenever a port of that name is in the bridge.
    pub port_policies: BTreeMap<String, PortPolicy>,
    /// Per-VLAN querier sources (`querier_address` in `[bridge.B.vlan.V]`), over the
    /// VLAN interface's addresses.
    pub vlan_addresses: BTreeMap<u16, crate::core::VlanAddresses>,
    /// Ports' configured static groups (`static_groups` in `[bridge.B.port.P]`), by name.
    pub static_groups: BTreeMap<String, BTreeSet<crate::core::StaticGroup>>,
    /// Groups flooded to every port once heard of (`flood_groups`).
    pub flood_groups: Vec<crate::core::FloodPrefix>,
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
    /// `igmpd cleanup` on a bridge that is down.
    #[error("bridge {0} is down: its table is removed; bring it up and run igmpd cleanup again to restore its settings and entries")]
    Down(String),
    /// nft failed.
    #[error("cannot install the nftables table: {0}")]
    Nft(std::io::Error),
    /// The capture ring could not be set up.
    #[error("cannot open the packet capture ring (AF_PACKET, TPACKET_V2; needs CAP_NET_RAW): {0}")]
    Capture(std::io::Error),
}

/// The `igmpd snoop` daemon.
#[allow(missing_debug_implementations)]
pub struct SnoopDaemon {
    settings: SnoopSettings,
    clock: Clock,
    handle: Handle,
    events: Events,
    /// The event stream ended: when to connect again, and how many tries failed.
    reconnect: Option<(Instant, u32)>,
    /// Times the event stream ended, and activations that failed (status counters).
    reconnects: u64,
    activation_failures: u64,
    bridge: Option<BridgeLink>,
    active: bool,
    ports: BTreeMap<u32, Port>,
    /// Sends the queries (the bridge floods them); receives nothing.
    bridge_socket: Option<PacketSocket>,
    capture: Capture,
    v4: BTreeSet<Ipv4Addr>,
    v6_ll: BTreeSet<Ipv6Addr>,
    snooper: Snooper,
    writes: Writes,
    adopted: u64,
    foreign_keys: usize,
    /// The router ports a report goes to (kept to spare an allocation per frame).
    forward: Vec<u32>,
    /// Findings as last evaluated, to log each new and each cleared one once.
    findings: FindingsLog,
    /// `igmpd monitor`'s bus, and this bridge as its events name it.
    monitor: igmpd_runtime::events::Events,
    place: igmpd_runtime::events::Place,
    /// When the nftables port set is to be rewritten after ports left.
    nft_due: Option<Instant>,
    /// The socket that owns the nftables table (see [`nft`]).
    nft: nft::NftTable,
    /// A runtime activation that failed: when it is tried again, and how many failed in a
    /// row.
    activate_retry: Option<(Instant, u32)>,
    /// What an earlier igmpd saved for this bridge (see `state`).
    saved: state::SavedState,
    /// The bridge's `(mcast_igmp_version, mcast_mld_version)` from before igmpd changed
    /// them (None: unchanged).
    original_versions: Option<(u8, u8)>,
    /// Per-VLAN snooping's own state (see `vlans`).
    vlans: vlans::VlanShell,
    /// What the kernel's MDB takes (until probed: everything).
    kernel_mdb: MdbFeatures,
    /// The kernel's features as status shows them, once probed.
    kernel_features: Option<Vec<&'static str>>,
    /// Static groups added with `igmpd static add`, by port name (kept in the state file).
    runtime_statics: BTreeMap<String, BTreeSet<crate::core::StaticGroup>>,
}

/// The rtnetlink connection: requests, and the link, address and VLAN changes it is
/// subscribed to.
type Events = Box<dyn Stream<Item = NlEvent> + Send + Unpin>;

fn connect() -> Result<(Handle, Events), igmpd_netlink::Error> {
    let (mut conn, handle, rx) = igmpd_netlink::new_connection()?;
    igmpd_netlink::subscribe(
        &mut conn,
        &[
            Group::Link,
            Group::Ipv4Ifaddr,
            Group::Ipv6Ifaddr,
            Group::BrVlan,
        ],
    )?;
    let _ = igmpd_netlink::set_receive_buffer(&mut conn, 4 << 20);
    tokio::spawn(conn);
    let events: Events = Box::new(igmpd_netlink::events(rx));
    Ok((handle, igmpd_netlink::monitor::injected_end(events)))
}

fn nl(e: impl std::fmt::Display) -> StartError {
    StartError::Netlink(e.to_string())
}

impl SnoopDaemon {
    /// Finds the bridge, checks it, applies `--raise-hash-max`, subscribes to changes and
    /// starts the MDB writer. Snooping starts in [`SnoopDaemon::run`].
    pub async fn start(settings: SnoopSettings) -> Result<Self, StartError> {
        let (handle, events) = connect().map_err(nl)?;
        let nft = nft::NftTable::open(&settings.bridge).map_err(StartError::Nft)?;
        let link = handle
            .link()
            .get_by_name(&settings.bridge)
            .await
            .map_err(|_| StartError::NoSuchBridge(settings.bridge.clone()))?;
        if !links::is_bridge(&link) {
            return Err(StartError::NotABridge(settings.bridge.clone()));
        }
        let mut info = BridgeLink::from_message(&link);
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
            entry_limit: entry_limit(info.hash_max, 0),
            vlans: settings.vlans.clone(),
            vlan_filtering: info.vlan_filtering,
            vlan_snooping: info.vlan_snooping,
            policy: Policies {
                bridge: settings.policy.clone(),
                ports: BTreeMap::new(),
            },
            flood_groups: settings.flood_groups.clone(),
        };
        let writes = Writes::start(handle.clone());
        let place = igmpd_runtime::events::Place::Bridge(settings.bridge.as_str().into());
        let mut d = SnoopDaemon {
            settings,
            clock: Clock::new(),
            handle,
            events,
            bridge: Some(info),
            active: false,
            ports: BTreeMap::new(),
            bridge_socket: None,
            capture: Capture::new(),
            v4: BTreeSet::new(),
            v6_ll: BTreeSet::new(),
            snooper: Snooper::new(cfg),
            writes,
            adopted: 0,
            foreign_keys: 0,
            forward: Vec::with_capacity(16),
            findings: FindingsLog::new(),
            monitor: igmpd_runtime::events::Events::new(),
            place,
            nft_due: None,
            nft,
            activate_retry: None,
            reconnect: None,
            reconnects: 0,
            activation_failures: 0,
            saved: state::SavedState::default(),
            original_versions: None,
            vlans: vlans::VlanShell::default(),
            kernel_mdb: MdbFeatures::ALL,
            kernel_features: None,
            runtime_statics: BTreeMap::new(),
        };
        if let Some(b) = &d.bridge {
            d.runtime_statics = state::saved_statics(&d.settings, b);
        }
        d.configure_router_ports().await?;
        Ok(d)
    }

    fn now(&self) -> Instant {
        Instant::from_millis(self.clock.now_ms())
    }

    fn bridge_ifindex(&self) -> Option<u32> {
        self.bridge.as_ref().map(|b| b.ifindex)
    }

    /// Every link of the namespace (the bridge's ports among them).
    async fn links(&self) -> Result<Vec<LinkMessage>, igmpd_netlink::Error> {
        self.handle
            .link()
            .dump(Default::default())
            .try_collect()
            .await
    }

    /// Everything that happens when the bridge is (or comes) up.
    async fn activate(&mut self) -> Result<(), StartError> {
        let Some(bridge) = self.bridge_ifindex() else {
            return Ok(());
        };
        let now = self.now();
        // The capture first: add_port names each port to its filter.
        self.capture.start().map_err(StartError::Capture)?;
        // Ports and their router mode.
        let links = self.links().await.map_err(nl)?;
        self.saved = self.load_state();
        let mut names = Vec::new();
        for l in &links {
            if links::master(l) == Some(bridge) {
                let name = links::name(l).unwrap_or_default().to_owned();
                names.push(name.clone());
                self.add_port(
                    l.header.index,
                    name,
                    links::is_up(l),
                    (
                        links::port_mcast_router(l).unwrap_or(1),
                        links::port_mcast_flood(l).unwrap_or(true),
                    ),
                );
                self.set_forwarding(l.header.index, links::port_forwarding(l));
            } else {
                self.track_upper(l, false);
            }
        }
        self.nft_due = None;
        for name in self.settings.port_policies.keys() {
            if !names.contains(name) {
                warn!(bridge = %self.settings.bridge, port = %name, "a port policy names no port of the bridge (yet): it applies once a port of that name is added");
            }
        }
        self.adopt_saved_vlans();
        // The queriers' sources before the VLANs' queriers start.
        self.refresh_addresses().await;
        self.refresh_port_vlans().await;
        // The versions first: the probe then sees the bridge as igmpd will use it (a
        // kernel may take (S,G) entries only on an IGMPv3 bridge).
        self.set_versions().await;
        self.probe_kernel().await;
        let (ports, guarded) = (self.port_ifindexes(), self.guarded_ports());
        self.nft
            .install(&ports, &guarded)
            .map_err(StartError::Nft)?;
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
        // Adopt what an earlier igmpd left (SIGKILL, or a clean exit's temporary entries).
        let adopted = self.adopt_entries(bridge, now).await?;
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
        self.stop_snooping();
        info!(bridge = %self.settings.bridge, "bridge down: snooping paused");
    }

    fn stop_snooping(&mut self) {
        self.active = false;
        self.ports.clear();
        self.capture.stop();
        self.bridge_socket = None;
        self.snooper.bridge_down();
        self.snooper.drain().for_each(drop);
    }

    /// Runs until `shutdown` resolves, then leaves the bridge as the kernel alone would
    /// run it.
    pub async fn run(
        mut self,
        mut control: mpsc::Receiver<ControlRequest>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), StartError> {
        tokio::pin!(shutdown);
        if self.bridge.as_ref().is_some_and(|b| b.up && b.snooping) {
            self.activate().await?;
        } else {
            info!(bridge = %self.settings.bridge, "bridge is down: waiting for it");
        }
        loop {
            let findings_due = self.findings.due_ms().map(Instant::from_millis);
            let retry = self.activate_retry.map(|(t, _)| t);
            let reconnect = self.reconnect.map(|(t, _)| t);
            let deadline = [
                self.snooper.next_deadline(),
                findings_due,
                self.nft_due,
                retry,
                reconnect,
            ]
            .into_iter()
            .flatten()
            .min()
            .map(Instant::as_millis);
            tokio::select! {
                _ = &mut shutdown => break,
                Some(()) = self.capture.wake.recv() => {
                    let now = self.now();
                    self.handle_backlog(now);
                }
                e = self.events.next(), if self.reconnect.is_none() => match e {
                    Some(e) => self.handle_event(e).await,
                    None => self.events_ended(),
                },
                Some(err) = self.writes.errors.recv() => self.write_failed(err),
                Some(req) = control.recv() => match req {
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
                        self.resync_links().await;
                        info!(bridge = %self.settings.bridge, "links and addresses read again");
                        let _ = done.send(());
                    }
                    ControlRequest::Static(r, reply) => {
                        let _ = reply.send(self.static_request(r));
                    }
                    ControlRequest::Flush(r, reply) => {
                        let _ = reply.send(self.flush_request(r));
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
            if self.reconnect.is_some_and(|(t, _)| t <= self.now()) {
                self.reconnect().await;
            }
            if self.activate_retry.is_some_and(|(t, _)| t <= self.now()) {
                self.try_activate().await;
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
        let own = self.source_filtering_finding();
        let ports = &self.ports;
        self.findings.update(now.as_millis(), || {
            snooper
                .findings(now, bridge)
                .iter()
                .chain(&snooper.port_findings(now, bridge, |p| ports::port_name(ports, p)))
                .map(FindingDoc::from)
                .chain(own)
                .collect()
        });
    }

    /// Clean exit: finish writes, hand the entries to the kernel as temporary ones (it
    /// ages them, and refreshes them from reports once the table is gone), remove the
    /// table, restore `mcast_router` and `mcast_flood`.
    async fn shutdown(mut self) {
        self.capture.stop();
        self.writes.barrier().await;
        if let Some(bridge) = self.bridge_ifindex() {
            let ops = self.snooper.mdb().rewrite_ops();
            let n = self.snooper.mdb().programmed().count();
            for op in ops {
                self.writes.queue(bridge, op, false);
            }
            self.writes.barrier().await;
            info!(bridge = %self.settings.bridge, entries = n, "entries handed to the kernel as temporary");
            let restore = async {
                self.restore_routers().await;
                self.restore_vlan_routers().await;
                self.restore_versions().await;
                self.restore_vlan_versions().await;
            };
            if tokio::time::timeout(RESTORE_TIMEOUT, restore)
                .await
                .is_err()
            {
                warn!(bridge = %self.settings.bridge, "restoring the settings took too long: igmpd cleanup finishes it");
            }
        }
        self.finish_state();
        if let Err(e) = self.nft.remove() {
            warn!(bridge = %self.settings.bridge, error = %e, "cannot remove the nftables table");
        }
        self.writes.close().await;
    }
}
