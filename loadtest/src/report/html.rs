//! `report.html`: one self-contained page (inline CSS and SVG, no scripts, nothing fetched) with
//! the tables and, per scenario and class, the percentile curve of every target.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{fmt_ms, fmt_us, verdict, Report, ResultRow};
use crate::error::Error;

const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
const W: f64 = 640.0;
const H: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;
/// The x axis runs over "nines": 0 → 0%, 1 → 90%, 2 → 99%, … 5 → 99.999%.
const MAX_NINES: f64 = 5.0;

pub fn write(dir: &Path, report: &Report) -> Result<PathBuf, Error> {
    let path = dir.join("report.html");
    let err = |source| Error::Report { path: path.display().to_string(), source };
    std::fs::create_dir_all(dir).map_err(err)?;
    std::fs::write(&path, render(report)).map_err(err)?;
    Ok(path)
}

pub fn render(r: &Report) -> String {
    let mut h = String::new();
    let status = match r.exit_code {
        0 => ("pass", "PASS: every class met its target"),
        1 => ("fail", "FAIL: some class missed its target"),
        _ => ("fail", "ERROR: the run could not be completed"),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>citus-loadtest report</title>\n\
         <style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td.l,th.l{{text-align:left}}\
         .pass{{color:#1a7f37;font-weight:bold}}.fail{{color:#cf222e;font-weight:bold}}.plots{{display:flex;flex-wrap:wrap;gap:1em}}\
         figure{{margin:0}}figcaption{{font-weight:bold}}</style></head><body>\n\
         <h1>citus-loadtest report</h1>\n<p class=\"{}\">{} (exit {})</p>\n",
        status.0, status.1, r.exit_code
    );
    let s = &r.settings;
    let amount = match (s.iterations, s.duration_s) {
        (Some(n), _) => format!("{n} iterations"),
        (_, Some(d)) => format!("{d} s"),
        _ => String::new(),
    };
    let _ = writeln!(
        h,
        "<p>{} clients per target, {amount} per target and scenario in {} interleaved slices, warm-up {} s, rate {}; judged at {}.</p>",
        s.clients,
        s.slices,
        s.warmup_s,
        s.rate.map(|r| format!("{r}/s")).unwrap_or_else(|| "unlimited".into()),
        esc(&s.percentile_label)
    );
    h.push_str("<h2>Targets</h2><table><tr><th class=l>name</th><th class=l>url</th><th class=l>server</th><th class=l>citus</th></tr>\n");
    for t in &r.targets {
        let _ = writeln!(
            h,
            "<tr><td class=l>{}</td><td class=l>{}</td><td class=l>{}</td><td class=l>{}</td></tr>",
            esc(&t.name),
            esc(&t.url),
            esc(&t.server_version),
            t.citus
        );
    }
    h.push_str("</table>\n");
    results_table(&mut h, r);
    classes_table(&mut h, r);
    slo_tables(&mut h, r);
    if !r.problems.is_empty() {
        h.push_str("<h2>Problems</h2><ul>");
        for p in &r.problems {
            let _ = write!(h, "<li>{}</li>", esc(p));
        }
        h.push_str("</ul>\n");
    }
    plots(&mut h, r);
    h.push_str("</body></html>\n");
    h
}

fn results_table(h: &mut String, r: &Report) {
    let label = esc(&r.settings.percentile_label);
    let _ = writeln!(
        h,
        "<h2>Results</h2><table><tr><th class=l>scenario</th><th class=l>class</th><th class=l>target</th><th>count</th>\
         <th>errors</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th>ops/s</th><th>{label} target</th>\
         <th>{label}</th><th>verdict</th><th>×{}</th></tr>",
        esc(&r.settings.baseline)
    );
    for row in &r.results {
        let l = &row.latency;
        let lat = |us: u64| if l.count == 0 { "-".to_string() } else { fmt_us(us) };
        let v = if l.count == 0 && row.status == "ran" && row.errors == 0 { "-" } else { verdict(row.pass, &row.status) };
        let reason = row.reason.as_deref().map(|w| format!(" ({})", esc(w))).unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr><td class=l>{}</td><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td class=\"l {}\">{v}{reason}</td><td>{}</td></tr>",
            esc(&row.scenario),
            row.class,
            esc(&row.target),
            l.count,
            row.errors,
            lat(l.p50_us),
            lat(l.p95_us),
            lat(l.p99_us),
            lat(l.max_us),
            row.throughput_ops,
            row.target_ms.map(fmt_ms).unwrap_or_else(|| "-".into()),
            lat(l.observed_us),
            if v == "PASS" {
                "pass"
            } else if v == "FAIL" || v == "ERROR" {
                "fail"
            } else {
                ""
            },
            row.ratio_observed.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into()),
        );
    }
    h.push_str("</table>\n");
}

fn classes_table(h: &mut String, r: &Report) {
    let _ = writeln!(
        h,
        "<h2>Classes</h2><table><tr><th class=l>target</th><th class=l>class</th><th>count</th><th>errors</th>\
         <th>{}</th><th>target</th><th>verdict</th></tr>",
        esc(&r.settings.percentile_label)
    );
    for c in &r.classes {
        let v = if c.count == 0 && c.errors == 0 { "-" } else { verdict(c.pass, "ran") };
        let _ = writeln!(
            h,
            "<tr><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{v}</td></tr>",
            esc(&c.target),
            c.class,
            c.count,
            c.errors,
            if c.count == 0 { "-".to_string() } else { fmt_us(c.observed_us) },
            c.target_ms.map(fmt_ms).unwrap_or_else(|| "-".into()),
            if v == "FAIL" { "fail" } else { "pass" },
        );
    }
    h.push_str("</table>\n");
}

fn slo_tables(h: &mut String, r: &Report) {
    for view in &r.slo {
        let _ = writeln!(h, "<h2>Proxy /slo for target {} ({})</h2>", esc(&view.target), esc(&view.url));
        let Some(slo) = &view.response else {
            let _ = writeln!(h, "<p class=fail>not available: {}</p>", esc(view.error.as_deref().unwrap_or("")));
            continue;
        };
        h.push_str(
            "<table><tr><th class=l>class</th><th>loadtest count</th><th>loadtest observed</th><th>loadtest verdict</th>\
             <th>/slo count</th><th>/slo observed</th><th>/slo violations</th><th>/slo target</th><th>/slo verdict</th></tr>\n",
        );
        for c in &slo.classes {
            let ours = r.classes.iter().find(|o| o.target == view.target && o.class.as_str() == c.class);
            let _ = writeln!(
                h,
                "<tr><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.class),
                ours.map(|o| o.count.to_string()).unwrap_or_else(|| "-".into()),
                ours.map(|o| fmt_us(o.observed_us)).unwrap_or_else(|| "-".into()),
                ours.map(|o| verdict(o.pass, "ran")).unwrap_or("-"),
                c.count,
                c.observed_seconds.map(|s| fmt_ms(s * 1000.0)).unwrap_or_else(|| "-".into()),
                c.violations,
                c.target_seconds.map(|s| fmt_ms(s * 1000.0)).unwrap_or_else(|| "-".into()),
                if c.pass { "PASS" } else { "FAIL" },
            );
        }
        h.push_str("</table>\n");
    }
}

fn plots(h: &mut String, r: &Report) {
    // Group rows with data by (scenario, class), keeping the order of first appearance.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String), Vec<&ResultRow>> = BTreeMap::new();
    for row in r.results.iter().filter(|row| !row.latency.curve.is_empty()) {
        let key = (row.scenario.clone(), row.class.to_string());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(row);
    }
    h.push_str("<h2>Latency distribution</h2><p>Percentile curves: latency (y) at each percentile (x, in nines).</p><div class=plots>\n");
    for key in order {
        let rows = &groups[&key];
        let _ = writeln!(h, "<figure><figcaption>{} — {}</figcaption>{}</figure>", esc(&key.0), esc(&key.1), svg(rows));
    }
    h.push_str("</div>\n");
}

fn svg(rows: &[&ResultRow]) -> String {
    let max_us = rows.iter().map(|r| r.latency.max_us).max().unwrap_or(1).max(1);
    let target_us = rows.first().and_then(|r| r.target_ms).map(|ms| ms * 1000.0);
    let y_max = nice_ceiling(max_us as f64);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |nines: f64| LEFT + pw * (nines / MAX_NINES).min(1.0);
    let y = |us: f64| TOP + ph * (1.0 - (us / y_max).min(1.0));
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-size=\"11\">");
    let _ = write!(s, "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#999\"/>");
    for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"].iter().enumerate() {
        let xi = x(i as f64);
        let _ = write!(
            s,
            "<line x1=\"{xi}\" y1=\"{TOP}\" x2=\"{xi}\" y2=\"{}\" stroke=\"#eee\"/><text x=\"{xi}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            TOP + ph,
            TOP + ph + 14.0
        );
    }
    for i in 0..=4 {
        let us = y_max * f64::from(i) / 4.0;
        let yi = y(us);
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{yi}\" x2=\"{}\" y2=\"{yi}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LEFT + pw,
            LEFT - 4.0,
            yi + 4.0,
            fmt_us(us as u64)
        );
    }
    if let Some(t) = target_us.filter(|t| *t > y_max) {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#cf222e\">target {} (above the plot)</text>",
            LEFT + pw - 4.0,
            TOP + 14.0,
            fmt_us(t as u64)
        );
    }
    if let Some(t) = target_us.filter(|t| *t <= y_max) {
        let yt = y(t);
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{yt}\" x2=\"{}\" y2=\"{yt}\" stroke=\"#cf222e\" stroke-dasharray=\"5,4\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#cf222e\">target</text>",
            LEFT + pw,
            LEFT + pw - 4.0,
            yt - 4.0
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<String> = row
            .latency
            .curve
            .iter()
            .map(|p| {
                let nines = -(1.0 - p.percentile).max(1e-9).log10();
                format!("{:.1},{:.1}", x(nines), y(p.micros as f64))
            })
            .collect();
        let _ = write!(s, "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>", points.join(" "));
        let ly = TOP + 14.0 + 14.0 * i as f64;
        let _ = write!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"{ly}\">{} (n={})</text>",
            LEFT + 8.0,
            ly - 9.0,
            LEFT + 22.0,
            esc(&row.target),
            row.latency.count
        );
    }
    s.push_str("</svg>");
    s
}

/// 1, 2 or 5 times a power of ten, at least `v`: round axis labels.
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.max(1.0).log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|c| *c >= v).unwrap_or(10.0 * p)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn nice_ceiling_and_escape() {
        assert_eq!(super::nice_ceiling(730.0), 1000.0);
        assert_eq!(super::nice_ceiling(1500.0), 2000.0);
        assert_eq!(super::nice_ceiling(4000.0), 5000.0);
        assert_eq!(super::esc("<a&\">"), "&lt;a&amp;&quot;&gt;");
    }
}
