//! The floating-point time codes of IGMPv3 and MLDv2.
//!
//! - IGMPv3 Max Resp Code (RFC 9776 §4.1.1, units of 1/10 s) and QQIC (§4.1.7, seconds),
//!   and MLDv2 QQIC (RFC 9777 §5.1.9, seconds) share one 8-bit format: below 128 the code
//!   is the value; from 128 on it is `1 | exp(3) | mant(4)` meaning `(mant | 0x10) << (exp + 3)`.
//! - MLDv2 Maximum Response Code (RFC 9777 §5.1.3, milliseconds) is 16 bits: below 32768
//!   the value; from 32768 on `1 | exp(3) | mant(12)` meaning `(mant | 0x1000) << (exp + 3)`.
//!
//! Both decodings are strictly increasing in the code, so every value has one best code.
//! Encoding picks the largest representable value not above the requested one (a querier
//! never asks hosts to wait longer than configured), and saturates at the largest code.

/// Largest value an 8-bit code can carry: `(0x0f | 0x10) << (7 + 3)` = 31744.
pub const MAX_CODE8_VALUE: u32 = 31_744;
/// Largest value a 16-bit MLDv2 code can carry: `(0xfff | 0x1000) << (7 + 3)` = 8387584.
pub const MAX_CODE16_VALUE: u32 = 8_387_584;

/// Decodes an 8-bit code: IGMPv3 Max Resp Code (1/10 s) or IGMPv3/MLDv2 QQIC (s).
pub fn decode_code8(code: u8) -> u32 {
    if code < 0x80 {
        u32::from(code)
    } else {
        let exp = u32::from((code >> 4) & 0x07);
        let mant = u32::from(code & 0x0f);
        (mant | 0x10) << (exp + 3)
    }
}

/// Encodes `value` as an 8-bit code, rounding down to a representable value.
pub fn encode_code8(value: u32) -> u8 {
    if value < 0x80 {
        return value as u8;
    }
    if value >= MAX_CODE8_VALUE {
        return 0xff;
    }
    // value >= 128 needs a 5-bit significand (1 mmmm) shifted by exp + 3.
    let bits = 32 - value.leading_zeros(); // position of the top bit, 8..=15 here
    let exp = bits - 5 - 3;
    let mant = (value >> (exp + 3)) & 0x0f;
    0x80 | ((exp as u8) << 4) | mant as u8
}

/// Decodes a 16-bit MLDv2 Maximum Response Code into milliseconds.
pub fn decode_code16(code: u16) -> u32 {
    if code < 0x8000 {
        u32::from(code)
    } else {
        let exp = u32::from((code >> 12) & 0x07);
        let mant = u32::from(code & 0x0fff);
        (mant | 0x1000) << (exp + 3)
    }
}

/// Encodes milliseconds as a 16-bit MLDv2 Maximum Response Code, rounding down.
pub fn encode_code16(value: u32) -> u16 {
    if value < 0x8000 {
        return value as u16;
    }
    if value >= MAX_CODE16_VALUE {
        return 0xffff;
    }
    let bits = 32 - value.leading_zeros(); // 16..=23 here
    let exp = bits - 13 - 3;
    let mant = (value >> (exp + 3)) & 0x0fff;
    0x8000 | ((exp as u16) << 12) | mant as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code8_known_values() {
        assert_eq!(decode_code8(0), 0);
        assert_eq!(decode_code8(100), 100);
        assert_eq!(decode_code8(127), 127);
        assert_eq!(decode_code8(0x80), 128);
        assert_eq!(decode_code8(0x81), 136);
        assert_eq!(decode_code8(0xff), MAX_CODE8_VALUE);
        // A 300 s query interval as QQIC: 300 = 0b1_0010_1100 -> exp 1, mant 0x2 -> 288.
        assert_eq!(decode_code8(encode_code8(300)), 288);
        assert_eq!(encode_code8(125), 125);
    }

    #[test]
    fn code8_exhaustive_every_code() {
        let mut prev = None;
        for code in 0..=u8::MAX {
            let v = decode_code8(code);
            // Strictly increasing, so the code is unique for its value.
            if let Some(p) = prev {
                assert!(v > p, "code {code:#x}");
            }
            prev = Some(v);
            assert_eq!(encode_code8(v), code, "value {v}");
            // Every value between this code's value and the next maps down to this code.
            if code < u8::MAX {
                let next = decode_code8(code + 1);
                assert_eq!(encode_code8(next - 1), code);
            }
        }
        assert_eq!(encode_code8(u32::MAX), 0xff);
    }

    #[test]
    fn code8_encode_rounds_down_over_whole_range() {
        for v in 0..=MAX_CODE8_VALUE + 10 {
            let d = decode_code8(encode_code8(v));
            assert!(d <= v || v > MAX_CODE8_VALUE);
            if v <= MAX_CODE8_VALUE {
                let c = encode_code8(v);
                if c < u8::MAX {
                    assert!(
                        decode_code8(c + 1) > v,
                        "value {v} not encoded to the largest code"
                    );
                }
            }
        }
    }

    #[test]
    fn code16_known_values() {
        assert_eq!(decode_code16(10_000), 10_000);
        assert_eq!(decode_code16(0x7fff), 32_767);
        assert_eq!(decode_code16(0x8000), 32_768);
        assert_eq!(decode_code16(0xffff), MAX_CODE16_VALUE);
        assert_eq!(encode_code16(32_768), 0x8000);
    }

    #[test]
    fn code16_exhaustive_every_code() {
        let mut prev = None;
        for code in 0..=u16::MAX {
            let v = decode_code16(code);
            if let Some(p) = prev {
                assert!(v > p, "code {code:#x}");
            }
            prev = Some(v);
            assert_eq!(encode_code16(v), code, "value {v}");
            if code < u16::MAX {
                let next = decode_code16(code + 1);
                assert_eq!(encode_code16(next - 1), code);
            }
        }
        assert_eq!(encode_code16(u32::MAX), 0xffff);
    }
}
