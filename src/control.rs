//! The control socket: a UNIX stream socket where `igmpd status` asks a running daemon for
//! its state. One JSON request line, one JSON reply line (`{"command": "status",
//! "format": "pretty"}` gets the document indented over several lines, `"format": "text"`
//! the tables of `igmpd status`), then the daemon closes the connection.
//!
//! Every local user may connect and read `status`; commands that change state (`reload`,
//! `static`, `flush`) are refused unless the peer (SO_PEERCRED) is root, the daemon's own
//! user, or in the configured admin group. `{"command": "static", "action": "add"|"del",
//! "bridge", "port", "group", "source"?, "vlan"?}` and `{"command": "flush", "bridge",
//! "port"?, "group"?}` are answered `{"ok": true, "message": ...}` or `{"error": ...}`.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use std::net::IpAddr;

use igmpd_runtime::control::{ControlRequest, FlushRequest, StaticRequest};
use igmpd_runtime::status::StatusDoc;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::{debug, warn};

/// Connections served at once.
const MAX_CONNECTIONS: usize = 8;
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
        })
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
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, requests, &admins).await {
                            debug!(error = %e, "control connection failed");
                        }
                        drop(slot);
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

async fn handle(
    mut stream: tokio::net::UnixStream,
    requests: mpsc::Sender<Request>,
    admins: &Admins,
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

/// Sends one request to the daemon at `path` and returns its reply.
pub fn request(path: &Path, req: &Value) -> Result<Value> {
    let raw = request_raw(path, req)?;
    serde_json::from_slice(&raw).context("igmpd sent a reply that is not JSON")
}

/// Sends one request and returns the reply as the daemon wrote it (without the final
/// newline), or the daemon's error. For callers that only pass the document on.
pub fn request_raw(path: &Path, req: &Value) -> Result<Vec<u8>> {
    let mut stream = std::os::unix::net::UnixStream::connect(path).with_context(|| {
        format!(
            "cannot reach igmpd at {} (is it running? see --control-socket)",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    // One reply line, then the daemon closes: read it whole, in large reads (a status of
    // a few hundred interfaces is a few hundred KiB).
    let mut reply = Vec::with_capacity(64 * 1024);
    stream
        .read_to_end(&mut reply)
        .context("no reply from igmpd")?;
    while reply.last() == Some(&b'\n') {
        reply.pop();
    }
    if reply.is_empty() {
        bail!("no reply from igmpd");
    }
    // Errors are small objects with one key; everything else is passed on unparsed.
    if reply.starts_with(b"{\"error\"") {
        let v: Value =
            serde_json::from_slice(&reply).context("igmpd sent a reply that is not JSON")?;
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            bail!("igmpd: {e}");
        }
    }
    Ok(reply)
}
