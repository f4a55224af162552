//! The consumer context's own API: `PUT /consumers/{consumerId}` (an operator's) stores the
//! consumer's new state with the next version and publishes it as `ConsumerUpdated` in the same
//! transaction; `GET /consumers/{consumerId}` shows it to an operator or to that consumer.

use axum::Router;
use serde::Deserialize;
use shared::language::events::{ChangeMeta, ConsumerStatus, ConsumerUpdated, Money};
use shared::language::input::{FieldError, check_currency, check_id, check_name};
use shared::language::outbox::OutboxRecord;
use shared::owners::entity_api::{self, Resource};
use shared::owners::versioned::{Entity, VersionedStore};
use shared::platform::identity::Caller;

use crate::domain::Consumer;

/// The body of `PUT /consumers/{consumerId}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsumerBody {
    name: String,
    status: ConsumerStatus,
    #[serde(default)]
    order_limit: Option<Money>,
}

impl Entity for Consumer {
    fn version(&self) -> u64 {
        self.version
    }

    fn set_version(&mut self, version: u64) {
        self.version = version;
    }

    fn changed(&self, correlation_id: Option<String>) -> Result<OutboxRecord, serde_json::Error> {
        OutboxRecord::of(&ConsumerUpdated {
            meta: ChangeMeta::new(correlation_id),
            consumer_id: self.consumer_id.clone(),
            version: self.version,
            name: self.name.clone(),
            status: self.status,
            order_limit: self.order_limit.clone(),
        })
    }
}

impl Resource for Consumer {
    const NAME: &'static str = "consumer";
    type Body = ConsumerBody;

    fn from_body(consumer_id: String, body: ConsumerBody) -> Result<Self, Vec<FieldError>> {
        validate(consumer_id, body)
    }

    /// A consumer reads its own record.
    fn readable_by(caller: &Caller, consumer_id: &str) -> bool {
        caller.subject == consumer_id
    }
}

pub fn router<S: VersionedStore>(store: S) -> Router {
    entity_api::router::<Consumer, S>("/consumers/{consumer_id}", store)
}

fn validate(consumer_id: String, body: ConsumerBody) -> Result<Consumer, Vec<FieldError>> {
    let mut errors = Vec::new();
    check_id(&mut errors, "consumerId", &consumer_id);
    check_name(&mut errors, "name", &body.name);
    if let Some(limit) = &body.order_limit {
        check_currency(&mut errors, "orderLimit.currency", &limit.currency);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Consumer {
        consumer_id,
        version: 0,
        name: body.name,
        status: body.status,
        order_limit: body.order_limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use serde_json::Value;
    use shared::owners::versioned::MemoryVersionedStore;
    use shared::platform::identity::{OPERATOR_SCOPE, request_context};
    use tower::ServiceExt;

    const ADA: &str = r#"{"name":"Ada Lovelace","status":"ACTIVE",
        "orderLimit":{"currency":"EUR","amountMinor":100000}}"#;

    async fn send(
        store: &MemoryVersionedStore,
        subject: &str,
        scopes: &[&str],
        method: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri("/consumers/consumer-1")
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        request
            .extensions_mut()
            .insert(request_context(subject, scopes));
        let response = router(store.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn published(store: &MemoryVersionedStore) -> Vec<ConsumerUpdated> {
        let outbox = store.outbox.lock().unwrap();
        outbox
            .iter()
            .map(|r| serde_json::from_str(&r.detail).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn an_operator_creates_and_changes_a_consumer_each_change_published_once() {
        let store = MemoryVersionedStore::default();
        let (status, body) = send(&store, "ops", &[OPERATOR_SCOPE], "PUT", ADA).await;
        assert_eq!(
            (status, body["version"].as_u64()),
            (StatusCode::CREATED, Some(1))
        );
        // The same state again: nothing new.
        let (status, body) = send(&store, "ops", &[OPERATOR_SCOPE], "PUT", ADA).await;
        assert_eq!(
            (status, body["version"].as_u64()),
            (StatusCode::OK, Some(1))
        );
        let suspended = ADA.replace("ACTIVE", "SUSPENDED");
        let (_, body) = send(&store, "ops", &[OPERATOR_SCOPE], "PUT", &suspended).await;
        assert_eq!(body["version"], 2);
        let events = published(&store);
        assert_eq!(
            events
                .iter()
                .map(|e| (e.version, e.status))
                .collect::<Vec<_>>(),
            [(1, ConsumerStatus::Active), (2, ConsumerStatus::Suspended)]
        );
        assert_eq!(store.outbox.lock().unwrap()[0].subject, "consumer-1");
    }

    #[tokio::test]
    async fn a_consumers_token_may_not_write_and_reads_only_itself() {
        let store = MemoryVersionedStore::default();
        let (status, problem) = send(&store, "consumer-1", &[], "PUT", ADA).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(problem["type"], "/problems/forbidden");
        assert!(published(&store).is_empty());
        send(&store, "ops", &[OPERATOR_SCOPE], "PUT", ADA).await;
        assert_eq!(
            send(&store, "consumer-1", &[], "GET", "").await.0,
            StatusCode::OK
        );
        assert_eq!(
            send(&store, "consumer-2", &[], "GET", "").await.0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn bad_input_is_refused_and_writes_nothing() {
        let store = MemoryVersionedStore::default();
        for (body, status, field) in [
            (
                r#"{"name":"A","status":"GONE"}"#,
                StatusCode::BAD_REQUEST,
                "status",
            ),
            (
                r#"{"name":" ","status":"ACTIVE"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "name",
            ),
            (
                r#"{"name":"A","status":"ACTIVE","orderLimit":{"currency":"eur","amountMinor":1}}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "orderLimit.currency",
            ),
            (
                r#"{"name":"A","status":"ACTIVE","orderLimit":{"currency":"EUR","amountMinor":-1}}"#,
                StatusCode::BAD_REQUEST,
                "orderLimit.amountMinor",
            ),
        ] {
            let (actual, problem) = send(&store, "ops", &[OPERATOR_SCOPE], "PUT", body).await;
            assert_eq!(actual, status, "{body}");
            assert_eq!(problem["errors"][0]["field"], field, "{body}");
        }
        assert!(published(&store).is_empty());
        assert!(store.entities.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_request_as_api_gateway_sends_it_is_an_operators_by_its_scope_claim() {
        let store = MemoryVersionedStore::default();
        let request = |scope: &str| {
            let scope = scope.to_owned();
            shared::testing::corpus::http_request(
                "http-api-v2-jwt-no-route-scopes",
                "PUT",
                "/consumers/consumer-1",
                Some(ADA),
                move |event| {
                    event["requestContext"]["authorizer"]["jwt"]["claims"]["scope"] = scope.into();
                },
            )
        };
        let refused = router(store.clone())
            .oneshot(request("openid email"))
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            refused.headers()["content-type"],
            shared::platform::problem::CONTENT_TYPE
        );
        let created = router(store.clone())
            .oneshot(request(&format!("openid {OPERATOR_SCOPE}")))
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        assert_eq!(published(&store).len(), 1);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_as_a_problem_and_nothing_is_stored() {
        let store = MemoryVersionedStore::default();
        let padded = format!(
            r#"{{"name":"Ada","status":"ACTIVE","pad":"{}"}}"#,
            "x".repeat(shared::owners::entity_api::MAX_BODY_BYTES)
        );
        let (status, body) = send(&store, "ops", &[OPERATOR_SCOPE], "PUT", &padded).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["type"], "/problems/payload-too-large");
        assert!(published(&store).is_empty());
    }
}
