//! Bare IGMP messages (the IPv4 payload), checksum included.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(repr) = igmpd_wire::IgmpRepr::parse(data) {
        let bytes = repr.to_bytes();
        assert_eq!(bytes.len(), repr.buffer_len());
        assert_eq!(igmpd_wire::IgmpRepr::parse(&bytes).expect("re-emitted IGMP parses"), repr);
    }
});
