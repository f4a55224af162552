//! The decision deadline's timer, started for each order as its `OrderCreated` row is written.
//!
//! It is read from the outbox table's stream by a function of its own, apart from the relay and
//! the bus, so an order whose events cannot be published (the bus refusing, the relay failing,
//! a rule missing, an event over a limit) is still decided by its deadline. A timer is a small
//! message that `DecisionDeadlineQueue` holds back until the deadline, counted from when the
//! order was placed (so a late start does not stretch it); order-replies then rejects the order
//! if it is still undecided. One message per order: no scan, and no key or index shared by all
//! orders. Only the row's own attributes are read, so even a row whose event does not decode
//! starts one.

use std::time::Duration;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use shared::language::events::{Event as _, EventMeta, OrderCreated, SCHEMA_VERSION};
use shared::platform::metrics::{self, Unit};
use tracing::{debug, error};

use crate::ports::timers::{DeadlineTimer, Started, Timers};

/// At most ten messages per `SendMessageBatch` (the SQS API's limit).
const MAX_PER_CALL: usize = 10;
/// SQS holds a message back at most 15 minutes (`DelaySeconds`).
const MAX_DELAY: Duration = Duration::from_secs(900);

/// The attributes of an outbox row the timer reads; the rest of the row may be anything.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    event_id: uuid::Uuid,
    order_id: Option<uuid::Uuid>,
    detail_type: String,
    created_at: DateTime<Utc>,
    correlation_id: Option<String>,
}

/// An `OrderCreated` row of the stream, with its sequence number.
struct Row {
    sequence_number: String,
    order_id: uuid::Uuid,
    event_id: uuid::Uuid,
    placed_at: DateTime<Utc>,
    correlation_id: Option<String>,
}

pub struct DeadlineTimers<T> {
    timers: T,
    deadline: Duration,
}

impl<T: Timers> DeadlineTimers<T> {
    /// `deadline`: how long after an order is placed its timer fires (`DecisionDeadlineSeconds`).
    pub fn new(timers: T, deadline: Duration) -> Self {
        Self { timers, deadline }
    }

    /// Starts a timer for every `OrderCreated` row of the batch. What SQS does not take is
    /// reported from its earliest record, so the stream mapping tries again from there (a
    /// timer started twice rejects nothing twice: the second finds the order decided).
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        let rows: Vec<Row> = event
            .records
            .into_iter()
            .filter_map(order_created)
            .collect();
        let now = Utc::now();
        let mut response = DynamoDbEventResponse::default();
        for chunk in rows.chunks(MAX_PER_CALL) {
            let timers: Vec<Started> = chunk.iter().map(|row| self.started(row, now)).collect();
            let refused = match self.timers.start(&timers).await {
                Ok(refused) => refused,
                Err(e) => {
                    error!(error = %e, source = ?std::error::Error::source(&e), "timers not started");
                    vec![0]
                }
            };
            if let Some(first) = refused.into_iter().min() {
                // A position past the chunk cannot be ours: report the chunk's first record.
                let row = chunk.get(first).unwrap_or(&chunk[0]);
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(row.sequence_number.clone());
                response.batch_item_failures.push(failure);
                break;
            }
        }
        debug!(
            timers = rows.len(),
            failed = !response.batch_item_failures.is_empty(),
            "deadline timers started"
        );
        response
    }

    /// The order's timer, held back for what is left of its deadline (at most what SQS can).
    fn started(&self, row: &Row, now: DateTime<Utc>) -> Started {
        let elapsed = (now - row.placed_at).to_std().unwrap_or_default();
        Started {
            timer: DeadlineTimer {
                decision_deadline: EventMeta {
                    event_id: row.event_id,
                    order_id: row.order_id,
                    occurred_at: row.placed_at,
                    schema_version: SCHEMA_VERSION,
                    correlation_id: row.correlation_id.clone(),
                },
            },
            // Whole seconds, rounded up: never before the deadline.
            delay: Duration::from_secs(
                self.deadline.saturating_sub(elapsed).as_secs_f64().ceil() as u64
            )
            .min(MAX_DELAY),
        }
    }
}

/// The `OrderCreated` row of an insert; nothing for any other row or change.
fn order_created(record: EventRecord) -> Option<Row> {
    if record.event_name != "INSERT" {
        return None;
    }
    let sequence_number = record.change.sequence_number.clone().unwrap_or_default();
    let not_started = |why: &str| {
        error!(sequenceNumber = %sequence_number, why, "no timer started");
        metrics::emit(&[("TimersNotStarted", Unit::Count, 1.0)]);
        None
    };
    match serde_dynamo::from_item::<_, Keys>(record.change.new_image) {
        Ok(row) if row.detail_type != OrderCreated::DETAIL_TYPE => None,
        Ok(Keys {
            order_id: Some(order_id),
            event_id,
            created_at,
            correlation_id,
            ..
        }) => Some(Row {
            sequence_number,
            order_id,
            event_id,
            placed_at: created_at,
            correlation_id,
        }),
        Ok(_) => not_started("the OrderCreated row has no orderId"),
        Err(e) => not_started(&format!("the outbox row does not read: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::timers::TimerError;
    use serde_json::{Value, json};
    use shared::testing::corpus::failed_records;
    use std::sync::Mutex;
    use uuid::Uuid;

    /// Refuses the timers `refuse` names, or the whole call when `down`; records what it took.
    #[derive(Default)]
    struct Scripted {
        refuse: Vec<Uuid>,
        down: bool,
        calls: Mutex<Vec<usize>>,
        started: Mutex<Vec<Uuid>>,
        delays: Mutex<Vec<Duration>>,
    }

    impl Timers for Scripted {
        async fn start(&self, timers: &[Started]) -> Result<Vec<usize>, TimerError> {
            assert!(timers.len() <= MAX_PER_CALL);
            self.calls.lock().unwrap().push(timers.len());
            if self.down {
                return Err(TimerError("connection refused".into()));
            }
            let mut refused = Vec::new();
            for (i, started) in timers.iter().enumerate() {
                self.delays.lock().unwrap().push(started.delay);
                let order = started.timer.decision_deadline.order_id;
                if self.refuse.contains(&order) {
                    refused.push(i);
                } else {
                    self.started.lock().unwrap().push(order);
                }
            }
            Ok(refused)
        }
    }

    fn row(detail_type: &str, detail: &str, order_id: Uuid, created_at: DateTime<Utc>) -> Value {
        let event_id = Uuid::now_v7().to_string();
        json!({
            "eventId": {"S": event_id}, "subject": {"S": order_id.to_string()},
            "orderId": {"S": order_id.to_string()}, "source": {"S": "orders"},
            "detailType": {"S": detail_type}, "detail": {"S": detail},
            "createdAt": {"S": created_at.to_rfc3339()}, "expiresAt": {"N": "0"}
        })
    }

    fn timers(timers: Scripted) -> DeadlineTimers<Scripted> {
        DeadlineTimers::new(timers, Duration::from_secs(900))
    }

    fn created(order_id: Uuid) -> Value {
        let meta = EventMeta::new(order_id, Some("c-1".into()));
        let detail = json!({
            "eventId": meta.event_id, "orderId": order_id, "occurredAt": meta.occurred_at,
            "schemaVersion": 1, "correlationId": "c-1", "consumerId": "consumer-1",
            "restaurantId": "restaurant-1", "lineItems": [{"menuItemId": "item-1", "quantity": 1}]
        });
        row("OrderCreated", &detail.to_string(), order_id, Utc::now())
    }

    fn batch(images: &[(&str, Value)]) -> Event {
        let records: Vec<Value> = images
            .iter()
            .enumerate()
            .map(|(i, (name, image))| {
                json!({
                    "eventID": format!("e{i}"), "eventName": name, "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                    "dynamodb": {"ApproximateCreationDateTime": 1.8e9, "Keys": {}, "NewImage": image,
                                 "SequenceNumber": format!("{}", 100 + i), "SizeBytes": 10,
                                 "StreamViewType": "NEW_IMAGE"},
                    "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Outbox/stream/x"
                })
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    #[tokio::test]
    async fn a_timer_starts_for_each_order_created_and_for_nothing_else() {
        let (a, b, c, d) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let handler = timers(Scripted::default());
        let response = handler
            .handle(batch(&[
                ("INSERT", created(a)),
                ("INSERT", row("OrderValidated", "{}", a, Utc::now())),
                ("REMOVE", created(Uuid::now_v7())),
                // Its event does not decode; the row names its order, which gets its timer.
                ("INSERT", row("OrderCreated", "not JSON", b, Utc::now())),
                ("INSERT", json!({"eventId": {"S": "not an id"}})),
                // Only its keys: the rest of an outbox row is not needed.
                ("INSERT", json!({"eventId": {"S": Uuid::now_v7().to_string()}, "orderId": {"S": d.to_string()},
                                  "detailType": {"S": "OrderCreated"}, "createdAt": {"S": Utc::now().to_rfc3339()}})),
                ("INSERT", created(c)),
            ]))
            .await;
        assert!(failed_records(&response).is_empty());
        assert_eq!(*handler.timers.started.lock().unwrap(), vec![a, b, d, c]);
    }

    #[tokio::test]
    async fn timers_go_ten_to_a_call() {
        let rows: Vec<(&str, Value)> = (0..23)
            .map(|_| ("INSERT", created(Uuid::now_v7())))
            .collect();
        let handler = timers(Scripted::default());
        assert!(failed_records(&handler.handle(batch(&rows)).await).is_empty());
        assert_eq!(*handler.timers.calls.lock().unwrap(), vec![10, 10, 3]);
    }

    #[tokio::test]
    async fn a_refused_timer_is_reported_and_nothing_after_its_call_is_sent() {
        let orders: Vec<Uuid> = (0..15).map(|_| Uuid::now_v7()).collect();
        let rows: Vec<(&str, Value)> = orders.iter().map(|o| ("INSERT", created(*o))).collect();
        let handler = timers(Scripted {
            refuse: vec![orders[3], orders[7]],
            ..Scripted::default()
        });
        let response = handler.handle(batch(&rows)).await;
        // The mapping starts again from the earliest refused record (the fourth, sequence 103).
        assert_eq!(failed_records(&response), vec!["103".to_owned()]);
        assert_eq!(*handler.timers.calls.lock().unwrap(), vec![10]);
    }

    #[tokio::test]
    async fn sqs_down_reports_the_first_record_of_the_call() {
        let rows = [("INSERT", created(Uuid::now_v7()))];
        let handler = timers(Scripted {
            down: true,
            ..Scripted::default()
        });
        assert_eq!(
            failed_records(&handler.handle(batch(&rows)).await),
            vec!["100".to_owned()]
        );
    }

    #[tokio::test]
    async fn the_deadline_counts_from_when_the_order_was_placed() {
        let now = Utc::now();
        let handler = timers(Scripted::default());
        let at = |ago: i64| {
            row(
                "OrderCreated",
                "{}",
                Uuid::now_v7(),
                now - chrono::Duration::seconds(ago),
            )
        };
        handler
            .handle(batch(&[
                ("INSERT", at(0)),
                ("INSERT", at(300)),
                ("INSERT", at(2000)),
            ]))
            .await;
        let delays: Vec<u64> = handler
            .timers
            .delays
            .lock()
            .unwrap()
            .iter()
            .map(Duration::as_secs)
            .collect();
        // Placed just now: the whole deadline (less the test's own time); 300 s ago: what is
        // left; past its deadline (a stream read late, or from its start): at once.
        assert!((899..=900).contains(&delays[0]), "{delays:?}");
        assert!((599..=600).contains(&delays[1]), "{delays:?}");
        assert_eq!(delays[2], 0);
    }

    #[test]
    fn a_timer_is_read_back_from_its_body_and_an_envelope_is_not_a_timer() {
        let timer = DeadlineTimer {
            decision_deadline: EventMeta::new(Uuid::now_v7(), None),
        };
        let body = serde_json::to_string(&timer).unwrap();
        assert_eq!(DeadlineTimer::from_body(&body), Some(timer));
        assert_eq!(
            DeadlineTimer::from_body(r#"{"detail-type": "OrderCreated", "detail": {}}"#),
            None
        );
    }
}
