//! The outbox relay: outbox rows arrive from the table's stream and leave as EventBridge events.
//!
//! Nothing accepted is lost: entries `PutEvents` refuses are retried with backoff, and what still
//! fails is reported as the batch item failure with the earliest sequence number, so the stream
//! mapping retries from there, for as long as the bus refuses (the template sets no limit): when
//! it accepts again, every row is published. A row that could never be published (unreadable,
//! or over EventBridge's limit) is dead-lettered with its reason instead, so it cannot hold up the
//! rows behind it. Records of one subject never share a `PutEvents` call, and calls are made in
//! stream order, so a subject's events are published in the order they were written. Calls keep
//! within EventBridge's limits: ten entries and 256 KB, counted as it counts them.

use std::collections::HashSet;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::Utc;
use shared::language::outbox::OutboxRecord;
use shared::platform::backoff::Backoff;
use shared::platform::bus::{EntryOutcome, MAX_BYTES_PER_CALL, MAX_ENTRIES_PER_CALL};
use shared::platform::metrics::{self, Unit};
use tracing::{debug, error, warn};

mod outboxes;
mod ports;

pub use outboxes::Outboxes;
pub use ports::{DeadRow, DeadRows, Publisher};

/// Retries within one invocation, before the stream mapping's own retries.
#[derive(Debug, Clone, Copy)]
pub struct Retries {
    pub times: u32,
    pub backoff: Backoff,
}

impl Default for Retries {
    fn default() -> Self {
        Self {
            times: 3,
            backoff: Backoff {
                base: Duration::from_millis(50),
                cap: Duration::from_secs(1),
            },
        }
    }
}

pub struct Relay<P, D> {
    publisher: P,
    dead_rows: D,
    retries: Retries,
    outboxes: Outboxes,
}

/// A stream record the relay must publish, or the row it can never publish.
struct Pending {
    sequence_number: String,
    stream_arn: String,
    record: Result<OutboxRecord, DeadRow>,
}

impl Pending {
    /// The row as dead-lettered after EventBridge refused it for good.
    fn refused(&self, record: &OutboxRecord, code: &str, message: &str) -> DeadRow {
        let image = serde_dynamo::to_item::<_, serde_dynamo::Item>(record)
            .ok()
            .and_then(|item| serde_json::to_string(&item).ok())
            .unwrap_or_default();
        DeadRow {
            sequence_number: self.sequence_number.clone(),
            stream_arn: self.stream_arn.clone(),
            image,
            reason: format!("EventBridge refuses the entry for good: {code}: {message}"),
        }
    }
}

impl<P: Publisher, D: DeadRows> Relay<P, D> {
    pub fn new(publisher: P, dead_rows: D, retries: Retries, outboxes: Outboxes) -> Self {
        Self {
            publisher,
            dead_rows,
            retries,
            outboxes,
        }
    }

    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        // A stream of a table the relay was not told of is a configuration fault (a table
        // replaced, a mapping added), not the rows': held, for the mapping to retry once the
        // template is fixed (the IteratorAge alarm fires), never dead-lettered.
        if let Some(unknown) = event.records.iter().find(|r| {
            r.event_name == "INSERT"
                && !self
                    .outboxes
                    .knows(r.event_source_arn.as_deref().unwrap_or_default())
        }) {
            error!(stream = ?unknown.event_source_arn, "a stream of no outbox this relay knows; held");
            let mut response = DynamoDbEventResponse::default();
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = event.records[0].change.sequence_number.clone();
            response.batch_item_failures.push(failure);
            return response;
        }
        let pending: Vec<Pending> = event
            .records
            .into_iter()
            .filter_map(|record| decode(record, &self.outboxes))
            .collect();
        let mut response = DynamoDbEventResponse::default();
        let mut tally = Tally::default();
        for chunk in chunks(&pending) {
            if let Err(sequence_number) = self.publish_chunk(chunk, &mut tally).await {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence_number);
                response.batch_item_failures.push(failure);
                break;
            }
        }
        debug!(
            records = pending.len(),
            published = tally.published,
            deadLettered = tally.dead_lettered,
            calls = tally.calls,
            failed = !response.batch_item_failures.is_empty(),
            "relay batch done"
        );
        if tally.published > 0 {
            metrics::measure(&[
                ("RelayedEvents", Unit::Count, tally.published as f64),
                ("PutEventsCalls", Unit::Count, tally.calls as f64),
                ("RelayLag", Unit::Milliseconds, tally.max_lag_ms as f64),
            ]);
        }
        if tally.dead_lettered > 0 {
            metrics::emit(&[("RelayDeadLettered", Unit::Count, tally.dead_lettered as f64)]);
        }
        response
    }

    /// Publishes one chunk, retrying refused entries, or dead-letters the row that can never be
    /// published; on giving up, answers the sequence number of the earliest record not done.
    async fn publish_chunk(&self, chunk: &[Pending], tally: &mut Tally) -> Result<(), String> {
        // `chunks` puts a row that can never be published alone in its chunk.
        if let Some(Err(dead)) = chunk.first().map(|p| &p.record) {
            return match self.dead_letter(dead, tally).await {
                true => Ok(()),
                false => Err(dead.sequence_number.clone()),
            };
        }
        // Positions in the chunk, so that what is reported is the earliest record not done.
        let mut waiting: Vec<(usize, &Pending)> = chunk.iter().enumerate().collect();
        let mut refused: Vec<(usize, DeadRow)> = Vec::new();
        for attempt in 0..=self.retries.times {
            if attempt > 0 {
                self.retries.backoff.wait(attempt).await;
            }
            let records: Vec<OutboxRecord> = waiting
                .iter()
                .filter_map(|(_, p)| p.record.as_ref().ok().cloned())
                .collect();
            tally.calls += 1;
            match self.publisher.publish(&records).await {
                Ok(outcomes) if outcomes.len() == records.len() => {
                    let mut still = Vec::new();
                    for (((at, pending), record), outcome) in
                        waiting.into_iter().zip(&records).zip(outcomes)
                    {
                        match outcome {
                            EntryOutcome::Published => tally.published_one(record),
                            EntryOutcome::Failed { code, message }
                                if shared::platform::bus::refused_for_good(&code) =>
                            {
                                refused.push((at, pending.refused(record, &code, &message)));
                            }
                            EntryOutcome::Failed { code, message } => {
                                warn!(sequenceNumber = %pending.sequence_number, code, message, attempt, "entry refused");
                                still.push((at, pending));
                            }
                        }
                    }
                    waiting = still;
                }
                Ok(outcomes) => {
                    error!(
                        sent = records.len(),
                        answered = outcomes.len(),
                        attempt,
                        "PutEvents answer does not match the request"
                    );
                }
                Err(e) => warn!(error = %e, attempt, "PutEvents call failed"),
            }
            if waiting.is_empty() {
                break;
            }
        }
        // A row refused for good is dead-lettered only when nothing before it is still waiting:
        // the mapping delivers again from the earliest record not done, and a row after it will
        // be refused again then, and dead-lettered once.
        let mut not_done = waiting.first().map(|(at, _)| *at);
        refused.sort_by_key(|(at, _)| *at);
        for (at, dead) in refused {
            if not_done.is_some_and(|first| first < at) {
                continue;
            }
            if !self.dead_letter(&dead, tally).await {
                not_done = Some(not_done.map_or(at, |first| first.min(at)));
            }
        }
        match not_done {
            None => Ok(()),
            Some(at) => Err(chunk[at].sequence_number.clone()),
        }
    }
}

impl<P: Publisher, D: DeadRows> Relay<P, D> {
    /// Dead-letters a row that can never be published; false when the failure queue refused it.
    async fn dead_letter(&self, dead: &DeadRow, tally: &mut Tally) -> bool {
        match self.dead_rows.dead_letter(dead).await {
            Ok(()) => {
                warn!(sequenceNumber = %dead.sequence_number, reason = %dead.reason, "outbox row dead-lettered: it can never be published");
                tally.dead_lettered += 1;
                true
            }
            Err(e) => {
                error!(sequenceNumber = %dead.sequence_number, error = %e, "outbox row not dead-lettered; the stream will deliver it again");
                false
            }
        }
    }
}

/// What one invocation did, for its summary line and metrics.
#[derive(Default)]
struct Tally {
    calls: usize,
    published: usize,
    dead_lettered: usize,
    max_lag_ms: i64,
}

impl Tally {
    fn published_one(&mut self, record: &OutboxRecord) {
        let lag_ms = (Utc::now() - record.created_at).num_milliseconds().max(0);
        self.published += 1;
        self.max_lag_ms = self.max_lag_ms.max(lag_ms);
        // Per event at debug: the invocation's record says it at info, and log ingestion is
        // billed by the byte (`make bench` counts it per order).
        debug!(
            subject = %record.subject,
            eventId = %record.event_id,
            correlationId = record.correlation_id.as_deref().unwrap_or_default(),
            detailType = %record.detail_type,
            lagMs = lag_ms,
            "event published"
        );
    }
}

/// Keeps inserts only: a TTL expiry or any other change publishes nothing.
fn decode(record: EventRecord, outboxes: &Outboxes) -> Option<Pending> {
    if record.event_name != "INSERT" {
        return None;
    }
    let sequence_number = record.change.sequence_number.clone().unwrap_or_default();
    let stream_arn = record.event_source_arn.clone().unwrap_or_default();
    let image = record.change.new_image;
    let decoded = serde_dynamo::from_item::<_, OutboxRecord>(image.clone())
        .map_err(|e| e.to_string())
        .and_then(|record| outboxes.admit(&stream_arn, record))
        .and_then(publishable)
        .map_err(|reason| {
            error!(sequenceNumber = %sequence_number, reason, "outbox record cannot be published");
            DeadRow {
                sequence_number: sequence_number.clone(),
                stream_arn: stream_arn.clone(),
                image: serde_json::to_string(&image).unwrap_or_default(),
                reason,
            }
        });
    Some(Pending {
        sequence_number,
        stream_arn,
        record: decoded,
    })
}

/// A record whose entry EventBridge would refuse on every attempt can never be published.
fn publishable(record: OutboxRecord) -> Result<OutboxRecord, String> {
    let size = record.entry().size();
    if size > MAX_BYTES_PER_CALL {
        return Err(format!(
            "the event is {size} bytes; EventBridge takes at most {MAX_BYTES_PER_CALL}"
        ));
    }
    Ok(record)
}

/// Splits the batch, in stream order, into `PutEvents` calls: at most ten entries of at most
/// 256 KB together, never two of the same subject (order, consumer, restaurant), and a record
/// that cannot be published alone.
fn chunks(pending: &[Pending]) -> Vec<&[Pending]> {
    let mut result = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    let mut orders: HashSet<&str> = HashSet::new();
    for (i, p) in pending.iter().enumerate() {
        let order = p.record.as_ref().ok().map(|r| r.subject.as_str());
        let size = p.record.as_ref().map_or(0, |r| r.entry().size());
        let full = i - start == MAX_ENTRIES_PER_CALL || bytes + size > MAX_BYTES_PER_CALL;
        let repeats_order = order.is_some_and(|o| orders.contains(o));
        if i > start && (full || repeats_order || order.is_none()) {
            result.push(&pending[start..i]);
            start = i;
            bytes = 0;
            orders.clear();
        }
        bytes += size;
        match order {
            Some(o) => {
                orders.insert(o);
            }
            None => {
                result.push(&pending[start..=i]);
                start = i + 1;
                bytes = 0;
                orders.clear();
            }
        }
    }
    if start < pending.len() {
        result.push(&pending[start..]);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use shared::platform::bus::PublishError;
    use shared::platform::dead_letter::DeadLetterError;
    use shared::testing::corpus::failed_records;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use uuid::Uuid;

    /// A publisher that refuses an entry while `refuse` says so, and records every call.
    struct Scripted<F> {
        refuse: F,
        calls: Mutex<Vec<Vec<Uuid>>>,
        published: Mutex<Vec<Uuid>>,
        attempts: Mutex<HashMap<Uuid, u32>>,
    }

    impl<F: Fn(Uuid, u32) -> bool + Send + Sync> Scripted<F> {
        fn new(refuse: F) -> Self {
            Self {
                refuse,
                calls: Mutex::default(),
                published: Mutex::default(),
                attempts: Mutex::default(),
            }
        }
    }

    impl<F: Fn(Uuid, u32) -> bool + Send + Sync> Publisher for Scripted<F> {
        async fn publish(
            &self,
            records: &[OutboxRecord],
        ) -> Result<Vec<EntryOutcome>, PublishError> {
            assert!(records.len() <= MAX_ENTRIES_PER_CALL);
            let bytes: usize = records.iter().map(|r| r.entry().size()).sum();
            assert!(bytes <= MAX_BYTES_PER_CALL, "a call of {bytes} bytes");
            self.calls
                .lock()
                .unwrap()
                .push(records.iter().map(|r| r.event_id).collect());
            Ok(records
                .iter()
                .map(|r| {
                    let mut attempts = self.attempts.lock().unwrap();
                    let attempt = attempts.entry(r.event_id).or_default();
                    *attempt += 1;
                    if (self.refuse)(r.event_id, *attempt) {
                        EntryOutcome::Failed {
                            code: "InternalFailure".into(),
                            message: "try again".into(),
                        }
                    } else {
                        self.published.lock().unwrap().push(r.event_id);
                        EntryOutcome::Published
                    }
                })
                .collect())
        }
    }

    /// The failure queue in memory; it refuses while `refuse` is set.
    #[derive(Default)]
    struct Kept {
        rows: Mutex<Vec<DeadRow>>,
        refuse: bool,
    }

    impl DeadRows for Kept {
        async fn dead_letter(&self, row: &DeadRow) -> Result<(), DeadLetterError> {
            if self.refuse {
                return Err(shared::platform::aws_error::AwsError::coded(
                    "SQS.SendMessage",
                    "AccessDenied",
                    403,
                    "refused",
                )
                .into());
            }
            self.rows.lock().unwrap().push(row.clone());
            Ok(())
        }
    }

    fn relay<F: Fn(Uuid, u32) -> bool + Send + Sync>(
        publisher: Scripted<F>,
    ) -> Relay<Scripted<F>, Kept> {
        Relay::new(publisher, Kept::default(), quick(), outboxes())
    }

    /// The sequence numbers of the rows dead-lettered, and why.
    fn kept<P>(relay: &Relay<P, Kept>) -> Vec<(String, String)> {
        let rows = relay.dead_rows.rows.lock().unwrap();
        rows.iter()
            .map(|r| (r.sequence_number.clone(), r.reason.clone()))
            .collect()
    }

    fn record(order_id: Uuid) -> OutboxRecord {
        OutboxRecord {
            event_id: Uuid::now_v7(),
            subject: order_id.to_string(),
            order_id: Some(order_id),
            source: "orders".into(),
            detail_type: "OrderCreated".into(),
            detail: "{}".into(),
            created_at: Utc::now(),
            correlation_id: None,
            expires_at: 0,
        }
    }

    fn stream_record(sequence: usize, name: &str, image: Value) -> Value {
        json!({
            "eventID": format!("e{sequence}"), "eventName": name, "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "eventSourceARN": ORDERS_STREAM,
            "dynamodb": {"ApproximateCreationDateTime": 1.8e9, "Keys": {}, "NewImage": image,
                         "SequenceNumber": sequence.to_string(), "SizeBytes": 100,
                         "StreamViewType": "NEW_IMAGE"}
        })
    }

    /// A stream batch whose sequence numbers are the records' positions, starting at `first`.
    fn batch(records: &[OutboxRecord], first: usize) -> Event {
        let items = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let image: serde_dynamo::Item = serde_dynamo::to_item(r).unwrap();
                stream_record(first + i, "INSERT", serde_json::to_value(image).unwrap())
            })
            .collect::<Vec<_>>();
        serde_json::from_value(json!({ "Records": items })).unwrap()
    }

    /// The outboxes as devstack names them; `batch` reads from the orders'.
    fn outboxes() -> Outboxes {
        Outboxes::new(
            "OutboxTable",
            "ConsumersOutboxTable",
            "RestaurantsOutboxTable",
        )
    }

    const ORDERS_STREAM: &str =
        "arn:aws:dynamodb:us-east-1:123456789012:table/OutboxTable/stream/x";

    fn quick() -> Retries {
        Retries {
            times: 2,
            backoff: Backoff {
                base: Duration::from_millis(1),
                cap: Duration::from_millis(4),
            },
        }
    }

    /// How many entries each `PutEvents` call carried, in order.
    fn call_sizes<F>(relay: &Relay<Scripted<F>, Kept>) -> Vec<usize> {
        relay
            .publisher
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(Vec::len)
            .collect()
    }

    #[tokio::test]
    async fn publishes_in_calls_of_at_most_ten() {
        let records: Vec<_> = (0..25).map(|_| record(Uuid::now_v7())).collect();
        let relay = relay(Scripted::new(|_, _| false));
        let response = relay.handle(batch(&records, 0)).await;
        assert!(failed_records(&response).is_empty());
        assert_eq!(call_sizes(&relay), [10, 10, 5]);
        let ids: Vec<_> = records.iter().map(|r| r.event_id).collect();
        assert_eq!(*relay.publisher.published.lock().unwrap(), ids);
    }

    /// A record of another order whose entry is `bytes` long, as EventBridge counts it.
    fn record_of_size(bytes: usize) -> OutboxRecord {
        let mut r = record(Uuid::now_v7());
        r.detail = "x".repeat(bytes - r.entry().size() + r.detail.len());
        assert_eq!(r.entry().size(), bytes);
        r
    }

    #[tokio::test]
    async fn calls_keep_within_256_kb_counted_as_eventbridge_counts() {
        let kb = 1024;
        let sizes = [100 * kb, 100 * kb, 56 * kb, 100, 200 * kb, 256 * kb];
        let records: Vec<_> = sizes.iter().map(|&s| record_of_size(s)).collect();
        let relay = relay(Scripted::new(|_, _| false));
        assert!(failed_records(&relay.handle(batch(&records, 0)).await).is_empty());
        // 100 + 100 + 56 KB is exactly the budget: the next entry starts a call.
        assert_eq!(call_sizes(&relay), [3, 2, 1]);
    }

    #[tokio::test]
    async fn an_event_over_eventbridges_limit_is_dead_lettered_and_the_rest_published() {
        let records = vec![
            record_of_size(1000),
            record_of_size(MAX_BYTES_PER_CALL + 1),
            record_of_size(1000),
        ];
        let relay = relay(Scripted::new(|_, _| false));
        let response = relay.handle(batch(&records, 40)).await;
        assert!(failed_records(&response).is_empty());
        assert_eq!(
            *relay.publisher.published.lock().unwrap(),
            [records[0].event_id, records[2].event_id]
        );
        let reason = format!(
            "the event is {} bytes; EventBridge takes at most {MAX_BYTES_PER_CALL}",
            MAX_BYTES_PER_CALL + 1
        );
        assert_eq!(kept(&relay), [("41".to_owned(), reason)]);
        // The image as the stream gave it, for an operator to read.
        let image: Value =
            serde_json::from_str(&relay.dead_rows.rows.lock().unwrap()[0].image).unwrap();
        assert_eq!(image["eventId"]["S"], records[1].event_id.to_string());
    }

    /// A publisher that refuses one entry with a code EventBridge never retries.
    struct Malformed(Uuid, Mutex<Vec<Uuid>>);

    impl Publisher for Malformed {
        async fn publish(
            &self,
            records: &[OutboxRecord],
        ) -> Result<Vec<EntryOutcome>, PublishError> {
            Ok(records
                .iter()
                .map(|r| {
                    if r.event_id == self.0 {
                        EntryOutcome::Failed {
                            code: "MalformedDetail".into(),
                            message: "Detail is malformed.".into(),
                        }
                    } else {
                        self.1.lock().unwrap().push(r.event_id);
                        EntryOutcome::Published
                    }
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn an_entry_eventbridge_refuses_for_good_is_dead_lettered_at_once_with_its_code() {
        let records: Vec<_> = (0..3).map(|_| record(Uuid::now_v7())).collect();
        let relay = Relay::new(
            Malformed(records[1].event_id, Mutex::default()),
            Kept::default(),
            quick(),
            outboxes(),
        );
        assert!(failed_records(&relay.handle(batch(&records, 0)).await).is_empty());
        assert_eq!(
            *relay.publisher.1.lock().unwrap(),
            [records[0].event_id, records[2].event_id]
        );
        let rows = relay.dead_rows.rows.lock().unwrap().clone();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].sequence_number, "1");
        assert!(
            rows[0].reason.contains("MalformedDetail"),
            "{}",
            rows[0].reason
        );
        let image: Value = serde_json::from_str(&rows[0].image).unwrap();
        assert_eq!(image["eventId"]["S"], records[1].event_id.to_string());
    }

    /// Refuses `malformed` for good, and `busy` for its first `busy_left` tries; records the rest.
    struct Mixed {
        malformed: Uuid,
        busy: Uuid,
        busy_left: Mutex<u32>,
        published: Mutex<Vec<Uuid>>,
    }

    impl Publisher for Mixed {
        async fn publish(
            &self,
            records: &[OutboxRecord],
        ) -> Result<Vec<EntryOutcome>, PublishError> {
            let mut busy_left = self.busy_left.lock().unwrap();
            Ok(records
                .iter()
                .map(|r| {
                    let failed = |code: &str| EntryOutcome::Failed {
                        code: code.into(),
                        message: "no".into(),
                    };
                    if r.event_id == self.malformed {
                        failed("MalformedDetail")
                    } else if r.event_id == self.busy && *busy_left > 0 {
                        *busy_left -= 1;
                        failed("ThrottlingException")
                    } else {
                        self.published.lock().unwrap().push(r.event_id);
                        EntryOutcome::Published
                    }
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn a_row_refused_for_good_after_one_still_waiting_is_dead_lettered_once() {
        let records: Vec<_> = (0..2).map(|_| record(Uuid::now_v7())).collect();
        let relay = Relay::new(
            Mixed {
                busy: records[0].event_id,
                malformed: records[1].event_id,
                // Refused through the first invocation's three tries, then taken.
                busy_left: Mutex::new(3),
                published: Mutex::default(),
            },
            Kept::default(),
            quick(),
            outboxes(),
        );
        // The first waits: the mapping delivers both again from it, so the second is not
        // dead-lettered yet.
        assert_eq!(
            failed_records(&relay.handle(batch(&records, 0)).await),
            ["0"]
        );
        assert!(kept(&relay).is_empty());
        assert!(failed_records(&relay.handle(batch(&records, 0)).await).is_empty());
        assert_eq!(
            *relay.publisher.published.lock().unwrap(),
            [records[0].event_id]
        );
        assert_eq!(kept(&relay).len(), 1);
        assert_eq!(kept(&relay)[0].0, "1");
    }

    #[tokio::test]
    async fn a_row_the_failure_queue_refuses_is_reported_and_nothing_after_it_is_sent() {
        let records = vec![record_of_size(MAX_BYTES_PER_CALL + 1), record_of_size(1000)];
        let relay = Relay::new(
            Scripted::new(|_, _| false),
            Kept {
                refuse: true,
                ..Kept::default()
            },
            quick(),
            outboxes(),
        );
        assert_eq!(
            failed_records(&relay.handle(batch(&records, 0)).await),
            ["0"]
        );
        assert!(relay.publisher.published.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_row_its_outbox_may_not_carry_is_dead_lettered_not_published() {
        let relay = relay(Scripted::new(|_, _| false));
        let honest = record(Uuid::now_v7());
        let mut forged = record(Uuid::now_v7());
        (forged.source, forged.detail_type) =
            ("restaurants".into(), "OrderDetailsValidated".into());
        let mut misfiled = record(Uuid::now_v7());
        misfiled.detail_type = "ConsumerUpdated".into();
        let response = relay
            .handle(batch(&[forged, honest.clone(), misfiled], 0))
            .await;
        assert!(failed_records(&response).is_empty());
        assert_eq!(
            *relay.publisher.published.lock().unwrap(),
            [honest.event_id]
        );
        let reasons = kept(&relay);
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(
            reasons[0]
                .1
                .contains("not restaurants OrderDetailsValidated"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].1.contains("not orders ConsumerUpdated"),
            "{reasons:?}"
        );

        // A stream of a table the relay was not told of is held whole, for the mapping to retry.
        let mut elsewhere = batch(&[record(Uuid::now_v7()), record(Uuid::now_v7())], 7);
        for record in &mut elsewhere.records {
            record.event_source_arn = Some("arn:aws:dynamodb:r:1:table/NewOutbox/stream/x".into());
        }
        assert_eq!(failed_records(&relay.handle(elsewhere).await), ["7"]);
        assert_eq!(kept(&relay).len(), 2, "nothing more dead-lettered");
        assert_eq!(relay.publisher.published.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn what_aws_sends_from_an_outbox_stream_is_handled() {
        let corpus = |name| -> Event {
            serde_json::from_value(shared::testing::corpus::event(name)).unwrap()
        };
        // A TTL expiry (a REMOVE by the service itself) publishes nothing and fails nothing.
        let relay = Relay::new(
            Scripted::new(|_, _| false),
            Kept::default(),
            quick(),
            Outboxes::new("ExampleOrders", "ExampleConsumers", "ExampleRestaurants"),
        );
        assert!(
            failed_records(&relay.handle(corpus("dynamodb-stream-ttl-delete")).await).is_empty()
        );
        // An INSERT whose image is no outbox row is dead-lettered with its stream and position.
        let inserted = corpus("dynamodb-stream-insert-modify");
        let first = inserted.records[0].change.sequence_number.clone().unwrap();
        let stream = inserted.records[0].event_source_arn.clone().unwrap();
        assert!(failed_records(&relay.handle(inserted).await).is_empty());
        assert!(relay.publisher.calls.lock().unwrap().is_empty());
        let rows = relay.dead_rows.rows.lock().unwrap().clone();
        assert_eq!(
            (rows.len(), &rows[0].sequence_number, &rows[0].stream_arn),
            (1, &first, &stream)
        );
        // The same record carrying an outbox row is published.
        let row = record(Uuid::now_v7());
        let mut event = shared::testing::corpus::event("dynamodb-stream-insert-modify");
        let image: serde_dynamo::Item = serde_dynamo::to_item(&row).unwrap();
        event["Records"][0]["dynamodb"]["NewImage"] = serde_json::to_value(image).unwrap();
        let event: Event = serde_json::from_value(event).unwrap();
        assert!(failed_records(&relay.handle(event).await).is_empty());
        assert_eq!(*relay.publisher.published.lock().unwrap(), [row.event_id]);
    }

    #[tokio::test]
    async fn only_inserts_are_published() {
        let image: serde_dynamo::Item = serde_dynamo::to_item(record(Uuid::now_v7())).unwrap();
        let image = serde_json::to_value(image).unwrap();
        let event = serde_json::from_value(json!({ "Records": [
            stream_record(1, "REMOVE", image.clone()),
            stream_record(2, "MODIFY", image),
        ]}))
        .unwrap();
        let relay = relay(Scripted::new(|_, _| false));
        assert!(failed_records(&relay.handle(event).await).is_empty());
        assert!(relay.publisher.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn refused_entries_are_retried_within_the_invocation() {
        let records: Vec<_> = (0..12).map(|_| record(Uuid::now_v7())).collect();
        let flaky: HashSet<Uuid> = [records[3].event_id, records[11].event_id].into();
        let relay = relay(Scripted::new(move |id, attempt| {
            flaky.contains(&id) && attempt < 3
        }));
        assert!(failed_records(&relay.handle(batch(&records, 0)).await).is_empty());
        assert_eq!(relay.publisher.published.lock().unwrap().len(), 12);
    }

    #[tokio::test]
    async fn a_record_that_keeps_failing_is_reported_and_nothing_after_its_call_is_sent() {
        let records: Vec<_> = (0..25).map(|_| record(Uuid::now_v7())).collect();
        let stuck = records[13].event_id;
        let relay = relay(Scripted::new(move |id, _| id == stuck));
        let response = relay.handle(batch(&records, 100)).await;
        assert_eq!(failed_records(&response), ["113"]);
        let published = relay.publisher.published.lock().unwrap();
        // The first call, and the second call but for the stuck record; the third never went.
        assert_eq!(published.len(), 19);
        assert!(!published.contains(&records[20].event_id));
    }

    #[tokio::test]
    async fn an_unreadable_record_is_dead_lettered_after_the_records_before_it() {
        let good = record(Uuid::now_v7());
        let mut items = vec![];
        let image: serde_dynamo::Item = serde_dynamo::to_item(&good).unwrap();
        items.push(stream_record(
            7,
            "INSERT",
            serde_json::to_value(image).unwrap(),
        ));
        items.push(stream_record(
            8,
            "INSERT",
            json!({"eventId": {"S": "not-a-uuid"}}),
        ));
        let event = serde_json::from_value(json!({ "Records": items })).unwrap();
        let relay = relay(Scripted::new(|_, _| false));
        assert!(failed_records(&relay.handle(event).await).is_empty());
        assert_eq!(*relay.publisher.published.lock().unwrap(), [good.event_id]);
        assert_eq!(kept(&relay).len(), 1);
        assert_eq!(kept(&relay)[0].0, "8");
    }

    #[tokio::test]
    async fn one_order_never_has_two_records_in_one_call() {
        let order = Uuid::now_v7();
        let records = vec![record(order), record(Uuid::now_v7()), record(order)];
        let relay = relay(Scripted::new(|_, _| false));
        relay.handle(batch(&records, 0)).await;
        assert_eq!(call_sizes(&relay), [2, 1]);
    }

    proptest! {
        /// The stream mapping's side, simulated: invoke with the records from the checkpoint,
        /// and on a reported failure retry from that sequence number. With entries failing up
        /// to five times each, every record is published, none is skipped, and each order's
        /// records are first published in stream order.
        #[test]
        fn nothing_is_lost_or_reordered_under_refused_entries(
            orders_of in prop::collection::vec(0usize..6, 1..40),
            refusals in prop::collection::vec(0u32..6, 40),
            batch_size in 1usize..15,
        ) {
            let order_ids: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
            let records: Vec<_> = orders_of.iter().map(|&o| record(order_ids[o])).collect();
            let refuse_count: HashMap<Uuid, u32> =
                records.iter().zip(&refusals).map(|(r, &n)| (r.event_id, n)).collect();
            let relay = Relay::new(
                Scripted::new(move |id, attempt| attempt <= refuse_count[&id]),
                Kept::default(),
                Retries { times: 0, backoff: Backoff { base: Duration::ZERO, cap: Duration::ZERO } },
                outboxes(),
            );
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            let mut checkpoint = 0;
            let mut invocations = 0;
            while checkpoint < records.len() {
                invocations += 1;
                prop_assert!(invocations < 1000, "the mapping made no progress");
                let end = (checkpoint + batch_size).min(records.len());
                let response = runtime.block_on(relay.handle(batch(&records[checkpoint..end], checkpoint)));
                let published = relay.publisher.published.lock().unwrap().clone();
                match failed_records(&response).first() {
                    None => checkpoint = end,
                    Some(failed) => {
                        let failed: usize = failed.parse().unwrap();
                        prop_assert!(failed >= checkpoint && failed < end);
                        // Everything before the reported record was published: no skip.
                        for r in &records[checkpoint..failed] {
                            prop_assert!(published.contains(&r.event_id));
                        }
                        checkpoint = failed;
                    }
                }
            }
            let published = relay.publisher.published.lock().unwrap().clone();
            let mut first_seen: Vec<Uuid> = Vec::new();
            for id in published {
                if !first_seen.contains(&id) {
                    first_seen.push(id);
                }
            }
            prop_assert_eq!(first_seen.len(), records.len());
            for order in order_ids {
                let written: Vec<_> = records.iter().filter(|r| r.order_id == Some(order)).map(|r| r.event_id).collect();
                let seen: Vec<_> = first_seen.iter().filter(|id| written.contains(id)).copied().collect();
                prop_assert_eq!(seen, written);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// A stream record whose image is anything at all: published if it reads as an outbox
        /// record, otherwise dead-lettered with a reason, never skipped and never a panic.
        #[test]
        fn a_hostile_image_is_published_or_reported_never_skipped(
            image in shared::testing::hostile::mutated(serde_json::to_value(record(Uuid::now_v7())).unwrap()),
        ) {
            let Ok(item) = serde_dynamo::to_item::<_, serde_dynamo::Item>(&image) else {
                return Ok(()); // not an object: no DynamoDB item has that shape
            };
            // Readable, and of what the orders outbox may carry: published; else dead-lettered.
            let publishable = serde_dynamo::from_item::<_, OutboxRecord>(item.clone())
                .is_ok_and(|r| outboxes().admit(ORDERS_STREAM, r).is_ok());
            let event: Event = serde_json::from_value(json!({
                "Records": [stream_record(7, "INSERT", serde_json::to_value(item).unwrap())]
            })).unwrap();
            let relay = relay(Scripted::new(|_, _| false));
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            let response = runtime.block_on(relay.handle(event));
            let published = relay.publisher.published.lock().unwrap().len();
            prop_assert!(failed_records(&response).is_empty());
            let dead = kept(&relay);
            if publishable {
                prop_assert_eq!((published, dead.len()), (1, 0));
            } else {
                prop_assert_eq!(published, 0);
                prop_assert_eq!(dead.len(), 1);
                prop_assert_eq!(&dead[0].0, "7");
                prop_assert!(!dead[0].1.is_empty());
            }
        }
    }
}
