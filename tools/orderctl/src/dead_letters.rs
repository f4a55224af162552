//! What a message in a dead-letter queue says, read by a person, and where it goes back to.
//! Pure: the messages come in as the SQS SDK returns them.

use std::collections::{HashMap, HashSet};

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use serde::Serialize;
use shared::platform::dead_letter::{
    FUNCTION_ATTRIBUTE, REASON_ATTRIBUTE, SOURCE_MESSAGE_ATTRIBUTE, SOURCE_QUEUE_ATTRIBUTE,
    SOURCE_STREAM_ATTRIBUTE,
};

/// The stack's dead-letter queues, by logical id: the functions' DLQs, the relay's on-failure
/// destination and EventBridge's dead-letter queue.
pub const DEAD_LETTER_QUEUES: [&str; 7] = [
    "ConsumerValidationDLQ",
    "RestaurantValidationDLQ",
    "OrderRepliesDLQ",
    "OutcomeNotificationsDLQ",
    "ReplicaUpdatesDLQ",
    "OutboxRelayFailures",
    "EventDeliveryFailures",
];

/// One dead-lettered message, as an operator needs to see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub message_id: String,
    pub order_id: Option<String>,
    pub event_type: Option<String>,
    pub reason: String,
    pub function: Option<String>,
    pub source_queue_arn: Option<String>,
    /// For an outbox row the relay dead-lettered: the stream it was read from.
    pub source_stream_arn: Option<String>,
    /// When it entered the dead-letter queue (its `SentTimestamp` there).
    pub dead_lettered_at: Option<String>,
    /// How often it was received, this listing included.
    pub receive_count: Option<u32>,
}

fn attribute<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message
        .message_attributes()
        .and_then(|attributes| attributes.get(name))
        .and_then(|value| value.string_value())
}

fn system_attribute(message: &Message, name: MessageSystemAttributeName) -> Option<&str> {
    message
        .attributes()
        .and_then(|attributes| attributes.get(&name))
        .map(String::as_str)
}

pub fn summarize(message: &Message) -> DeadLetter {
    let body: serde_json::Value = message
        .body()
        .and_then(|body| serde_json::from_str(body).ok())
        .unwrap_or_default();
    let text = |value: &serde_json::Value| value.as_str().map(str::to_owned);
    // An EventBridge envelope names its event and order; an outbox row the relay dead-lettered
    // is its stream image (DynamoDB JSON); an order's timer names its order; Lambda's on-failure
    // record names a stream batch.
    let (event_type, order_id) = if body.get("detail-type").is_some() {
        (text(&body["detail-type"]), text(&body["detail"]["orderId"]))
    } else if body.get("detailType").is_some() {
        (text(&body["detailType"]["S"]), text(&body["orderId"]["S"]))
    } else if body.get("decisionDeadline").is_some() {
        (
            Some("DecisionDeadline".to_owned()),
            text(&body["decisionDeadline"]["orderId"]),
        )
    } else if body.get("requestContext").is_some() {
        (Some("stream batch".to_owned()), None)
    } else {
        (None, None)
    };
    let reason = if let Some(reason) = attribute(message, REASON_ATTRIBUTE) {
        reason.to_owned()
    } else if let Some(code) = attribute(message, "ERROR_CODE") {
        // EventBridge's own dead-letter attributes.
        let detail = attribute(message, "ERROR_MESSAGE").unwrap_or_default();
        format!("EventBridge could not deliver it: {code} {detail}")
    } else if let Some(condition) = text(&body["requestContext"]["condition"]) {
        format!("the relay gave up on the batch: {condition}")
    } else {
        "moved by the queue's redrive after its maxReceiveCount receives (the function's log has each error)".to_owned()
    };
    DeadLetter {
        message_id: message.message_id().unwrap_or_default().to_owned(),
        order_id,
        event_type,
        reason,
        function: attribute(message, FUNCTION_ATTRIBUTE).map(str::to_owned),
        source_queue_arn: attribute(message, SOURCE_QUEUE_ATTRIBUTE)
            .or_else(|| {
                system_attribute(
                    message,
                    MessageSystemAttributeName::DeadLetterQueueSourceArn,
                )
            })
            .map(str::to_owned),
        source_stream_arn: attribute(message, SOURCE_STREAM_ATTRIBUTE).map(str::to_owned),
        dead_lettered_at: system_attribute(message, MessageSystemAttributeName::SentTimestamp)
            .and_then(|millis| millis.parse().ok())
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|at| at.to_rfc3339()),
        receive_count: system_attribute(
            message,
            MessageSystemAttributeName::ApproximateReceiveCount,
        )
        .and_then(|count| count.parse().ok()),
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoDestination {
    #[error(
        "message {0} does not say which queue it came from, and the queue has {1} source queues: name one with --to"
    )]
    Ambiguous(String, usize),
}

/// The queue (ARN) a dead-lettered message goes back to: the one named with `--to`, else the one
/// it names itself (dead-lettered at once by a function, or moved by SQS's redrive on AWS),
/// else the only queue that redrives to this one.
pub fn destination(
    letter: &DeadLetter,
    redrive_sources: &[String],
    forced: Option<&str>,
) -> Result<String, NoDestination> {
    if let Some(queue) = forced {
        return Ok(queue.to_owned());
    }
    if let Some(queue) = &letter.source_queue_arn {
        return Ok(queue.clone());
    }
    match redrive_sources {
        [only] => Ok(only.clone()),
        sources => Err(NoDestination::Ambiguous(
            letter.message_id.clone(),
            sources.len(),
        )),
    }
}

/// The table a DynamoDB stream belongs to (`arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL`).
pub fn stream_table(stream_arn: &str) -> Option<&str> {
    let (_, rest) = stream_arn.split_once(":table/")?;
    let (table, _) = rest.split_once("/stream/")?;
    (!table.is_empty()).then_some(table)
}

/// The `eventId` of an outbox row a message carries (its stream image), if it carries one.
pub fn row_event_id(message: &Message) -> Option<String> {
    let body: serde_json::Value = serde_json::from_str(message.body()?).ok()?;
    body["eventId"]["S"].as_str().map(str::to_owned)
}

/// Whether a message is one this redrive sent back (by the id the source queue gave it) or
/// put back (by its row's `eventId`), dead-lettered again: it waits for the next redrive
/// instead of going round for ever. No clock is compared, so a skewed one cannot fool it.
pub fn came_back(message: &Message, sent: &HashSet<String>, put: &HashSet<String>) -> bool {
    attribute(message, SOURCE_MESSAGE_ATTRIBUTE).is_some_and(|id| sent.contains(id))
        || row_event_id(message).is_some_and(|id| put.contains(&id))
}

/// The message attributes to send back with a redriven message: its own, without those the
/// dead-lettering added.
pub fn attributes_to_keep<V: Clone>(attributes: Option<&HashMap<String, V>>) -> HashMap<String, V> {
    let added = [
        REASON_ATTRIBUTE,
        FUNCTION_ATTRIBUTE,
        SOURCE_QUEUE_ATTRIBUTE,
        SOURCE_MESSAGE_ATTRIBUTE,
    ];
    attributes
        .into_iter()
        .flatten()
        .filter(|(name, _)| !added.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageAttributeValue;

    fn text(value: &str) -> MessageAttributeValue {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .unwrap()
    }

    fn envelope(detail_type: &str) -> String {
        serde_json::json!({"detail-type": detail_type, "source": "consumers",
            "detail": {"orderId": "o-1", "eventId": "e-1"}})
        .to_string()
    }

    #[test]
    fn a_message_dead_lettered_at_once_says_why_where_from_and_for_which_order() {
        let message = Message::builder()
            .message_id("m-1")
            .body(envelope("ConsumerValidated"))
            .message_attributes(REASON_ATTRIBUTE, text("order o-1 does not exist"))
            .message_attributes(FUNCTION_ATTRIBUTE, text("order-replies"))
            .message_attributes(
                SOURCE_QUEUE_ATTRIBUTE,
                text("arn:aws:sqs:us-east-1:1:Replies"),
            )
            .attributes(MessageSystemAttributeName::SentTimestamp, "1795694400123")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .build();
        let letter = summarize(&message);
        assert_eq!(
            letter,
            DeadLetter {
                message_id: "m-1".into(),
                order_id: Some("o-1".into()),
                event_type: Some("ConsumerValidated".into()),
                reason: "order o-1 does not exist".into(),
                function: Some("order-replies".into()),
                source_queue_arn: Some("arn:aws:sqs:us-east-1:1:Replies".into()),
                source_stream_arn: None,
                dead_lettered_at: Some("2026-11-26T12:00:00.123+00:00".into()),
                receive_count: Some(2),
            }
        );
        assert_eq!(
            destination(&letter, &[], None).unwrap(),
            "arn:aws:sqs:us-east-1:1:Replies"
        );
    }

    #[test]
    fn a_message_moved_by_the_redrive_goes_back_to_the_only_source_or_needs_to() {
        let letter = summarize(
            &Message::builder()
                .message_id("m-2")
                .body(envelope("OrderCreated"))
                .build(),
        );
        assert!(letter.reason.contains("redrive"));
        assert_eq!(letter.source_queue_arn, None);
        assert_eq!(
            destination(&letter, &["arn:q".into()], None).unwrap(),
            "arn:q"
        );
        assert_eq!(
            destination(&letter, &["arn:a".into(), "arn:b".into()], None),
            Err(NoDestination::Ambiguous("m-2".into(), 2))
        );
        assert_eq!(
            destination(&letter, &["arn:a".into(), "arn:b".into()], Some("arn:b")).unwrap(),
            "arn:b"
        );
    }

    #[test]
    fn the_relays_failure_record_and_eventbridges_dead_letters_are_explained() {
        let relay = summarize(
            &Message::builder()
                .message_id("m-3")
                .body(r#"{"requestContext": {"condition": "RetryAttemptsExhausted"}, "DDBStreamBatchInfo": {}}"#)
                .build(),
        );
        assert_eq!(relay.event_type.as_deref(), Some("stream batch"));
        assert!(relay.reason.contains("RetryAttemptsExhausted"));
        let bus = summarize(
            &Message::builder()
                .message_id("m-4")
                .body(envelope("OrderCreated"))
                .message_attributes("ERROR_CODE", text("SQS.AccessDenied"))
                .build(),
        );
        assert!(bus.reason.contains("SQS.AccessDenied"), "{}", bus.reason);
        let row = summarize(
            &Message::builder()
                .message_id("m-5")
                .body(r#"{"detailType": {"S": "OrderCreated"}, "orderId": {"S": "o-1"}}"#)
                .message_attributes(REASON_ATTRIBUTE, text("the event is 300000 bytes"))
                .build(),
        );
        assert_eq!(
            (row.event_type.as_deref(), row.order_id.as_deref()),
            (Some("OrderCreated"), Some("o-1"))
        );
        assert_eq!(row.reason, "the event is 300000 bytes");
        let timer = summarize(
            &Message::builder()
                .message_id("m-6")
                .body(r#"{"decisionDeadline": {"orderId": "o-2"}}"#)
                .build(),
        );
        assert_eq!(
            (timer.event_type.as_deref(), timer.order_id.as_deref()),
            (Some("DecisionDeadline"), Some("o-2"))
        );
    }

    #[test]
    fn a_stream_names_its_table_and_a_message_that_came_back_is_known() {
        let arn =
            "arn:aws:dynamodb:us-east-1:1:table/stack-OutboxTable-X/stream/2026-11-26T00:00:00.000";
        assert_eq!(stream_table(arn), Some("stack-OutboxTable-X"));
        assert_eq!(stream_table("arn:aws:sqs:us-east-1:1:Replies"), None);
        let sent: HashSet<String> = ["m-new".to_owned()].into();
        let put: HashSet<String> = ["e-1".to_owned()].into();
        let redriven = Message::builder()
            .message_attributes(SOURCE_MESSAGE_ATTRIBUTE, text("m-new"))
            .build();
        let row = Message::builder()
            .body(r#"{"eventId": {"S": "e-1"}}"#)
            .build();
        let other = Message::builder()
            .body(r#"{"eventId": {"S": "e-2"}}"#)
            .message_attributes(SOURCE_MESSAGE_ATTRIBUTE, text("m-old"))
            .build();
        assert!(came_back(&redriven, &sent, &put) && came_back(&row, &sent, &put));
        assert!(!came_back(&other, &sent, &put));
    }

    #[test]
    fn redriven_messages_lose_only_the_attributes_dead_lettering_added() {
        let attributes: HashMap<String, u8> = [
            (REASON_ATTRIBUTE, 1),
            (SOURCE_QUEUE_ATTRIBUTE, 2),
            ("traceparent", 3),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(
            attributes_to_keep(Some(&attributes)),
            HashMap::from([("traceparent".to_owned(), 3)])
        );
    }
}
