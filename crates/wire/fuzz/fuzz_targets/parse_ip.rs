//! IP packets as a raw socket delivers them (IPv4 or IPv6 by the version nibble).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = igmpd_wire::parse_ip(data) {
        let again = igmpd_wire::parse_ip(&packet.to_bytes()).expect("re-emitted packet parses");
        assert_eq!(again, packet);
    }
});
