//! Dollars per million orders from the measured counts at list prices (docs/prices.md), beside
//! the architecture's floor; and which AWS quota caps orders per second first.

use serde::Serialize;

use crate::load::Window;

/// us-east-1 list prices, USD, as docs/prices.md gives them (and their date).
pub mod price {
    pub const HTTP_API_REQUEST: f64 = 1.00e-6;
    pub const LAMBDA_REQUEST: f64 = 0.20e-6;
    /// arm64, the template's default architecture.
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    pub const DYNAMODB_WRITE_UNIT: f64 = 0.625e-6;
    pub const DYNAMODB_READ_UNIT: f64 = 0.125e-6;
    pub const EVENTBRIDGE_EVENT: f64 = 1.00e-6;
    pub const SQS_REQUEST: f64 = 0.40e-6;
    pub const LOG_INGESTION_GB: f64 = 0.50;
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Line {
    pub item: &'static str,
    /// Per order.
    pub quantity: f64,
    pub unit_price: f64,
}

impl Line {
    pub fn per_million(&self) -> f64 {
        self.quantity * self.unit_price * 1e6
    }
}

pub fn total(lines: &[Line]) -> f64 {
    lines.iter().map(Line::per_million).sum()
}

fn sum(window: &Window, matching: impl Fn(&str) -> bool) -> f64 {
    window
        .meter
        .iter()
        .filter(|(key, _)| matching(key))
        .map(|(_, n)| n)
        .sum()
}

/// What AWS bills per order, item by item, with its unit price.
const ITEMS: [(&str, f64); 8] = [
    ("API Gateway HTTP API requests", price::HTTP_API_REQUEST),
    ("Lambda requests", price::LAMBDA_REQUEST),
    ("Lambda GB-seconds", price::LAMBDA_GB_SECOND),
    ("DynamoDB write request units", price::DYNAMODB_WRITE_UNIT),
    ("DynamoDB read request units", price::DYNAMODB_READ_UNIT),
    ("EventBridge events", price::EVENTBRIDGE_EVENT),
    ("SQS requests", price::SQS_REQUEST),
    (LOG_INGESTION, price::LOG_INGESTION_GB),
];

const LOG_INGESTION: &str = "CloudWatch Logs ingestion (GB)";

/// The lines of `ITEMS` with these quantities per order, in its order.
fn lines(quantities: [f64; 8]) -> Vec<Line> {
    ITEMS
        .iter()
        .zip(quantities)
        .map(|(&(item, unit_price), quantity)| Line {
            item,
            quantity,
            unit_price,
        })
        .collect()
}

/// The messages EventBridge put in queues: every message deleted once consumed, less the
/// deadline's timers, which decision-timer sent itself (its requests count those sends). The
/// other messages functions send go to dead-letter queues, which nobody consumes here.
fn bus_deliveries(window: &Window) -> f64 {
    let deleted = sum(window, |k| {
        k.ends_with("AmazonSQS.DeleteMessageBatch.entries")
    }) + sum(window, |k| k.ends_with("AmazonSQS.DeleteMessage"));
    let timers = sum(window, |k| {
        k == "DecisionTimerFunction AmazonSQS.SendMessageBatch.entries"
    });
    deleted - timers
}

/// Each service's billed quantity per order in `window`, which saw `orders` orders through.
pub fn measured(window: &Window, orders: f64) -> Vec<Line> {
    let sqs_requests = sum(window, |k| {
        k.contains(" AmazonSQS.") && !k.ends_with(".entries")
    });
    // EventBridge's sends to the queues are billed as SQS requests.
    let deliveries = bus_deliveries(window);
    lines([
        1.0,
        window.invocations.values().sum::<f64>() / orders,
        window.gb_seconds.values().sum::<f64>() / orders,
        sum(window, |k| k.ends_with(".writeUnits")) / orders,
        sum(window, |k| k.ends_with(".readUnits")) / orders,
        sum(window, |k| k.ends_with("AWSEvents.PutEvents.entries")) / orders,
        (sqs_requests + deliveries) / orders,
        window.log_bytes / orders / 1e9,
    ])
}

/// What no design of this shape avoids for one validated order without a callback URL, at the
/// template's batch sizes (SQS 10, streams 100) and items under 1 KB: the API request and the
/// intake's invocation; the order and its outbox row in one transaction; four events
/// (OrderCreated, both replies, the outcome, which no queue takes: the order has nobody to call
/// back); four deliveries (two validators, two replies) with their receives and deletes shared by
/// a batch of ten; the validators' reads, eventually consistent; the order read and written once
/// per reply, the decision with its outbox row in a transaction; the decision deadline's timer,
/// sent, received and deleted ten at a time, and its one eventually consistent read of the order
/// when it fires (order-replies reads it strongly consistent, as for a reply: half a unit more).
/// Not the replica's reads at intake: each order-api instance keeps what it read for
/// `ReplicaCacheSeconds`, so at any busy rate they tend to none per order.
pub fn floor() -> Vec<Line> {
    // The outbox stream's records, a hundred to a batch: the relay's two per order
    // (OrderCreated, the outcome) and decision-timer's one (OrderCreated).
    let invocations = 1.0 + 3.0 / 100.0 + 4.0 / 10.0 + 1.0 / 10.0;
    lines([
        1.0,
        invocations,
        // Lambda bills at least 1 ms per invocation.
        invocations * 0.001 * 0.125,
        4.0 + 1.0 + 4.0,
        2.0 * 0.5 + 2.0 + 0.5,
        4.0,
        // Four sends, and a receive and a delete per batch of ten; the timer's three per ten.
        4.0 * (1.0 + 2.0 / 10.0) + 3.0 / 10.0,
        0.0,
    ])
}

/// The bytes logged per order, from the log ingestion line of `lines`.
pub fn log_bytes_per_order(lines: &[Line]) -> f64 {
    lines
        .iter()
        .find(|line| line.item == LOG_INGESTION)
        .map_or(0.0, |line| line.quantity * 1e9)
}

/// One AWS quota and the orders per second it allows.
#[derive(Debug, Clone, Serialize)]
pub struct Quota {
    pub limit: &'static str,
    pub default: f64,
    pub raised: f64,
    /// Of that quota's unit, per order.
    pub per_order: f64,
    pub orders_per_second_default: f64,
    pub orders_per_second_raised: f64,
}

fn quota(limit: &'static str, default: f64, raised: f64, per_order: f64) -> Quota {
    let cap = |q: f64| {
        if per_order > 0.0 {
            q / per_order
        } else {
            f64::INFINITY
        }
    };
    Quota {
        limit,
        default,
        raised,
        per_order,
        orders_per_second_default: cap(default),
        orders_per_second_raised: cap(raised),
    }
}

/// template.yaml's `ReplicaCacheSeconds` default (a test holds them equal).
pub const REPLICA_CACHE_SECONDS: f64 = 2.0;

/// The quotas that apply, from the measured counts per order; "raised" is an example of a
/// tenfold increase where AWS raises the quota on request, the same value where it does not.
pub fn quotas(window: &Window, orders: f64) -> Vec<Quota> {
    let per_order = |matching: &dyn Fn(&str) -> bool| sum(window, matching) / orders;
    let busy =
        |function: &str| window.gb_seconds.get(function).copied().unwrap_or(0.0) / 0.125 / orders;
    let all_busy: f64 = window.gb_seconds.values().sum::<f64>() / 0.125 / orders;
    vec![
        quota(
            "Lambda concurrent executions (account, region)",
            1_000.0,
            10_000.0,
            all_busy,
        ),
        quota(
            "API Gateway HTTP API requests/s (account, region)",
            10_000.0,
            100_000.0,
            1.0,
        ),
        quota(
            "EventBridge PutEvents requests/s (us-east-1)",
            10_000.0,
            100_000.0,
            per_order(&|k| k.ends_with("AWSEvents.PutEvents")),
        ),
        quota(
            "EventBridge target invocations/s (us-east-1)",
            18_750.0,
            187_500.0,
            bus_deliveries(window) / orders,
        ),
        quota(
            "DynamoDB on-demand write units/s per table (all tables counted as one)",
            40_000.0,
            400_000.0,
            per_order(&|k| k.ends_with(".writeUnits")),
        ),
        quota(
            "Validators' MaximumConcurrency (template: 20 each)",
            20.0,
            1_000.0,
            busy("ConsumerValidatorFunction").max(busy("RestaurantValidatorFunction")),
        ),
        // One restaurant's replica item: half a read unit (eventually consistent) once per
        // busy order-api instance and cache lifetime, however many orders the instance takes.
        quota(
            "DynamoDB read units/s of one partition (one restaurant's replica item)",
            3_000.0,
            3_000.0,
            busy("OrderApiFunction") * 0.5 / REPLICA_CACHE_SECONDS,
        ),
    ]
}

/// The quota that caps orders per second first.
pub fn first_cap(quotas: &[Quota], raised: bool) -> Option<&Quota> {
    let cap = |q: &&Quota| {
        if raised {
            q.orders_per_second_raised
        } else {
            q.orders_per_second_default
        }
    };
    quotas.iter().min_by(|a, b| cap(a).total_cmp(&cap(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replica_cache_lifetime_is_the_templates_default() {
        let template = include_str!("../../../template.yaml");
        let declared = template
            .split("  ReplicaCacheSeconds:\n")
            .nth(1)
            .and_then(|rest| {
                rest.lines()
                    .find_map(|l| l.trim().strip_prefix("Default: "))
            })
            .and_then(|value| value.parse::<f64>().ok());
        assert_eq!(declared, Some(REPLICA_CACHE_SECONDS));
    }

    #[test]
    fn the_floor_is_about_thirteen_dollars_per_million_validated_orders() {
        let floor = total(&floor());
        assert!((13.0..14.5).contains(&floor), "{floor}");
    }

    #[test]
    fn measured_lines_divide_the_window_by_its_orders() {
        let mut window = Window::default();
        window.meter.insert(
            "OrderApiFunction DynamoDB_20120810.TransactWriteItems.writeUnits".into(),
            40.0,
        );
        window
            .meter
            .insert("platform AmazonSQS.ReceiveMessage".into(), 10.0);
        window
            .meter
            .insert("platform AmazonSQS.DeleteMessageBatch".into(), 10.0);
        window
            .meter
            .insert("platform AmazonSQS.DeleteMessageBatch.entries".into(), 50.0);
        window.meter.insert(
            "OutboxRelayFunction AWSEvents.PutEvents.entries".into(),
            40.0,
        );
        // Ten of the messages deleted were the timer's, sent in one request of its own.
        window.meter.insert(
            "DecisionTimerFunction AmazonSQS.SendMessageBatch".into(),
            1.0,
        );
        window.meter.insert(
            "DecisionTimerFunction AmazonSQS.SendMessageBatch.entries".into(),
            10.0,
        );
        window.invocations.insert("OrderApiFunction".into(), 10.0);
        window.log_bytes = 1e6;
        let lines = measured(&window, 10.0);
        let quantity = |item: &str| lines.iter().find(|l| l.item == item).unwrap().quantity;
        assert_eq!(quantity("DynamoDB write request units"), 4.0);
        assert_eq!(
            quantity("SQS requests"),
            6.1,
            "10 receives, 10 deletes, 1 timer send, 40 deliveries by the bus"
        );
        let targets = quotas(&window, 10.0);
        let bus = targets
            .iter()
            .find(|q| q.limit.starts_with("EventBridge target invocations"))
            .unwrap();
        assert_eq!(bus.per_order, 4.0);
        assert_eq!(quantity("EventBridge events"), 4.0);
        assert_eq!(quantity("Lambda requests"), 1.0);
        assert_eq!(quantity("CloudWatch Logs ingestion (GB)"), 1e-4);
        assert_eq!(log_bytes_per_order(&lines), 1e5);
    }

    #[test]
    fn the_first_cap_is_the_quota_allowing_fewest_orders() {
        let mut window = Window::default();
        window
            .meter
            .insert("OrderApiFunction AWSEvents.PutEvents".into(), 2.0);
        window
            .gb_seconds
            .insert("ConsumerValidatorFunction".into(), 0.125 * 0.1);
        let quotas = quotas(&window, 1.0);
        // Validators: 0.1 s of one of 20 instances per order, 200 orders/s.
        let first = first_cap(&quotas, false).unwrap();
        assert_eq!(
            first.limit,
            "Validators' MaximumConcurrency (template: 20 each)"
        );
        assert!((first.orders_per_second_default - 200.0).abs() < 1e-9);
    }
}
