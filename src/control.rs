//! The control socket: a UNIX stream socket where `igmpd status` asks a running daemon for
//! its state. One JSON request line, one JSON reply line (`{"command": "status",
//! "format": "pretty"}` gets the document indented over several lines, `"format": "text"`
//! the tables of `igmpd status`), then the daemon closes the connection.
//!
//! `{"command": "monitor", "format": "json"}` (or `"text"`) keeps the connection open
//! and streams the daemon's events ([`igmpd_runtime::events`]), one line each, until the
//! daemon ends or the client goes; a client that does not keep up is dropped (an
//! `{"error": ...}` line when it still fits, and a log line). Monitors do not count
//! against the status connections: they have their own [`MAX_MONITORS`].
//!
//! Every local user may connect and read `status` and `monitor`; commands that change
//! state (`reload`, `static`, `flush`) are refused unless the peer (SO_PEERCRED) is root,
//! the daemon's own user, or in the configured admin group. `{"command": "static",
//! "action": "add"|"del", "bridge", "port", "group", "source"?, "vlan"?}` and
//! `{"command": "flush", "bridge", "port"?, "group"?}` are answered `{"ok": true,
//! "message": ...}` or `{"error": ...}`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use std::net::IpAddr;

use igmpd_runtime::control::{ControlRequest, FlushRequest, StaticRequest};
use igmpd_runtime::events::{Events, Next, Subscription};
use igmpd_runtime::status::StatusDoc;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

mod client;
pub use client::{request, request_raw};

/// Connections served at once.
const MAX_CONNECTIONS: usize = 8;
/// `monitor` clients at once (beside the connections above: a monitor gives its
/// connection slot back once it streams, so monitors never starve status).
pub const MAX_MONITORS: usize = 16;
/// Encoded events written to a monitor client in one write at most.
const MONITOR_BATCH: usize = 64 * 1024;
/// How long a client may take to send its request line.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one write of a reply may block on a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default path of the control socket.
pub const DEFAULT_PATH: &str = "/run/igmpd/igmpd.sock";

/// A bound control socket; the file is removed on drop.
#[derive(Debug)]
pub struct ControlSocket {
    listener: tokio::net::UnixListener,
    path: PathBuf,
    /// The bus `monitor` clients subscribe to.
    events: Events,
}

impl ControlSocket {
    /// Binds `path`, creating its directory. A socket another igmpd still answers on is an
    /// error; a stale one (its daemon died) is replaced.
    pub fn bind(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!(
                    "control socket {} is busy: another igmpd is running (stop it, or give this one its own --control-socket)",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove stale {}", path.display()))?;
        }
        let listener = tokio::net::UnixListener::bind(path)
            .with_context(|| format!("cannot bind control socket {}", path.display()))?;
        // Status is read-only and harmless to show to every local user.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        Ok(ControlSocket {
            listener,
            path: path.to_owned(),
            events: Events::new(),
        })
    }

    /// Streams `events` to `monitor` clients (the bus the daemons emit on).
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// Accepts connections forever, forwarding each request to one daemon (`igmpd query`,
    /// `igmpd snoop`: no config file, so nothing to reload).
    pub async fn serve(self, requests: mpsc::Sender<ControlRequest>) {
        let (tx, mut rx) = mpsc::channel::<Request>(16);
        let forward = async move {
            while let Some(req) = rx.recv().await {
                match req {
                    Request::Status(reply) => {
                        if requests.send(ControlRequest::Status(reply)).await.is_err() {
                            return;
                        }
                    }
                    Request::Reload(reply) => {
                        let _ = reply.send(Err("this igmpd runs without a config file (igmpd query/snoop): restart it to change settings, or use igmpd run".into()));
                    }
                    Request::Daemon(r) => {
                        if requests.send(r).await.is_err() {
                            return;
                        }
                    }
                }
            }
        };
        tokio::join!(forward, self.serve_requests(tx, Admins::default()));
    }

    /// Accepts connections forever, forwarding each request (after the permission check)
    /// to `requests`.
    pub async fn serve_requests(self, requests: mpsc::Sender<Request>, admins: Admins) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let monitors = Arc::new(Semaphore::new(MAX_MONITORS));
        loop {
            // At most MAX_CONNECTIONS are served at once; further clients wait in the
            // socket's listen backlog (their connect blocks when it is full), so nothing a
            // local user does grows the daemon.
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    let requests = requests.clone();
                    let admins = admins.clone();
                    let ctx = Monitors {
                        events: self.events.clone(),
                        slots: Arc::clone(&monitors),
                        connection: slot,
                    };
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, requests, &admins, ctx).await {
                            debug!(error = %e, "control connection failed");
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A request from the control socket, already allowed.
#[derive(Debug)]
pub enum Request {
    /// The status document; dropping the sender answers "a daemon did not answer".
    Status(oneshot::Sender<StatusDoc>),
    /// Re-read the config file; Err is the reason it was rejected.
    Reload(oneshot::Sender<Result<(), String>>),
    /// A request for the daemon of the bridge it names (`static`, `flush`).
    Daemon(ControlRequest),
}

impl Request {
    /// The bridge a [`Request::Daemon`] is for.
    pub fn bridge(r: &ControlRequest) -> Option<&str> {
        match r {
            ControlRequest::Static(s, _) => Some(&s.bridge),
            ControlRequest::Flush(f, _) => Some(&f.bridge),
            _ => None,
        }
    }
}

/// A request that changes a bridge's state, from its JSON (`static`, `flush`), with the
/// channel its answer comes back on; Err: what is wrong with it.
fn bridge_request(
    req: &Value,
) -> Result<(ControlRequest, oneshot::Receiver<Result<String, String>>), String> {
    let text = |k: &str| req[k].as_str().map(str::to_owned);
    let addr = |k: &str| -> Result<Option<IpAddr>, String> {
        match &req[k] {
            Value::Null => Ok(None),
            Value::String(s) => s
                .parse()
                .map(Some)
                .map_err(|_| format!("{k} {s:?} is not an IP address")),
            v => Err(format!("{k} must be a string, not {v}")),
        }
    };
    let bridge = text("bridge").ok_or("the request names no bridge")?;
    let (tx, rx) = oneshot::channel();
    let r = if req["command"] == "static" {
        let add = match req["action"].as_str() {
            Some("add") => true,
            Some("del") => false,
            _ => return Err("action must be \"add\" or \"del\"".into()),
        };
        let vid = match &req["vlan"] {
            Value::Null => 0,
            v => v
                .as_u64()
                .filter(|v| (1..=4094).contains(v))
                .ok_or("vlan must be 1..=4094")? as u16,
        };
        ControlRequest::Static(
            StaticRequest {
                add,
                bridge,
                port: text("port").ok_or("the request names no port")?,
                group: addr("group")?.ok_or("the request names no group")?,
                source: addr("source")?,
                vid,
            },
            tx,
        )
    } else {
        ControlRequest::Flush(
            FlushRequest {
                bridge,
                port: text("port"),
                group: addr("group")?,
            },
            tx,
        )
    };
    Ok((r, rx))
}

/// Who may change state besides root and the daemon's own user.
#[derive(Debug, Clone, Default)]
pub struct Admins {
    /// Members of this group (primary or supplementary) may.
    pub gid: Option<u32>,
}

impl Admins {
    /// Whether the peer may change state.
    fn allows(&self, cred: &tokio::net::unix::UCred) -> bool {
        use std::os::unix::fs::MetadataExt;
        let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
        if cred.uid() == 0 || Some(cred.uid()) == me {
            return true;
        }
        let Some(gid) = self.gid else {
            return false;
        };
        if cred.gid() == gid {
            return true;
        }
        // Supplementary groups are not in SO_PEERCRED: read them from the peer's /proc.
        cred.pid()
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .is_some_and(|st| {
                st.lines()
                    .find_map(|l| l.strip_prefix("Groups:"))
                    .is_some_and(|g| g.split_whitespace().any(|x| x.parse() == Ok(gid)))
            })
    }
}

/// Resolves a group name (or number) from /etc/group.
pub fn resolve_group(name: &str) -> Result<u32> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    let groups = std::fs::read_to_string("/etc/group").context("cannot read /etc/group")?;
    groups
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(name))
                .then(|| f.nth(1).and_then(|g| g.parse().ok()))
                .flatten()
        })
        .with_context(|| format!("no group named {name:?} in /etc/group"))
}

/// What a connection needs to become a monitor.
struct Monitors {
    events: Events,
    slots: Arc<Semaphore>,
    /// The connection's slot among [`MAX_CONNECTIONS`], held until it is answered.
    connection: OwnedSemaphorePermit,
}

async fn handle(
    mut stream: tokio::net::UnixStream,
    requests: mpsc::Sender<Request>,
    admins: &Admins,
    monitors: Monitors,
) -> Result<()> {
    let cred = stream.peer_cred()?;
    let mut line = String::new();
    {
        let mut reader = tokio::io::BufReader::new(&mut stream).take(64 * 1024);
        tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line)).await??;
    }
    let answer = match serde_json::from_str::<Value>(&line) {
        Ok(req) if req["command"] == "status" => {
            let (tx, rx) = oneshot::channel();
            requests.send(Request::Status(tx)).await?;
            match rx.await {
                // The daemon's loop only built the typed document. It is encoded (no
                // Value tree in between) and written on a blocking-pool thread, straight
                // into the socket as it is made, so that the loop goes on with packets
                // and the client reads while the rest is encoded. Indented or rendered
                // as tables here when asked: the client only copies the bytes out.
                Ok(doc) => {
                    let format = Format::of(&req["format"]);
                    let sock = stream.into_std()?;
                    sock.set_nonblocking(false)?;
                    sock.set_write_timeout(Some(WRITE_TIMEOUT))?;
                    return tokio::task::spawn_blocking(move || send(doc, format, sock))
                        .await
                        .context("status encoder")?;
                }
                Err(_) => json!({"error": "a daemon did not answer"}),
            }
        }
        Ok(req) if req["command"] == "monitor" => {
            let Monitors {
                events,
                slots,
                connection,
            } = monitors;
            match slots.try_acquire_owned() {
                Ok(monitor_slot) => {
                    drop(connection);
                    let json = req["format"] != "text";
                    let sub = events.subscribe();
                    // The connection holds the subscription only: when the daemon's
                    // emitters are gone, the stream ends.
                    drop(events);
                    info!(
                        uid = cred.uid(),
                        pid = cred.pid(),
                        "monitor client connected"
                    );
                    let end = stream_events(stream, sub, json).await;
                    drop(monitor_slot);
                    return end;
                }
                Err(_) => {
                    json!({"error": format!("too many monitor clients (at most {MAX_MONITORS})")})
                }
            }
        }
        Ok(req) if req["command"] == "reload" => {
            if admins.allows(&cred) {
                let (tx, rx) = oneshot::channel();
                requests.send(Request::Reload(tx)).await?;
                match rx.await? {
                    Ok(()) => json!({"ok": true}),
                    Err(e) => json!({"error": e}),
                }
            } else {
                warn!(
                    uid = cred.uid(),
                    gid = cred.gid(),
                    "control: reload refused"
                );
                json!({"error": "permission denied: reload needs root or the control group (control_group in the config)"})
            }
        }
        Ok(req) if req["command"] == "static" || req["command"] == "flush" => {
            if !admins.allows(&cred) {
                warn!(uid = cred.uid(), gid = cred.gid(), command = %req["command"], "control: refused");
                json!({"error": format!("permission denied: {} needs root or the control group (control_group in the config)", req["command"].as_str().unwrap_or_default())})
            } else {
                match bridge_request(&req) {
                    Ok((r, rx)) => {
                        requests.send(Request::Daemon(r)).await?;
                        match rx.await {
                            Ok(Ok(msg)) => json!({"ok": true, "message": msg}),
                            Ok(Err(e)) => json!({"error": e}),
                            Err(_) => json!({"error": "a daemon did not answer"}),
                        }
                    }
                    Err(e) => json!({"error": format!("bad request: {e}")}),
                }
            }
        }
        Ok(req) => json!({"error": format!("unknown command {}", req["command"])}),
        Err(e) => json!({"error": format!("bad request: {e}")}),
    };
    reply(&mut stream, &answer).await
}

/// Streams events to a `monitor` client until the daemon ends (the bus closes), the client
/// goes (its end reads EOF, or a write fails: EPIPE), or it falls behind: a whole queue
/// (the bus says Dropped) or a write blocked for [`WRITE_TIMEOUT`] on a full socket. The
/// events are encoded here, in the connection's task, never in a daemon's loop; what is
/// queued goes out in one write.
async fn stream_events(
    stream: tokio::net::UnixStream,
    mut sub: Subscription,
    json: bool,
) -> Result<()> {
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = Vec::with_capacity(4096);
    let mut scratch = [0u8; 256];
    let encode = |e: &igmpd_runtime::events::Event, buf: &mut Vec<u8>| {
        if json {
            e.write_json(buf)
        } else {
            e.write_text(buf)
        }
    };
    loop {
        let first = tokio::select! {
            n = sub.next() => n,
            r = rd.read(&mut scratch) => match r {
                // The client closed its end (or sent something: ignored).
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => continue,
            },
        };
        let mut lost = None;
        match first {
            Next::Event(e) => encode(&e, &mut buf),
            Next::Dropped(n) => lost = Some(n),
            Next::Closed => return Ok(()),
        }
        while lost.is_none() && buf.len() < MONITOR_BATCH {
            match sub.try_next() {
                Some(Next::Event(e)) => encode(&e, &mut buf),
                Some(Next::Dropped(n)) => lost = Some(n),
                Some(Next::Closed) | None => break,
            }
        }
        if !buf.is_empty() {
            match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(&buf)).await {
                Ok(Ok(())) => {}
                // EPIPE, ECONNRESET: the client quit.
                Ok(Err(_)) => return Ok(()),
                Err(_) => {
                    warn!(
                        "monitor client dropped: it read nothing for {} s",
                        WRITE_TIMEOUT.as_secs()
                    );
                    return Ok(());
                }
            }
            buf.clear();
        }
        if let Some(n) = lost {
            warn!(
                lost = n,
                "monitor client dropped: it fell behind the events"
            );
            let line = format!(
                "{{\"error\":\"dropped: this monitor fell {n} events behind (read faster)\"}}\n"
            );
            let _ =
                tokio::time::timeout(Duration::from_secs(1), wr.write_all(line.as_bytes())).await;
            return Ok(());
        }
    }
}

/// How a status reply is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// One JSON line (`igmpd status --json`, scripts, the tests).
    Compact,
    /// JSON indented over several lines (`igmpd status --json --pretty`).
    Pretty,
    /// The tables of `igmpd status`.
    Text,
}

impl Format {
    /// The request's `format`: `pretty`, `text`, anything else one JSON line.
    fn of(v: &Value) -> Format {
        match v.as_str() {
            Some("pretty") => Format::Pretty,
            Some("text") => Format::Text,
            _ => Format::Compact,
        }
    }
}

/// Writes the status document to `sock` as `format` says, and a final newline.
fn send(mut doc: StatusDoc, format: Format, sock: std::os::unix::net::UnixStream) -> Result<()> {
    let mut sock = &sock;
    match format {
        Format::Compact => doc.write_json(&mut sock, false)?,
        Format::Pretty => doc.write_json(&mut sock, true)?,
        Format::Text => {
            doc.sort();
            crate::status::write(&doc, &mut sock)?;
        }
    }
    sock.write_all(b"\n")?;
    Ok(())
}

/// Writes `doc` as one JSON line and a newline.
async fn reply(write: &mut tokio::net::UnixStream, doc: &Value) -> Result<()> {
    let mut out = serde_json::to_vec(doc)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use igmpd_runtime::events::{Event, Kind, Place};
    use tokio::io::AsyncBufReadExt;

    use super::*;

    fn join(i: u16) -> Event {
        Event::membership(
            Kind::Join,
            Place::Bridge("br0".into()),
            "239.1.1.1".parse().unwrap(),
        )
        .with_vid(i)
    }

    #[tokio::test]
    async fn a_monitor_gets_its_lines_and_ends_when_its_client_goes() {
        let bus = Events::new();
        let (server, client) = tokio::net::UnixStream::pair().unwrap();
        let task = tokio::spawn(stream_events(server, bus.subscribe(), true));
        for i in 1..=3 {
            bus.emit(|| join(i));
        }
        let mut lines = tokio::io::BufReader::new(client).lines();
        for i in 1..=3 {
            let l = lines.next_line().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(&l).unwrap();
            assert_eq!(
                (v["event"].as_str(), v["vid"].as_u64()),
                (Some("join"), Some(i))
            );
        }
        drop(lines);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the task ends with its client")
            .unwrap()
            .unwrap();
        assert!(!bus.listening());
    }

    #[tokio::test]
    async fn a_monitor_a_whole_queue_behind_is_told_and_dropped() {
        let bus = Events::with_queue(8);
        let (server, client) = tokio::net::UnixStream::pair().unwrap();
        let sub = bus.subscribe();
        // 100 events before the connection's task runs at all.
        for i in 0..100 {
            bus.emit(|| join(i));
        }
        let task = tokio::spawn(stream_events(server, sub, false));
        let mut lines = tokio::io::BufReader::new(client).lines();
        let l = lines.next_line().await.unwrap().unwrap();
        assert!(
            l.starts_with("{\"error\":\"dropped: this monitor fell 92 events behind"),
            "{l}"
        );
        assert_eq!(lines.next_line().await.unwrap(), None, "then it is closed");
        task.await.unwrap().unwrap();
    }
}
