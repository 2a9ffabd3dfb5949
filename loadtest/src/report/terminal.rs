//! The report as plain-text tables for the terminal (and CI logs).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{fmt_ms, fmt_us, verdict, Report};
use crate::class::percentile_label;
use crate::slo::SloView;

pub fn render(r: &Report) -> String {
    let label = &r.settings.percentile_label;
    let mut out = String::new();
    // The judged percentile gets its own column only when it is not one of the fixed ones.
    let extra = !["p50", "p95", "p99"].contains(&label.as_str());
    let target_col = format!("{label} target");
    let ratio_col = format!("×{}", r.settings.baseline);
    let mut headers = vec!["scenario", "class", "target", "count", "errors", "p50", "p95", "p99", "max", "ops/s"];
    if extra {
        headers.push(label);
    }
    headers.extend([target_col.as_str(), "verdict", ratio_col.as_str(), "note"]);
    let rows: Vec<Vec<String>> = r
        .results
        .iter()
        .map(|row| {
            let l = &row.latency;
            let lat = |us: u64| if l.count == 0 { "-".to_string() } else { fmt_us(us) };
            let mut cells = vec![
                row.scenario.clone(),
                row.class.to_string(),
                row.target.clone(),
                l.count.to_string(),
                row.errors.to_string(),
                lat(l.p50_us),
                lat(l.p95_us),
                lat(l.p99_us),
                lat(l.max_us),
                format!("{:.1}", row.throughput_ops),
            ];
            if extra {
                cells.push(lat(l.observed_us));
            }
            let verdict = if l.count == 0 && row.status == "ran" && row.errors == 0 { "-" } else { verdict(row.pass, &row.status) };
            cells.extend([
                row.target_ms.map(fmt_ms).unwrap_or_else(|| "-".into()),
                verdict.to_string(),
                row.ratio_observed.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into()),
                row.reason.as_deref().map(|w| truncate(w, 70)).unwrap_or_default(),
            ]);
            cells
        })
        .collect();
    let _ = writeln!(out, "\nResults ({} clients, targets judged at {label}):", r.settings.clients);
    out.push_str(&table(&headers, &rows, 3));

    let headers = ["target", "class", "count", "errors", label.as_str(), target_col.as_str(), "verdict"];
    let rows: Vec<Vec<String>> = r
        .classes
        .iter()
        .map(|c| {
            vec![
                c.target.clone(),
                c.class.to_string(),
                c.count.to_string(),
                c.errors.to_string(),
                if c.count == 0 { "-".into() } else { fmt_us(c.observed_us) },
                c.target_ms.map(fmt_ms).unwrap_or_else(|| "-".into()),
                if c.count == 0 && c.errors == 0 { "-" } else { verdict(c.pass, "ran") }.to_string(),
            ]
        })
        .collect();
    let _ = writeln!(out, "\nClasses (all scenarios of a class together; these decide the exit status):");
    out.push_str(&table(&headers, &rows, 2));

    for view in &r.slo {
        out.push_str(&slo_side_by_side(r, view));
    }
    for e in r.results.iter().filter_map(|row| row.first_error.as_ref().map(|e| (row, e))) {
        let _ = writeln!(out, "first error in {} on {}: {}", e.0.scenario, e.0.target, e.1);
    }
    if !r.problems.is_empty() {
        let _ = writeln!(out, "\nProblems:");
        for p in &r.problems {
            let _ = writeln!(out, "  - {p}");
        }
    }
    let outcome = match r.exit_code {
        0 => "PASS: every class met its target",
        1 => "FAIL: some class missed its target",
        _ => "ERROR: the run could not be completed",
    };
    let _ = writeln!(out, "\n{outcome} (exit {})", r.exit_code);
    out
}

/// The load tester's view and the proxy's /slo view of the same target, class by class.
fn slo_side_by_side(r: &Report, view: &SloView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nProxy /slo for target `{}` ({}):", view.target, view.url);
    let Some(slo) = &view.response else {
        let _ = writeln!(out, "  not available: {}", view.error.as_deref().unwrap_or("unknown error"));
        return out;
    };
    let label = &r.settings.percentile_label;
    let slo_label = percentile_label(slo.percentile);
    let window = slo.window_seconds.map(|w| format!(", {w:.0}s window")).unwrap_or_default();
    let _ = writeln!(out, "  (proxy judges at {slo_label}{window}; the load tester at {label} over the whole run)");
    let mut names: BTreeSet<String> = slo.classes.iter().map(|c| c.class.clone()).collect();
    names.extend(r.classes.iter().filter(|c| c.target == view.target).map(|c| c.class.to_string()));
    let rows: Vec<Vec<String>> = names
        .iter()
        .map(|name| {
            let ours = r.classes.iter().find(|c| c.target == view.target && c.class.as_str() == name);
            let theirs = slo.classes.iter().find(|c| &c.class == name);
            let dash = || "-".to_string();
            vec![
                name.clone(),
                ours.map(|c| c.count.to_string()).unwrap_or_else(dash),
                ours.map(|c| fmt_us(c.observed_us)).unwrap_or_else(dash),
                ours.map(|c| verdict(c.pass, "ran").to_string()).unwrap_or_else(dash),
                theirs.map(|c| c.count.to_string()).unwrap_or_else(dash),
                theirs.and_then(|c| c.observed_seconds).map(|s| fmt_ms(s * 1000.0)).unwrap_or_else(dash),
                theirs.map(|c| c.violations.to_string()).unwrap_or_else(dash),
                theirs.and_then(|c| c.target_seconds).map(|s| fmt_ms(s * 1000.0)).unwrap_or_else(dash),
                theirs.map(|c| if c.pass { "PASS" } else { "FAIL" }.to_string()).unwrap_or_else(dash),
            ]
        })
        .collect();
    let headers = [
        "class",
        "loadtest count",
        &format!("loadtest {label}"),
        "loadtest verdict",
        "/slo count",
        &format!("/slo {slo_label}"),
        "/slo violations",
        "/slo target",
        "/slo verdict",
    ];
    out.push_str(&table(&headers, &rows, 1));
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// A plain table: the first `left` columns left-aligned, the rest (numbers) right-aligned.
pub fn table(headers: &[&str], rows: &[Vec<String>], left: usize) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(width(cell));
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let parts: Vec<String> = cells
            .enumerate()
            .map(|(i, c)| {
                let pad = " ".repeat(widths[i] - width(c));
                if i < left {
                    format!("{c}{pad}")
                } else {
                    format!("{pad}{c}")
                }
            })
            .collect();
        format!("  {}\n", parts.join("  ").trim_end())
    };
    let mut out = line(&mut headers.iter().copied());
    out.push_str(&format!("  {}\n", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  ")));
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}
