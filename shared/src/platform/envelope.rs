//! Events as an SQS-triggered function receives them: each message body is the EventBridge
//! envelope a rule delivered, and the function answers with the messages it could not process.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsMessage};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The EventBridge envelope; `detail` is kept raw until the `detail-type` says what it is.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    pub source: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("message has no body")]
    NoBody,
    #[error("body is not an EventBridge envelope: {0}")]
    NotAnEnvelope(serde_json::Error),
    #[error("detail of {detail_type} does not decode: {error}")]
    BadDetail {
        detail_type: String,
        error: serde_json::Error,
    },
}

impl Envelope {
    pub fn from_message(message: &SqsMessage) -> Result<Self, EnvelopeError> {
        let body = message.body.as_deref().ok_or(EnvelopeError::NoBody)?;
        serde_json::from_str(body).map_err(EnvelopeError::NotAnEnvelope)
    }

    /// Decodes the detail as the event type `T`.
    pub fn detail<T: DeserializeOwned>(&self) -> Result<T, EnvelopeError> {
        serde_json::from_value(self.detail.clone()).map_err(|error| EnvelopeError::BadDetail {
            detail_type: self.detail_type.clone(),
            error,
        })
    }
}

/// The partial batch response naming the messages to deliver again.
pub fn batch_response(failed_message_ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for id in failed_message_ids {
        response.add_failure(id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::language::events::OrderCreated;

    fn message(body: &str) -> SqsMessage {
        serde_json::from_value(serde_json::json!({"messageId": "m-1", "body": body})).unwrap()
    }

    #[test]
    fn an_eventbridge_envelope_decodes_to_its_event() {
        let detail = include_str!("../../samples/OrderCreated.json");
        let body = format!(
            r#"{{"version":"0","id":"x","detail-type":"OrderCreated","source":"orders","time":"2026-11-26T12:00:00Z","region":"us-east-1","resources":[],"detail":{detail}}}"#
        );
        let envelope = Envelope::from_message(&message(&body)).unwrap();
        assert_eq!(envelope.detail_type, "OrderCreated");
        let event: OrderCreated = envelope.detail().unwrap();
        assert_eq!(event.consumer_id, "consumer-1");
    }

    #[test]
    fn a_body_that_is_not_an_envelope_is_an_error() {
        assert!(matches!(
            Envelope::from_message(&message("hello")),
            Err(EnvelopeError::NotAnEnvelope(_))
        ));
    }

    #[test]
    fn the_batch_response_names_the_failed_messages() {
        let response = batch_response(["a".to_owned(), "b".to_owned()]);
        let ids: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }
}
