//! What both validators do with a batch of `OrderCreated` messages: decide each one, publish
//! the answers in one `PutEvents` call, and report every message whose answer was not
//! published, so that SQS delivers it again (and, after enough tries, to its dead-letter queue).
//! A message that can never be answered (it does not decode, or the context's own record is
//! corrupt) goes to the dead-letter queue at once, with the reason.

use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures_util::future::join_all;
use tracing::{Instrument, debug, error, info, info_span};

use crate::bus::{self, Entry, EntryOutcome, EventBus};
use crate::dead_letter::{DeadLetters, SqsDeadLetters, Verdicts};
use crate::envelope::{Envelope, EnvelopeError};
use crate::events::{Event, OrderCreated};

/// A context's decision about a new order, as the event that answers it.
pub trait Validator: Send + Sync {
    fn answer(
        &self,
        order: &OrderCreated,
    ) -> impl Future<Output = Result<Entry, AnswerError>> + Send;
}

/// Why no answer could be made.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error(transparent)]
    Table(#[from] crate::table::TableError),
    #[error("answer does not serialize: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl AnswerError {
    /// True when trying again cannot help: the data itself is wrong.
    pub fn is_permanent(&self) -> bool {
        match self {
            AnswerError::Table(table) => table.is_permanent(),
            AnswerError::Serialize(_) => true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum MessageError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("expected OrderCreated, got {0}")]
    UnexpectedEvent(String),
    #[error(transparent)]
    Answer(#[from] AnswerError),
}

impl MessageError {
    fn is_permanent(&self) -> bool {
        match self {
            MessageError::Envelope(_) | MessageError::UnexpectedEvent(_) => true,
            MessageError::Answer(answer) => answer.is_permanent(),
        }
    }
}

pub async fn answer_batch<V: Validator, D: DeadLetters>(
    validator: &V,
    bus: &EventBus,
    dead_letters: &D,
    event: SqsEvent,
) -> SqsBatchResponse {
    info!(
        coldStart = crate::telemetry::cold_start(),
        messages = event.records.len(),
        "orders received"
    );
    let mut verdicts = Verdicts::default();
    let mut answers: Vec<(String, Entry)> = Vec::new();
    // Each order is checked on its own (one read of this context's table): all at once.
    let decided = join_all(
        event
            .records
            .iter()
            .map(|message| decide(validator, message)),
    )
    .await;
    for (message, decision) in event.records.iter().zip(decided) {
        let id = message.message_id.clone().unwrap_or_default();
        match decision {
            Ok(answer) => answers.push((id, answer)),
            Err(e) if e.is_permanent() => verdicts.reject(id, e.to_string()),
            Err(e) => {
                error!(messageId = %id, error = %e, "message not answered; SQS will deliver it again");
                verdicts.retry(id);
            }
        }
    }
    let entries: Vec<Entry> = answers.iter().map(|(_, entry)| entry.clone()).collect();
    // One outcome per answer, in order: calls within EventBridge's limits, one after another.
    let mut outcomes = Vec::with_capacity(entries.len());
    for call in bus::calls(&entries) {
        match bus.put(&entries[call.clone()]).await {
            Ok(answered) => outcomes.extend(answered.into_iter().map(Some)),
            Err(e) => {
                error!(error = %e, answers = call.len(), "answers not published");
                outcomes.extend(call.map(|_| None));
            }
        }
    }
    for ((id, entry), outcome) in answers.into_iter().zip(outcomes) {
        match outcome {
            // Per message at debug: the verdict is logged at info already, and log ingestion is
            // billed by the byte (`make bench` counts it per order).
            Some(EntryOutcome::Published) => {
                debug!(messageId = %id, answer = %entry.detail_type, "answer published")
            }
            Some(EntryOutcome::Failed { code, message }) => {
                error!(messageId = %id, code, message, "answer refused by the bus");
                verdicts.retry(id);
            }
            None => verdicts.retry(id),
        }
    }
    verdicts.settle(&event.records, dead_letters).await
}

async fn decide<V: Validator>(
    validator: &V,
    message: &aws_lambda_events::event::sqs::SqsMessage,
) -> Result<Entry, MessageError> {
    let envelope = Envelope::from_message(message)?;
    if envelope.detail_type != OrderCreated::DETAIL_TYPE {
        return Err(MessageError::UnexpectedEvent(envelope.detail_type));
    }
    let order: OrderCreated = envelope.detail()?;
    let span = info_span!(
        "validate",
        orderId = %order.meta.order_id,
        eventId = %order.meta.event_id,
        correlationId = order.meta.correlation_id.as_deref().unwrap_or_default(),
    );
    Ok(validator.answer(&order).instrument(span).await?)
}

/// The whole life of a validator function: logs, clients built once, then one batch per
/// invocation. `make` builds the validator from the SDK configuration.
pub async fn run<V: Validator>(
    make: impl FnOnce(&crate::aws::SdkConfig) -> Result<V, crate::aws::MissingEnv>,
) -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let config = crate::aws::sdk_config().await;
    let validator = make(&config)?;
    let bus = EventBus::from_env(&config)?;
    let dead_letters = SqsDeadLetters::from_env(&config)?;
    let (validator, bus, dead_letters) = (&validator, &bus, &dead_letters);
    lambda_runtime::run(crate::metrics::Recorded(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
            // Boxed: the nested future types otherwise exceed the compiler's layout depth limit.
            let answered =
                Box::pin(answer_batch(validator, bus, dead_letters, event.payload)).await;
            Ok::<_, lambda_runtime::Error>(answered)
        },
    )))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ConsumerValidated, EventMeta};
    use aws_lambda_events::event::sqs::SqsMessage;

    struct AlwaysYes;

    impl Validator for AlwaysYes {
        async fn answer(&self, order: &OrderCreated) -> Result<Entry, AnswerError> {
            Ok(Entry::of(&ConsumerValidated {
                meta: EventMeta::answering(&order.meta, ConsumerValidated::DETAIL_TYPE),
                order_limit: None,
            })?)
        }
    }

    fn valid_envelope() -> serde_json::Value {
        serde_json::json!({"version": "0", "id": "x", "detail-type": "OrderCreated",
            "source": "orders", "time": "2026-11-26T12:00:00Z", "region": "us-east-1",
            "resources": [],
            "detail": serde_json::from_str::<serde_json::Value>(include_str!("../samples/OrderCreated.json")).unwrap()})
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Whatever a message holds, a validator answers it or names a permanent reason (so it
        /// is dead-lettered at once): a bad message is never retried, and never panics.
        #[test]
        fn a_hostile_message_is_answered_or_permanently_refused(
            body in crate::hostile::bodies(valid_envelope()),
        ) {
            let message: SqsMessage = serde_json::from_value(serde_json::json!({
                "messageId": "m", "body": String::from_utf8_lossy(&body)})).unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            if let Err(error) = runtime.block_on(decide(&AlwaysYes, &message)) {
                proptest::prop_assert!(error.is_permanent(), "{}", error);
            }
        }
    }

    #[test]
    fn a_valid_order_created_is_answered() {
        let message: SqsMessage = serde_json::from_value(
            serde_json::json!({"messageId": "m", "body": valid_envelope().to_string()}),
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let answer = runtime.block_on(decide(&AlwaysYes, &message)).unwrap();
        assert_eq!(answer.detail_type, "ConsumerValidated");
    }

    #[test]
    fn a_batch_as_aws_sends_it_is_answered_and_others_events_are_refused_for_good() {
        let order = valid_envelope()["detail"].clone();
        let mut batch = crate::corpus::sqs_batch(&[("orders", "OrderCreated", order)]);
        let foreign: SqsEvent =
            serde_json::from_value(crate::corpus::event("sqs-eventbridge-batch")).unwrap();
        batch.records.extend(foreign.records);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let answer = runtime
            .block_on(decide(&AlwaysYes, &batch.records[0]))
            .unwrap();
        assert_eq!(answer.detail_type, "ConsumerValidated");
        for message in &batch.records[1..] {
            let refused = runtime.block_on(decide(&AlwaysYes, message)).unwrap_err();
            assert!(refused.is_permanent(), "{refused}");
        }
    }
}
