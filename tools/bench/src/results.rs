//! What a run measured, derived from the windows the load generator recorded: percentiles, each
//! rate's flow (requests, meter and cost per order), intake against its transaction, and the
//! whole run's results as they are written to `bench/results/latest.json`.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::load::{self, Window};
use crate::{cost, harness, report};

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub count: u64,
}

/// `histogram` in `unit`s per recorded value, as milliseconds.
pub fn percentiles(histogram: &Histogram<u64>, per_ms: f64) -> Percentiles {
    let at = |q: f64| histogram.value_at_quantile(q) as f64 / per_ms;
    Percentiles {
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: histogram.max() as f64 / per_ms,
        count: histogram.len(),
    }
}

#[derive(Debug, Serialize)]
pub struct Rate {
    pub rate: f64,
    pub accepted: usize,
    pub failed: u64,
    pub undecided: usize,
    pub validated: usize,
    pub rejected: usize,
    pub post_ms: Percentiles,
    pub outcome_ms: Percentiles,
    /// What the orders accepted at this rate cost, logs included, per million.
    pub cost_per_million: f64,
}

#[derive(Debug, Serialize)]
pub struct Flow {
    pub orders: usize,
    /// Requests per order by function and operation, counted by the functions' SDK interceptor.
    pub sdk_per_order: BTreeMap<String, BTreeMap<String, f64>>,
    /// Every request per order the emulators served (functions and Lambda's pollers).
    pub meter_per_order: BTreeMap<String, f64>,
    pub requests_per_order: f64,
    /// The functions' requests as their SDK counted them, and as the emulators saw them: the
    /// interceptor's count checked against the other end.
    pub sdk_requests_per_order: f64,
    pub function_requests_seen_per_order: f64,
    pub cost: Vec<cost::Line>,
    pub cost_per_million: f64,
    #[serde(skip)]
    pub window: Window,
}

pub fn flow(window: Window, orders: usize) -> Flow {
    let n = orders.max(1) as f64;
    let sdk_per_order = window
        .sdk
        .iter()
        .map(|(f, ops)| {
            (
                f.clone(),
                ops.iter().map(|(op, c)| (op.clone(), c / n)).collect(),
            )
        })
        .collect();
    let meter_per_order: BTreeMap<String, f64> = window
        .meter
        .iter()
        .filter(|(k, _)| !k.contains("DynamoDBStreams"))
        .map(|(k, c)| (k.clone(), c / n))
        .collect();
    // A request, not a billed quantity beyond it (entries, items, capacity units).
    let is_request =
        |k: &str| !k.ends_with("Units") && !k.ends_with(".entries") && !k.ends_with(".items");
    // Billed requests: every request but the free stream reads of Lambda's trigger, and the API's.
    let requests_per_order = meter_per_order
        .iter()
        .filter(|(k, _)| is_request(k))
        .map(|(_, c)| c)
        .sum::<f64>()
        + 1.0;
    let function_requests_seen_per_order = meter_per_order
        .iter()
        .filter(|(k, _)| !k.starts_with("platform ") && is_request(k))
        .map(|(_, c)| c)
        .sum();
    let sdk_requests_per_order = window
        .sdk
        .values()
        .flat_map(|ops| ops.values())
        .sum::<f64>()
        / n;
    let cost = cost::measured(&window, n);
    Flow {
        orders,
        sdk_per_order,
        meter_per_order,
        requests_per_order,
        sdk_requests_per_order,
        function_requests_seen_per_order,
        cost_per_million: cost::total(&cost),
        cost,
        window,
    }
}

/// The validated flow at 10 orders/s with a batching window on every queue.
#[derive(Debug, Serialize)]
pub struct Windowed {
    pub seconds: f64,
    pub outcome_ms: Percentiles,
    pub flow: Flow,
}

#[derive(Debug, Serialize)]
pub struct Intake {
    pub invocation_ms: Percentiles,
    pub transaction_ms: Percentiles,
    pub ratio_p50: f64,
    pub post_ms: Percentiles,
}

#[derive(Debug, Serialize)]
pub struct Results {
    pub date: String,
    pub machine: String,
    pub intake: Intake,
    pub rates: Vec<Rate>,
    pub outcome_floor_p50_ms: f64,
    pub saturation_orders_per_second: f64,
    /// The cost per million orders while overloaded: the curve's point at saturation.
    pub saturation_cost_per_million: f64,
    pub validated: Flow,
    pub rejected: Flow,
    pub validated_batch_size_1: Flow,
    pub validated_window: Windowed,
    pub floor: Vec<cost::Line>,
    pub floor_per_million: f64,
    pub functions: Vec<harness::Figures>,
    pub bare: harness::Figures,
    pub quotas: Vec<cost::Quota>,
    pub targets: Vec<report::Target>,
}

pub fn intake(window: &Window, post: &Percentiles) -> Intake {
    let (mut invocation, mut transaction) = (load::histogram(), load::histogram());
    for (total, tx) in &window.intake_ms {
        invocation.saturating_record((total * 1000.0) as u64);
        transaction.saturating_record((tx * 1000.0) as u64);
    }
    let (invocation_ms, transaction_ms) = (
        percentiles(&invocation, 1000.0),
        percentiles(&transaction, 1000.0),
    );
    Intake {
        ratio_p50: invocation_ms.p50 / transaction_ms.p50.max(f64::MIN_POSITIVE),
        invocation_ms,
        transaction_ms,
        post_ms: post.clone(),
    }
}

/// Orders decided per second while overloaded: from the first order created to the last decided.
pub fn saturation(decided: &[load::Decision]) -> f64 {
    let first = decided.iter().map(|d| d.created).min();
    let last = decided.iter().map(|d| d.decided).max();
    match (first, last) {
        (Some(first), Some(last)) if last > first => {
            decided.len() as f64 / ((last - first).num_milliseconds() as f64 / 1000.0)
        }
        _ => 0.0,
    }
}
