//! Metrics in CloudWatch Embedded Metric Format: one JSON line on stdout per measurement, which
//! CloudWatch Logs turns into metrics without any API call from the function.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every metric this system publishes.
pub const NAMESPACE: &str = "OrderTaking";

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

/// The EMF document for `metrics`, dimensioned by function, with `properties` (such as
/// `orderId`) kept as searchable log fields.
pub fn document(
    function: &str,
    timestamp_millis: i64,
    metrics: &[(&str, Unit, f64)],
    properties: &[(&str, &str)],
) -> Value {
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
        document.insert((*name).into(), json!(value));
    }
    for (key, value) in properties {
        document.insert((*key).into(), json!(value));
    }
    Value::Object(document)
}

/// Writes the measurements to stdout, where the Lambda log shipper picks them up.
pub fn emit(metrics: &[(&str, Unit, f64)], properties: &[(&str, &str)]) {
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    let now = chrono::Utc::now().timestamp_millis();
    println!("{}", document(&function, now, metrics, properties));
}

/// A function's handler whose every invocation is recorded in one line: its duration and the
/// AWS requests it made, by operation (`AwsRequests.DynamoDB.TransactWriteItems`), with each
/// operation's time as a log field (`awsMs`). Lambda's own Duration metric includes the
/// runtime's work around the handler; this is the handler's alone.
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
        let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
        let now = chrono::Utc::now().timestamp_millis();
        let calls = crate::platform::aws::calls::take();
        let elapsed = this.started.elapsed();
        let mut document = invocation_document(&function, now, elapsed, &calls);
        if crate::platform::telemetry::cold_start() {
            document["coldStart"] = Value::Bool(true);
        }
        println!("{document}");
        Poll::Ready(output)
    }
}

fn invocation_document(
    function: &str,
    timestamp_millis: i64,
    elapsed: Duration,
    calls: &crate::platform::aws::calls::Tallies,
) -> Value {
    let names: Vec<String> = calls.keys().map(|op| format!("AwsRequests.{op}")).collect();
    let total: u64 = calls.values().map(|tally| tally.requests).sum();
    let mut metrics = vec![
        ("InvocationMs", Unit::Milliseconds, millis(elapsed)),
        ("AwsRequests", Unit::Count, total as f64),
    ];
    for (name, tally) in names.iter().zip(calls.values()) {
        metrics.push((name, Unit::Count, tally.requests as f64));
    }
    let mut document = document(function, timestamp_millis, &metrics, &[]);
    let times: Map<String, Value> = calls
        .iter()
        .map(|(op, tally)| (op.clone(), json!(millis(tally.time))))
        .collect();
    document["awsMs"] = Value::Object(times);
    document
}

/// Milliseconds to the microsecond.
fn millis(duration: Duration) -> f64 {
    (duration.as_micros() as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_declares_each_metric_and_carries_its_value() {
        let doc = document(
            "order-api",
            1_800_000_000_000,
            &[("OrdersAccepted", Unit::Count, 1.0)],
            &[("orderId", "o-1")],
        );
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "OrdersAccepted"
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Count"
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Function"
        );
        assert_eq!(doc["Function"], "order-api");
        assert_eq!(doc["OrdersAccepted"], 1.0);
        assert_eq!(doc["orderId"], "o-1");
    }

    #[test]
    fn an_invocation_carries_its_requests_by_operation_and_their_time() {
        let calls = crate::platform::aws::calls::Tallies::from([
            (
                "DynamoDB.GetItem".to_owned(),
                crate::platform::aws::calls::Tally {
                    requests: 2,
                    time: std::time::Duration::from_micros(3_250),
                },
            ),
            (
                "DynamoDB.TransactWriteItems".to_owned(),
                crate::platform::aws::calls::Tally {
                    requests: 1,
                    time: std::time::Duration::from_micros(4_000),
                },
            ),
        ]);
        let doc = invocation_document(
            "order-api",
            1_800_000_000_000,
            std::time::Duration::from_micros(8_500),
            &calls,
        );
        let names: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "InvocationMs",
                "AwsRequests",
                "AwsRequests.DynamoDB.GetItem",
                "AwsRequests.DynamoDB.TransactWriteItems"
            ]
        );
        assert_eq!(doc["InvocationMs"], 8.5);
        assert_eq!(doc["AwsRequests"], 3.0);
        assert_eq!(doc["AwsRequests.DynamoDB.GetItem"], 2.0);
        assert_eq!(doc["awsMs"]["DynamoDB.GetItem"], 3.25);
        assert_eq!(doc["awsMs"]["DynamoDB.TransactWriteItems"], 4.0);
    }
}
