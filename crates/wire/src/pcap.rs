//! Reading and writing capture files (classic pcap and pcapng), from and to bytes.
//!
//! Tests use it for golden captures, tshark cross-checks and tcpdump output; the daemon
//! may use it to dump what it saw. Only what those need: Ethernet link type, the Section
//! Header, Interface Description, Enhanced and Simple Packet blocks; other blocks are
//! skipped. Total like every parser here: bad input is an error, never a panic.

/// Link type of Ethernet frames (LINKTYPE_ETHERNET).
pub const LINKTYPE_ETHERNET: u16 = 1;

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Capture time in microseconds since the Unix epoch (pcapng timestamps with another
    /// resolution are converted assuming the default microseconds).
    pub timestamp_us: u64,
    /// Link type of the interface that captured it.
    pub link_type: u16,
    /// The bytes captured (possibly fewer than were on the wire).
    pub data: Vec<u8>,
}

/// Why a capture file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcapError {
    /// Not a pcap or pcapng file.
    #[error("not a pcap or pcapng file")]
    BadMagic,
    /// A header or block runs past the end of the file.
    #[error("truncated capture file at byte {0}")]
    Truncated(usize),
    /// A block length that is impossible.
    #[error("bad block length at byte {0}")]
    BadBlock(usize),
}

/// Reads every packet of a pcap or pcapng capture.
pub fn read(bytes: &[u8]) -> Result<Vec<Record>, PcapError> {
    let magic = bytes.get(..4).ok_or(PcapError::Truncated(0))?;
    match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => read_classic(bytes, true),
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => read_classic(bytes, false),
        [0x0a, 0x0d, 0x0d, 0x0a] => read_ng(bytes),
        _ => Err(PcapError::BadMagic),
    }
}

/// Like [`read`], for a classic pcap file that is still being written (tcpdump -U): a
/// record cut short at the end is left out instead of failing the whole read.
pub fn read_growing(bytes: &[u8]) -> Result<Vec<Record>, PcapError> {
    match read(bytes) {
        Err(PcapError::Truncated(at)) if at > 24 && bytes.len() >= 24 => {
            read(&bytes[..last_whole_record_end(bytes, at)])
        }
        other => other,
    }
}

/// The end of the last whole record of a classic pcap before byte `at`.
fn last_whole_record_end(bytes: &[u8], at: usize) -> usize {
    let le = matches!(
        bytes[..4],
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1]
    );
    let mut off = 24;
    while let Ok(caplen) = u32_at(bytes, off + 8, le) {
        let next = off + 16 + caplen as usize;
        if next > bytes.len() || next > at + 16 {
            break;
        }
        off = next;
    }
    off
}

fn u16_at(b: &[u8], off: usize, le: bool) -> Result<u16, PcapError> {
    let s = b.get(off..off + 2).ok_or(PcapError::Truncated(off))?;
    Ok(if le {
        u16::from_le_bytes([s[0], s[1]])
    } else {
        u16::from_be_bytes([s[0], s[1]])
    })
}

fn u32_at(b: &[u8], off: usize, le: bool) -> Result<u32, PcapError> {
    let s = b.get(off..off + 4).ok_or(PcapError::Truncated(off))?;
    let a = [s[0], s[1], s[2], s[3]];
    Ok(if le {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    })
}

fn read_classic(bytes: &[u8], le: bool) -> Result<Vec<Record>, PcapError> {
    let nanos = matches!(
        bytes[..4],
        [0x4d, 0x3c, 0xb2, 0xa1] | [0xa1, 0xb2, 0x3c, 0x4d]
    );
    let link_type = u32_at(bytes, 20, le)? as u16;
    let mut off = 24;
    let mut out = Vec::new();
    while off < bytes.len() {
        let sec = u64::from(u32_at(bytes, off, le)?);
        let frac = u64::from(u32_at(bytes, off + 4, le)?);
        let caplen = u32_at(bytes, off + 8, le)? as usize;
        let start = off + 16;
        let data = bytes
            .get(start..start.saturating_add(caplen))
            .ok_or(PcapError::Truncated(start))?;
        out.push(Record {
            timestamp_us: sec * 1_000_000 + if nanos { frac / 1000 } else { frac },
            link_type,
            data: data.to_vec(),
        });
        off = start + caplen;
    }
    Ok(out)
}

fn read_ng(bytes: &[u8]) -> Result<Vec<Record>, PcapError> {
    let mut out = Vec::new();
    let mut links: Vec<u16> = Vec::new();
    let mut le = true;
    let mut off = 0;
    while off < bytes.len() {
        let kind_raw = bytes.get(off..off + 4).ok_or(PcapError::Truncated(off))?;
        if kind_raw == [0x0a, 0x0d, 0x0d, 0x0a] {
            // Section Header Block: its byte-order magic decides the section's endianness.
            le = match bytes.get(off + 8..off + 12) {
                Some([0x4d, 0x3c, 0x2b, 0x1a]) => true,
                Some([0x1a, 0x2b, 0x3c, 0x4d]) => false,
                Some(_) => return Err(PcapError::BadMagic),
                None => return Err(PcapError::Truncated(off)),
            };
            links.clear();
        }
        let kind = u32_at(bytes, off, le)?;
        let len = u32_at(bytes, off + 4, le)? as usize;
        if len < 12 || len % 4 != 0 {
            return Err(PcapError::BadBlock(off));
        }
        let block = bytes
            .get(off..off.saturating_add(len))
            .ok_or(PcapError::Truncated(off))?;
        match kind {
            // Interface Description Block.
            1 => links.push(u16_at(block, 8, le)?),
            // Enhanced Packet Block.
            6 => {
                let iface = u32_at(block, 8, le)? as usize;
                let ts =
                    (u64::from(u32_at(block, 12, le)?) << 32) | u64::from(u32_at(block, 16, le)?);
                let caplen = u32_at(block, 20, le)? as usize;
                let data = block
                    .get(28..28usize.saturating_add(caplen))
                    .ok_or(PcapError::BadBlock(off))?;
                out.push(Record {
                    timestamp_us: ts,
                    link_type: links.get(iface).copied().unwrap_or(LINKTYPE_ETHERNET),
                    data: data.to_vec(),
                });
            }
            // Simple Packet Block: no timestamp, interface 0.
            3 => {
                let orig = u32_at(block, 8, le)? as usize;
                let data = block
                    .get(12..(12 + orig).min(len - 4))
                    .ok_or(PcapError::BadBlock(off))?;
                out.push(Record {
                    timestamp_us: 0,
                    link_type: links.first().copied().unwrap_or(LINKTYPE_ETHERNET),
                    data: data.to_vec(),
                });
            }
            _ => {}
        }
        off += len;
    }
    Ok(out)
}

/// Writes a classic little-endian microsecond pcap of Ethernet frames.
pub fn write(records: &[Record]) -> Vec<u8> {
    let link = records.first().map_or(LINKTYPE_ETHERNET, |r| r.link_type);
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&65_535u32.to_le_bytes());
    v.extend_from_slice(&u32::from(link).to_le_bytes());
    for r in records {
        let len = r.data.len() as u32;
        v.extend_from_slice(&((r.timestamp_us / 1_000_000) as u32).to_le_bytes());
        v.extend_from_slice(&((r.timestamp_us % 1_000_000) as u32).to_le_bytes());
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&r.data);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_round_trip() {
        let recs = vec![
            Record {
                timestamp_us: 1_700_000_000_123_456,
                link_type: LINKTYPE_ETHERNET,
                data: vec![1, 2, 3],
            },
            Record {
                timestamp_us: 5,
                link_type: LINKTYPE_ETHERNET,
                data: vec![],
            },
        ];
        assert_eq!(read(&write(&recs)).unwrap(), recs);
    }

    #[test]
    fn growing_file_leaves_out_a_cut_last_record() {
        let recs: Vec<Record> = (0..3)
            .map(|i| Record {
                timestamp_us: i,
                link_type: LINKTYPE_ETHERNET,
                data: vec![i as u8; 10],
            })
            .collect();
        let mut w = write(&recs);
        assert_eq!(read_growing(&w).unwrap(), recs);
        w.truncate(w.len() - 3);
        assert!(read(&w).is_err());
        assert_eq!(read_growing(&w).unwrap(), recs[..2]);
        w.truncate(24 + 26 + 5);
        assert_eq!(read_growing(&w).unwrap(), recs[..1]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(read(&[]), Err(PcapError::Truncated(0)));
        assert_eq!(read(&[1, 2, 3, 4, 5]), Err(PcapError::BadMagic));
        let mut w = write(&[Record {
            timestamp_us: 0,
            link_type: 1,
            data: vec![0; 10],
        }]);
        w.truncate(w.len() - 1);
        assert!(matches!(read(&w), Err(PcapError::Truncated(_))));
        assert!(read(&[0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a]).is_err());
    }
}
