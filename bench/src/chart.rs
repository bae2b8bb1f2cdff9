//! convergence.svg: convergence time against the number of groups, igmpd and kernel.

use std::fmt::Write as _;

use crate::stats::Mmm;

/// The chart of `(groups, igmpd, kernel)` points: medians joined by lines, min-max bars.
pub(crate) fn svg_chart(points: &[(usize, Mmm, Mmm)]) -> String {
    let (w, h, l, r, t, bm) = (640.0, 400.0, 70.0, 20.0, 40.0, 50.0);
    let xmax = points.iter().map(|p| p.0).max().unwrap_or(1) as f64;
    let ymax = points
        .iter()
        .map(|p| p.1.max.max(p.2.max))
        .fold(1.0, f64::max)
        * 1.1;
    let x = |g: usize| l + (g as f64 / xmax) * (w - l - r);
    let y = |v: f64| h - bm - (v / ymax) * (h - t - bm);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="20" text-anchor="middle" font-size="14">Convergence time vs groups (median; bars: min-max)</text>
<line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{l}" y1="{t}" x2="{l}" y2="{}" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">groups joined from one port</text>
<text x="15" y="{}" transform="rotate(-90 15 {})" text-anchor="middle">ms until the MDB holds all</text>
"#,
        w / 2.0,
        h - bm,
        w - r,
        h - bm,
        h - bm,
        (l + w - r) / 2.0,
        h - 12.0,
        h / 2.0,
        h / 2.0
    );
    for i in 0..=4 {
        let v = ymax * i as f64 / 4.0;
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{:.0}</text><line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>"##,
            l - 5.0,
            y(v) + 4.0,
            v,
            y(v),
            w - r,
            y(v)
        );
    }
    for p in points {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            x(p.0),
            h - bm + 16.0,
            p.0
        );
    }
    for (idx, (name, color)) in [("igmpd", "#d62728"), ("kernel", "#1f77b4")]
        .iter()
        .enumerate()
    {
        let pick = |p: &(usize, Mmm, Mmm)| if idx == 0 { p.1 } else { p.2 };
        let pts: Vec<String> = std::iter::once(format!("{},{}", x(0), y(0.0)))
            .chain(
                points
                    .iter()
                    .map(|p| format!("{:.1},{:.1}", x(p.0), y(pick(p).med))),
            )
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        for p in points {
            let m = pick(p);
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{color}"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}"/>"#,
                x(p.0),
                y(m.med),
                x(p.0),
                y(m.min),
                x(p.0),
                y(m.max)
            );
        }
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{}" width="12" height="12" fill="{color}"/><text x="{}" y="{}">{name}</text>"#,
            l + 20.0,
            t + 10.0 + 18.0 * idx as f64,
            l + 38.0,
            t + 20.0 + 18.0 * idx as f64
        );
    }
    s.push_str("</svg>\n");
    s
}
