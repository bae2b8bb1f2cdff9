//! The control socket: a UNIX stream socket where `igmpd status` asks a running daemon for
//! its state. One JSON request line, one JSON reply line.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use igmpd_querier::io::daemon::ControlRequest;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

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

    /// Accepts connections forever, forwarding each request to the daemon.
    pub async fn serve(self, requests: mpsc::Sender<ControlRequest>) {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    let requests = requests.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, requests).await {
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

async fn handle(
    stream: tokio::net::UnixStream,
    requests: mpsc::Sender<ControlRequest>,
) -> Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(read).take(64 * 1024);
    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line)).await??;
    let reply = match serde_json::from_str::<Value>(&line) {
        Ok(req) if req["command"] == "status" => {
            let (tx, rx) = oneshot::channel();
            requests.send(ControlRequest::Status(tx)).await?;
            rx.await?
        }
        Ok(req) => json!({"error": format!("unknown command {}", req["command"])}),
        Err(e) => json!({"error": format!("bad request: {e}")}),
    };
    let mut out = serde_json::to_vec(&reply)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    Ok(())
}

/// Sends one request to the daemon at `path` and returns its reply.
pub fn request(path: &Path, req: &Value) -> Result<Value> {
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
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .context("no reply from igmpd")?;
    let v: Value = serde_json::from_str(&reply).context("igmpd sent a reply that is not JSON")?;
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        bail!("igmpd: {e}");
    }
    Ok(v)
}
