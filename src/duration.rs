//! Human durations for the command line: `2s`, `300ms`, `1m30s`, `1h`, `1.5s`.

use std::time::Duration;

/// Parses a duration made of one or more `<number><unit>` parts (units `h`, `m`, `s`,
/// `ms`; the number may have a fraction). A bare number is rejected: the unit is what
/// makes `10` mean ten seconds rather than ten milliseconds.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("{s:?}: expected a number at {rest:?}"));
        }
        let n: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("{s:?}: bad number {:?}", &rest[..num_len]))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("{s:?}: missing unit (use ms, s, m or h, e.g. 10s)")),
            u => return Err(format!("{s:?}: unknown unit {u:?} (use ms, s, m or h)")),
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > 1e9 {
        return Err(format!("{s:?}: too long"));
    }
    Ok(Duration::from_millis((total * 1000.0).round() as u64))
}

/// Formats a duration the way [`parse`] reads it, e.g. `2m5s`, `1.5s`, `300ms`.
pub fn format(d: Duration) -> String {
    Human(d).to_string()
}

/// A duration shown as [`format`] writes it, without allocating (status tables write
/// one per group), honouring width and alignment (`{:>10}`).
#[derive(Debug, Clone, Copy)]
pub struct Human(pub Duration);

impl std::fmt::Display for Human {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        // "1193046h59m59.999s" (u64 milliseconds at most) fits in 32 bytes.
        let mut buf = Small::default();
        let ms = self.0.as_millis();
        if ms < 1000 {
            let _ = write!(buf, "{ms}ms");
        } else {
            let (h, m, s, r) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
            if h > 0 {
                let _ = write!(buf, "{h}h");
            }
            if m > 0 {
                let _ = write!(buf, "{m}m");
            }
            if r > 0 {
                // Milliseconds as a fraction without trailing zeros: 500 -> .5, 250 -> .25.
                let (mut frac, mut digits) = (r, 3);
                while frac % 10 == 0 {
                    frac /= 10;
                    digits -= 1;
                }
                let _ = write!(buf, "{s}.{frac:0digits$}s");
            } else if s > 0 {
                let _ = write!(buf, "{s}s");
            }
        }
        f.pad(buf.as_str())
    }
}

/// A fixed buffer for one short formatted value.
struct Small {
    buf: [u8; 48],
    len: usize,
}

impl Default for Small {
    fn default() -> Self {
        Small {
            buf: [0; 48],
            len: 0,
        }
    }
}

impl Small {
    fn as_str(&self) -> &str {
        // Only whole `str`s are ever appended.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for Small {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_users_write() {
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "10", "s", "1x", "1.2.3s", "-1s", "1s2"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for ms in [
            0u64, 1, 300, 1000, 1500, 90_000, 125_000, 3_600_000, 3_661_250,
        ] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&format(d)).unwrap_or_default(), d, "{}", format(d));
        }
        assert_eq!(format(Duration::from_secs(125)), "2m5s");
        assert_eq!(format(Duration::from_millis(300)), "300ms");
        assert_eq!(format(Duration::from_millis(3806)), "3.806s");
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format(Duration::from_millis(3_600_250)), "1h0.25s");
        assert_eq!(format(Duration::ZERO), "0ms");
        let longest = Duration::from_millis(u64::MAX);
        assert!(parse(&format(longest)).is_err(), "{}", format(longest));
        assert!(format(longest).ends_with("s"));
        assert_eq!(
            format!(
                "[{:>8}][{:<6}]",
                Human(Duration::from_secs(90)),
                Human(Duration::ZERO)
            ),
            "[   1m30s][0ms   ]"
        );
    }
}
