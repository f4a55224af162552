//! The one way an SQS-triggered function works through its batch: decode each message, handle
//! those of one subject in turn and of different subjects at once, and settle each with one
//! outcome: done, tried again (after a delay of the handler's choosing), or dead-lettered with
//! its reason. The answer names every message SQS must deliver again (`ReportBatchItemFailures`).
//!
//! SQS's own redrive only counts receives: a message that can never succeed would come back
//! until `maxReceiveCount` and reach the DLQ without saying why. A message that can never succeed
//! is sent to the DLQ by the function itself, the reason in a message attribute, and reported
//! done so that SQS deletes the original; if the DLQ refuses it, it is handed back instead.

use std::future::Future;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsMessage};
use futures_util::future::join_all;
use tokio::time::Instant;
use tracing::{error, warn};

use crate::platform::aws_error::{Classified, Retry};
use crate::platform::dead_letter::DeadLetters;
use crate::platform::envelope::batch_response;

/// How many receives a message refused by IAM gets before it is dead-lettered with the code:
/// a permission just granted takes a while to reach every endpoint, and each receive is a
/// visibility timeout (or the handler's delay) apart. Below every queue's `maxReceiveCount`
/// (5), so that the function, not SQS, dead-letters it, with the reason; `orderctl dlq redrive`
/// puts it back once the policy is fixed.
pub const ACCESS_DENIED_RECEIVES: u32 = 3;

/// Time kept back from the invocation's deadline to settle the batch: dead-letter, put retries
/// off, answer.
pub const SETTLE_MARGIN: Duration = Duration::from_secs(2);

/// What one kind of message needs: how to read it, whose it is, and what to do with it.
pub trait Handler: Sync {
    type Message: Send;
    type Handled: Send;
    type Error: Classified + Send;

    fn decode(&self, message: &SqsMessage) -> Result<Self::Message, Self::Error>;

    /// Messages of one subject (an order, an entity) are handled in turn, in the order SQS gave
    /// them, so that they do not race each other; those of different subjects at once.
    fn subject(&self, message: &Self::Message) -> String;

    fn handle(
        &self,
        message: Self::Message,
    ) -> impl Future<Output = Result<Self::Handled, Self::Error>> + Send;

    /// How long a message that failed for now waits before it is tried again, by the times it
    /// was received; `None` is the queue's visibility timeout.
    fn retry_delay(&self, _receives: u32) -> Option<Duration> {
        None
    }
}

/// How one message fared.
#[derive(Debug)]
pub enum Handling<T, E> {
    Handled(T),
    Failed(E),
    /// The invocation's time ran out before the message was handled (or finished).
    OutOfTime,
    /// An earlier message of its subject comes again, so this one does too, to stay behind it.
    Held,
}

/// What becomes of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Handed back to SQS, which delivers it again after its visibility timeout.
    Retry,
    /// Handed back, to be delivered again after this delay instead.
    RetryAfter(Duration),
    /// It can never succeed: to the dead-letter queue with the reason.
    DeadLetter(String),
}

/// The times SQS has delivered this message, this one included.
pub fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|count| count.parse().ok())
        .unwrap_or(1)
}

fn id(message: &SqsMessage) -> &str {
    message.message_id.as_deref().unwrap_or_default()
}

/// The outcome of a failure, by what it says of trying again and by the message's receives.
pub fn outcome_of_failure<E: Classified>(
    message: &SqsMessage,
    error: &E,
    delay: impl Fn(u32) -> Option<Duration>,
) -> Outcome {
    let outcome = failure_outcome(message, error, delay);
    if !matches!(outcome, Outcome::DeadLetter(_)) {
        error!(messageId = id(message), receives = receive_count(message), error = %error, "message not handled; it comes again");
    }
    outcome
}

fn failure_outcome<E: Classified>(
    message: &SqsMessage,
    error: &E,
    delay: impl Fn(u32) -> Option<Duration>,
) -> Outcome {
    let receives = receive_count(message);
    match error.retry() {
        Retry::Transient => again(receives, delay),
        Retry::AccessDenied if receives < ACCESS_DENIED_RECEIVES => again(receives, delay),
        Retry::AccessDenied => {
            Outcome::DeadLetter(format!("{error} (still refused on receive {receives})"))
        }
        Retry::Never => Outcome::DeadLetter(error.to_string()),
    }
}

/// Handed back, after the handler's delay for this receive if it has one.
fn again(receives: u32, delay: impl Fn(u32) -> Option<Duration>) -> Outcome {
    delay(receives).map_or(Outcome::Retry, Outcome::RetryAfter)
}

/// Why a lane stopped: what the rest of its messages get.
#[derive(Clone, Copy)]
enum Stopped {
    OutOfTime,
    Held,
}

impl Stopped {
    fn handling<T, E>(self) -> Handling<T, E> {
        match self {
            Stopped::OutOfTime => Handling::OutOfTime,
            Stopped::Held => Handling::Held,
        }
    }
}

/// One subject's messages, by their place in the batch.
type Lane<M> = (String, Vec<(usize, M)>);

/// Decodes and handles every message, in lanes by subject, each lane stopping at `deadline`
/// so that the batch is answered within the invocation, and at a message that comes again, so
/// that the rest of its subject stays behind it. Results are in the messages' order.
pub async fn handle_all<H: Handler>(
    handler: &H,
    messages: &[SqsMessage],
    deadline: Instant,
) -> Vec<Handling<H::Handled, H::Error>> {
    let mut results: Vec<Option<Handling<H::Handled, H::Error>>> =
        messages.iter().map(|_| None).collect();
    let mut lanes: Vec<Lane<H::Message>> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        match handler.decode(message) {
            Ok(decoded) => {
                let subject = handler.subject(&decoded);
                match lanes.iter_mut().find(|(s, _)| *s == subject) {
                    Some((_, lane)) => lane.push((i, decoded)),
                    None => lanes.push((subject, vec![(i, decoded)])),
                }
            }
            Err(e) => results[i] = Some(Handling::Failed(e)),
        }
    }
    let handled = join_all(lanes.into_iter().map(|(_, lane)| async move {
        let mut done = Vec::with_capacity(lane.len());
        let mut stopped = None;
        for (i, decoded) in lane {
            if stopped.is_none() && Instant::now() >= deadline {
                stopped = Some(Stopped::OutOfTime);
            }
            if let Some(stop) = stopped {
                done.push((i, stop.handling()));
                continue;
            }
            let result = match tokio::time::timeout_at(deadline, handler.handle(decoded)).await {
                Ok(Ok(handled)) => Handling::Handled(handled),
                Ok(Err(e)) => {
                    let delay = |n| handler.retry_delay(n);
                    if !matches!(
                        failure_outcome(&messages[i], &e, delay),
                        Outcome::DeadLetter(_)
                    ) {
                        stopped = Some(Stopped::Held);
                    }
                    Handling::Failed(e)
                }
                Err(_) => {
                    stopped = Some(Stopped::OutOfTime);
                    Handling::OutOfTime
                }
            };
            done.push((i, result));
        }
        done
    }))
    .await;
    for (i, result) in handled.into_iter().flatten() {
        results[i] = Some(result);
    }
    results
        .into_iter()
        .map(|result| result.unwrap_or(Handling::OutOfTime))
        .collect()
}

/// The outcome of each handled message: done, or by its failure.
pub fn outcomes<H: Handler>(
    handler: &H,
    messages: &[SqsMessage],
    results: &[Handling<H::Handled, H::Error>],
) -> Vec<Outcome> {
    messages
        .iter()
        .zip(results)
        .map(|(message, result)| match result {
            Handling::Handled(_) => Outcome::Done,
            Handling::Failed(e) => outcome_of_failure(message, e, |n| handler.retry_delay(n)),
            Handling::OutOfTime => {
                warn!(
                    messageId = id(message),
                    "out of time before the message was handled; it comes again"
                );
                again(receive_count(message), |n| handler.retry_delay(n))
            }
            Handling::Held => again(receive_count(message), |n| handler.retry_delay(n)),
        })
        .collect()
}

/// Puts a message's next delivery off (`ChangeMessageVisibility`).
pub trait RetryLater: Send + Sync {
    fn retry_after(&self, message: &SqsMessage, delay: Duration)
    -> impl Future<Output = ()> + Send;
}

/// No delays of its own: a retried message comes back after the queue's visibility timeout.
pub struct QueueTimeout;

impl RetryLater for QueueTimeout {
    async fn retry_after(&self, _message: &SqsMessage, _delay: Duration) {}
}

/// `ChangeMessageVisibility` on the function's source queue.
pub struct SqsRetryLater {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl RetryLater for SqsRetryLater {
    async fn retry_after(&self, message: &SqsMessage, delay: Duration) {
        let result = self
            .client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(message.receipt_handle.clone().unwrap_or_default())
            // At most 12 hours (ChangeMessageVisibility, `VisibilityTimeout`).
            .visibility_timeout(delay.as_secs().min(43_200) as i32)
            .send()
            .await;
        if let Err(e) = result {
            let error =
                crate::platform::aws_error::AwsError::from_sdk("SQS.ChangeMessageVisibility", e);
            // Not lost: the message comes back after the queue's own visibility timeout.
            error!(%error, "could not put the retry off; the queue's timeout applies");
        }
    }
}

/// Carries out each message's outcome and answers with those SQS must deliver again.
pub async fn settle<D: DeadLetters, L: RetryLater>(
    messages: &[SqsMessage],
    outcomes: Vec<Outcome>,
    dead_letters: &D,
    later: &L,
) -> SqsBatchResponse {
    let mut again = Vec::new();
    for (message, outcome) in messages.iter().zip(outcomes) {
        let id = id(message).to_owned();
        match outcome {
            Outcome::Done => {}
            Outcome::Retry => again.push(id),
            Outcome::RetryAfter(delay) => {
                later.retry_after(message, delay).await;
                again.push(id);
            }
            Outcome::DeadLetter(reason) => match dead_letters.send(message, &reason).await {
                Ok(()) => {
                    warn!(messageId = %id, reason, "message dead-lettered: it can never succeed")
                }
                Err(e) => {
                    error!(messageId = %id, reason, error = %e, "message not dead-lettered; SQS will deliver it again");
                    again.push(id);
                }
            },
        }
    }
    batch_response(again)
}

/// The longest an invocation can run (Lambda's 15 minutes): a deadline further off is not one.
const MAX_INVOCATION: Duration = Duration::from_secs(900);

/// The deadline of an invocation's work: its own deadline (the runtime API's
/// `Lambda-Runtime-Deadline-Ms`, Unix milliseconds) less the time to settle.
pub fn work_deadline(context: &lambda_runtime::Context) -> Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = Duration::from_millis(context.deadline.saturating_sub(now_ms)).min(MAX_INVOCATION);
    Instant::now() + left.saturating_sub(SETTLE_MARGIN)
}

/// A whole batch: handled, each message's outcome carried out (a message tried again waits the
/// queue's visibility timeout), the failures answered; with what each handled message gave, for
/// the handler's own tallies.
pub async fn process<H: Handler, D: DeadLetters>(
    handler: &H,
    messages: &[SqsMessage],
    deadline: Instant,
    dead_letters: &D,
) -> (SqsBatchResponse, Vec<H::Handled>) {
    process_with(handler, messages, deadline, dead_letters, &QueueTimeout).await
}

/// `process`, with the handler's own way of trying a message again later (`later`).
pub async fn process_with<H: Handler, D: DeadLetters, L: RetryLater>(
    handler: &H,
    messages: &[SqsMessage],
    deadline: Instant,
    dead_letters: &D,
    later: &L,
) -> (SqsBatchResponse, Vec<H::Handled>) {
    let results = handle_all(handler, messages, deadline).await;
    let outcomes = outcomes(handler, messages, &results);
    let response = settle(messages, outcomes, dead_letters, later).await;
    let handled = results
        .into_iter()
        .filter_map(|result| match result {
            Handling::Handled(handled) => Some(handled),
            _ => None,
        })
        .collect();
    (response, handled)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::platform::aws_error::AwsError;
    use crate::platform::dead_letter::memory::MemoryDeadLetters;

    fn message(id: &str, body: &str, receives: u32) -> SqsMessage {
        serde_json::from_value(serde_json::json!({"messageId": id, "body": body,
            "attributes": {"ApproximateReceiveCount": receives.to_string()}}))
        .unwrap()
    }

    fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error("unreadable")]
        Unreadable,
        #[error(transparent)]
        Aws(#[from] AwsError),
    }

    impl Classified for TestError {
        fn retry(&self) -> Retry {
            match self {
                TestError::Unreadable => Retry::Never,
                TestError::Aws(e) => e.retry(),
            }
        }
    }

    /// Bodies are "subject:what": `ok`, an AWS code to fail with, or `slow` (never finishes);
    /// it notes the order in which it started and finished each message.
    #[derive(Default)]
    struct Script {
        log: Arc<Mutex<Vec<String>>>,
        delay: Option<Duration>,
    }

    impl Handler for Script {
        type Message = (String, String);
        type Handled = String;
        type Error = TestError;

        fn decode(&self, message: &SqsMessage) -> Result<Self::Message, TestError> {
            let body = message.body.as_deref().unwrap_or_default();
            let (subject, what) = body.split_once(':').ok_or(TestError::Unreadable)?;
            Ok((subject.to_owned(), what.to_owned()))
        }

        fn subject(&self, message: &Self::Message) -> String {
            message.0.clone()
        }

        async fn handle(&self, (subject, what): Self::Message) -> Result<String, TestError> {
            self.log
                .lock()
                .unwrap()
                .push(format!("start {subject}:{what}"));
            tokio::time::sleep(Duration::from_millis(10)).await;
            self.log
                .lock()
                .unwrap()
                .push(format!("end {subject}:{what}"));
            match what.as_str() {
                "ok" => Ok(subject),
                "slow" => std::future::pending().await,
                code => Err(AwsError::coded("Test.Call", code, 400, "as AWS says it").into()),
            }
        }

        fn retry_delay(&self, receives: u32) -> Option<Duration> {
            self.delay.map(|d| d * receives)
        }
    }

    #[derive(Default)]
    struct Delays(Mutex<Vec<(String, Duration)>>);

    impl RetryLater for Delays {
        async fn retry_after(&self, message: &SqsMessage, delay: Duration) {
            self.0.lock().unwrap().push((id(message).to_owned(), delay));
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn each_message_gets_one_outcome_by_what_its_failure_says() {
        let messages = [
            message("done", "a:ok", 1),
            message("garbage", "no subject", 1),
            message("throttled", "b:ThrottlingException", 1),
            message("invalid", "c:ValidationException", 1),
            message("denied-early", "d:AccessDeniedException", 2),
            message(
                "denied-late",
                "e:AccessDeniedException",
                ACCESS_DENIED_RECEIVES,
            ),
        ];
        let dead_letters = MemoryDeadLetters::default();
        let (response, handled) =
            process(&Script::default(), &messages, soon(), &dead_letters).await;
        assert_eq!(handled, ["a"]);
        assert_eq!(failed_ids(&response), ["throttled", "denied-early"]);
        let sent = dead_letters.sent.lock().unwrap().clone();
        let reasons: Vec<(&str, &str)> = sent.iter().map(|(i, r)| (&i[..], &r[..])).collect();
        assert_eq!(
            reasons,
            [
                ("garbage", "unreadable"),
                (
                    "invalid",
                    "Test.Call failed: ValidationException: as AWS says it"
                ),
                (
                    "denied-late",
                    "Test.Call failed: AccessDeniedException: as AWS says it (still refused on receive 3)"
                ),
            ]
        );
    }

    #[tokio::test]
    async fn one_subject_in_turn_different_subjects_at_once() {
        let script = Script::default();
        let messages = [
            message("1", "a:ok", 1),
            message("2", "b:ok", 1),
            message("3", "a:ok", 1),
        ];
        let results = handle_all(&script, &messages, soon()).await;
        assert!(results.iter().all(|r| matches!(r, Handling::Handled(_))));
        let log = script.log.lock().unwrap().clone();
        // b starts before a's first ends (at once); a's second only after a's first ended.
        let at = |entry: &str| log.iter().position(|e| e == entry).unwrap();
        assert!(at("start b:ok") < at("end a:ok"), "{log:?}");
        assert_eq!(log.iter().filter(|e| *e == "start a:ok").count(), 2);
        assert!(log.iter().rposition(|e| e == "start a:ok").unwrap() > at("end a:ok"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_message_runs_out_of_time_alone_and_comes_again() {
        let messages = [
            message("slow", "a:slow", 1),
            message("after-slow", "a:ok", 1),
            message("neighbour", "b:ok", 1),
        ];
        let deadline = Instant::now() + Duration::from_millis(300);
        let started = Instant::now();
        let dead_letters = MemoryDeadLetters::default();
        let (response, handled) =
            process(&Script::default(), &messages, deadline, &dead_letters).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(handled, ["b"]);
        assert_eq!(failed_ids(&response), ["slow", "after-slow"]);
        assert!(dead_letters.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_message_that_comes_again_holds_the_rest_of_its_subject_back() {
        let script = Script::default();
        let messages = [
            message("1", "a:ThrottlingException", 1),
            message("2", "a:ok", 1),
            message("3", "b:ValidationException", 1),
            message("4", "b:ok", 1),
        ];
        let (response, handled) =
            process(&script, &messages, soon(), &MemoryDeadLetters::default()).await;
        // a's second waits for its first; b's first is dead-lettered, so b goes on.
        assert_eq!(failed_ids(&response), ["1", "2"]);
        assert_eq!(handled, ["b"]);
        assert!(
            !script
                .log
                .lock()
                .unwrap()
                .contains(&"start a:ok".to_owned())
        );
    }

    #[tokio::test]
    async fn past_its_deadline_a_batch_starts_nothing_and_hands_everything_back() {
        let script = Script::default();
        let messages = [message("1", "a:ok", 1), message("2", "b:ok", 1)];
        let (response, _) = process(
            &script,
            &messages,
            Instant::now(),
            &MemoryDeadLetters::default(),
        )
        .await;
        assert_eq!(failed_ids(&response), ["1", "2"]);
        assert!(script.log.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_handler_with_delays_puts_its_retries_off() {
        let script = Script {
            delay: Some(Duration::from_secs(10)),
            ..Default::default()
        };
        let messages = [message("throttled", "b:ThrottlingException", 3)];
        let later = Delays::default();
        let (response, _) = process_with(
            &script,
            &messages,
            soon(),
            &MemoryDeadLetters::default(),
            &later,
        )
        .await;
        assert_eq!(failed_ids(&response), ["throttled"]);
        assert_eq!(
            *later.0.lock().unwrap(),
            [("throttled".to_owned(), Duration::from_secs(30))]
        );
    }

    #[tokio::test]
    async fn a_refused_dead_letter_hands_the_message_back_to_sqs() {
        let messages = [message("b", "x:ValidationException", 1)];
        let dead_letters = MemoryDeadLetters {
            refuse: true,
            ..Default::default()
        };
        let (response, _) = process(&Script::default(), &messages, soon(), &dead_letters).await;
        assert_eq!(failed_ids(&response), ["b"]);
    }
}
