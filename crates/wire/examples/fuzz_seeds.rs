//! Writes seed corpora for the fuzz targets from the golden captures in tests/data:
//! `cargo run -p igmpd-wire --example fuzz_seeds -- OUTDIR` makes OUTDIR/<target>/<n>.

use std::path::Path;

use igmpd_wire::frame::Packet;

fn main() {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: fuzz_seeds OUTDIR");
        std::process::exit(2);
    };
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut n = 0usize;
    let write = |target: &str, n: usize, bytes: &[u8]| {
        let dir = Path::new(&out).join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        std::fs::write(dir.join(format!("seed-{n}")), bytes).expect("write seed");
    };
    let mut files: Vec<_> = std::fs::read_dir(&data)
        .expect("tests/data")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files {
        let bytes = std::fs::read(&path).expect("read capture");
        write("parse_pcap", n, &bytes);
        n += 1;
        for r in igmpd_wire::pcap::read(&bytes).expect("golden captures parse") {
            n += 1;
            write("parse_ethernet", n, &r.data);
            let Some(ip) = r.data.get(14..) else { continue };
            write("parse_ip", n, ip);
            match igmpd_wire::parse_ethernet(&r.data).map(|f| f.packet) {
                Ok(Packet::Igmp { ip: h, .. }) => {
                    let hl = usize::from(ip[0] & 0x0f) * 4;
                    let _ = h;
                    write("parse_igmp", n, &ip[hl..]);
                }
                Ok(Packet::Mld { ip: h, mld }) => {
                    let mut seed = Vec::new();
                    seed.extend_from_slice(&h.src.octets());
                    seed.extend_from_slice(&h.dst.octets());
                    seed.extend_from_slice(&mld.to_bytes(&h.src, &h.dst));
                    write("parse_mld", n, &seed);
                }
                _ => {}
            }
        }
    }
}
