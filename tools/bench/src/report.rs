//! The results as Markdown, with each target met or missed, and as SVG charts drawn here.

use std::fmt::Write;

use serde::Serialize;

use crate::Results;
use crate::cost::{self, Line};

#[derive(Debug, Serialize)]
pub struct Target {
    pub target: String,
    pub measured: String,
    pub met: bool,
}

pub fn targets(r: &Results) -> Vec<Target> {
    let mut targets = vec![Target {
        target: "order API's own time at most 1.3x its DynamoDB transaction, p50".into(),
        measured: format!(
            "{:.2}x ({:.2} ms / {:.2} ms)",
            r.intake.ratio_p50, r.intake.invocation_ms.p50, r.intake.transaction_ms.p50
        ),
        met: r.intake.ratio_p50 <= 1.3,
    }];
    let worst_init = r
        .functions
        .iter()
        .max_by(|a, b| a.init_ms.total_cmp(&b.init_ms))
        .expect("functions measured");
    targets.push(Target {
        target: "init at most 1.5x the bare function's".into(),
        measured: format!(
            "slowest {} {:.1} ms, {:.2}x the bare {:.1} ms",
            worst_init.function,
            worst_init.init_ms,
            worst_init.init_ms / r.bare.init_ms,
            r.bare.init_ms
        ),
        met: worst_init.init_ms <= 1.5 * r.bare.init_ms,
    });
    let worst_peak = r
        .functions
        .iter()
        .max_by(|a, b| a.peak_mib.total_cmp(&b.peak_mib))
        .expect("functions measured");
    targets.push(Target {
        target: "peak memory under 32 MiB for every function".into(),
        measured: format!(
            "largest {} {:.1} MiB",
            worst_peak.function, worst_peak.peak_mib
        ),
        met: worst_peak.peak_mib < 32.0,
    });
    for rate in &r.rates {
        targets.push(Target {
            target: format!(
                "time to outcome p50 within 2x the floor at {} orders/s",
                rate.rate
            ),
            measured: format!(
                "{:.0} ms, {:.2}x the {:.0} ms floor",
                rate.outcome_ms.p50,
                rate.outcome_ms.p50 / r.outcome_floor_p50_ms,
                r.outcome_floor_p50_ms
            ),
            met: rate.outcome_ms.p50 <= 2.0 * r.outcome_floor_p50_ms && rate.undecided == 0,
        });
    }
    targets.push(Target {
        target: "cost within 1.2x of the floor, logs included (validated, 10 orders/s)".into(),
        measured: format!(
            "${:.2} per million, {:.2}x the ${:.2} floor",
            r.validated.cost_per_million,
            r.validated.cost_per_million / r.floor_per_million,
            r.floor_per_million
        ),
        met: r.validated.cost_per_million <= 1.2 * r.floor_per_million,
    });
    targets.push(Target {
        target: "fewer requests per order than with batch size 1".into(),
        measured: format!(
            "{:.2} against {:.2}",
            r.validated.requests_per_order, r.validated_batch_size_1.requests_per_order
        ),
        met: r.validated.requests_per_order < r.validated_batch_size_1.requests_per_order,
    });
    targets
}

fn cost_table(out: &mut String, columns: &[(&str, &[Line])]) {
    let _ = write!(out, "| per order | ");
    for (name, _) in columns {
        let _ = write!(out, "{name}: quantity | $ per million | ");
    }
    let _ = writeln!(out, "\n|---|{}", "---:|---:|".repeat(columns.len()));
    for (i, line) in columns[0].1.iter().enumerate() {
        let _ = write!(out, "| {} |", line.item);
        for (_, lines) in columns {
            let _ = write!(
                out,
                " {:.4} | {:.3} |",
                lines[i].quantity,
                lines[i].per_million()
            );
        }
        let _ = writeln!(out);
    }
    let _ = write!(out, "| **total** |");
    for (_, lines) in columns {
        let _ = write!(out, " | **{:.2}** |", cost::total(lines));
    }
    let _ = writeln!(out, "\n");
}

pub fn markdown(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Benchmark results\n\n{} on {}; release builds; devstack (moto) as AWS.\n",
        r.date, r.machine
    );
    let _ = writeln!(out, "## Targets\n\n| target | measured | |\n|---|---|---|");
    for t in &r.targets {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            t.target,
            t.measured,
            if t.met { "met" } else { "**missed**" }
        );
    }
    let i = &r.intake;
    let _ = writeln!(
        out,
        "\n## Intake (10 orders/s, from order-api's own invocation records)\n"
    );
    let _ = writeln!(out, "| ms | p50 | p99 |\n|---|---:|---:|");
    let _ = writeln!(
        out,
        "| order-api's time per POST | {:.2} | {:.2} |",
        i.invocation_ms.p50, i.invocation_ms.p99
    );
    let _ = writeln!(
        out,
        "| its TransactWriteItems | {:.2} | {:.2} |",
        i.transaction_ms.p50, i.transaction_ms.p99
    );
    let _ = writeln!(
        out,
        "| POST end to end, through the local HTTP API (context) | {:.2} | {:.2} |",
        i.post_ms.p50, i.post_ms.p99
    );
    let _ = writeln!(
        out,
        "\n## Time to outcome (202 to decision, from each order's history)\n"
    );
    let _ = writeln!(
        out,
        "| orders/s | accepted | undecided | POST p50 ms | outcome p50 ms | p90 | p99 |\n|---:|---:|---:|---:|---:|---:|---:|"
    );
    for rate in &r.rates {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.0} |",
            rate.rate,
            rate.accepted,
            rate.undecided,
            rate.post_ms.p50,
            rate.outcome_ms.p50,
            rate.outcome_ms.p90,
            rate.outcome_ms.p99
        );
    }
    let _ = writeln!(
        out,
        "\nFloor: {:.0} ms at p50 (one DynamoDB stream poll, four a second; no batching windows). \
         Saturation: **{:.1} orders/s decided**, the limit of the emulator on this machine, not of AWS.\n\n![time to outcome](outcome.svg)\n",
        r.outcome_floor_p50_ms, r.saturation_orders_per_second
    );
    let _ = writeln!(
        out,
        "## AWS requests per order, counted by each function's SDK interceptor\n"
    );
    let _ = writeln!(
        out,
        "| function | operation | validated | rejected | validated, batch size 1 |\n|---|---|---:|---:|---:|"
    );
    let mut keys: Vec<(&String, &String)> = Vec::new();
    for flow in [&r.validated, &r.rejected, &r.validated_batch_size_1] {
        for (function, ops) in &flow.sdk_per_order {
            for op in ops.keys() {
                if !keys.contains(&(function, op)) {
                    keys.push((function, op));
                }
            }
        }
    }
    keys.sort();
    let get = |flow: &crate::Flow, f: &String, op: &String| {
        flow.sdk_per_order
            .get(f)
            .and_then(|o| o.get(op))
            .copied()
            .unwrap_or(0.0)
    };
    for (f, op) in keys {
        let _ = writeln!(
            out,
            "| {f} | {op} | {:.2} | {:.2} | {:.2} |",
            get(&r.validated, f, op),
            get(&r.rejected, f, op),
            get(&r.validated_batch_size_1, f, op)
        );
    }
    let _ = writeln!(
        out,
        "\nAll billed requests per order (functions', Lambda's pollers', the API request; stream reads by Lambda are free): \
         validated **{:.2}**, rejected {:.2}, validated with batch size 1 {:.2}.\n",
        r.validated.requests_per_order,
        r.rejected.requests_per_order,
        r.validated_batch_size_1.requests_per_order
    );
    let _ = writeln!(
        out,
        "The functions' requests per order, counted by their SDK / seen by the emulators: validated {:.2} / {:.2}, \
         rejected {:.2} / {:.2}, batch size 1 {:.2} / {:.2}.\n",
        r.validated.sdk_requests_per_order,
        r.validated.function_requests_seen_per_order,
        r.rejected.sdk_requests_per_order,
        r.rejected.function_requests_seen_per_order,
        r.validated_batch_size_1.sdk_requests_per_order,
        r.validated_batch_size_1.function_requests_seen_per_order
    );
    let _ = writeln!(
        out,
        "## Cost per million orders (us-east-1 list prices, docs/prices.md)\n"
    );
    cost_table(
        &mut out,
        &[
            ("validated", &r.validated.cost),
            ("rejected", &r.rejected.cost),
            ("batch size 1", &r.validated_batch_size_1.cost),
            ("floor", &r.floor),
        ],
    );
    let _ = writeln!(out, "![cost per million orders](cost.svg)\n");
    let _ = writeln!(
        out,
        "## Functions (release builds, each alone on a Runtime API of the benchmark's)\n"
    );
    let _ = writeln!(
        out,
        "| function | binary MB | init ms | first invocation ms | warm ms | peak MiB |\n|---|---:|---:|---:|---:|---:|"
    );
    for f in r.functions.iter().chain([&r.bare]) {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} |",
            f.function,
            f.binary_bytes as f64 / 1e6,
            f.init_ms,
            f.first_invocation_ms,
            f.warm_invocation_ms,
            f.peak_mib
        );
    }
    let _ = writeln!(
        out,
        "\n## Scale on paper (validated orders; quota divided by its use per order)\n"
    );
    let _ = writeln!(
        out,
        "| quota | default | raised | per order | orders/s at default | at raised |\n|---|---:|---:|---:|---:|---:|"
    );
    for q in &r.quotas {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.4} | {:.0} | {:.0} |",
            q.limit,
            q.default,
            q.raised,
            q.per_order,
            q.orders_per_second_default,
            q.orders_per_second_raised
        );
    }
    for raised in [false, true] {
        if let Some(q) = cost::first_cap(&r.quotas, raised) {
            let cap = if raised {
                q.orders_per_second_raised
            } else {
                q.orders_per_second_default
            };
            let _ = writeln!(
                out,
                "\nFirst cap at {} quotas: **{}**, {:.0} orders/s.",
                if raised { "raised" } else { "default" },
                q.limit,
                cap
            );
        }
    }
    out
}

/// The smallest of 1, 2, 4, 5 and 8 times a power of ten at least `v`: axes end on a round
/// number that four ticks divide evenly.
fn nice(v: f64) -> f64 {
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 4.0, 5.0, 8.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|&candidate| candidate >= v)
        .unwrap_or(10.0 * power)
}

/// A named line in a chart: its name, colour and points.
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// A small SVG chart: x and y axes from zero, one polyline per series, a legend.
fn chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let (w, h, left, bottom, top, right) = (640.0, 360.0, 60.0, 40.0, 40.0, 160.0);
    let points = series.iter().flat_map(|(_, _, p)| p.iter());
    let x_max = nice(points.clone().map(|p| p.0).fold(1e-9, f64::max) * 1.05);
    let y_max = nice(points.map(|p| p.1).fold(1e-9, f64::max) * 1.05);
    let x = |v: f64| left + v / x_max * (w - left - right);
    let y = |v: f64| h - bottom - v / y_max * (h - top - bottom);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="{left}" y="22" font-size="14">{title}</text>"#
    );
    let _ = write!(
        svg,
        r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="black"/>"#,
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    for i in 0..=4 {
        let (xv, yv) = (x_max * i as f64 / 4.0, y_max * i as f64 / 4.0);
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{xv:.0}</text><text x="{}" y="{}" text-anchor="end">{yv:.0}</text>"#,
            x(xv),
            h - bottom + 16.0,
            left - 6.0,
            y(yv) + 4.0
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{x_label}</text><text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">{y_label}</text>"#,
        (left + w - right) / 2.0,
        h - 6.0,
        h / 2.0,
        h / 2.0
    );
    for (i, (name, colour, points)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|(a, b)| format!("{:.1},{:.1}", x(*a), y(*b)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for (a, b) in points {
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                x(*a),
                y(*b)
            );
        }
        let ly = top + 18.0 * i as f64;
        let _ = write!(
            svg,
            r#"<rect x="{}" y="{}" width="12" height="12" fill="{colour}"/><text x="{}" y="{}">{name}</text>"#,
            w - right + 12.0,
            ly,
            w - right + 30.0,
            ly + 10.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

pub fn outcome_chart(r: &Results) -> String {
    let at = |pick: fn(&crate::Percentiles) -> f64| {
        r.rates
            .iter()
            .map(|rate| (rate.rate, pick(&rate.outcome_ms)))
            .collect::<Vec<_>>()
    };
    let floor: Vec<(f64, f64)> = r
        .rates
        .iter()
        .map(|rate| (rate.rate, r.outcome_floor_p50_ms))
        .collect();
    chart(
        "Time to outcome (202 to decision)",
        "orders per second",
        "ms",
        &[
            ("p50", "#1f77b4", at(|p| p.p50)),
            ("p90", "#ff7f0e", at(|p| p.p90)),
            ("p99", "#d62728", at(|p| p.p99)),
            ("floor p50", "#7f7f7f", floor),
        ],
    )
}

/// Horizontal bars: each service's dollars per million validated orders, measured beside floor.
pub fn cost_chart(r: &Results) -> String {
    let (w, row, left) = (640.0, 34.0, 230.0);
    let lines = &r.validated.cost;
    let h = 60.0 + row * lines.len() as f64;
    let max = lines
        .iter()
        .zip(&r.floor)
        .map(|(a, b)| a.per_million().max(b.per_million()))
        .fold(1e-9, f64::max);
    let scale = |v: f64| v / max * (w - left - 70.0);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="10" y="22" font-size="14">$ per million validated orders: measured ${:.2} (blue), floor ${:.2} (grey)</text>"#,
        r.validated.cost_per_million, r.floor_per_million
    );
    for (i, (line, floor)) in lines.iter().zip(&r.floor).enumerate() {
        let y = 40.0 + row * i as f64;
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{left}" y="{y}" width="{:.1}" height="12" fill="#1f77b4"/><rect x="{left}" y="{}" width="{:.1}" height="12" fill="#aaaaaa"/><text x="{:.1}" y="{}">{:.2}</text>"##,
            left - 8.0,
            y + 16.0,
            line.item,
            scale(line.per_million()),
            y + 13.0,
            scale(floor.per_million()),
            left + scale(line.per_million().max(floor.per_million())) + 6.0,
            y + 16.0,
            line.per_million()
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice(21.0), 40.0);
        assert_eq!(nice(18.0), 20.0);
        assert_eq!(nice(460.0), 500.0);
        assert_eq!(nice(0.3), 0.4);
    }
}
