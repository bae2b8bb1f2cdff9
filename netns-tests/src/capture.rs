//! Bounded packet captures: tcpdump in a namespace writing a pcap file, read back here and
//! decoded with `igmpd_wire`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::netns::{Netns, NsChild};
use crate::poll::{poll_until, poll_until_ok};

static CAPTURE_COUNTER: AtomicU32 = AtomicU32::new(0);

/// How long [`Capture::start`] waits for tcpdump to report that it is listening.
pub const CAPTURE_START_TIMEOUT: Duration = Duration::from_secs(10);

/// A capture filter for every IGMP and MLD packet. libpcap's `icmp6` does not look past
/// IPv6 extension headers, and MLD travels after a Hop-by-Hop header, hence the second
/// clause (IPv6 packets whose first next header is Hop-by-Hop).
pub const IGMP_MLD_FILTER: &str = "igmp or icmp6 or (ip6 and ip6[6] == 0)";

/// LINKTYPE_ETHERNET.
const LINKTYPE_ETHERNET: u32 = 1;

/// A running `tcpdump -i IF -w FILE -U --immediate-mode -n FILTER` in a namespace.
///
/// [`Capture::start`] returns once tcpdump is listening. Packets are written to the file
/// as they arrive, so [`Capture::packets`] can be polled while the capture runs.
/// [`Capture::stop`] (or drop) ends it by PID; drop also deletes the file.
#[derive(Debug)]
pub struct Capture {
    child: NsChild,
    path: PathBuf,
    stderr: Arc<Mutex<String>>,
    label: String,
}

impl Capture {
    /// Captures on `ifname` in `ns`, with tcpdump capture filter `filter` (e.g.
    /// [`IGMP_MLD_FILTER`]; empty for everything).
    pub fn start(ns: &Netns, ifname: &str, filter: &str) -> Result<Capture> {
        let n = CAPTURE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("igt-{}-{n}.pcap", std::process::id()));
        let path_s = path
            .to_str()
            .context("temp dir path is not UTF-8")?
            .to_owned();
        let mut argv = vec![
            "tcpdump",
            "-i",
            ifname,
            "-w",
            &path_s,
            "-U",
            "--immediate-mode",
            "-n",
            // Stay root: no privilege drop (which would also clear the parent-death signal).
            "-Z",
            "root",
        ];
        if !filter.is_empty() {
            argv.push(filter);
        }
        let mut child = ns.spawn(&argv)?;
        let label = format!("tcpdump[{}] on {ifname} in {}", child.pid(), ns.name());
        let mut pipe = child.take_stderr().context("tcpdump stderr")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let cap = Capture {
            child,
            path,
            stderr,
            label,
        };
        poll_until_ok(CAPTURE_START_TIMEOUT, Duration::from_millis(10), || {
            if cap.stderr_text().contains("listening on") {
                return Ok(Some(()));
            }
            if let Some(status) = cap.child.try_wait()? {
                bail!("tcpdump exited ({status}): {}", cap.stderr_text().trim());
            }
            Ok(None)
        })
        .with_context(|| format!("{} did not start listening", cap.label))?;
        Ok(cap)
    }

    /// The pcap file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// tcpdump's PID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// What tcpdump printed on stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The packets captured so far (a partly written last record is left out).
    pub fn packets(&self) -> Result<Vec<Packet>> {
        match std::fs::read(&self.path) {
            Ok(bytes) if bytes.len() < 24 => Ok(Vec::new()),
            Ok(bytes) => parse_pcap(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e).with_context(|| format!("read {}", self.path.display())),
        }
    }

    /// Polls the capture until a packet satisfies `pred`; returns that packet.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&Packet) -> bool,
    ) -> Result<Packet> {
        poll_until(timeout, Duration::from_millis(20), || {
            self.packets().ok()?.into_iter().find(|p| pred(p))
        })
        .with_context(|| format!("{}: no matching packet", self.label))
    }

    /// Stops tcpdump (SIGTERM, then SIGKILL after 5 s) and returns every packet captured.
    pub fn stop(self) -> Result<Vec<Packet>> {
        self.child.signal(libc::SIGTERM)?;
        if self.child.wait_timeout(Duration::from_secs(5))?.is_none() {
            self.child.kill()?;
        }
        self.packets()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Capture time since the Unix epoch.
    pub timestamp: Duration,
    /// The Ethernet frame as captured.
    pub data: Vec<u8>,
}

impl Packet {
    /// Capture time as a [`SystemTime`].
    pub fn time(&self) -> SystemTime {
        UNIX_EPOCH + self.timestamp
    }

    /// Decodes the frame with igmpd's own codec.
    pub fn decode(&self) -> Result<igmpd_wire::frame::Frame, igmpd_wire::DecodeError> {
        igmpd_wire::frame::parse_ethernet(&self.data)
    }

    /// The EtherType after the MAC addresses (and any 802.1Q tags).
    pub fn ethertype(&self) -> Option<u16> {
        let mut off = 12;
        loop {
            let t = u16::from_be_bytes(self.data.get(off..off + 2)?.try_into().ok()?);
            if t == 0x8100 || t == 0x88a8 {
                off += 4;
            } else {
                return Some(t);
            }
        }
    }

    /// For an untagged IPv4 frame, the IP protocol and the transport payload (after the
    /// IPv4 header with its options); enough to pick IGMP packets without a full decoder.
    pub fn ipv4_payload(&self) -> Option<(u8, &[u8])> {
        if self.data.get(12..14)? != [0x08, 0x00] {
            return None;
        }
        let ip = self.data.get(14..)?;
        let ihl = usize::from(ip.first()? & 0x0f) * 4;
        Some((*ip.get(9)?, ip.get(ihl..)?))
    }

    /// The IGMP message type (0x11 query, 0x16 v2 report, 0x17 leave, 0x22 v3 report).
    pub fn igmp_type(&self) -> Option<u8> {
        match self.ipv4_payload()? {
            (2, payload) => payload.first().copied(),
            _ => None,
        }
    }

    /// For an untagged IPv6 frame: the ICMPv6 type, when the packet is ICMPv6 directly or
    /// after one Hop-by-Hop header (130 query, 131 MLDv1 report, 132 done, 143 MLDv2 report).
    pub fn icmpv6_type(&self) -> Option<u8> {
        if self.data.get(12..14)? != [0x86, 0xdd] {
            return None;
        }
        let ip = self.data.get(14..)?;
        match ip.get(6)? {
            58 => ip.get(40).copied(),
            0 => {
                let hbh = ip.get(40..)?;
                let len = (usize::from(*hbh.get(1)?) + 1) * 8;
                (*hbh.first()? == 58).then(|| hbh.get(len).copied())?
            }
            _ => None,
        }
    }
}

/// Reads a classic pcap file (any byte order, microsecond or nanosecond timestamps,
/// Ethernet link type).
pub fn read_pcap(path: &Path) -> Result<Vec<Packet>> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    parse_pcap(&bytes)
}

/// Parses classic pcap bytes (with igmpd-wire's reader); a truncated last record (a
/// file still being written) is left out, anything else malformed is an error.
pub fn parse_pcap(bytes: &[u8]) -> Result<Vec<Packet>> {
    let records = igmpd_wire::pcap::read_growing(bytes).context("read pcap")?;
    records
        .into_iter()
        .map(|r| {
            if u32::from(r.link_type) != LINKTYPE_ETHERNET {
                bail!("pcap link type {}, expected Ethernet (1)", r.link_type);
            }
            Ok(Packet {
                timestamp: Duration::from_micros(r.timestamp_us),
                data: r.data,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_le(records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&4u16.to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&262_144u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        for (s, us, d) in records {
            b.extend_from_slice(&s.to_le_bytes());
            b.extend_from_slice(&us.to_le_bytes());
            b.extend_from_slice(&(d.len() as u32).to_le_bytes());
            b.extend_from_slice(&(d.len() as u32).to_le_bytes());
            b.extend_from_slice(d);
        }
        b
    }

    #[test]
    fn parses_records_and_skips_truncated_tail() {
        let mut b = pcap_le(&[(10, 500, &[1, 2, 3]), (11, 0, &[4; 20])]);
        let full = parse_pcap(&b).unwrap();
        assert_eq!(full.len(), 2);
        assert_eq!(full[0].timestamp, Duration::new(10, 500_000));
        assert_eq!(full[0].data, [1, 2, 3]);
        assert_eq!(full[1].data.len(), 20);
        b.truncate(b.len() - 5);
        assert_eq!(parse_pcap(&b).unwrap().len(), 1);
    }

    #[test]
    fn rejects_other_formats() {
        assert!(parse_pcap(&[0; 24]).is_err());
        let mut b = pcap_le(&[(1, 0, &[0u8; 14])]);
        b[20] = 113; // LINKTYPE_LINUX_SLL
        assert!(parse_pcap(&b).is_err());
    }

    #[test]
    fn finds_igmp_type_after_ip_options() {
        // Ethernet + IPv4 with Router Alert (IHL 6) + IGMPv3 report type.
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        f.extend_from_slice(&[0x46, 0xc0, 0, 40, 0, 0, 0x40, 0, 1, 2, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 1, 224, 0, 0, 22, 0x94, 4, 0, 0]);
        f.extend_from_slice(&[0x22, 0, 0, 0]);
        let p = Packet {
            timestamp: Duration::ZERO,
            data: f,
        };
        assert_eq!(p.igmp_type(), Some(0x22));
        assert_eq!(p.icmpv6_type(), None);
    }
}
