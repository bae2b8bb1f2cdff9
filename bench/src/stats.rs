//! Statistics over runs and the JSON shapes of the numbers.

use serde_json::{json, Value};

/// Minimum, median and maximum of the runs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mmm {
    pub(crate) min: f64,
    pub(crate) med: f64,
    pub(crate) max: f64,
}

/// [`Mmm`] of `v` (all zero if empty).
pub(crate) fn mmm(v: &[f64]) -> Mmm {
    if v.is_empty() {
        return Mmm::default();
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let med = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    Mmm {
        min: s[0],
        med,
        max: s[s.len() - 1],
    }
}

/// The `p` quantile (0..=1) of the sorted `v` (nearest rank; 0 if empty).
pub(crate) fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// `x` rounded to two decimals.
pub(crate) fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `{"min", "median", "max"}`, rounded to two decimals.
pub(crate) fn j(m: Mmm) -> Value {
    json!({"min": r2(m.min), "median": r2(m.med), "max": r2(m.max)})
}
