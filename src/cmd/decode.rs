//! `igmpd decode HEX`: what a captured frame or packet holds.

use std::io::Write;

use anyhow::Result;

use crate::cli::FirstHeader;

/// Decodes `hex` (spaces, colons and newlines ignored) from `layer` on and prints it.
pub fn run(hex: &str, layer: FirstHeader) -> Result<()> {
    let text = decode(&bytes(hex)?, layer)?;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(())
}

fn bytes(hex: &str) -> Result<Vec<u8>> {
    let digits: String = hex
        .chars()
        .filter(|c| !matches!(c, ' ' | ':' | '\n' | '\t'))
        .collect();
    if digits.len() % 2 != 0 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        anyhow::bail!("not an even number of hex digits");
    }
    Ok((0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
        .collect::<Result<_, _>>()?)
}

fn decode(bytes: &[u8], layer: FirstHeader) -> Result<String> {
    match layer {
        FirstHeader::Ethernet => igmpd_wire::parse_ethernet(bytes).map(|f| format!("{f:?}")),
        FirstHeader::Ip => igmpd_wire::parse_ip(bytes).map(|p| format!("{p:?}")),
    }
    .map_err(|e| anyhow::anyhow!("cannot decode ({}): {e}", e.reason()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hex_with_separators_and_rejects_odd_digits() {
        assert_eq!(bytes("01:00 5e\n7f").unwrap(), [0x01, 0x00, 0x5e, 0x7f]);
        assert!(bytes("123").is_err() && bytes("zz").is_err());
    }

    #[test]
    fn decodes_an_igmp_query_frame_and_says_why_not() {
        use igmpd_wire::frame::Ipv4Header;
        use igmpd_wire::{igmp, Frame, IgmpQuery, IgmpRepr, IgmpVersion};
        let query = IgmpRepr::Query(IgmpQuery::general(IgmpVersion::V3, 10_000, 2, 125));
        let src = "10.0.0.1".parse().unwrap();
        let frame = Frame::igmp(
            [2, 0, 0, 0, 0, 1],
            None,
            Ipv4Header::igmp(src, igmp::ALL_SYSTEMS),
            query,
        );
        let hex: String = frame
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}:"))
            .collect();
        let text = decode(&bytes(&hex).unwrap(), FirstHeader::Ethernet).unwrap();
        assert!(
            text.contains("Query") && text.contains("10.0.0.1"),
            "{text}"
        );
        let err = decode(&[0x45], FirstHeader::Ip).unwrap_err().to_string();
        assert!(err.starts_with("cannot decode ("), "{err}");
    }
}
