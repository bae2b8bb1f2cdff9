//! The per-interface socket readers: tasks that wake only when their socket is readable
//! and hand each frame to the daemon's loop.

use std::sync::Arc;

use igmpd_packet::{PacketSocket, PACKET_OUTGOING};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tracing::warn;

/// One frame from a reader task.
pub(super) struct RxFrame {
    pub(super) ifindex: u32,
    pub(super) data: Vec<u8>,
    /// The 802.1Q VID the kernel took off the frame (PACKET_AUXDATA).
    pub(super) vlan: Option<u16>,
}

/// Reads frames from one socket and hands them to the main loop; skips our own.
pub(super) async fn read_frames(sock: Arc<AsyncFd<PacketSocket>>, tx: mpsc::Sender<RxFrame>) {
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
                        vlan: info.vlan,
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
