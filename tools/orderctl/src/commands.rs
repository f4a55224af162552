//! The operator's commands: what sits in the dead-letter queues, putting it back, and the story of
//! one order. Each returns a JSON value; `main` prints it for a person or for a script.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use serde_json::{Value, json};

use crate::dead_letters::{
    DEAD_LETTER_QUEUES, DeadLetter, attributes_to_keep, came_back, destination, row_event_id,
    stream_table, summarize,
};
use crate::stack::{Stack, StackError, aws};
use shared::platform::dead_letter::IMAGE_OMITTED;

/// A listing reads at most this many messages of one queue.
const PEEK_LIMIT: usize = 100;
/// How long a message being read or moved stays hidden from others.
const HIDDEN_SECONDS: i32 = 30;

/// Reads up to `PEEK_LIMIT` messages without taking them: they are hidden while the listing
/// runs and made visible again at its end. Each read counts as a receive.
async fn peek(stack: &Stack, url: &str) -> Result<Vec<Message>, StackError> {
    let mut seen: HashMap<String, Message> = HashMap::new();
    while seen.len() < PEEK_LIMIT {
        let received = receive(stack, url).await?;
        if received.is_empty() {
            break;
        }
        for message in received {
            seen.insert(message.message_id().unwrap_or_default().to_owned(), message);
        }
    }
    let messages: Vec<Message> = seen.into_values().collect();
    for message in &messages {
        release(stack, url, message).await?;
    }
    Ok(messages)
}

async fn receive(stack: &Stack, url: &str) -> Result<Vec<Message>, StackError> {
    Ok(stack
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(HIDDEN_SECONDS)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(aws)?
        .messages
        .unwrap_or_default())
}

async fn release(stack: &Stack, url: &str, message: &Message) -> Result<(), StackError> {
    stack
        .sqs
        .change_message_visibility()
        .queue_url(url)
        .receipt_handle(message.receipt_handle().unwrap_or_default())
        .visibility_timeout(0)
        .send()
        .await
        .map_err(aws)?;
    Ok(())
}

async fn depth(stack: &Stack, url: &str) -> Result<u64, StackError> {
    use aws_sdk_sqs::types::QueueAttributeName::{
        ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible,
    };
    let answer = stack
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(ApproximateNumberOfMessages)
        .attribute_names(ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(aws)?;
    Ok(answer
        .attributes()
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum())
}

/// Every dead-letter queue with its depth and what each message in it says.
pub async fn dlq_list(stack: &Stack) -> Result<Value, StackError> {
    let mut queues = Vec::new();
    for logical in DEAD_LETTER_QUEUES {
        let url = stack.resource(logical)?;
        let messages: Vec<DeadLetter> = peek(stack, url).await?.iter().map(summarize).collect();
        queues.push(json!({"queue": logical, "depth": depth(stack, url).await?,
                           "messages": messages}));
    }
    Ok(json!({"stack": stack.described_as, "queues": queues}))
}

/// Moves every message of a dead-letter queue back to the queue it came from (or to `to`), one
/// by one: sent there first, then deleted here, so a failure in between leaves a duplicate,
/// which the functions are built to take, and never a loss. An outbox row the relay dead-lettered
/// is put back in its table instead, so its stream carries it to the relay again. What is
/// dead-lettered again while this runs is left for the next redrive.
pub async fn dlq_redrive(
    stack: &Stack,
    queue: &str,
    to: Option<&str>,
) -> Result<Value, StackError> {
    let url = stack.resource(queue)?;
    let sources = stack
        .sqs
        .list_dead_letter_source_queues()
        .queue_url(url)
        .send()
        .await
        .map_err(aws)?
        .queue_urls;
    let mut source_arns = Vec::new();
    for source in sources {
        source_arns.push(queue_arn(stack, &source).await?);
    }
    let forced = match to {
        Some(to) => Some(queue_arn(stack, stack.resource(to)?).await?),
        None => None,
    };
    let mut moved: HashMap<String, u64> = HashMap::new();
    // Destination queue URLs by ARN, looked up once each.
    let mut urls: HashMap<String, String> = HashMap::new();
    let mut left = Vec::new();
    // Left messages stay hidden until the end, so that every receive finds the ones not handled.
    let mut kept_back: Vec<Message> = Vec::new();
    let mut handled = std::collections::HashSet::new();
    let (mut sent, mut put) = (
        std::collections::HashSet::new(),
        std::collections::HashSet::new(),
    );
    loop {
        let received = receive(stack, url).await?;
        let fresh: Vec<Message> = received
            .into_iter()
            .filter(|m| handled.insert(m.message_id().unwrap_or_default().to_owned()))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for message in fresh {
            let letter = summarize(&message);
            let mut leave = |why: String, message: Message| {
                left.push(json!({"messageId": letter.message_id, "why": why}));
                kept_back.push(message);
            };
            if came_back(&message, &sent, &put) {
                leave("dead-lettered again during this redrive".into(), message);
                continue;
            }
            if let Some(stream) = &letter.source_stream_arn {
                match put_back(stack, stream, &message).await {
                    Ok(table) => {
                        put.extend(row_event_id(&message));
                        delete(stack, url, &message).await?;
                        *moved.entry(format!("table {table}")).or_default() += 1;
                    }
                    Err(why) => leave(why.to_string(), message),
                }
                continue;
            }
            match destination(&letter, &source_arns, forced.as_deref()) {
                Ok(arn) => {
                    if !urls.contains_key(&arn) {
                        urls.insert(arn.clone(), queue_url(stack, &arn).await?);
                    }
                    sent.insert(send_back(stack, &urls[&arn], &message).await?);
                    delete(stack, url, &message).await?;
                    *moved.entry(arn).or_default() += 1;
                }
                Err(why) => leave(why.to_string(), message),
            }
        }
    }
    for message in &kept_back {
        release(stack, url, message).await?;
    }
    Ok(json!({"stack": stack.described_as, "queue": queue, "moved": moved, "left": left}))
}

async fn delete(stack: &Stack, url: &str, message: &Message) -> Result<(), StackError> {
    stack
        .sqs
        .delete_message()
        .queue_url(url)
        .receipt_handle(message.receipt_handle().unwrap_or_default())
        .send()
        .await
        .map_err(aws)?;
    Ok(())
}

/// Puts an outbox row back in its table as a new insert, so the relay reads it again from the
/// stream: the row as the table holds it (deleted first), or, once TTL removed it, as the message
/// carries it (its stream image). Answers the table's name.
async fn put_back(stack: &Stack, stream: &str, message: &Message) -> Result<String, StackError> {
    let table = stream_table(stream)
        .ok_or_else(|| StackError::Aws(format!("{stream} is not a DynamoDB stream")))?
        .to_owned();
    let image: serde_dynamo::Item = serde_json::from_str(message.body().unwrap_or_default())
        .map_err(|e| StackError::Aws(format!("the dead-lettered row does not read: {e}")))?;
    let image: HashMap<String, AttributeValue> = image.into();
    let key = image
        .get("eventId")
        .cloned()
        .ok_or_else(|| StackError::Aws("the dead-lettered row has no eventId".into()))?;
    let stored = stack
        .dynamodb
        .get_item()
        .table_name(&table)
        .key("eventId", key.clone())
        .consistent_read(true)
        .send()
        .await
        .map_err(aws)?
        .item;
    let item = match stored {
        Some(item) => item,
        None if image.contains_key(IMAGE_OMITTED) => {
            return Err(StackError::Aws(format!(
                "row {key:?} is gone from {table} and the message holds only its keys"
            )));
        }
        None => image,
    };
    stack
        .dynamodb
        .delete_item()
        .table_name(&table)
        .key("eventId", key)
        .send()
        .await
        .map_err(aws)?;
    // Deleted: the put must happen. Tried three times; on failure the row is in the answer.
    let mut failure = None;
    for _ in 0..3 {
        match stack
            .dynamodb
            .put_item()
            .table_name(&table)
            .set_item(Some(item.clone()))
            .send()
            .await
        {
            Ok(_) => return Ok(table),
            Err(e) => failure = Some(aws(e)),
        }
    }
    let row: serde_dynamo::Item = item.into();
    Err(StackError::Aws(format!(
        "deleted from {table} but not put back ({}): put it by hand: {}",
        failure.map(|e| e.to_string()).unwrap_or_default(),
        serde_json::to_string(&row).unwrap_or_default()
    )))
}

/// The URL of the queue with this ARN.
async fn queue_url(stack: &Stack, arn: &str) -> Result<String, StackError> {
    let name = arn.rsplit(':').next().unwrap_or_default();
    Ok(stack
        .sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(aws)?
        .queue_url
        .unwrap_or_default())
}

/// Sends a message back to its queue; answers the id that queue gave it.
async fn send_back(stack: &Stack, url: &str, message: &Message) -> Result<String, StackError> {
    let sent = stack
        .sqs
        .send_message()
        .queue_url(url)
        .message_body(message.body().unwrap_or_default())
        .set_message_attributes(Some(attributes_to_keep(message.message_attributes())))
        .send()
        .await
        .map_err(aws)?;
    Ok(sent.message_id.unwrap_or_default())
}

async fn queue_arn(stack: &Stack, url: &str) -> Result<String, StackError> {
    let answer = stack
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(aws)?;
    answer
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| StackError::Aws(format!("{url} has no QueueArn")))
}

/// Everything the stack knows about one order: its row, its outbox events, and any of its
/// messages in a dead-letter queue.
pub async fn order(stack: &Stack, order_id: &str) -> Result<Value, StackError> {
    let row = stack
        .dynamodb
        .get_item()
        .table_name(stack.resource("OrdersTable")?)
        .key("pk", AttributeValue::S(format!("ORDER#{order_id}")))
        .consistent_read(true)
        .send()
        .await
        .map_err(aws)?
        .item;
    let order: Option<Value> = match row {
        Some(item) => {
            Some(serde_dynamo::from_item(item).map_err(|e| StackError::Aws(e.to_string()))?)
        }
        None => None,
    };
    // The outbox has no index by order (no key shared by an order's events is worth one): a
    // filtered scan, over a table TTL keeps to 7 days of events.
    let mut events: Vec<Value> = stack
        .dynamodb
        .scan()
        .table_name(stack.resource("OutboxTable")?)
        .filter_expression("orderId = :order")
        .expression_attribute_values(":order", AttributeValue::S(order_id.to_owned()))
        .consistent_read(true)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws)?
        .into_iter()
        .map(|item| serde_dynamo::from_item(item).unwrap_or(Value::Null))
        .collect();
    events.sort_by_key(|e| e["occurredAt"].as_str().unwrap_or_default().to_owned());
    let mut dead_letters = Vec::new();
    for logical in DEAD_LETTER_QUEUES {
        let url = stack.resource(logical)?;
        for letter in peek(stack, url).await?.iter().map(summarize) {
            if letter.order_id.as_deref() == Some(order_id) {
                dead_letters.push(json!({"queue": logical, "message": letter}));
            }
        }
    }
    Ok(
        json!({"stack": stack.described_as, "orderId": order_id, "order": order,
              "outbox": events, "deadLetters": dead_letters}),
    )
}
