//! Metrics from each invocation's record. Each invocation writes one JSON line on stdout
//! ([`Recorded`]): its duration, its AWS requests and what its handler measured ([`measure`]).
//! A single number an invocation has (its duration, its requests, a count) is a plain field,
//! which a metric filter on the function's log group makes a metric (`template.yaml`); times
//! measured once per order or batch are declared in CloudWatch Embedded Metric Format, which
//! carries many values a line. Neither needs an API call from the function. One line per
//! invocation, and an EMF declaration only where there are such times: CloudWatch bills logs by
//! the byte, and a declaration is most of a line.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every metric this system publishes.
pub const NAMESPACE: &str = "OrderTaking";

/// The most values of one metric an EMF document may carry (EMF specification: "up to 100").
const MAX_VALUES: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
            Self::Seconds => "Seconds",
        }
    }
}

/// One measurement: the metric's name, its unit and the value.
pub type Measurement = (&'static str, Unit, f64);

/// What the handler measured in the invocation under way. A Lambda instance serves one
/// invocation at a time, so what [`Recorded`] takes at the end of one is that invocation's.
static MEASURED: Mutex<Vec<Measurement>> = Mutex::new(Vec::new());

/// Names the record itself uses: a measurement must not take one.
const RECORD_FIELDS: [&str; 5] = [
    "InvocationMs",
    "AwsRequests",
    "Function",
    "awsRequests",
    "awsMs",
];

/// Adds measurements to the current invocation's record, written when it ends ([`Recorded`]).
/// A count becomes a metric only through a metric filter on the function's log group in
/// `template.yaml` (`tests/metric_filters.py` finds one missing); times need none.
/// An invocation that never ends (a timeout, a panic) writes no record: what an alarm watches
/// goes out at once ([`emit`]).
pub fn measure(measurements: &[Measurement]) {
    debug_assert!(
        measurements
            .iter()
            .all(|(name, _, _)| !RECORD_FIELDS.contains(name)),
        "a measurement named as a field of the record"
    );
    MEASURED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend_from_slice(measurements);
}

/// Writes measurements in a line of their own now, not with the invocation's record: for the
/// rare ones an operator must see (an alarm's, a row lost for good), which must not wait for an
/// end the invocation may never reach.
pub fn emit(measurements: &[Measurement]) {
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    let metrics: Vec<(&str, Unit, Value)> = measurements
        .iter()
        .map(|&(name, unit, value)| (name, unit, json!(value)))
        .collect();
    let now = chrono::Utc::now().timestamp_millis();
    println!("{}", document(&function, now, &metrics));
}

fn take_measured() -> Vec<Measurement> {
    std::mem::take(&mut *MEASURED.lock().unwrap_or_else(|e| e.into_inner()))
}

/// One metric of an invocation: counts summed into one value, other units (times) one value
/// per measurement, in the order measured.
#[derive(Debug, PartialEq)]
struct Series {
    name: &'static str,
    unit: Unit,
    values: Vec<f64>,
}

fn series(measured: Vec<Measurement>) -> Vec<Series> {
    let mut all: Vec<Series> = Vec::new();
    for (name, unit, value) in measured {
        match all.iter_mut().find(|s| s.name == name) {
            Some(s) if unit == Unit::Count => s.values[0] += value,
            Some(s) => s.values.push(value),
            None => all.push(Series {
                name,
                unit,
                values: vec![value],
            }),
        }
    }
    all
}

/// A metric's value in a document: a number, or an array when there are several.
fn value_of(values: &[f64]) -> Value {
    match values {
        [one] => json!(one),
        many => json!(many),
    }
}

/// The EMF document for `metrics` (name, unit, value), dimensioned by function.
fn document(function: &str, timestamp_millis: i64, metrics: &[(&str, Unit, Value)]) -> Value {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.name()}))
        .collect();
    let mut document = Map::new();
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": definitions,
            }],
        }),
    );
    document.insert("Function".into(), json!(function));
    for (name, _, value) in metrics {
        document.insert((*name).into(), value.clone());
    }
    Value::Object(document)
}
/// A function's handler whose every invocation is recorded in one JSON line: its duration
/// (`InvocationMs`), its AWS requests (`AwsRequests`, and by operation in the log field
/// `awsRequests`, with each operation's time in `awsMs`) and what the handler measured
/// ([`measure`]). Lambda's own Duration metric includes the runtime's work around the handler;
/// this is the handler's alone.
#[derive(Clone, Debug)]
pub struct Recorded<S>(pub S);

impl<S: lambda_runtime::Service<R>, R> lambda_runtime::Service<R> for Recorded<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = Invocation<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        Invocation {
            work: Box::pin(self.0.call(request)),
            started: Instant::now(),
        }
    }
}

/// One invocation in progress; see [`Recorded`].
pub struct Invocation<F> {
    work: Pin<Box<F>>,
    started: Instant,
}

impl<F: Future> Future for Invocation<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let output = std::task::ready!(this.work.as_mut().poll(cx));
        let record = Record {
            function: std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
            timestamp_millis: chrono::Utc::now().timestamp_millis(),
            elapsed: this.started.elapsed(),
            calls: crate::platform::aws::calls::take(),
            measured: take_measured(),
            cold_start: crate::platform::telemetry::cold_start(),
        };
        for document in record.documents() {
            println!("{document}");
        }
        Poll::Ready(output)
    }
}

/// What one invocation did, as [`Recorded`] writes it.
struct Record {
    function: String,
    timestamp_millis: i64,
    elapsed: Duration,
    calls: crate::platform::aws::calls::Tallies,
    measured: Vec<Measurement>,
    cold_start: bool,
}

impl Record {
    /// The invocation's line; and, only for a metric measured more than 100 times, a further
    /// line for each further 100 values.
    fn documents(self) -> Vec<Value> {
        let mut counts = Vec::new();
        let mut metrics = Vec::new();
        let mut overflow = Vec::new();
        for series in series(self.measured) {
            if series.unit == Unit::Count {
                counts.push((series.name, series.values[0]));
                continue;
            }
            let mut chunks = series.values.chunks(MAX_VALUES);
            let first = chunks.next().unwrap_or_default();
            metrics.push((series.name, series.unit, value_of(first)));
            overflow.extend(chunks.map(|rest| {
                let metric = [(series.name, series.unit, value_of(rest))];
                document(&self.function, self.timestamp_millis, &metric)
            }));
        }
        let mut record = if metrics.is_empty() {
            json!({ "Function": self.function })
        } else {
            document(&self.function, self.timestamp_millis, &metrics)
        };
        // Plain fields, made metrics by the template's filters (`<Function><Metric>Filter`).
        let total: u64 = self.calls.values().map(|tally| tally.requests).sum();
        record["InvocationMs"] = json!(millis(self.elapsed));
        record["AwsRequests"] = json!(total);
        for (name, count) in counts {
            record[name] = json!(count);
        }
        record["awsRequests"] = self
            .calls
            .iter()
            .map(|(op, tally)| (op.clone(), json!(tally.requests)))
            .collect::<Map<_, _>>()
            .into();
        record["awsMs"] = self
            .calls
            .iter()
            .map(|(op, tally)| (op.clone(), json!(millis(tally.time))))
            .collect::<Map<_, _>>()
            .into();
        if self.cold_start {
            record["coldStart"] = Value::Bool(true);
        }
        std::iter::once(record).chain(overflow).collect()
    }
}

/// Milliseconds to the microsecond.
fn millis(duration: Duration) -> f64 {
    (duration.as_micros() as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::aws::calls::{Tallies, Tally};

    fn record(calls: Tallies, measured: Vec<Measurement>) -> Record {
        Record {
            function: "order-api".into(),
            timestamp_millis: 1_800_000_000_000,
            elapsed: Duration::from_micros(8_500),
            calls,
            measured,
            cold_start: false,
        }
    }

    fn declared(document: &Value) -> Vec<(&str, &str)> {
        document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
            .collect()
    }

    #[test]
    fn an_invocation_is_one_line_with_its_requests_by_operation_and_their_time() {
        let calls = Tallies::from([
            (
                "DynamoDB.GetItem".to_owned(),
                Tally {
                    requests: 2,
                    time: Duration::from_micros(3_250),
                },
            ),
            (
                "DynamoDB.TransactWriteItems".to_owned(),
                Tally {
                    requests: 1,
                    time: Duration::from_micros(4_000),
                },
            ),
        ]);
        let documents = record(calls, vec![]).documents();
        assert_eq!(documents.len(), 1);
        let doc = &documents[0];
        // Nothing measured, nothing declared: the metric filters read the plain fields.
        assert!(doc.get("_aws").is_none());
        assert_eq!(doc["Function"], "order-api");
        assert_eq!(doc["InvocationMs"], 8.5);
        assert_eq!(doc["AwsRequests"], 3);
        assert_eq!(doc["awsRequests"]["DynamoDB.GetItem"], 2);
        assert_eq!(doc["awsRequests"]["DynamoDB.TransactWriteItems"], 1);
        assert_eq!(doc["awsMs"]["DynamoDB.GetItem"], 3.25);
        assert_eq!(doc["awsMs"]["DynamoDB.TransactWriteItems"], 4.0);
        assert!(doc.get("coldStart").is_none());
    }

    #[test]
    fn what_the_handler_measured_joins_the_line_counts_summed_and_times_each_kept() {
        let measured = vec![
            ("OrdersValidated", Unit::Count, 1.0),
            ("TimeToDecision", Unit::Milliseconds, 120.0),
            ("OrdersRejected", Unit::Count, 1.0),
            ("OrdersValidated", Unit::Count, 1.0),
            ("TimeToDecision", Unit::Milliseconds, 80.0),
            ("TimeToDecision", Unit::Milliseconds, 95.0),
        ];
        let documents = record(Tallies::new(), measured).documents();
        assert_eq!(documents.len(), 1);
        let doc = &documents[0];
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Function"
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_800_000_000_000i64);
        assert_eq!(doc["Function"], "order-api");
        // Single numbers stay fields, declared by no line; only the times are EMF.
        assert_eq!(doc["InvocationMs"], 8.5);
        assert_eq!(doc["AwsRequests"], 0);
        assert_eq!(declared(doc), [("TimeToDecision", "Milliseconds")]);
        assert_eq!(doc["OrdersValidated"], 2.0);
        assert_eq!(doc["OrdersRejected"], 1.0);
        assert_eq!(doc["TimeToDecision"], json!([120.0, 80.0, 95.0]));
    }

    #[test]
    fn counts_alone_need_no_emf_declaration() {
        let measured = vec![
            ("OrdersAccepted", Unit::Count, 1.0),
            ("OrdersAccepted", Unit::Count, 1.0),
        ];
        let documents = record(Tallies::new(), measured).documents();
        assert_eq!(documents.len(), 1);
        assert!(documents[0].get("_aws").is_none());
        assert_eq!(documents[0]["OrdersAccepted"], 2.0);
    }

    #[test]
    fn past_a_hundred_values_of_one_metric_the_rest_go_in_further_lines() {
        let measured = (0..250)
            .map(|i| ("RelayLag", Unit::Milliseconds, f64::from(i)))
            .collect();
        let documents = record(Tallies::new(), measured).documents();
        let values: Vec<usize> = documents
            .iter()
            .map(|d| d["RelayLag"].as_array().unwrap().len())
            .collect();
        assert_eq!(values, [100, 100, 50]);
        assert_eq!(declared(&documents[2]), [("RelayLag", "Milliseconds")]);
        assert_eq!(documents[2]["Function"], "order-api");
        // The invocation is counted once: only its record has the fields the filters read.
        assert!(
            documents[1..]
                .iter()
                .all(|d| d.get("InvocationMs").is_none())
        );
        let all: Vec<f64> = documents
            .iter()
            .flat_map(|d| d["RelayLag"].as_array().unwrap().clone())
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(all, (0..250).map(f64::from).collect::<Vec<_>>());
    }

    #[test]
    fn the_first_invocation_of_an_instance_says_so() {
        let mut first = record(Tallies::new(), vec![]);
        first.cold_start = true;
        assert_eq!(first.documents()[0]["coldStart"], true);
    }

    #[test]
    fn measurements_wait_for_the_invocations_record() {
        measure(&[("OutcomesDelivered", Unit::Count, 1.0)]);
        let taken = take_measured();
        assert!(taken.contains(&("OutcomesDelivered", Unit::Count, 1.0)));
        assert!(!take_measured().contains(&("OutcomesDelivered", Unit::Count, 1.0)));
    }
}
