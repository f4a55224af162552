//! `GET /consumers/{consumerId}/webhook-secret` and `POST .../webhook-secret/rotate`: a
//! consumer's webhook signing secret, to that consumer and to operators, and its rotation, by
//! operators. The order context signs the outcomes it delivers, so it answers for the secret.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::platform::identity::Caller;
use shared::platform::problem::Problem;
use tracing::{error, info};

use super::App;
use crate::domain::webhook_secrets::Generations;
use crate::ports::orders::OrderStore;
use crate::ports::replica::ReplicaStore;
use crate::ports::resolver::Resolver;
use crate::ports::webhook_generations::GenerationStore;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookSecret {
    secret: String,
    /// After a rotation: until when the secrets before it also sign (the last to end).
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_signs_until: Option<DateTime<Utc>>,
}

/// The consumer's current secret. Another consumer's is `404`, as if it did not exist.
pub async fn get_secret<S, Q, R>(
    State(app): State<App<S, Q, R>>,
    caller: Caller,
    Path(consumer_id): Path<String>,
) -> Response
where
    S: OrderStore + GenerationStore,
    Q: ReplicaStore,
    R: Resolver,
{
    if !caller.may_act_for(&consumer_id) || !is_id(&consumer_id) {
        // What the caller may not see is not found, as if it did not exist.
        return Problem::not_found(format!("there is no consumer {consumer_id}")).into_response();
    }
    match app.store.generations(&consumer_id).await {
        Ok(generations) => secret_response(&app, &consumer_id, &generations).await,
        Err(e) => {
            error!(error = %e, "webhook secret generations could not be read");
            Problem::internal().into_response()
        }
    }
}

/// Starts the consumer's next secret; the one before signs too for the overlap. Operators only.
pub async fn rotate_secret<S, Q, R>(
    State(app): State<App<S, Q, R>>,
    caller: Caller,
    Path(consumer_id): Path<String>,
) -> Response
where
    S: OrderStore + GenerationStore,
    Q: ReplicaStore,
    R: Resolver,
{
    if !caller.operator {
        return Problem::forbidden("only operators rotate a consumer's webhook secret")
            .into_response();
    }
    if !is_id(&consumer_id) {
        return Problem::not_found(format!("there is no consumer {consumer_id}")).into_response();
    }
    match app.store.rotate(&consumer_id, Utc::now()).await {
        Ok(generations) => {
            info!(consumerId = %consumer_id, generation = generations.current, "webhook secret rotated");
            secret_response(&app, &consumer_id, &generations).await
        }
        Err(e) => {
            error!(error = %e, "webhook secret not rotated");
            Problem::internal().into_response()
        }
    }
}

/// Whether `id` could be a consumer's id at all (docs/openapi.yaml, schema `Id`).
fn is_id(id: &str) -> bool {
    let mut errors = Vec::new();
    shared::language::input::check_id(&mut errors, "consumerId", id);
    errors.is_empty()
}

async fn secret_response<S, Q, R>(
    app: &App<S, Q, R>,
    consumer_id: &str,
    generations: &Generations,
) -> Response {
    let keyring = match app.secret.get().await {
        Ok(keyring) => keyring,
        Err(e) => {
            error!(error = %e, "the master webhook secret could not be read");
            return Problem::internal().into_response();
        }
    };
    let body = WebhookSecret {
        secret: keyring.secret(consumer_id, generations.current),
        previous_secret_signs_until: generations.in_overlap(Utc::now()).map(|p| p.until).max(),
    };
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    // A secret is never kept by a cache on the way.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use serde_json::Value;
    use shared::platform::identity::OPERATOR_SCOPE;
    use tower::ServiceExt;

    use crate::adapters::memory::orders::MemoryStore;
    use crate::adapters::memory::replica::MemoryReplica;
    use crate::app::callbacks::Callbacks;
    use crate::domain::webhook_secrets::Keyring;
    use crate::entry::http::{App, router};
    use crate::ports::master_secret::MasterSecret;

    async fn send(
        store: &MemoryStore,
        subject: &str,
        scopes: &[&str],
        request: Request<Body>,
    ) -> (u16, Value) {
        let mut request = request;
        let context = shared::platform::identity::request_context(subject, scopes);
        request.extensions_mut().insert(context);
        let app = router(App {
            store: store.clone(),
            replica: MemoryReplica::default(),
            callbacks: Callbacks::from_env(),
            secret: Arc::new(MasterSecret::known(b"master".to_vec())),
        });
        let response = app.oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        if status == 200 {
            assert_eq!(response.headers()["cache-control"], "no-store");
        }
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn get(consumer: &str) -> Request<Body> {
        Request::get(format!("/consumers/{consumer}/webhook-secret"))
            .body(Body::empty())
            .unwrap()
    }

    fn rotate(consumer: &str) -> Request<Body> {
        Request::post(format!("/consumers/{consumer}/webhook-secret/rotate"))
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn a_consumer_reads_its_own_secret_and_nobody_elses() {
        let store = MemoryStore::default();
        let keyring = Keyring(b"master");
        let (status, body) = send(&store, "consumer-1", &[], get("consumer-1")).await;
        assert_eq!(
            (status, body["secret"].as_str()),
            (200, Some(keyring.secret("consumer-1", 1).as_str()))
        );
        let (status, body) = send(&store, "consumer-1", &[], get("consumer-2")).await;
        assert_eq!(status, 404, "{body}");
        assert!(body.get("secret").is_none());
        let (status, body) = send(&store, "ops", &[OPERATOR_SCOPE], get("consumer-2")).await;
        assert_eq!(
            (status, body["secret"].as_str()),
            (200, Some(keyring.secret("consumer-2", 1).as_str()))
        );
    }

    #[tokio::test]
    async fn an_operator_rotates_and_the_consumer_reads_the_new_secret() {
        let store = MemoryStore::default();
        let keyring = Keyring(b"master");
        let (status, _) = send(&store, "consumer-1", &[], rotate("consumer-1")).await;
        assert_eq!(status, 403, "a consumer does not rotate its own secret");
        let (status, rotated) = send(&store, "ops", &[OPERATOR_SCOPE], rotate("consumer-1")).await;
        assert_eq!(status, 200);
        assert_eq!(rotated["secret"], keyring.secret("consumer-1", 2));
        assert!(rotated["previousSecretSignsUntil"].is_string(), "{rotated}");
        let (_, read) = send(&store, "consumer-1", &[], get("consumer-1")).await;
        assert_eq!(read["secret"], rotated["secret"]);
        // Another consumer's secret is untouched.
        let (_, other) = send(&store, "consumer-2", &[], get("consumer-2")).await;
        assert_eq!(other["secret"], keyring.secret("consumer-2", 1));
    }
}
