//! What both validators do with a batch of `OrderCreated` messages: decide each one (through
//! the batch processor), publish the answers in one `PutEvents` call, and report every message
//! whose answer was not published, so that SQS delivers it again. A message that can never be
//! answered (it does not decode, the context's own record is corrupt, AWS refused the call for
//! good) goes to the dead-letter queue with the reason.

use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use tokio::time::Instant;
use tracing::{Instrument, debug, error, info_span};

use crate::language::events::{Event, OrderCreated};
use crate::platform::aws_error::{AwsError, Classified, Retry, classify};
use crate::platform::batch::{self, Handler, Handling, Outcome, QueueTimeout};
use crate::platform::bus::{self, Entry, EntryOutcome, EventBus};
use crate::platform::dead_letter::{DeadLetters, SqsDeadLetters};
use crate::platform::envelope::{Envelope, EnvelopeError};

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
    Table(#[from] crate::platform::table::TableError),
    #[error("answer does not serialize: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl Classified for AnswerError {
    fn retry(&self) -> Retry {
        match self {
            AnswerError::Table(table) => table.retry(),
            AnswerError::Serialize(_) => Retry::Never,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("expected OrderCreated, got {0}")]
    UnexpectedEvent(String),
    #[error(transparent)]
    Answer(#[from] AnswerError),
}

impl Classified for MessageError {
    fn retry(&self) -> Retry {
        match self {
            MessageError::Envelope(_) | MessageError::UnexpectedEvent(_) => Retry::Never,
            MessageError::Answer(answer) => answer.retry(),
        }
    }
}

/// A validator as the batch processor sees it: one `OrderCreated` a message, answered.
pub struct Answering<'a, V>(pub &'a V);

impl<V: Validator> Handler for Answering<'_, V> {
    type Message = OrderCreated;
    type Handled = Entry;
    type Error = MessageError;

    fn decode(&self, message: &SqsMessage) -> Result<OrderCreated, MessageError> {
        let envelope = Envelope::from_message(message)?;
        if envelope.detail_type != OrderCreated::DETAIL_TYPE {
            return Err(MessageError::UnexpectedEvent(envelope.detail_type));
        }
        Ok(envelope.detail()?)
    }

    fn subject(&self, order: &OrderCreated) -> String {
        order.meta.order_id.to_string()
    }

    async fn handle(&self, order: OrderCreated) -> Result<Entry, MessageError> {
        let span = info_span!(
            "validate",
            orderId = %order.meta.order_id,
            eventId = %order.meta.event_id,
            correlationId = order.meta.correlation_id.as_deref().unwrap_or_default(),
        );
        Ok(self.0.answer(&order).instrument(span).await?)
    }
}

pub async fn answer_batch<V: Validator, D: DeadLetters>(
    validator: &V,
    bus: &EventBus,
    dead_letters: &D,
    event: SqsEvent,
    deadline: Instant,
) -> SqsBatchResponse {
    debug!(messages = event.records.len(), "orders received");
    let messages = &event.records;
    let handler = Answering(validator);
    // Each order is checked on its own (one read of this context's table): all at once.
    let results = batch::handle_all(&handler, messages, deadline).await;
    let mut outcomes = batch::outcomes(&handler, messages, &results);
    // A message is done only once its answer is published.
    let answered: Vec<(usize, &Entry)> = results
        .iter()
        .enumerate()
        .filter_map(|(i, result)| match result {
            Handling::Handled(entry) => Some((i, entry)),
            _ => None,
        })
        .collect();
    let entries: Vec<Entry> = answered.iter().map(|(_, entry)| (*entry).clone()).collect();
    // Calls within EventBridge's limits, one after another.
    for call in bus::calls(&entries) {
        let in_call = &answered[call.clone()];
        match bus.put(&entries[call]).await {
            Ok(published) => {
                for (&(i, entry), published) in in_call.iter().zip(published) {
                    outcomes[i] = answer_outcome(&messages[i], entry, published);
                }
            }
            Err(e) => {
                error!(error = %e, answers = in_call.len(), "answers not published");
                for &(i, _) in in_call {
                    // A call refused for good may be one entry's fault: only a call of one entry
                    // is dead-lettered for it; in another batch the others go through.
                    outcomes[i] = match (e.retry(), in_call.len()) {
                        (Retry::Never, 2..) => Outcome::Retry,
                        _ => batch::outcome_of_failure(&messages[i], &e, |_| None),
                    };
                }
            }
        }
    }
    batch::settle(messages, outcomes, dead_letters, &QueueTimeout).await
}

/// A message whose answer the bus took is done; one it refused is tried again, or, refused with
/// a code that no retry changes, dead-lettered with it (access denied: after a few receives).
fn answer_outcome(message: &SqsMessage, entry: &Entry, published: EntryOutcome) -> Outcome {
    let id = message.message_id.as_deref().unwrap_or_default();
    match published {
        // Per message at debug: the verdict is logged at info already, and log ingestion is
        // billed by the byte (`make bench` counts it per order).
        EntryOutcome::Published => {
            debug!(messageId = id, answer = %entry.detail_type, "answer published");
            Outcome::Done
        }
        EntryOutcome::Failed { code, message } if bus::refused_for_good(&code) => {
            Outcome::DeadLetter(format!("the bus refused the answer: {code}: {message}"))
        }
        EntryOutcome::Failed {
            code,
            message: text,
        } if classify(Some(&code), None) == Retry::AccessDenied => {
            let refused = AwsError::coded("EventBridge.PutEvents", &code, 400, &text);
            batch::outcome_of_failure(message, &refused, |_| None)
        }
        EntryOutcome::Failed { code, message } => {
            error!(messageId = id, code, message, "answer refused by the bus");
            Outcome::Retry
        }
    }
}

/// The whole life of a validator function: logs, clients built once, then one batch per
/// invocation. `make` builds the validator from the SDK configuration.
pub async fn run<V: Validator>(
    make: impl FnOnce(&crate::platform::aws::SdkConfig) -> Result<V, crate::platform::aws::MissingEnv>,
) -> Result<(), lambda_runtime::Error> {
    crate::platform::telemetry::init();
    let config = crate::platform::aws::sdk_config().await;
    let validator = make(&config)?;
    let bus = EventBus::from_env(&config)?;
    let dead_letters = SqsDeadLetters::from_env(crate::platform::aws::sqs(&config))?;
    let (validator, bus, dead_letters) = (&validator, &bus, &dead_letters);
    lambda_runtime::run(crate::platform::metrics::Recorded(
        lambda_runtime::service_fn(
            move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
                let deadline = batch::work_deadline(&event.context);
                // Boxed: the nested future types otherwise exceed the compiler's layout depth limit.
                let answered = Box::pin(answer_batch(
                    validator,
                    bus,
                    dead_letters,
                    event.payload,
                    deadline,
                ))
                .await;
                Ok::<_, lambda_runtime::Error>(answered)
            },
        ),
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::language::events::{ConsumerValidated, EventMeta};

    async fn decide<V: Validator>(
        validator: &V,
        message: &SqsMessage,
    ) -> Result<Entry, MessageError> {
        let handler = Answering(validator);
        handler.handle(handler.decode(message)?).await
    }

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
            "detail": serde_json::from_str::<serde_json::Value>(include_str!("../../samples/OrderCreated.json")).unwrap()})
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Whatever a message holds, a validator answers it or names a permanent reason (so it
        /// is dead-lettered at once): a bad message is never retried, and never panics.
        #[test]
        fn a_hostile_message_is_answered_or_permanently_refused(
            body in crate::testing::hostile::bodies(valid_envelope()),
        ) {
            let message: SqsMessage = serde_json::from_value(serde_json::json!({
                "messageId": "m", "body": String::from_utf8_lossy(&body)})).unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            if let Err(error) = runtime.block_on(decide(&AlwaysYes, &message)) {
                proptest::prop_assert_eq!(error.retry(), Retry::Never, "{}", error);
            }
        }
    }

    #[test]
    fn an_answer_refused_is_retried_dead_lettered_for_good_or_after_receive_three_if_denied() {
        let entry = Entry::of(&ConsumerValidated {
            meta: EventMeta::new(uuid::Uuid::now_v7(), None),
            order_limit: None,
        })
        .unwrap();
        let received = |receives: u32| -> SqsMessage {
            serde_json::from_value(serde_json::json!({"messageId": "m", "body": "{}",
                "attributes": {"ApproximateReceiveCount": receives.to_string()}}))
            .unwrap()
        };
        let refused = |code: &str| EntryOutcome::Failed {
            code: code.into(),
            message: "as AWS says it".into(),
        };
        let outcome = |receives, code| answer_outcome(&received(receives), &entry, refused(code));
        assert_eq!(outcome(1, "ThrottlingException"), Outcome::Retry);
        assert_eq!(outcome(4, "InternalFailure"), Outcome::Retry);
        assert!(
            matches!(outcome(1, "MalformedDetail"), Outcome::DeadLetter(r) if r.contains("MalformedDetail"))
        );
        assert_eq!(outcome(2, "AccessDeniedException"), Outcome::Retry);
        assert!(
            matches!(outcome(3, "AccessDeniedException"), Outcome::DeadLetter(r) if r.contains("AccessDeniedException"))
        );
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
        let mut batch = crate::testing::corpus::sqs_batch(&[("orders", "OrderCreated", order)]);
        let foreign: SqsEvent =
            serde_json::from_value(crate::testing::corpus::event("sqs-eventbridge-batch")).unwrap();
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
            assert_eq!(refused.retry(), Retry::Never, "{refused}");
        }
    }
}
