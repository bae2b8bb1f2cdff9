//! Whole frames as AF_PACKET delivers them: never a panic; what parses re-emits to bytes
//! that parse to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = igmpd_wire::parse_ethernet(data) {
        let again = igmpd_wire::parse_ethernet(&frame.to_bytes()).expect("re-emitted frame parses");
        assert_eq!(again, frame);
    }
});
