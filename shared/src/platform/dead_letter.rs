//! Where messages and stream records that can never succeed go: the function's dead-letter
//! queue, with the reason and where they came from in message attributes.

use std::future::Future;

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::types::MessageAttributeValue;

use crate::platform::aws_error::AwsError;

/// The attribute that says why a message was dead-lettered.
pub const REASON_ATTRIBUTE: &str = "DeadLetterReason";
/// The function that dead-lettered it.
pub const FUNCTION_ATTRIBUTE: &str = "DeadLetterFunction";
/// The queue it came from and its id there.
pub const SOURCE_QUEUE_ATTRIBUTE: &str = "SourceQueueArn";
pub const SOURCE_MESSAGE_ATTRIBUTE: &str = "SourceMessageId";
/// For a stream record: the stream it came from and its sequence number there.
pub const SOURCE_STREAM_ATTRIBUTE: &str = "SourceStreamArn";
pub const SOURCE_SEQUENCE_ATTRIBUTE: &str = "SourceSequenceNumber";

#[derive(Debug, thiserror::Error)]
#[error("dead-letter queue refused the message: {0}")]
pub struct DeadLetterError(#[from] pub AwsError);

/// Where messages that can never succeed go.
pub trait DeadLetters: Send + Sync {
    fn send(
        &self,
        message: &SqsMessage,
        reason: &str,
    ) -> impl Future<Output = Result<(), DeadLetterError>> + Send;
}

/// The function's dead-letter queue, named by `DEAD_LETTER_QUEUE_URL` in the template.
#[derive(Clone, Debug)]
pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    function: String,
}

impl SqsDeadLetters {
    /// Reads the queue the template sets (`DEAD_LETTER_QUEUE_URL`).
    pub fn from_env(client: aws_sdk_sqs::Client) -> Result<Self, crate::platform::aws::MissingEnv> {
        Ok(Self {
            client,
            queue_url: crate::platform::aws::required_env("DEAD_LETTER_QUEUE_URL")?,
            function: std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
        })
    }
}

fn text(value: &str) -> Result<MessageAttributeValue, DeadLetterError> {
    // SQS refuses empty attribute values.
    let value = if value.is_empty() { "-" } else { value };
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| DeadLetterError(AwsError::unbuilt("SQS.SendMessage", e)))
}

impl DeadLetters for SqsDeadLetters {
    async fn send(&self, message: &SqsMessage, reason: &str) -> Result<(), DeadLetterError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message.body.clone().unwrap_or_default())
            .message_attributes(REASON_ATTRIBUTE, text(reason)?)
            .message_attributes(FUNCTION_ATTRIBUTE, text(&self.function)?)
            .message_attributes(
                SOURCE_QUEUE_ATTRIBUTE,
                text(message.event_source_arn.as_deref().unwrap_or_default())?,
            )
            .message_attributes(
                SOURCE_MESSAGE_ATTRIBUTE,
                text(message.message_id.as_deref().unwrap_or_default())?,
            )
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("SQS.SendMessage", e))?;
        Ok(())
    }
}

/// The largest body a stream record is dead-lettered with, leaving room for the attributes in
/// the queue's `MaximumMessageSize` of 1 MiB (set in the template).
const MAX_STREAM_RECORD_BYTES: usize = 1_000_000;

/// Text SQS takes: it refuses any character but #x9, #xA, #xD, #x20 to #xD7FF, #xE000 to
/// #xFFFD and #x10000 to #x10FFFF (SendMessage, `MessageBody`). In a JSON body the others are
/// written as JSON escapes, elsewhere as U+FFFD.
fn sqs_text(value: &str, json: bool) -> String {
    let refused = |c: char| !matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}');
    value
        .chars()
        .map(|c| match (refused(c), json) {
            (false, _) => c.to_string(),
            (true, true) => format!("\\u{:04x}", c as u32),
            (true, false) => '\u{FFFD}'.to_string(),
        })
        .collect()
}

/// A stream record's image as SQS takes it, or, over the size SQS takes, its keys: the row is
/// in its table by `eventId`.
pub fn stream_record_body(image: &str) -> String {
    let body = sqs_text(image, true);
    // SQS refuses an empty body too.
    if !body.is_empty() && body.len() <= MAX_STREAM_RECORD_BYTES {
        return body;
    }
    let full: serde_json::Value = serde_json::from_str(image).unwrap_or_default();
    let mut keys = serde_json::Map::new();
    for key in ["eventId", "subject", "orderId", "source", "detailType"] {
        if let Some(value) = full.get(key) {
            keys.insert(key.to_owned(), value.clone());
        }
    }
    let omitted = format!(
        "the image is {} bytes; the row is in its table by eventId",
        body.len()
    );
    keys.insert(
        IMAGE_OMITTED.to_owned(),
        serde_json::json!({ "S": omitted }),
    );
    sqs_text(&serde_json::Value::Object(keys).to_string(), true)
}

/// In a dead-lettered stream record's body when the image was too large to carry.
pub const IMAGE_OMITTED: &str = "imageOmitted";

impl SqsDeadLetters {
    /// Dead-letters a stream record (its image, as the stream gave it) with the reason.
    pub async fn send_stream_record(
        &self,
        image: &str,
        reason: &str,
        stream_arn: &str,
        sequence_number: &str,
    ) -> Result<(), DeadLetterError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(stream_record_body(image))
            .message_attributes(REASON_ATTRIBUTE, text(&sqs_text(reason, false))?)
            .message_attributes(FUNCTION_ATTRIBUTE, text(&self.function)?)
            .message_attributes(SOURCE_STREAM_ATTRIBUTE, text(stream_arn)?)
            .message_attributes(SOURCE_SEQUENCE_ATTRIBUTE, text(sequence_number)?)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("SQS.SendMessage", e))?;
        Ok(())
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod memory {
    //! A dead-letter queue in memory, for handler tests; it can be told to refuse.

    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    pub struct MemoryDeadLetters {
        pub sent: Arc<Mutex<Vec<(String, String)>>>,
        pub refuse: bool,
    }

    impl DeadLetters for MemoryDeadLetters {
        async fn send(&self, message: &SqsMessage, reason: &str) -> Result<(), DeadLetterError> {
            if self.refuse {
                return Err(DeadLetterError(AwsError::coded(
                    "SQS.SendMessage",
                    "AccessDenied",
                    403,
                    "refused",
                )));
            }
            self.sent.lock().unwrap().push((
                message.message_id.clone().unwrap_or_default(),
                reason.to_owned(),
            ));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_record_is_dead_lettered_in_text_sqs_takes_and_within_its_size() {
        let image =
            serde_json::json!({"eventId": {"S": "e-1"}, "detail": {"S": "a\u{FFFF}b"}}).to_string();
        let body = stream_record_body(&image);
        assert!(!body.contains('\u{FFFF}'));
        // Still the same JSON: the character is written as its escape.
        let read: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(read["detail"]["S"], "a\u{FFFF}b");
        assert_eq!(sqs_text("x\u{FFFE}y", false), "x\u{FFFD}y");

        let big = serde_json::json!({"eventId": {"S": "e-2"}, "detailType": {"S": "OrderCreated"},
                                     "detail": {"S": "x".repeat(MAX_STREAM_RECORD_BYTES)}})
        .to_string();
        let body: serde_json::Value = serde_json::from_str(&stream_record_body(&big)).unwrap();
        assert_eq!(body["eventId"]["S"], "e-2");
        assert_eq!(body["detailType"]["S"], "OrderCreated");
        assert!(body.get("detail").is_none());
        assert!(body[IMAGE_OMITTED]["S"].as_str().unwrap().contains("bytes"));
    }
}
