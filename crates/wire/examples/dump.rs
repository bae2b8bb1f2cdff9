//! Prints every frame of a capture file as igmpd-wire decodes it.
//!
//! `cargo run -p igmpd-wire --example dump -- FILE.pcap`

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: dump FILE");
        std::process::exit(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    let records = match igmpd_wire::pcap::read(&bytes) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    for (i, r) in records.iter().enumerate() {
        match igmpd_wire::parse_ethernet(&r.data) {
            Ok(f) => println!("{}: {:?}", i + 1, f),
            Err(e) => println!("{}: error {} ({e})", i + 1, e.reason()),
        }
    }
}
