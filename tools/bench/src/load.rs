//! Open-loop load: orders sent at fixed arrival times whatever the answers, latencies taken from
//! each request's scheduled time (a slow answer cannot hide a queue), in HDR histograms.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use hyper::Method;
use serde_json::Value;

use crate::Error;
use crate::client::{Http, get_json, send};
use crate::stack::Stack;

pub const VALIDATED: &str = r#"{"consumerId":"consumer-1","restaurantId":"restaurant-1","lineItems":[{"menuItemId":"item-1","quantity":2}]}"#;
/// A restaurant the replica does not know: accepted unpriced, rejected by the restaurant context.
pub const REJECTED: &str = r#"{"consumerId":"consumer-1","restaurantId":"restaurant-unknown-to-everyone","lineItems":[{"menuItemId":"item-1","quantity":2}]}"#;

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

/// When request `i` of a run at `rate` per second is due, from the run's start.
pub fn due(i: usize, rate: f64) -> Duration {
    Duration::from_secs_f64(i as f64 / rate)
}

pub struct Sent {
    /// POST latency in microseconds, from the scheduled time to the answer.
    pub post_us: Histogram<u64>,
    pub accepted: Vec<String>,
    pub failed: u64,
}

pub async fn open_loop(
    http: &Http,
    stack: &Stack,
    body: &'static str,
    rate: f64,
    seconds: f64,
) -> Sent {
    let count = (rate * seconds).round() as usize;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let scheduled = start + due(i, rate);
        tokio::time::sleep_until(scheduled.into()).await;
        let (http, url) = (http.clone(), format!("{}/orders", stack.api));
        let authorization = format!("Bearer {}", stack.token);
        tasks.push(tokio::spawn(async move {
            let key = uuid::Uuid::now_v7().to_string();
            let headers = [
                ("authorization", authorization.as_str()),
                ("content-type", "application/json"),
                ("idempotency-key", key.as_str()),
            ];
            let answer = send(&http, Method::POST, &url, &headers, Some(body.to_owned())).await;
            let took = scheduled.elapsed();
            let id = match answer {
                Ok((status, body)) if status.as_u16() == 202 => {
                    serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|order| order["orderId"].as_str().map(str::to_owned))
                }
                _ => None,
            };
            (took, id)
        }));
    }
    let mut sent = Sent {
        post_us: histogram(),
        accepted: Vec::new(),
        failed: 0,
    };
    for task in tasks {
        match task.await {
            Ok((took, Some(id))) => {
                sent.post_us.saturating_record(took.as_micros() as u64);
                sent.accepted.push(id);
            }
            _ => sent.failed += 1,
        }
    }
    sent
}

/// An order's decision: its final status, and the times it was created and decided (the
/// order's own history, stamped by the order context).
pub struct Decision {
    pub status: String,
    pub created: DateTime<Utc>,
    pub decided: DateTime<Utc>,
}

pub fn decision(order: &Value) -> Option<Decision> {
    let status = order["status"].as_str()?;
    if !matches!(status, "VALIDATED" | "REJECTED") {
        return None;
    }
    let history = order["history"].as_array()?;
    let at = |change: &Value| change["at"].as_str()?.parse::<DateTime<Utc>>().ok();
    Some(Decision {
        status: status.to_owned(),
        created: at(history.first()?)?,
        decided: at(history.last()?)?,
    })
}

/// Waits for each order's decision (`Prefer: wait`), 16 at a time; `None` for an order not
/// decided within `patience`.
pub async fn decisions(
    http: &Http,
    stack: &Stack,
    ids: &[String],
    patience: Duration,
) -> Vec<Option<Decision>> {
    let deadline = Instant::now() + patience;
    futures_util::stream::iter(ids.iter().cloned())
        .map(|id| {
            let (http, url) = (http.clone(), format!("{}/orders/{id}", stack.api));
            let authorization = format!("Bearer {}", stack.token);
            async move {
                while Instant::now() < deadline {
                    let headers = [
                        ("authorization", authorization.as_str()),
                        ("prefer", "wait=10"),
                    ];
                    if let Ok(order) = get_json(&http, &url, &headers).await
                        && let Some(decided) = decision(&order)
                    {
                        return Some(decided);
                    }
                }
                None
            }
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// What devstack and the functions' logs say at one moment: the counters, and how far each
/// function's log has grown.
pub struct Snapshot {
    stats: Value,
    log_sizes: BTreeMap<String, u64>,
}

pub async fn snapshot(http: &Http, stack: &Stack) -> Result<Snapshot, Error> {
    let mut log_sizes = BTreeMap::new();
    for entry in std::fs::read_dir(&stack.logs)? {
        let path = entry?.path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        if name.ends_with("Function") {
            log_sizes.insert(name, std::fs::metadata(&path)?.len());
        }
    }
    Ok(Snapshot {
        stats: stack.stats(http).await?,
        log_sizes,
    })
}

fn invocations(stats: &Value) -> u64 {
    stats["functions"]
        .as_object()
        .map(|functions| {
            functions
                .values()
                .filter_map(|f| f["invocations"].as_u64())
                .sum()
        })
        .unwrap_or(0)
}

/// Messages no function has finished with yet: held back (each order's decision deadline) or
/// being worked, in any queue.
fn pending(depths: &Value) -> u64 {
    depths
        .as_object()
        .map(|queues| {
            queues
                .values()
                .map(|q| q["delayed"].as_u64().unwrap_or(0) + q["inFlight"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// Waits until no message is held back or in flight and no function has been invoked for
/// `still`: the flow has worked off what it was sent, outcome delivery and every order's
/// decision deadline included (the deadline's message is paid for when it fires, decided order
/// or not).
pub async fn quiet(
    http: &Http,
    stack: &Stack,
    still: Duration,
    limit: Duration,
) -> Result<(), Error> {
    let deadline = Instant::now() + limit;
    let mut last = invocations(&stack.stats(http).await?);
    let mut still_since = Instant::now();
    while still_since.elapsed() < still {
        if Instant::now() > deadline {
            return crate::fail("the stack did not settle".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = invocations(&stack.stats(http).await?);
        if now != last || pending(&stack.queues(http).await?) > 0 {
            (last, still_since) = (now, Instant::now());
        }
    }
    Ok(())
}

/// Everything measured between two snapshots.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Window {
    /// Requests the emulators served, by "caller Target.Operation", and billed quantities
    /// ("...entries", "...writeUnits", "...readUnits").
    pub meter: BTreeMap<String, f64>,
    /// Requests counted by the functions' own SDK interceptor, by function and operation.
    pub sdk: BTreeMap<String, BTreeMap<String, f64>>,
    pub invocations: BTreeMap<String, f64>,
    /// Invocation time as Lambda bills it, in GB-seconds, by function.
    pub gb_seconds: BTreeMap<String, f64>,
    pub log_bytes: f64,
    /// order-api's invocations that wrote an order: its own time and its transaction's, in ms.
    pub intake_ms: Vec<(f64, f64)>,
}

/// Bytes `start..end` of the file at `path`: what a log gained in a window, not the whole log.
fn appended(path: &std::path::Path, start: u64, end: u64) -> Result<Vec<u8>, Error> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity((end - start) as usize);
    file.take(end - start).read_to_end(&mut bytes)?;
    Ok(bytes)
}

pub fn window(stack: &Stack, before: &Snapshot, after: &Snapshot) -> Result<Window, Error> {
    let mut window = Window::default();
    let counter = |stats: &Value, key: &str| stats["requests"][key].as_f64().unwrap_or(0.0);
    if let Some(requests) = after.stats["requests"].as_object() {
        for key in requests.keys() {
            let n = counter(&after.stats, key) - counter(&before.stats, key);
            if n > 0.0 {
                window.meter.insert(key.clone(), n);
            }
        }
    }
    if let Some(functions) = after.stats["functions"].as_object() {
        for (name, figures) in functions {
            let old = &before.stats["functions"][name];
            let n = figures["invocations"].as_f64().unwrap_or(0.0)
                - old["invocations"].as_f64().unwrap_or(0.0);
            let busy = figures["busySeconds"].as_f64().unwrap_or(0.0)
                - old["busySeconds"].as_f64().unwrap_or(0.0);
            let gb = figures["memoryMB"].as_f64().unwrap_or(128.0) / 1024.0;
            window.invocations.insert(name.clone(), n);
            window.gb_seconds.insert(name.clone(), busy * gb);
        }
    }
    for (name, &end) in &after.log_sizes {
        let start = before.log_sizes.get(name).copied().unwrap_or(0).min(end);
        let appended = appended(&stack.logs.join(format!("{name}.log")), start, end)?;
        let appended = appended.as_slice();
        window.log_bytes += appended.len() as f64;
        for line in appended.split(|&b| b == b'\n') {
            let Ok(record) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            let (Some(spent), Some(requests)) = (
                record["awsMs"].as_object(),
                record["awsRequests"].as_object(),
            ) else {
                continue;
            };
            let calls = window.sdk.entry(name.clone()).or_default();
            for (operation, n) in requests {
                *calls.entry(operation.clone()).or_default() += n.as_f64().unwrap_or(0.0);
            }
            let transaction = spent
                .get("DynamoDB.TransactWriteItems")
                .and_then(Value::as_f64);
            if let (Some(total), Some(transaction)) = (record["InvocationMs"].as_f64(), transaction)
                && name == "OrderApiFunction"
            {
                window.intake_ms.push((total, transaction));
            }
        }
    }
    Ok(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_are_evenly_spaced_whatever_the_answers() {
        assert_eq!(due(0, 20.0), Duration::ZERO);
        assert_eq!(due(20, 20.0), Duration::from_secs(1));
        assert_eq!(due(5, 10.0), Duration::from_millis(500));
    }

    #[test]
    fn a_decision_is_read_from_the_orders_own_history() {
        let order = serde_json::json!({
            "status": "VALIDATED",
            "history": [
                {"status": "PENDING", "at": "2026-11-28T10:00:00.000Z"},
                {"status": "CONSUMER_VALIDATED", "at": "2026-11-28T10:00:00.100Z"},
                {"status": "VALIDATED", "at": "2026-11-28T10:00:00.180Z"},
            ],
        });
        let decided = decision(&order).unwrap();
        assert_eq!(decided.status, "VALIDATED");
        assert_eq!((decided.decided - decided.created).num_milliseconds(), 180);
        let pending = serde_json::json!({"status": "PENDING", "history": [{"status": "PENDING", "at": "2026-11-28T10:00:00Z"}]});
        assert!(decision(&pending).is_none());
    }
}
