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
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m, s, r) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if r > 0 {
        let frac = format!("{r:03}");
        out += &format!("{s}.{}s", frac.trim_end_matches('0'));
    } else if s > 0 {
        out += &format!("{s}s");
    }
    out
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
    }
}
