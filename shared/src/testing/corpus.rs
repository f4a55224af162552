//! The corpus of AWS's own event shapes (`tests/corpus`, each entry citing its sources), for the
//! tests of every function that receives such an event: it must decode and handle what AWS
//! really sends, not only what devstack or a sample says.

use serde_json::Value;

/// The event of the corpus entry `name` (`tests/corpus/{name}.json`).
pub fn event(name: &str) -> Value {
    let path = format!("{}/../tests/corpus/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let entry: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    entry["event"].clone()
}

/// The HTTP API request of the corpus entry `name` as `lambda_http` hands it to a function,
/// sent to `method` `path` with `body`: every other field as API Gateway sends it.
pub fn http_request(
    name: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    edit: impl FnOnce(&mut Value),
) -> axum::http::Request<axum::body::Body> {
    let mut event = event(name);
    event["rawPath"] = path.into();
    event["routeKey"] = format!("{method} {path}").into();
    event["requestContext"]["http"]["method"] = method.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["rawQueryString"] = "".into();
    let object = event.as_object_mut().expect("an object");
    object.remove("queryStringParameters");
    object.remove("pathParameters");
    match body {
        Some(body) => {
            event["body"] = body.into();
            event["headers"]["content-type"] = "application/json".into();
            event["headers"]["content-length"] = body.len().to_string().into();
        }
        None => {
            event.as_object_mut().expect("an object").remove("body");
        }
    }
    edit(&mut event);
    let request =
        lambda_http::request::from_str(&event.to_string()).expect("lambda_http decodes it");
    request.map(|body| axum::body::Body::from(body.to_vec()))
}

/// An SQS batch as Lambda delivers it, in the corpus's record shape, one message per body, the
/// `n`th with the id `00000000-0000-4000-8000-{n:012}`.
pub fn sqs_records(bodies: &[String]) -> aws_lambda_events::event::sqs::SqsEvent {
    let corpus = event("sqs-eventbridge-batch");
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut record = corpus["Records"][0].clone();
            record["messageId"] = format!("00000000-0000-4000-8000-{i:012}").into();
            record["body"] = body.clone().into();
            record
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).expect("an SQS event")
}

/// An SQS batch of EventBridge events as a rule delivers them, in the corpus's shapes: one
/// message per (`source`, `detail-type`, `detail`).
pub fn sqs_batch(events: &[(&str, &str, Value)]) -> aws_lambda_events::event::sqs::SqsEvent {
    let corpus = event("sqs-eventbridge-batch");
    let template: Value =
        serde_json::from_str(corpus["Records"][0]["body"].as_str().expect("a body")).expect("JSON");
    let bodies: Vec<String> = events
        .iter()
        .map(|(source, detail_type, detail)| {
            let mut envelope = template.clone();
            envelope["source"] = (*source).into();
            envelope["detail-type"] = (*detail_type).into();
            envelope["detail"] = detail.clone();
            envelope.to_string()
        })
        .collect();
    sqs_records(&bodies)
}

/// The ids of the messages a function handed back to SQS (`batchItemFailures`).
pub fn failed_messages(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    let failures = response.batch_item_failures.iter();
    failures.map(|f| f.item_identifier.clone()).collect()
}

/// The sequence numbers of the stream records a function reported failed (`batchItemFailures`).
pub fn failed_records(
    response: &aws_lambda_events::event::streams::DynamoDbEventResponse,
) -> Vec<String> {
    let failures = response.batch_item_failures.iter();
    failures.filter_map(|f| f.item_identifier.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::envelope::Envelope;
    use crate::platform::identity::{Caller, OPERATOR_SCOPE};
    use aws_lambda_events::event::dynamodb::Event as StreamEvent;
    use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
    use aws_lambda_events::event::streams::DynamoDbEventResponse;
    use lambda_http::RequestExt;

    fn caller(name: &str, edit: impl FnOnce(&mut Value)) -> Option<Caller> {
        let request = http_request(name, "GET", "/orders/1", None, edit);
        let context = request
            .extensions()
            .get::<lambda_http::request::RequestContext>()?
            .clone();
        Caller::from_context(&context)
    }

    #[test]
    fn the_caller_is_read_from_what_api_gateway_sends() {
        let consumer = caller("http-api-v2-jwt-no-route-scopes", |_| {}).unwrap();
        assert_eq!(consumer.subject, "a1b2c3d4-0000-4000-8000-00000000e001");
        assert!(!consumer.operator);
        // The same context with the operator scope among the token's: scopes is still null.
        let operator = caller("http-api-v2-jwt-no-route-scopes", |event| {
            let claims = &mut event["requestContext"]["authorizer"]["jwt"]["claims"];
            claims["scope"] = format!("openid {OPERATOR_SCOPE} email").into();
        })
        .unwrap();
        assert!(operator.operator);
        // A route that declares scopes lists them too.
        assert!(
            caller("http-api-v2-jwt-route-scopes", |_| {})
                .unwrap()
                .operator
        );
    }

    #[test]
    fn lambda_http_keeps_the_path_the_query_and_the_body_as_sent() {
        let request = http_request(
            "http-api-v2-jwt-no-route-scopes",
            "POST",
            "/orders",
            Some("{}"),
            |event| event["rawQueryString"] = "a=1".into(),
        );
        assert_eq!(request.uri().path(), "/orders");
        assert_eq!(request.method(), "POST");
        let request =
            lambda_http::request::from_str(&event("http-api-v2-jwt-no-route-scopes").to_string())
                .unwrap();
        // API Gateway joins a repeated parameter with commas; lambda_http gives each value.
        assert_eq!(
            request.query_string_parameters().all("tag"),
            Some(vec!["a", "b"])
        );
    }

    #[test]
    fn sqs_batches_of_eventbridge_events_decode_to_their_envelopes() {
        let batch: SqsEvent = serde_json::from_value(event("sqs-eventbridge-batch")).unwrap();
        assert_eq!(batch.records.len(), 2);
        for message in &batch.records {
            let envelope = Envelope::from_message(message).unwrap();
            assert_eq!(envelope.detail_type, "OrderPlaced");
            assert!(message.attributes.contains_key("ApproximateReceiveCount"));
        }
        for name in ["sqs-fifo-record", "sqs-message-attributes"] {
            let batch: SqsEvent = serde_json::from_value(event(name)).unwrap();
            assert_eq!(batch.records.len(), 1, "{name}");
        }
    }

    #[test]
    fn stream_batches_ttl_deletes_included_decode() {
        for name in [
            "dynamodb-stream-insert-modify",
            "dynamodb-stream-ttl-delete",
        ] {
            let batch: StreamEvent = serde_json::from_value(event(name)).unwrap();
            assert!(!batch.records.is_empty(), "{name}");
        }
    }

    /// The batch answers our functions give serialize to the keys Lambda reads.
    #[test]
    fn batch_answers_have_the_keys_lambda_reads() {
        let keys = |value: Value| -> Vec<String> {
            let failure = &value["batchItemFailures"][0];
            failure.as_object().unwrap().keys().cloned().collect()
        };
        let sqs: SqsBatchResponse = serde_json::from_value(event("sqs-batch-response")).unwrap();
        assert_eq!(
            keys(serde_json::to_value(&sqs).unwrap()),
            keys(event("sqs-batch-response"))
        );
        let stream: DynamoDbEventResponse =
            serde_json::from_value(event("dynamodb-stream-batch-response")).unwrap();
        assert_eq!(
            keys(serde_json::to_value(&stream).unwrap()),
            keys(event("dynamodb-stream-batch-response"))
        );
    }
}
