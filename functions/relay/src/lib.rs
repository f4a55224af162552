//! The outbox relay: outbox rows arrive from the table's stream and leave as EventBridge events.
//!
//! Nothing accepted is lost: entries `PutEvents` refuses are retried with backoff, and what still
//! fails is reported as the batch item failure with the earliest sequence number, so the stream
//! mapping retries from there (and, once its retries are spent, sends that record to the
//! on-failure destination). Records of one order never share a `PutEvents` call, and calls are
//! made in stream order, so an order's events are published in the order they were written.
//! Calls keep within EventBridge's limits: ten entries and 256 KB, counted as it counts them.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::Utc;
use shared::bus::{EntryOutcome, EventBus, MAX_BYTES_PER_CALL, MAX_ENTRIES_PER_CALL, PublishError};
use shared::metrics::{self, Unit};
use tracing::{debug, error, info, warn};

use shared::outbox::OutboxRecord;

/// The seam between the relay and EventBridge.
pub trait Publisher: Send + Sync {
    /// Publishes at most ten records of at most 256 KB together in one call; answers one outcome
    /// per record, in order.
    fn publish(
        &self,
        records: &[OutboxRecord],
    ) -> impl Future<Output = Result<Vec<EntryOutcome>, PublishError>> + Send;
}

impl Publisher for EventBus {
    async fn publish(&self, records: &[OutboxRecord]) -> Result<Vec<EntryOutcome>, PublishError> {
        let entries: Vec<_> = records.iter().map(OutboxRecord::entry).collect();
        self.put(&entries).await
    }
}

/// Retries within one invocation, before the stream mapping's own retries.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub retries: u32,
    pub first_delay: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            retries: 3,
            first_delay: Duration::from_millis(50),
        }
    }
}

pub struct Relay<P> {
    publisher: P,
    backoff: Backoff,
}

/// A stream record the relay must publish, or the reason it cannot be read.
struct Pending {
    sequence_number: String,
    record: Result<OutboxRecord, String>,
}

impl<P: Publisher> Relay<P> {
    pub fn new(publisher: P, backoff: Backoff) -> Self {
        Self { publisher, backoff }
    }

    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        let pending: Vec<Pending> = event.records.into_iter().filter_map(decode).collect();
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
        info!(
            coldStart = shared::telemetry::cold_start(),
            records = pending.len(),
            published = tally.published,
            calls = tally.calls,
            failed = !response.batch_item_failures.is_empty(),
            "relay batch done"
        );
        if tally.published > 0 {
            metrics::emit(
                &[
                    ("RelayedEvents", Unit::Count, tally.published as f64),
                    ("PutEventsCalls", Unit::Count, tally.calls as f64),
                    ("RelayLag", Unit::Milliseconds, tally.max_lag_ms as f64),
                ],
                &[],
            );
        }
        response
    }

    /// Publishes one chunk, retrying refused entries; on giving up, answers the sequence number
    /// of the earliest record not published.
    async fn publish_chunk(&self, chunk: &[Pending], tally: &mut Tally) -> Result<(), String> {
        if let Some(unreadable) = chunk.iter().find(|p| p.record.is_err()) {
            // `chunks` puts an unreadable record alone in its chunk.
            return Err(unreadable.sequence_number.clone());
        }
        let mut waiting: Vec<&Pending> = chunk.iter().collect();
        let mut delay = self.backoff.first_delay;
        for attempt in 0..=self.backoff.retries {
            if attempt > 0 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            let records: Vec<OutboxRecord> = waiting
                .iter()
                .filter_map(|p| p.record.as_ref().ok().cloned())
                .collect();
            tally.calls += 1;
            match self.publisher.publish(&records).await {
                Ok(outcomes) if outcomes.len() == records.len() => {
                    let mut still = Vec::new();
                    for ((pending, record), outcome) in
                        waiting.into_iter().zip(&records).zip(outcomes)
                    {
                        match outcome {
                            EntryOutcome::Published => tally.published_one(record),
                            EntryOutcome::Failed { code, message } => {
                                warn!(sequenceNumber = %pending.sequence_number, code, message, attempt, "entry refused");
                                still.push(pending);
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
                return Ok(());
            }
        }
        Err(waiting[0].sequence_number.clone())
    }
}

/// What one invocation did, for its summary line and metrics.
#[derive(Default)]
struct Tally {
    calls: usize,
    published: usize,
    max_lag_ms: i64,
}

impl Tally {
    fn published_one(&mut self, record: &OutboxRecord) {
        let lag_ms = (Utc::now() - record.created_at).num_milliseconds().max(0);
        self.published += 1;
        self.max_lag_ms = self.max_lag_ms.max(lag_ms);
        // Per event at debug: the batch's line and metrics say it at info, and log ingestion is
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
fn decode(record: EventRecord) -> Option<Pending> {
    if record.event_name != "INSERT" {
        return None;
    }
    let sequence_number = record.change.sequence_number.clone().unwrap_or_default();
    let decoded = serde_dynamo::from_item::<_, OutboxRecord>(record.change.new_image)
        .map_err(|e| e.to_string())
        .and_then(publishable);
    if let Err(reason) = &decoded {
        error!(sequenceNumber = %sequence_number, reason, "outbox record cannot be published");
    }
    Some(Pending {
        sequence_number,
        record: decoded,
    })
}

/// A record whose entry EventBridge would refuse on every attempt is not publishable: it is
/// reported, as an unreadable one is, so that it ends at the on-failure destination.
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
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
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

    fn quick() -> Backoff {
        Backoff {
            retries: 2,
            first_delay: Duration::from_millis(1),
        }
    }

    /// How many entries each `PutEvents` call carried, in order.
    fn call_sizes<F>(relay: &Relay<Scripted<F>>) -> Vec<usize> {
        relay
            .publisher
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(Vec::len)
            .collect()
    }

    fn failures(response: &DynamoDbEventResponse) -> Vec<String> {
        response
            .batch_item_failures
            .iter()
            .filter_map(|f| f.item_identifier.clone())
            .collect()
    }

    #[tokio::test]
    async fn publishes_in_calls_of_at_most_ten() {
        let records: Vec<_> = (0..25).map(|_| record(Uuid::now_v7())).collect();
        let relay = Relay::new(Scripted::new(|_, _| false), quick());
        let response = relay.handle(batch(&records, 0)).await;
        assert!(failures(&response).is_empty());
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
        let relay = Relay::new(Scripted::new(|_, _| false), quick());
        assert!(failures(&relay.handle(batch(&records, 0)).await).is_empty());
        // 100 + 100 + 56 KB is exactly the budget: the next entry starts a call.
        assert_eq!(call_sizes(&relay), [3, 2, 1]);
    }

    #[tokio::test]
    async fn an_event_over_eventbridges_limit_is_reported_after_the_records_before_it() {
        let records = vec![
            record_of_size(1000),
            record_of_size(MAX_BYTES_PER_CALL + 1),
            record_of_size(1000),
        ];
        let relay = Relay::new(Scripted::new(|_, _| false), quick());
        let response = relay.handle(batch(&records, 40)).await;
        assert_eq!(failures(&response), ["41"]);
        assert_eq!(
            *relay.publisher.published.lock().unwrap(),
            [records[0].event_id]
        );
    }

    #[tokio::test]
    async fn what_aws_sends_from_an_outbox_stream_is_handled() {
        let corpus =
            |name| -> Event { serde_json::from_value(shared::corpus::event(name)).unwrap() };
        // A TTL expiry (a REMOVE by the service itself) publishes nothing and fails nothing.
        let relay = Relay::new(Scripted::new(|_, _| false), quick());
        assert!(failures(&relay.handle(corpus("dynamodb-stream-ttl-delete")).await).is_empty());
        // An INSERT whose image is no outbox row is reported at its sequence number.
        let inserted = corpus("dynamodb-stream-insert-modify");
        let first = inserted.records[0].change.sequence_number.clone().unwrap();
        assert_eq!(failures(&relay.handle(inserted).await), [first]);
        assert!(relay.publisher.calls.lock().unwrap().is_empty());
        // The same record carrying an outbox row is published.
        let row = record(Uuid::now_v7());
        let mut event = shared::corpus::event("dynamodb-stream-insert-modify");
        let image: serde_dynamo::Item = serde_dynamo::to_item(&row).unwrap();
        event["Records"][0]["dynamodb"]["NewImage"] = serde_json::to_value(image).unwrap();
        let event: Event = serde_json::from_value(event).unwrap();
        assert!(failures(&relay.handle(event).await).is_empty());
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
        let relay = Relay::new(Scripted::new(|_, _| false), quick());
        assert!(failures(&relay.handle(event).await).is_empty());
        assert!(relay.publisher.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn refused_entries_are_retried_within_the_invocation() {
        let records: Vec<_> = (0..12).map(|_| record(Uuid::now_v7())).collect();
        let flaky: HashSet<Uuid> = [records[3].event_id, records[11].event_id].into();
        let relay = Relay::new(
            Scripted::new(move |id, attempt| flaky.contains(&id) && attempt < 3),
            quick(),
        );
        assert!(failures(&relay.handle(batch(&records, 0)).await).is_empty());
        assert_eq!(relay.publisher.published.lock().unwrap().len(), 12);
    }

    #[tokio::test]
    async fn a_record_that_keeps_failing_is_reported_and_nothing_after_its_call_is_sent() {
        let records: Vec<_> = (0..25).map(|_| record(Uuid::now_v7())).collect();
        let stuck = records[13].event_id;
        let relay = Relay::new(Scripted::new(move |id, _| id == stuck), quick());
        let response = relay.handle(batch(&records, 100)).await;
        assert_eq!(failures(&response), ["113"]);
        let published = relay.publisher.published.lock().unwrap();
        // The first call, and the second call but for the stuck record; the third never went.
        assert_eq!(published.len(), 19);
        assert!(!published.contains(&records[20].event_id));
    }

    #[tokio::test]
    async fn an_unreadable_record_is_reported_after_the_records_before_it() {
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
        let relay = Relay::new(Scripted::new(|_, _| false), quick());
        assert_eq!(failures(&relay.handle(event).await), ["8"]);
        assert_eq!(*relay.publisher.published.lock().unwrap(), [good.event_id]);
    }

    #[tokio::test]
    async fn one_order_never_has_two_records_in_one_call() {
        let order = Uuid::now_v7();
        let records = vec![record(order), record(Uuid::now_v7()), record(order)];
        let relay = Relay::new(Scripted::new(|_, _| false), quick());
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
                Backoff { retries: 0, first_delay: Duration::ZERO },
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
                match failures(&response).first() {
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
        /// record, otherwise reported as the batch's failure, never skipped and never a panic.
        #[test]
        fn a_hostile_image_is_published_or_reported_never_skipped(
            image in shared::hostile::mutated(serde_json::to_value(record(Uuid::now_v7())).unwrap()),
        ) {
            let Ok(item) = serde_dynamo::to_item::<_, serde_dynamo::Item>(&image) else {
                return Ok(()); // not an object: no DynamoDB item has that shape
            };
            let readable = serde_dynamo::from_item::<_, OutboxRecord>(item.clone()).is_ok();
            let event: Event = serde_json::from_value(json!({
                "Records": [stream_record(7, "INSERT", serde_json::to_value(item).unwrap())]
            })).unwrap();
            let relay = Relay::new(Scripted::new(|_, _| false), quick());
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            let response = runtime.block_on(relay.handle(event));
            let published = relay.publisher.published.lock().unwrap().len();
            if readable {
                prop_assert_eq!(published, 1);
                prop_assert!(failures(&response).is_empty());
            } else {
                prop_assert_eq!(published, 0);
                prop_assert_eq!(failures(&response), ["7"]);
            }
        }
    }
}
