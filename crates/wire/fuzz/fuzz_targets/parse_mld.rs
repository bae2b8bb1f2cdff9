//! Bare ICMPv6 messages; the first 32 bytes of input are the pseudo-header addresses, so
//! the fuzzer can reach past the checksum by finding matching ones.
#![no_main]

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 32 {
        return;
    }
    let mut a = [0u8; 16];
    let mut b = [0u8; 16];
    a.copy_from_slice(&data[..16]);
    b.copy_from_slice(&data[16..32]);
    let (src, dst) = (Ipv6Addr::from(a), Ipv6Addr::from(b));
    if let Ok(repr) = igmpd_wire::MldRepr::parse(&data[32..], &src, &dst) {
        let bytes = repr.to_bytes(&src, &dst);
        assert_eq!(bytes.len(), repr.buffer_len());
        assert_eq!(igmpd_wire::MldRepr::parse(&bytes, &src, &dst).expect("re-emitted MLD parses"), repr);
    }
    let _ = igmpd_wire::pim::PimHello::parse_v6(&data[32..], &src, &dst);
});
