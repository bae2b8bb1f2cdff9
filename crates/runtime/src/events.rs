//! The event stream of `igmpd monitor`: what happens in a running daemon (joins, leaves,
//! expiries, static entries, querier role changes, router ports, findings), one
//! [`Event`] each, on a small bus ([`Events`]) that every client of the control socket's
//! `monitor` command subscribes to.
//!
//! - Emitting is cheap: [`Events::emit`] takes a closure that builds the event only when a
//!   client listens; with none it is one atomic load. An event is a flat record of
//!   addresses, `Arc<str>` names (a reference count, no copy) and static strings.
//! - The bus is a bounded broadcast queue ([`QUEUE`] events per client, made when the
//!   first client subscribes; an event is sent as one `Arc`): the daemon never
//!   waits for a client. A client that falls behind by a whole queue is dropped
//!   ([`Next::Dropped`]) while the others go on; so is one whose socket stays full
//!   (the control socket's write timeout).
//! - Encoding ([`Event::write_json`], [`Event::write_text`]) happens in each client's
//!   connection task (`src/control.rs`), never in a daemon's loop.
//!
//! The `event` names and the fields are a contract (README "Monitor"): `time` (RFC 3339 UTC
//! with milliseconds), `event`, `bridge` or `interface`, `port`, `vid`, `group`, `source`,
//! `host`, `family`, then the event's own: `querier` and `role` (querier events), `code`,
//! `severity` and `message` (findings), `reason` (leave, expiry). Fields that do not apply
//! are left out.
//!
//! Emit sites: the snooper's and the querier's shells forward their cores' membership,
//! querier and router-port outputs; [`crate::findings::FindingsLog`] emits findings. A
//! static entry added or deleted is one line where it happens; in the snooper's shell
//! (which has the bus as `self.monitor` and its bridge as `self.place`):
//! `self.monitor.emit(|| Event::static_entry(true, &self.place, self.port_name(port).into(), vid, group, source))`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

/// Events queued per client before it counts as too slow and is dropped.
pub const QUEUE: usize = 4096;

/// What happened (the `event` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A port or interface gained a group (or a source of it).
    Join,
    /// It lost one because a host left (after the last-member queries, or at once).
    Leave,
    /// Its group or source timer ran out.
    Expiry,
    /// A static entry was added.
    StaticAdd,
    /// A static entry was deleted.
    StaticDel,
    /// igmpd became the querier.
    QuerierElected,
    /// Another querier (`querier`) has a lower address: igmpd is no longer the querier.
    QuerierLost,
    /// A port became a multicast router port.
    RouterPortUp,
    /// A port is no longer a multicast router port.
    RouterPortDown,
    /// A finding appeared.
    FindingRaised,
    /// A finding went away.
    FindingCleared,
}

impl Kind {
    /// The `event` name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Join => "join",
            Kind::Leave => "leave",
            Kind::Expiry => "expiry",
            Kind::StaticAdd => "static-add",
            Kind::StaticDel => "static-del",
            Kind::QuerierElected => "querier-elected",
            Kind::QuerierLost => "querier-lost",
            Kind::RouterPortUp => "router-port-up",
            Kind::RouterPortDown => "router-port-down",
            Kind::FindingRaised => "finding-raised",
            Kind::FindingCleared => "finding-cleared",
        }
    }
}

/// Where it happened: a snooped bridge or a querier interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// `igmpd snoop` (and `igmpd run`'s bridges): the `bridge` field.
    Bridge(Arc<str>),
    /// `igmpd query` (and `igmpd run`'s interfaces): the `interface` field.
    Interface(Arc<str>),
}

/// Which kind of [`Place`] an emitter's names are (the findings log names only the
/// interface or bridge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Bridges.
    Bridge,
    /// Querier interfaces.
    Interface,
}

impl Scope {
    /// `name` as a place of this scope.
    pub fn place(self, name: &str) -> Place {
        match self {
            Scope::Bridge => Place::Bridge(name.into()),
            Scope::Interface => Place::Interface(name.into()),
        }
    }
}

/// One event. Build it with the constructors, then add what applies with the `with_*`
/// setters (each a plain field store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When (wall clock; shown in UTC).
    pub time: SystemTime,
    /// What.
    pub kind: Kind,
    /// Where.
    pub place: Place,
    /// The bridge port.
    pub port: Option<Arc<str>>,
    /// The VLAN (only shown when not 0).
    pub vid: u16,
    /// The group.
    pub group: Option<IpAddr>,
    /// The source (an (S,G) join or leave).
    pub source: Option<IpAddr>,
    /// The host that caused it (the reporter).
    pub host: Option<IpAddr>,
    /// `ipv4` or `ipv6`, when the event concerns one family.
    pub family: Option<Family>,
    /// Querier events: the querier's address.
    pub querier: Option<IpAddr>,
    /// Querier events: igmpd's role now (`querier`, `non-querier`).
    pub role: Option<&'static str>,
    /// Leave and expiry: why.
    pub reason: Option<&'static str>,
    /// Findings: their code, severity and message.
    pub finding: Option<Box<FindingInfo>>,
}

/// The finding of a `finding-raised` or `finding-cleared` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingInfo {
    /// Stable code.
    pub code: &'static str,
    /// `error`, `warning` or `info`.
    pub severity: &'static str,
    /// What was seen.
    pub message: String,
}

/// The address family of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IGMP.
    Ipv4,
    /// MLD.
    Ipv6,
}

impl Family {
    /// `ipv4` or `ipv6`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }

    /// The family of `a`.
    pub fn of(a: IpAddr) -> Family {
        match a {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }
}

impl Event {
    /// A bare event of `kind` at `place`, now.
    pub fn new(kind: Kind, place: Place) -> Event {
        Event {
            time: SystemTime::now(),
            kind,
            place,
            port: None,
            vid: 0,
            group: None,
            source: None,
            host: None,
            family: None,
            querier: None,
            role: None,
            reason: None,
            finding: None,
        }
    }

    /// A membership event (`join`, `leave`, `expiry`) of `group` (the family follows).
    pub fn membership(kind: Kind, place: Place, group: IpAddr) -> Event {
        let mut e = Event::new(kind, place);
        e.group = Some(group);
        e.family = Some(Family::of(group));
        e
    }

    /// `static-add` (added) or `static-del` of `group` (and `source`) on a bridge's port:
    /// the one line the static-groups feature calls where an entry is added or deleted.
    pub fn static_entry(
        added: bool,
        bridge: &Place,
        port: Arc<str>,
        vid: u16,
        group: IpAddr,
        source: Option<IpAddr>,
    ) -> Event {
        let kind = if added {
            Kind::StaticAdd
        } else {
            Kind::StaticDel
        };
        Event::membership(kind, bridge.clone(), group)
            .with_port(port)
            .with_vid(vid)
            .with_source(source)
    }

    /// `querier-elected` (igmpd is the querier now, from `address` when it has one) or
    /// `querier-lost` (`address` is the querier that won).
    pub fn querier(elected: bool, place: Place, family: Family, address: Option<IpAddr>) -> Event {
        let (kind, role) = if elected {
            (Kind::QuerierElected, "querier")
        } else {
            (Kind::QuerierLost, "non-querier")
        };
        let mut e = Event::new(kind, place);
        e.family = Some(family);
        e.querier = address;
        e.role = Some(role);
        e
    }

    /// `router-port-up` or `router-port-down` of a bridge's port (`vid` with per-VLAN
    /// snooping).
    pub fn router_port(up: bool, bridge: Arc<str>, port: Arc<str>, vid: u16) -> Event {
        let kind = if up {
            Kind::RouterPortUp
        } else {
            Kind::RouterPortDown
        };
        Event::new(kind, Place::Bridge(bridge))
            .with_port(port)
            .with_vid(vid)
    }

    /// `finding-raised` or `finding-cleared`.
    pub fn finding(raised: bool, place: Place, info: FindingInfo) -> Event {
        let kind = if raised {
            Kind::FindingRaised
        } else {
            Kind::FindingCleared
        };
        let mut e = Event::new(kind, place);
        e.finding = Some(Box::new(info));
        e
    }

    /// Sets `port`.
    pub fn with_port(mut self, port: Arc<str>) -> Event {
        self.port = Some(port);
        self
    }

    /// Sets `vid` (0: none).
    pub fn with_vid(mut self, vid: u16) -> Event {
        self.vid = vid;
        self
    }

    /// Sets `source`.
    pub fn with_source(mut self, source: Option<IpAddr>) -> Event {
        self.source = source;
        self
    }

    /// Sets `host`.
    pub fn with_host(mut self, host: Option<IpAddr>) -> Event {
        self.host = host;
        self
    }

    /// Sets `reason`.
    pub fn with_reason(mut self, reason: &'static str) -> Event {
        self.reason = Some(reason);
        self
    }

    /// One NDJSON line: the object and a newline, appended to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"time\":\"");
        write_time(self.time, out);
        out.extend_from_slice(b"\",\"event\":\"");
        out.extend_from_slice(self.kind.name().as_bytes());
        out.push(b'"');
        self.fields(|key, value| {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
            match value {
                Value::Num(n) => {
                    let _ = write!(out, "{n}");
                }
                Value::Str(s) => json_string(s, out),
                Value::Addr(a) => {
                    let _ = write!(out, "\"{a}\"");
                }
            }
        });
        out.extend_from_slice(b"}\n");
    }

    /// One line as people read it (like `ip monitor`): time, event, then `key value` pairs
    /// in the order of the JSON fields; a message is quoted.
    pub fn write_text(&self, out: &mut Vec<u8>) {
        write_time(self.time, out);
        out.push(b' ');
        out.extend_from_slice(self.kind.name().as_bytes());
        self.fields(|key, value| {
            out.push(b' ');
            out.extend_from_slice(key.as_bytes());
            out.push(b' ');
            match value {
                Value::Num(n) => {
                    let _ = write!(out, "{n}");
                }
                Value::Str(s) if key == "message" => json_string(s, out),
                Value::Str(s) => out.extend_from_slice(s.as_bytes()),
                Value::Addr(a) => {
                    let _ = write!(out, "{a}");
                }
            }
        });
        out.push(b'\n');
    }

    /// Every field after `time` and `event` that applies, in contract order.
    fn fields<'a>(&'a self, mut f: impl FnMut(&'static str, Value<'a>)) {
        match &self.place {
            Place::Bridge(b) => f("bridge", Value::Str(b)),
            Place::Interface(i) => f("interface", Value::Str(i)),
        }
        if let Some(p) = &self.port {
            f("port", Value::Str(p));
        }
        if self.vid != 0 {
            f("vid", Value::Num(u64::from(self.vid)));
        }
        for (key, a) in [
            ("group", self.group),
            ("source", self.source),
            ("host", self.host),
        ] {
            if let Some(a) = a {
                f(key, Value::Addr(a));
            }
        }
        if let Some(fam) = self.family {
            f("family", Value::Str(fam.name()));
        }
        if let Some(q) = self.querier {
            f("querier", Value::Addr(q));
        }
        if let Some(r) = self.role {
            f("role", Value::Str(r));
        }
        if let Some(i) = &self.finding {
            f("code", Value::Str(i.code));
            f("severity", Value::Str(i.severity));
            f("message", Value::Str(&i.message));
        }
        if let Some(r) = self.reason {
            f("reason", Value::Str(r));
        }
    }
}

enum Value<'a> {
    Num(u64),
    Str(&'a str),
    Addr(IpAddr),
}

/// `s` as a JSON string (quotes, backslashes and control characters escaped).
fn json_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut b = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// `t` as RFC 3339 in UTC with milliseconds (`2026-12-04T21:42:34.123Z`).
fn write_time(t: SystemTime, out: &mut Vec<u8>) {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let (secs, milli) = (ms / 1000, ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let mut s = String::with_capacity(24);
    let _ = write!(
        s,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    out.extend_from_slice(s.as_bytes());
}

/// The proleptic Gregorian date of day `z` since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The bus: cloned into every emitter (the daemons' shells, the findings log) and the
/// control socket, which subscribes a client per `monitor` connection. The queue exists
/// from the first subscriber on (a daemon nobody monitors keeps no queue); events travel
/// as `Arc`s, so a slot is a pointer and a client's copy a reference count.
#[derive(Debug, Clone)]
pub struct Events {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    tx: OnceLock<broadcast::Sender<Arc<Event>>>,
    queue: usize,
    /// Subscriptions alive (the broadcast's own count is behind a mutex).
    clients: AtomicUsize,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    /// A bus with [`QUEUE`] events per client.
    pub fn new() -> Events {
        Events::with_queue(QUEUE)
    }

    /// A bus with `queue` events per client (tests).
    pub fn with_queue(queue: usize) -> Events {
        Events {
            shared: Arc::new(Shared {
                tx: OnceLock::new(),
                queue: queue.max(1),
                clients: AtomicUsize::new(0),
            }),
        }
    }

    /// Whether any client listens.
    pub fn listening(&self) -> bool {
        self.shared.clients.load(Ordering::Relaxed) > 0
    }

    /// Sends the event `make` builds (an `Event`, or an `Option<Event>` for "maybe
    /// none") to every client; `make` is not called when none listens. Never waits: a
    /// client that is a whole queue behind loses its oldest events and is dropped when it
    /// next reads.
    pub fn emit<E: Into<Option<Event>>>(&self, make: impl FnOnce() -> E) {
        if !self.listening() {
            return;
        }
        if let Some(tx) = self.shared.tx.get() {
            if let Some(e) = make().into() {
                let _ = tx.send(Arc::new(e));
            }
        }
    }

    /// A new client: it sees every event emitted from now on.
    pub fn subscribe(&self) -> Subscription {
        let tx = self
            .shared
            .tx
            .get_or_init(|| broadcast::channel(self.shared.queue).0);
        self.shared.clients.fetch_add(1, Ordering::Relaxed);
        Subscription {
            rx: tx.subscribe(),
            shared: Arc::downgrade(&self.shared),
        }
    }
}

/// One client's view of the bus.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Event>>,
    /// Weak: a subscription does not keep the bus (and so the daemon's stream) open.
    shared: std::sync::Weak<Shared>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(s) = self.shared.upgrade() {
            s.clients.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// What [`Subscription::next`] found.
#[derive(Debug)]
pub enum Next {
    /// The next event.
    Event(Arc<Event>),
    /// The client fell a whole queue behind: this many events were lost; it is dropped.
    Dropped(u64),
    /// Every emitter is gone (the daemon ends).
    Closed,
}

impl Subscription {
    /// Waits for the next event.
    pub async fn next(&mut self) -> Next {
        match self.rx.recv().await {
            Ok(e) => Next::Event(e),
            Err(broadcast::error::RecvError::Lagged(n)) => Next::Dropped(n),
            Err(broadcast::error::RecvError::Closed) => Next::Closed,
        }
    }

    /// The next event if one is queued (None: none yet, or closed).
    pub fn try_next(&mut self) -> Option<Next> {
        match self.rx.try_recv() {
            Ok(e) => Some(Next::Event(e)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Next::Dropped(n)),
            Err(broadcast::error::TryRecvError::Closed) => Some(Next::Closed),
            Err(broadcast::error::TryRecvError::Empty) => None,
        }
    }
}

#[cfg(test)]
mod tests;
