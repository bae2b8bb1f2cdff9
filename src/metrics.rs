//! The metrics endpoint (`--metrics-listen ADDR`, `metrics_listen`): `GET /metrics` over
//! HTTP/1.1 in the Prometheus text exposition format 0.0.4. A small server of its own
//! (the binary is size-first and needs no more of HTTP than this): one request per
//! connection, answered and closed.
//!
//! Bounded like the control socket: at most [`MAX_CONNECTIONS`] at once (more wait in
//! the listen backlog), a request head of at most [`MAX_REQUEST`] bytes read within
//! [`READ_TIMEOUT`], replies written within [`WRITE_TIMEOUT`]. `GET` and `HEAD` of
//! `/metrics` (a query string is ignored) get the document; other paths 404, other
//! methods 405, anything unreadable 400. The daemon's loop only fills a
//! [`MetricsDoc`] of counters (no group lists); it is encoded on a blocking-pool thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use igmpd_runtime::control::ControlRequest;
use igmpd_runtime::metrics::{MetricsDoc, CONTENT_TYPE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::{debug, warn};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 4;
/// The longest request head (request line and headers) read.
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long writing a reply may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the daemons may take to fill the document.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A request for the metrics document; dropping the sender answers 503.
pub type Ask = oneshot::Sender<MetricsDoc>;

/// A bound metrics listener.
#[derive(Debug)]
pub struct MetricsServer {
    /// Bound before the runtime runs (a failure stops igmpd at start); handed to tokio
    /// when served.
    listener: std::net::TcpListener,
}

impl MetricsServer {
    /// Listens on `addr` (an error names the address: igmpd does not start without it).
    pub fn bind(addr: SocketAddr) -> Result<Self> {
        let std = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen for metrics on {addr} (metrics_listen)"))?;
        std.set_nonblocking(true)?;
        Ok(MetricsServer { listener: std })
    }

    /// Serves one daemon (`igmpd query`, `igmpd snoop`): each scrape is a
    /// [`ControlRequest::Metrics`] to its loop.
    pub async fn serve_daemon(self, daemon: mpsc::Sender<ControlRequest>) {
        let (tx, mut rx) = mpsc::channel::<Ask>(MAX_CONNECTIONS);
        let forward = async move {
            while let Some(ask) = rx.recv().await {
                if daemon.send(ControlRequest::Metrics(ask)).await.is_err() {
                    return;
                }
            }
        };
        tokio::join!(forward, self.serve(tx));
    }

    /// Accepts connections forever, asking `source` for the document of each scrape.
    pub async fn serve(self, source: mpsc::Sender<Ask>) {
        let listener = match TcpListener::from_std(self.listener) {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "cannot serve metrics");
                return;
            }
        };
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            // As on the control socket: further clients wait in the listen backlog.
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let source = source.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, source).await {
                            debug!(%peer, error = %e, "metrics connection failed");
                        }
                        drop(slot);
                    });
                }
                Err(e) => {
                    warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// `GET /metrics`: the document.
    Metrics,
    /// `HEAD /metrics`: its headers only.
    Head,
}

/// Why a request gets no document: its status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unreadable.
    BadRequest,
    /// Another path.
    NotFound,
    /// Another method.
    MethodNotAllowed,
    /// Not HTTP/1.x.
    VersionNotSupported,
    /// Head too long.
    TooLarge,
}

impl Refusal {
    fn status(self) -> &'static str {
        match self {
            Refusal::BadRequest => "400 Bad Request",
            Refusal::NotFound => "404 Not Found",
            Refusal::MethodNotAllowed => "405 Method Not Allowed",
            Refusal::VersionNotSupported => "505 HTTP Version Not Supported",
            Refusal::TooLarge => "431 Request Header Fields Too Large",
        }
    }
}

/// Where the request head ends in `buf` (after its empty line), if it has yet.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reads a request head (RFC 9112 §3: `method SP target SP version`, then header lines,
/// which are not needed and only checked to be text). Total: any bytes give an answer.
pub fn parse(head: &[u8]) -> Result<Asked, Refusal> {
    let text = std::str::from_utf8(head).map_err(|_| Refusal::BadRequest)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let line = lines.next().ok_or(Refusal::BadRequest)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::BadRequest);
    };
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    if !token(method) || !token(target) || !token(version) {
        return Err(Refusal::BadRequest);
    }
    let Some(minor) = version.strip_prefix("HTTP/") else {
        return Err(Refusal::BadRequest);
    };
    if !matches!(minor, "1.0" | "1.1") {
        return Err(Refusal::VersionNotSupported);
    }
    // Header lines: `name: value`, until the empty line.
    for l in lines {
        if l.is_empty() {
            break;
        }
        match l.split_once(':') {
            Some((name, _)) if token(name) => {}
            _ => return Err(Refusal::BadRequest),
        }
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let asked = match method {
        "GET" => Asked::Metrics,
        "HEAD" => Asked::Head,
        _ if path == "/metrics" => return Err(Refusal::MethodNotAllowed),
        _ => return Err(Refusal::NotFound),
    };
    if path != "/metrics" {
        return Err(Refusal::NotFound);
    }
    Ok(asked)
}

/// Reads the request head: at most [`MAX_REQUEST`] bytes.
async fn read_head(stream: &mut TcpStream) -> Result<Result<Asked, Refusal>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            // Closed before the empty line: what came is all there is.
            return Ok(Err(Refusal::BadRequest));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&buf) {
            return Ok(if end > MAX_REQUEST {
                Err(Refusal::TooLarge)
            } else {
                parse(&buf[..end])
            });
        }
        if buf.len() > MAX_REQUEST {
            return Ok(Err(Refusal::TooLarge));
        }
    }
}

async fn handle(mut stream: TcpStream, source: mpsc::Sender<Ask>) -> Result<()> {
    let asked = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
        .await
        .context("request not read in time")??;
    let reply = match asked {
        Ok(asked) => {
            let (tx, rx) = oneshot::channel();
            source.send(tx).await.context("the daemon is gone")?;
            match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
                Ok(Ok(mut doc)) => {
                    // Encoded off the loop: the loop only filled the counters.
                    let body = tokio::task::spawn_blocking(move || {
                        let mut out = Vec::with_capacity(16 * 1024);
                        doc.write_text(&mut out).map(|()| out)
                    })
                    .await
                    .context("metrics encoder")??;
                    let mut r = head("200 OK", CONTENT_TYPE, body.len(), "");
                    if asked == Asked::Metrics {
                        r.extend_from_slice(&body);
                    }
                    r
                }
                _ => refusal("503 Service Unavailable", "a daemon did not answer\n", ""),
            }
        }
        Err(Refusal::MethodNotAllowed) => refusal(
            Refusal::MethodNotAllowed.status(),
            "only GET and HEAD\n",
            "Allow: GET, HEAD\r\n",
        ),
        Err(Refusal::NotFound) => refusal(
            Refusal::NotFound.status(),
            "not found: the metrics are at /metrics\n",
            "",
        ),
        Err(r) => refusal(r.status(), "bad request\n", ""),
    };
    tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&reply).await?;
        stream.shutdown().await
    })
    .await
    .context("reply not written in time")??;
    Ok(())
}

/// A status line and the headers.
fn head(status: &str, content_type: &str, len: usize, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n{extra}Connection: close\r\n\r\n"
    )
    .into_bytes()
}

/// A short plain-text reply.
fn refusal(status: &str, body: &str, extra: &str) -> Vec<u8> {
    let mut r = head(status, "text/plain; charset=utf-8", body.len(), extra);
    r.extend_from_slice(body.as_bytes());
    r
}

#[cfg(test)]
mod tests;
