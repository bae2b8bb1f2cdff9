//! The Internet checksum (RFC 1071) and the IPv6 pseudo-header sum (RFC 8200 §8.1).

use std::net::Ipv6Addr;

/// One's-complement sum of `data` as big-endian 16-bit words, folded, not inverted.
fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The Internet checksum of `data` (the value to store in a zeroed checksum field).
pub fn internet(data: &[u8]) -> u16 {
    !fold(sum(0, data))
}

/// True when `data`, checksum field included, sums to all ones.
pub fn verify(data: &[u8]) -> bool {
    fold(sum(0, data)) == 0xffff
}

fn pseudo_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, len: usize) -> u32 {
    let mut acc = sum(0, &src.octets());
    acc = sum(acc, &dst.octets());
    // Upper-layer length is 32 bits; these messages are far below 4 GiB.
    let len = len as u32;
    acc += len >> 16;
    acc += len & 0xffff;
    acc + u32::from(next_header)
}

/// The ICMPv6 (or PIM over IPv6) checksum of `data` with the IPv6 pseudo-header.
pub fn internet_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, data: &[u8]) -> u16 {
    !fold(sum(pseudo_v6(src, dst, next_header, data.len()), data))
}

/// True when `data` (checksum included) verifies under the IPv6 pseudo-header.
pub fn verify_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, data: &[u8]) -> bool {
    fold(sum(pseudo_v6(src, dst, next_header, data.len()), data)) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (before inversion).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(internet(&[0x12]), internet(&[0x12, 0x00]));
    }

    #[test]
    fn verify_accepts_own_checksum() {
        let mut data = vec![0x11, 0x64, 0, 0, 0, 0, 0, 0];
        let c = internet(&data);
        data[2..4].copy_from_slice(&c.to_be_bytes());
        assert!(verify(&data));
        data[7] ^= 1;
        assert!(!verify(&data));
    }
}
