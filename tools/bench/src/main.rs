//! `make bench`: what an order costs, in time, AWS requests, memory and money, each beside its
//! limit, measured on a local stack of the benchmark's own running the release binaries. Writes
//! bench/results/latest.{json,md} and SVG charts; prints the table and each target met or missed.

mod charts;
mod client;
mod cost;
mod harness;
mod load;
mod report;
mod results;
mod stack;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::client::Http;
use crate::load::{REJECTED, VALIDATED, Window};
use crate::results::{Flow, Rate, Results, Windowed, flow, intake, percentiles, saturation};
use crate::stack::Stack;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub fn fail<T>(message: String) -> Result<T, Error> {
    Err(message.into())
}

/// Arrival rates below the local stack's saturation, orders per second: the cost curve's points
/// with the saturation rate, and the time to outcome's.
const RATES: [f64; 5] = [1.0, 2.0, 5.0, 10.0, 20.0];
/// Above what two cores decide: the stack's saturation rate is what it decides meanwhile.
const OVERLOAD_RATE: f64 = 60.0;
/// Lambda polls a stream shard four times a second; the template sets no batching window, and
/// SQS long polling answers as a message arrives. An order waits for one stream poll: a quarter
/// second at most, an eighth at the median.
const OUTCOME_FLOOR_P50_MS: f64 = 125.0;
/// The batching window measured beside none (`QueueBatchingWindowSeconds`), at 10 orders/s.
const WINDOW_SECONDS: f64 = 1.0;

/// What an order costs, in time, AWS requests, memory and money, each beside its limit, measured
/// on a local stack of the benchmark's own running the release binaries.
#[derive(Debug, clap::Parser)]
#[command(name = "bench", version)]
struct Options {
    /// How long each arrival rate (5, 10 and 20 orders/s) runs
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0, value_parser = positive)]
    rate_seconds: f64,
    /// Cold starts per function, each invoked on its sample event: first and warm invocation
    /// are their medians, peak memory the largest (init is measured apart, 101 starts each)
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    cold_starts: u16,
    /// Where latest.json, latest.md and the charts are written
    #[arg(long, value_name = "DIR", default_value = "bench/results")]
    out: PathBuf,
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 => Ok(seconds),
        _ => Err("a number of seconds above 0".into()),
    }
}

/// The sample event each function is measured on (`events/`, the same as `make sam-local`'s).
const SAMPLES: [(&str, &str); 10] = [
    ("order-api", "place-order.json"),
    ("decision-timer", "order-created.json"),
    ("order-replies", "replies.json"),
    ("order-notifier", "order-validated.json"),
    ("replica-updater", "updates.json"),
    ("outbox-relay", "inserts-and-a-ttl-expiry.json"),
    ("consumer-validator", "order-created.json"),
    ("restaurant-validator", "order-created.json"),
    ("consumer-api", "put-consumer.json"),
    ("restaurant-api", "put-restaurant.json"),
];

/// The validated flow on a stack of its own, for a variant of the template or its parameters.
struct Variant<'a> {
    http: &'a Http,
    root: &'a Path,
    bin_dir: &'a Path,
    seconds: f64,
}

impl Variant<'_> {
    /// Starts the variant's stack, warms it up, runs 10 validated orders/s, stops it.
    async fn validated_at_10(
        &self,
        template: &Path,
        logs: &Path,
        parameters: &str,
    ) -> Result<(Rate, Window), Error> {
        let stack = Stack::start(self.root, self.bin_dir, template, logs, parameters)?;
        run_rate(self.http, &stack, VALIDATED, 5.0, 4.0).await?;
        let (rate, window, _) = run_rate(self.http, &stack, VALIDATED, 10.0, self.seconds).await?;
        stack.stop();
        Ok((rate, window))
    }
}

/// Runs `rate` orders per second of `body` for `seconds`, waits until the stack is quiet (the
/// window for the counts ends there, before the answers are read), then reads every decision.
async fn run_rate(
    http: &Http,
    stack: &Stack,
    body: &'static str,
    rate: f64,
    seconds: f64,
) -> Result<(Rate, Window, Vec<load::Decision>), Error> {
    let before = load::snapshot(http, stack).await?;
    let sent = load::open_loop(http, stack, body, rate, seconds).await;
    load::quiet(
        http,
        stack,
        Duration::from_secs(2),
        Duration::from_secs(180),
    )
    .await?;
    let after = load::snapshot(http, stack).await?;
    let window = load::window(stack, &before, &after)?;
    let decisions = load::decisions(http, stack, &sent.accepted, Duration::from_secs(60)).await;
    let mut outcome = load::histogram();
    let mut decided = Vec::new();
    for d in decisions.into_iter().flatten() {
        outcome.saturating_record(
            (d.decided - d.created)
                .num_microseconds()
                .unwrap_or(0)
                .max(1) as u64,
        );
        decided.push(d);
    }
    let rate = Rate {
        rate,
        accepted: sent.accepted.len(),
        failed: sent.failed,
        undecided: sent.accepted.len() - decided.len(),
        validated: decided.iter().filter(|d| d.status == "VALIDATED").count(),
        rejected: decided.iter().filter(|d| d.status == "REJECTED").count(),
        post_ms: percentiles(&sent.post_us, 1000.0),
        outcome_ms: percentiles(&outcome, 1000.0),
        cost_per_million: cost::total(&cost::measured(&window, sent.accepted.len().max(1) as f64)),
    };
    println!(
        "  {:>5.1} orders/s: {} accepted ({} validated, {} rejected, {} undecided), {} failed; POST p50 {:.1} ms; outcome p50 {:.0} ms p99 {:.0} ms",
        rate.rate,
        rate.accepted,
        rate.validated,
        rate.rejected,
        rate.undecided,
        rate.failed,
        rate.post_ms.p50,
        rate.outcome_ms.p50,
        rate.outcome_ms.p99
    );
    Ok((rate, window, decided))
}

/// Starts of each function for its init alone, interleaved with the others' and the bare
/// function's: a slow moment of the machine slows all of them, not one.
const INIT_ROUNDS: usize = 101;

async fn functions(
    cold: &ColdStarts<'_>,
    bin_dir: &Path,
    root: &Path,
) -> Result<(Vec<harness::Figures>, harness::Figures), Error> {
    let stack = cold.stack;
    let binaries = stack.state["binaries"]
        .as_object()
        .ok_or("devstack's state names no binaries")?;
    let mut measured = Vec::new();
    let mut starts = Vec::new();
    for (binary, sample) in SAMPLES {
        let (logical_id, _) = binaries
            .iter()
            .find(|(_, b)| b.as_str() == Some(binary))
            .ok_or_else(|| format!("the template has no function {binary}"))?;
        let environment: BTreeMap<String, String> =
            serde_json::from_value(stack.state["environments"][logical_id].clone())?;
        let event = std::fs::read(root.join("events").join(binary).join(sample))?;
        let log = stack.logs.join(format!("harness-{binary}.txt"));
        let figures = cold
            .measure(binary, &bin_dir.join(binary), &environment, &event, &log)
            .await?;
        print_figures(binary, &figures);
        measured.push(figures);
        let init_log = stack.logs.join(format!("harness-{binary}-init.txt"));
        starts.push((binary, bin_dir.join(binary), environment, init_log));
    }
    let log = stack.logs.join("harness-bare-echo.txt");
    let mut bare = cold
        .measure(
            "bare-echo",
            &bin_dir.join("bare-echo"),
            &BTreeMap::new(),
            b"{}",
            &log,
        )
        .await?;
    print_figures("bare-echo (baseline)", &bare);
    let init_log = stack.logs.join("harness-bare-echo-init.txt");
    starts.push((
        "bare-echo",
        bin_dir.join("bare-echo"),
        BTreeMap::new(),
        init_log,
    ));

    println!("Init alone, {INIT_ROUNDS} starts of each, interleaved (medians):");
    cold.settle().await?;
    let mut inits = vec![Vec::with_capacity(INIT_ROUNDS); starts.len()];
    for _ in 0..INIT_ROUNDS {
        for ((function, binary, environment, log), times) in starts.iter().zip(&mut inits) {
            let init = harness::init_only(function, binary, environment, log).await?;
            times.push(init.as_secs_f64() * 1000.0);
        }
    }
    for (figures, times) in measured.iter_mut().chain([&mut bare]).zip(&mut inits) {
        times.sort_by(f64::total_cmp);
        figures.init_ms = times[times.len() / 2];
        println!(
            "  {:<22} init {:>5.2} ms",
            figures.function, figures.init_ms
        );
    }
    Ok((measured, bare))
}

/// `times` cold starts of a function, each on a quiet stack: what the previous one's invocations
/// set off (events published, validators run) would compete with it for the CPU.
struct ColdStarts<'a> {
    http: &'a Http,
    stack: &'a Stack,
    times: usize,
}

impl ColdStarts<'_> {
    /// Until the stack is quiet: what an earlier invocation set off would compete for the CPU.
    /// Two still seconds: a timer's message is visible, not yet received, for up to a second of
    /// the emulator's long poll. Three minutes at most: a message handed back waits out the
    /// queue's visibility timeout (60 s) first.
    async fn settle(&self) -> Result<(), Error> {
        load::quiet(
            self.http,
            self.stack,
            Duration::from_secs(2),
            Duration::from_secs(180),
        )
        .await
    }

    async fn measure(
        &self,
        function: &str,
        binary: &Path,
        environment: &BTreeMap<String, String>,
        event: &[u8],
        log: &Path,
    ) -> Result<harness::Figures, Error> {
        let mut runs = Vec::with_capacity(self.times);
        for _ in 0..self.times {
            self.settle().await?;
            runs.push(
                harness::measure(function, binary, environment, event.to_vec().into(), log).await?,
            );
        }
        let median = |pick: fn(&harness::Figures) -> f64| {
            let mut values: Vec<f64> = runs.iter().map(pick).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        Ok(harness::Figures {
            function: function.to_owned(),
            binary_bytes: runs[0].binary_bytes,
            init_ms: median(|f| f.init_ms),
            first_invocation_ms: median(|f| f.first_invocation_ms),
            warm_invocation_ms: median(|f| f.warm_invocation_ms),
            peak_mib: runs.iter().map(|f| f.peak_mib).fold(0.0, f64::max),
        })
    }
}

fn print_figures(name: &str, f: &harness::Figures) {
    println!(
        "  {name:<22} {:>5.1} MB  init {:>5.1} ms  first {:>6.1} ms  warm {:>5.1} ms  peak {:>4.1} MiB",
        f.binary_bytes as f64 / 1e6,
        f.init_ms,
        f.first_invocation_ms,
        f.warm_invocation_ms,
        f.peak_mib
    );
}

/// Whether every batching window is `QueueBatchingWindowSeconds`, 0 unless overridden: the
/// outcome floor counts no window, and the run with one sets it.
fn windowless_by_default(template: &str) -> bool {
    let windows_by_parameter = template
        .lines()
        .filter(|line| {
            line.trim_start()
                .starts_with("MaximumBatchingWindowInSeconds:")
        })
        .all(|line| {
            line.trim() == "MaximumBatchingWindowInSeconds: !Ref QueueBatchingWindowSeconds"
        });
    let default = template
        .split("\n  QueueBatchingWindowSeconds:\n")
        .nth(1)
        .and_then(|spec| {
            spec.lines()
                .take_while(|l| l.starts_with("    "))
                .find(|l| l.trim().starts_with("Default:"))
        })
        .map(|l| l.trim().trim_start_matches("Default:").trim().to_owned());
    windows_by_parameter && default.as_deref().is_none_or(|d| d == "0")
}

/// The template with every event source's batch size 1: the flow without batching.
fn batch_size_1(root: &Path, logs: &Path) -> Result<PathBuf, Error> {
    let text = std::fs::read_to_string(root.join("template.yaml"))?;
    if !windowless_by_default(&text) {
        return fail("the template sets a batching window: the outcome floor must count it".into());
    }
    std::fs::create_dir_all(logs)?;
    let path = logs.join("template-batch-size-1.yaml");
    std::fs::write(&path, unbatched(&text))?;
    Ok(path)
}

fn unbatched(template: &str) -> String {
    template
        .lines()
        .map(|line| match line.split_once("BatchSize:") {
            Some((indent, _)) if indent.trim().is_empty() => format!("{indent}BatchSize: 1\n"),
            _ => format!("{line}\n"),
        })
        .collect()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cores} cores, {cpu}, {}", std::env::consts::ARCH)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let options = <Options as clap::Parser>::parse();
    let root = std::env::current_dir()?;
    let bin_dir = std::env::current_exe()?
        .parent()
        .ok_or("no binary folder")?
        .to_owned();
    let logs = root.join(".local/bench");
    let out = root.join(&options.out);
    let http = client::http();

    println!(
        "bench: a local stack of its own on the release binaries in {}",
        bin_dir.display()
    );
    let stack = Stack::start(
        &root,
        &bin_dir,
        &root.join("template.yaml"),
        &logs.join("stack"),
        "",
    )?;
    println!("Open-loop arrivals of validated orders:");
    run_rate(&http, &stack, VALIDATED, 5.0, 4.0).await?; // warm-up: instances, connections
    let mut rates = Vec::new();
    let mut validated = None;
    for rate in RATES {
        let (result, window, _) =
            run_rate(&http, &stack, VALIDATED, rate, options.rate_seconds).await?;
        if rate == 10.0 {
            validated = Some((window, result.accepted, result.post_ms.clone()));
        }
        rates.push(result);
    }
    let (validated_window, validated_orders, post) = validated.ok_or("no 10 orders/s run")?;
    println!(
        "Rejected orders (a restaurant no replica knows: accepted, then rejected by its context):"
    );
    let (rejected_rate, rejected_window, _) = run_rate(&http, &stack, REJECTED, 10.0, 10.0).await?;
    let rejected_orders = rejected_rate.accepted;
    println!("Overload, {OVERLOAD_RATE} orders/s for 10 s:");
    let (overload, _, decided) = run_rate(&http, &stack, VALIDATED, OVERLOAD_RATE, 10.0).await?;
    let saturation = saturation(&decided);
    println!("  saturation: {saturation:.1} orders decided per second");
    // Last: the sample events change the demo data (a consumer, a menu).
    println!(
        "Functions, one at a time on a Runtime API of the benchmark's (sample events from events/), {} cold starts each:",
        options.cold_starts
    );
    let (function_figures, bare) = functions(
        &ColdStarts {
            http: &http,
            stack: &stack,
            times: options.cold_starts.into(),
        },
        &bin_dir,
        &root,
    )
    .await?;
    stack.stop();

    println!("The same flow with every batch size 1:");
    let template = batch_size_1(&root, &logs)?;
    let variant = Variant {
        http: &http,
        root: &root,
        bin_dir: &bin_dir,
        seconds: options.rate_seconds,
    };
    let (unbatched_rate, unbatched_window) = variant
        .validated_at_10(&template, &logs.join("stack-batch-size-1"), "")
        .await?;
    println!("The same flow with a batching window of {WINDOW_SECONDS} s on every queue:");
    let (windowed_rate, windowed_window) = variant
        .validated_at_10(
            &root.join("template.yaml"),
            &logs.join("stack-window"),
            &format!("QueueBatchingWindowSeconds={WINDOW_SECONDS}"),
        )
        .await?;

    let intake = intake(&validated_window, &post);
    let validated = flow(validated_window, validated_orders);
    let quotas = cost::quotas(&validated.window, validated.orders.max(1) as f64);
    let floor = cost::floor();
    let mut results = Results {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        machine: machine(),
        intake,
        rates,
        outcome_floor_p50_ms: OUTCOME_FLOOR_P50_MS,
        saturation_orders_per_second: saturation,
        saturation_cost_per_million: overload.cost_per_million,
        validated,
        rejected: flow(rejected_window, rejected_orders),
        validated_batch_size_1: flow(unbatched_window, unbatched_rate.accepted),
        validated_window: Windowed {
            seconds: WINDOW_SECONDS,
            outcome_ms: windowed_rate.outcome_ms.clone(),
            flow: flow(windowed_window, windowed_rate.accepted),
        },
        floor_per_million: cost::total(&floor),
        floor,
        functions: function_figures,
        bare,
        quotas,
        targets: Vec::new(),
    };
    results.targets = report::targets(&results);
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("latest.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    let markdown = report::markdown(&results);
    std::fs::write(out.join("latest.md"), &markdown)?;
    std::fs::write(
        out.join("outcome.svg"),
        charts::outcome_chart(&results.rates, results.outcome_floor_p50_ms)?,
    )?;
    std::fs::write(
        out.join("cost.svg"),
        charts::cost_chart(&results.validated.cost, &results.floor)?,
    )?;
    std::fs::write(
        out.join("cost-curve.svg"),
        charts::cost_curve_chart(&report::cost_curve(&results), results.floor_per_million)?,
    )?;
    println!("\n{markdown}");
    println!(
        "Written: {}/latest.json, latest.md, outcome.svg, cost.svg, cost-curve.svg",
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        <Options as clap::CommandFactory>::command().debug_assert();
        let parse = |args: &[&str]| {
            <Options as clap::Parser>::try_parse_from(
                std::iter::once("bench").chain(args.iter().copied()),
            )
        };
        let defaults = parse(&[]).unwrap();
        assert_eq!((defaults.rate_seconds, defaults.cold_starts), (20.0, 5));
        assert_eq!(
            parse(&["--rate-seconds", "3", "--cold-starts", "1"])
                .unwrap()
                .rate_seconds,
            3.0
        );
        for wrong in [
            &["--rate-seconds", "0"][..],
            &["--rate-seconds", "NaN"],
            &["--cold-starts", "0"],
        ] {
            assert!(parse(wrong).is_err(), "{wrong:?}");
        }
        assert_eq!(parse(&["--help"]).unwrap_err().exit_code(), 0);
    }

    #[test]
    fn every_batch_size_becomes_one_and_nothing_else_changes() {
        let template = "Events:\n  Q:\n    Properties:\n      BatchSize: 10\n      Queue: !GetAtt Q.Arn\n  S:\n      BatchSize: 100\n";
        assert_eq!(
            unbatched(template),
            "Events:\n  Q:\n    Properties:\n      BatchSize: 1\n      Queue: !GetAtt Q.Arn\n  S:\n      BatchSize: 1\n"
        );
    }

    #[test]
    fn a_window_is_allowed_only_as_the_parameter_that_defaults_to_none() {
        let parameter = |default: &str| {
            format!(
                "Parameters:\n  QueueBatchingWindowSeconds:\n    Type: Number\n    Default: {default}\n"
            )
        };
        let source = "      MaximumBatchingWindowInSeconds: !Ref QueueBatchingWindowSeconds\n";
        assert!(windowless_by_default("Events: {}\n"));
        // Named in a description: not a window.
        assert!(windowless_by_default(
            &(parameter("0") + "    Description: its MaximumBatchingWindowInSeconds\n" + source)
        ));
        assert!(windowless_by_default(&(parameter("0") + source)));
        assert!(!windowless_by_default(&(parameter("1") + source)));
        assert!(!windowless_by_default(
            &(parameter("0") + "      MaximumBatchingWindowInSeconds: 5\n")
        ));
    }

    #[test]
    fn the_project_template_has_no_window_by_default() {
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        assert!(windowless_by_default(
            &std::fs::read_to_string(template).unwrap()
        ));
    }

    #[test]
    fn saturation_is_decisions_over_the_time_they_took() {
        let at = |ms: i64| {
            chrono::DateTime::<chrono::Utc>::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
        };
        let decided: Vec<load::Decision> = (0..10)
            .map(|i| load::Decision {
                status: "VALIDATED".into(),
                created: at(i * 100),
                decided: at(i * 100 + 1000),
            })
            .collect();
        // Ten decisions from 0 ms to 1900 ms.
        assert!((saturation(&decided) - 10.0 / 1.9).abs() < 1e-9);
        assert_eq!(saturation(&[]), 0.0);
    }
}
