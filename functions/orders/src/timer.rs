//! The decision deadline's timer, started for each order as its `OrderCreated` row is written.
//!
//! It is read from the outbox table's stream by a function of its own, apart from the relay and
//! the bus, so an order whose events cannot be published (the bus refusing, the relay failing,
//! a rule missing, an event over a limit) is still decided by its deadline. A timer is a small
//! message that `DecisionDeadlineQueue` holds back for its delivery delay; order-replies then
//! rejects the order if it is still undecided. One message per order: no scan, and no key or
//! index shared by all orders.

use std::future::Future;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};
use shared::events::{Event as _, EventMeta, OrderCreated};
use shared::outbox::OutboxRecord;
use tracing::{error, info, warn};

/// At most ten messages per `SendMessageBatch` (the SQS API's limit).
const MAX_PER_CALL: usize = 10;

/// The timer's message: the `OrderCreated` it was started for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadlineTimer {
    pub decision_deadline: EventMeta,
}

impl DeadlineTimer {
    /// The timer in a message body, or `None` when the body is something else.
    pub fn from_body(body: &str) -> Option<Self> {
        serde_json::from_str(body).ok()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("SQS did not take the timers")]
pub struct TimerError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// The seam between the timer and SQS.
pub trait Timers: Send + Sync {
    /// Starts at most ten timers in one call; answers the positions of those not started.
    fn start(
        &self,
        timers: &[DeadlineTimer],
    ) -> impl Future<Output = Result<Vec<usize>, TimerError>> + Send;
}

/// `DecisionDeadlineQueue`, named by `DEADLINE_QUEUE_URL` in the template.
pub struct SqsTimers {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsTimers {
    pub fn from_env(config: &shared::aws::SdkConfig) -> Result<Self, shared::aws::MissingEnv> {
        Ok(Self {
            client: shared::aws::sqs(config),
            queue_url: shared::aws::required_env("DEADLINE_QUEUE_URL")?,
        })
    }
}

impl Timers for SqsTimers {
    async fn start(&self, timers: &[DeadlineTimer]) -> Result<Vec<usize>, TimerError> {
        let entries = timers
            .iter()
            .enumerate()
            .map(|(i, timer)| {
                let body = serde_json::to_string(timer).map_err(|e| TimerError(e.into()))?;
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .map_err(|e| TimerError(e.into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let answer = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| TimerError(e.into()))?;
        Ok(answer
            .failed()
            .iter()
            .filter_map(|failed| {
                warn!(
                    code = failed.code(),
                    message = failed.message(),
                    "timer refused"
                );
                failed.id().parse().ok()
            })
            .collect())
    }
}

/// An `OrderCreated` row of the stream, with its sequence number.
struct Started {
    sequence_number: String,
    timer: DeadlineTimer,
}

pub struct DeadlineTimers<T> {
    timers: T,
}

impl<T: Timers> DeadlineTimers<T> {
    pub fn new(timers: T) -> Self {
        Self { timers }
    }

    /// Starts a timer for every `OrderCreated` row of the batch. What SQS does not take is
    /// reported from its earliest record, so the stream mapping tries again from there (a
    /// timer started twice rejects nothing twice: the second finds the order decided).
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        let started: Vec<Started> = event
            .records
            .into_iter()
            .filter_map(order_created)
            .collect();
        let mut response = DynamoDbEventResponse::default();
        for chunk in started.chunks(MAX_PER_CALL) {
            let timers: Vec<DeadlineTimer> = chunk.iter().map(|s| s.timer.clone()).collect();
            let refused = match self.timers.start(&timers).await {
                Ok(refused) => refused,
                Err(e) => {
                    error!(error = %e, source = ?std::error::Error::source(&e), "timers not started");
                    vec![0]
                }
            };
            if let Some(first) = refused.into_iter().min() {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier =
                    Some(chunk[first.min(chunk.len() - 1)].sequence_number.clone());
                response.batch_item_failures.push(failure);
                break;
            }
        }
        info!(
            coldStart = shared::telemetry::cold_start(),
            timers = started.len(),
            failed = !response.batch_item_failures.is_empty(),
            "deadline timers started"
        );
        response
    }
}

/// The timer for an `OrderCreated` row; nothing for any other row or change. An unreadable row
/// starts nothing: the relay dead-letters it with its reason.
fn order_created(record: EventRecord) -> Option<Started> {
    if record.event_name != "INSERT" {
        return None;
    }
    let sequence_number = record.change.sequence_number.clone().unwrap_or_default();
    let row = match serde_dynamo::from_item::<_, OutboxRecord>(record.change.new_image) {
        Ok(row) if row.detail_type == OrderCreated::DETAIL_TYPE => row,
        Ok(_) => return None,
        Err(e) => {
            error!(sequenceNumber = %sequence_number, error = %e, "outbox row unreadable; no timer");
            return None;
        }
    };
    match serde_json::from_str::<OrderCreated>(&row.detail) {
        Ok(created) => Some(Started {
            sequence_number,
            timer: DeadlineTimer {
                decision_deadline: created.meta,
            },
        }),
        Err(e) => {
            error!(sequenceNumber = %sequence_number, error = %e, "OrderCreated unreadable; no timer");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::sync::Mutex;
    use uuid::Uuid;

    /// Refuses the timers `refuse` names, or the whole call when `down`; records what it took.
    #[derive(Default)]
    struct Scripted {
        refuse: Vec<Uuid>,
        down: bool,
        calls: Mutex<Vec<usize>>,
        started: Mutex<Vec<Uuid>>,
    }

    impl Timers for Scripted {
        async fn start(&self, timers: &[DeadlineTimer]) -> Result<Vec<usize>, TimerError> {
            assert!(timers.len() <= MAX_PER_CALL);
            self.calls.lock().unwrap().push(timers.len());
            if self.down {
                return Err(TimerError("connection refused".into()));
            }
            let mut refused = Vec::new();
            for (i, timer) in timers.iter().enumerate() {
                let order = timer.decision_deadline.order_id;
                if self.refuse.contains(&order) {
                    refused.push(i);
                } else {
                    self.started.lock().unwrap().push(order);
                }
            }
            Ok(refused)
        }
    }

    fn row(detail_type: &str, detail: &str) -> Value {
        let event_id = Uuid::now_v7().to_string();
        json!({
            "eventId": {"S": event_id}, "subject": {"S": "s"}, "source": {"S": "orders"},
            "detailType": {"S": detail_type}, "detail": {"S": detail},
            "createdAt": {"S": "2026-11-26T12:00:00Z"}, "expiresAt": {"N": "0"}
        })
    }

    fn created(order_id: Uuid) -> Value {
        let meta = EventMeta::new(order_id, Some("c-1".into()));
        let detail = json!({
            "eventId": meta.event_id, "orderId": order_id, "occurredAt": meta.occurred_at,
            "schemaVersion": 1, "correlationId": "c-1", "consumerId": "consumer-1",
            "restaurantId": "restaurant-1", "lineItems": [{"menuItemId": "item-1", "quantity": 1}]
        });
        row("OrderCreated", &detail.to_string())
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

    fn failures(response: &DynamoDbEventResponse) -> Vec<String> {
        response
            .batch_item_failures
            .iter()
            .filter_map(|f| f.item_identifier.clone())
            .collect()
    }

    #[tokio::test]
    async fn a_timer_starts_for_each_order_created_and_for_nothing_else() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let handler = DeadlineTimers::new(Scripted::default());
        let response = handler
            .handle(batch(&[
                ("INSERT", created(a)),
                ("INSERT", row("OrderValidated", "{}")),
                ("REMOVE", created(Uuid::now_v7())),
                ("INSERT", row("OrderCreated", "not JSON")),
                ("INSERT", created(b)),
            ]))
            .await;
        assert!(failures(&response).is_empty());
        assert_eq!(*handler.timers.started.lock().unwrap(), vec![a, b]);
    }

    #[tokio::test]
    async fn timers_go_ten_to_a_call() {
        let rows: Vec<(&str, Value)> = (0..23)
            .map(|_| ("INSERT", created(Uuid::now_v7())))
            .collect();
        let handler = DeadlineTimers::new(Scripted::default());
        assert!(failures(&handler.handle(batch(&rows)).await).is_empty());
        assert_eq!(*handler.timers.calls.lock().unwrap(), vec![10, 10, 3]);
    }

    #[tokio::test]
    async fn a_refused_timer_is_reported_and_nothing_after_its_call_is_sent() {
        let orders: Vec<Uuid> = (0..15).map(|_| Uuid::now_v7()).collect();
        let rows: Vec<(&str, Value)> = orders.iter().map(|o| ("INSERT", created(*o))).collect();
        let handler = DeadlineTimers::new(Scripted {
            refuse: vec![orders[3], orders[7]],
            ..Scripted::default()
        });
        let response = handler.handle(batch(&rows)).await;
        // The mapping starts again from the earliest refused record (the fourth, sequence 103).
        assert_eq!(failures(&response), vec!["103".to_owned()]);
        assert_eq!(*handler.timers.calls.lock().unwrap(), vec![10]);
    }

    #[tokio::test]
    async fn sqs_down_reports_the_first_record_of_the_call() {
        let rows = [("INSERT", created(Uuid::now_v7()))];
        let handler = DeadlineTimers::new(Scripted {
            down: true,
            ..Scripted::default()
        });
        assert_eq!(
            failures(&handler.handle(batch(&rows)).await),
            vec!["100".to_owned()]
        );
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
