//! The results as Markdown, with each target met or missed.

use std::fmt::Write;

use serde::Serialize;

use crate::cost::{self, Line};
use crate::{INIT_ROUNDS, Results};

/// "About 1 KB" of logs per order: 1,024 bytes and a tenth more.
const LOG_BYTES_PER_ORDER: f64 = 1.1 * 1024.0;

const OVERLOAD_NOTE: &str = "orders offered faster than the stack decides them: batches are full";

#[derive(Debug, Serialize)]
pub struct Target {
    pub target: String,
    pub measured: String,
    pub met: bool,
    /// What the figures say about a miss; docs/benchmarks.md says the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// The items over their floor, largest first, as "item +$x.xx".
fn excess_over_floor(measured: &[Line], floor: &[Line]) -> String {
    let mut excess: Vec<(&str, f64)> = measured
        .iter()
        .zip(floor)
        .map(|(m, f)| (m.item, m.per_million() - f.per_million()))
        .filter(|(_, dollars)| *dollars >= 0.005)
        .collect();
    excess.sort_by(|a, b| b.1.total_cmp(&a.1));
    excess
        .iter()
        .map(|(item, dollars)| format!("{item} +${dollars:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn targets(r: &Results) -> Vec<Target> {
    let mut targets = vec![Target {
        target: "order API's own time at most 1.3x its DynamoDB transaction, p50".into(),
        measured: format!(
            "{:.2}x ({:.2} ms / {:.2} ms)",
            r.intake.ratio_p50, r.intake.invocation_ms.p50, r.intake.transaction_ms.p50
        ),
        met: r.intake.ratio_p50 <= 1.3,
        why: None,
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
        why: None,
    });
    let largest = r
        .functions
        .iter()
        .max_by_key(|f| f.binary_bytes)
        .expect("functions measured");
    let size_ratio = largest.binary_bytes as f64 / r.bare.binary_bytes as f64;
    targets.push(Target {
        target: "binaries at most 3x the bare function's".into(),
        measured: format!(
            "largest {} {:.1} MB, {:.1}x the bare {:.1} MB",
            largest.function,
            largest.binary_bytes as f64 / 1e6,
            size_ratio,
            r.bare.binary_bytes as f64 / 1e6
        ),
        met: size_ratio <= 3.0,
        why: Some(
            "the AWS SDK's generated code for each service a function calls (DynamoDB's is most \
             of it); whole-program LTO and opt-level \"s\" were measured and not kept \
             (docs/benchmarks.md)"
                .into(),
        ),
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
        why: None,
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
            // Every order decided, and validated: a rejection here is a deadline passed.
            met: rate.outcome_ms.p50 <= 2.0 * r.outcome_floor_p50_ms
                && rate.undecided == 0
                && rate.rejected == 0,
            why: Some(format!(
                "{} of {} orders undecided, {} rejected (a deadline passed)",
                rate.undecided, rate.accepted, rate.rejected
            )),
        });
    }
    let log_bytes = cost::log_bytes_per_order(&r.validated.cost);
    targets.push(Target {
        target: "logs at most about 1 KB per order at the default level (validated, 10 orders/s)"
            .into(),
        measured: format!("{:.0} bytes", log_bytes),
        met: log_bytes <= LOG_BYTES_PER_ORDER,
        why: None,
    });
    targets.push(Target {
        target: "cost within 1.2x of the floor, logs included (validated, 10 orders/s)".into(),
        measured: format!(
            "${:.2} per million, {:.2}x the ${:.2} floor",
            r.validated.cost_per_million,
            r.validated.cost_per_million / r.floor_per_million,
            r.floor_per_million
        ),
        met: r.validated.cost_per_million <= 1.2 * r.floor_per_million,
        why: Some(format!(
            "over the floor: {}; at saturation, where batches are full, {:.2}x (what would meet \
             it: docs/benchmarks.md)",
            excess_over_floor(&r.validated.cost, &r.floor),
            r.saturation_cost_per_million / r.floor_per_million
        )),
    });
    targets.push(Target {
        target: "fewer requests per order than with batch size 1".into(),
        measured: format!(
            "{:.2} against {:.2}",
            r.validated.requests_per_order, r.validated_batch_size_1.requests_per_order
        ),
        met: r.validated.requests_per_order < r.validated_batch_size_1.requests_per_order,
        why: None,
    });
    targets
}

/// (orders/s, $ per million) at each arrival rate below saturation, then at saturation: a rate
/// at or past it was not decided at that rate, so it is no point of the curve.
pub fn cost_curve(r: &Results) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = r
        .rates
        .iter()
        .filter(|rate| rate.rate < r.saturation_orders_per_second)
        .map(|rate| (rate.rate, rate.cost_per_million))
        .collect();
    points.push((
        r.saturation_orders_per_second,
        r.saturation_cost_per_million,
    ));
    points
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

/// A section's heading and the head of its table: the first `left` columns (names) aligned left,
/// the others (figures) right.
fn table_head(out: &mut String, heading: &str, columns: &[&str], left: usize) {
    let align: Vec<&str> = (0..columns.len())
        .map(|i| if i < left { "---" } else { "---:" })
        .collect();
    let _ = writeln!(
        out,
        "\n## {heading}\n\n| {} |\n|{}|",
        columns.join(" | "),
        align.join("|")
    );
}

pub fn markdown(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Benchmark results\n\n{} on {}; release builds; devstack (moto) as AWS.\n",
        r.date, r.machine
    );
    table_head(&mut out, "Targets", &["target", "measured", ""], 3);
    for t in &r.targets {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            t.target,
            t.measured,
            if t.met { "met" } else { "**missed**" }
        );
    }
    for t in r.targets.iter().filter(|t| !t.met) {
        if let Some(why) = &t.why {
            let _ = writeln!(out, "\n- Missed, {}: {why}.", t.target);
        }
    }
    let i = &r.intake;
    table_head(
        &mut out,
        "Intake (10 orders/s, from order-api's own invocation records)",
        &["ms", "p50", "p99"],
        1,
    );
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
    table_head(
        &mut out,
        "Time to outcome (202 to decision, from each order's history)",
        &[
            "orders/s",
            "accepted",
            "undecided",
            "POST p50 ms",
            "outcome p50 ms",
            "p90",
            "p99",
        ],
        0,
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
    let w = &r.validated_window;
    let at_10 = r.rates.iter().find(|rate| rate.rate == 10.0);
    let _ = writeln!(
        out,
        "With a batching window of {} s on every queue (`QueueBatchingWindowSeconds={}`), 10 orders/s: outcome p50 **{:.0} ms**, \
         p99 {:.0} ms (without: {}), {:.2} billed requests and ${:.2} per million orders (without: {:.2} and ${:.2}).\n",
        w.seconds,
        w.seconds,
        w.outcome_ms.p50,
        w.outcome_ms.p99,
        at_10.map_or("not measured".to_owned(), |rate| format!(
            "{:.0} ms and {:.0} ms",
            rate.outcome_ms.p50, rate.outcome_ms.p99
        )),
        w.flow.requests_per_order,
        w.flow.cost_per_million,
        r.validated.requests_per_order,
        r.validated.cost_per_million
    );
    table_head(
        &mut out,
        "AWS requests per order, counted by each function's SDK interceptor",
        &[
            "function",
            "operation",
            "validated",
            "rejected",
            "validated, batch size 1",
        ],
        2,
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
         validated **{:.2}**, rejected {:.2}, validated with batch size 1 {:.2}, validated with a {} s batching window {:.2}.\n",
        r.validated.requests_per_order,
        r.rejected.requests_per_order,
        r.validated_batch_size_1.requests_per_order,
        r.validated_window.seconds,
        r.validated_window.flow.requests_per_order
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
    let window = format!("window {} s", r.validated_window.seconds);
    cost_table(
        &mut out,
        &[
            ("validated", &r.validated.cost),
            ("rejected", &r.rejected.cost),
            ("batch size 1", &r.validated_batch_size_1.cost),
            (&window, &r.validated_window.flow.cost),
            ("floor", &r.floor),
        ],
    );
    let _ = writeln!(out, "![cost per million orders](cost.svg)\n");
    table_head(
        &mut out,
        "Cost per million validated orders by arrival rate (logs included)",
        &["orders/s", "$ per million", "x the floor"],
        0,
    );
    for (rate, per_million) in cost_curve(r) {
        let _ = writeln!(
            out,
            "| {rate:.1} | {per_million:.2} | {:.2} |",
            per_million / r.floor_per_million
        );
    }
    let _ = writeln!(
        out,
        "\nThe last row is the saturation rate ({OVERLOAD_NOTE}).\n\n![cost by arrival rate](cost-curve.svg)\n"
    );
    table_head(
        &mut out,
        "Functions (release builds, each alone on a Runtime API of the benchmark's)",
        &[
            "function",
            "binary MB",
            "init ms",
            "first invocation ms",
            "warm ms",
            "peak MiB",
        ],
        1,
    );
    for f in r.functions.iter().chain([&r.bare]) {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.2} | {:.1} | {:.2} | {:.1} |",
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
        "\nInit: the median of {INIT_ROUNDS} starts of each binary, interleaved with the others' (process start to its first `GET /next`, stopped there). First and warm invocation: medians of the cold starts invoked on their sample events."
    );
    table_head(
        &mut out,
        "Scale on paper (validated orders; quota divided by its use per order)",
        &[
            "quota",
            "default",
            "raised",
            "per order",
            "orders/s at default",
            "at raised",
        ],
        1,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn line(item: &'static str, per_million: f64) -> Line {
        Line {
            item,
            quantity: per_million,
            unit_price: 1e-6,
        }
    }

    #[test]
    fn the_excess_over_the_floor_lists_the_items_above_it_largest_first() {
        let measured = [line("a", 1.0), line("b", 3.5), line("c", 2.0)];
        let floor = [line("a", 1.0), line("b", 1.0), line("c", 1.5)];
        assert_eq!(excess_over_floor(&measured, &floor), "b +$2.50, c +$0.50");
    }
}
