//! Capture files: the reader must return an error, never panic, on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = igmpd_wire::pcap::read(data) {
        for r in &records {
            let _ = igmpd_wire::parse_ethernet(&r.data);
        }
    }
});
