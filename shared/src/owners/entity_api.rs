//! The HTTP API of an entity its context owns and others replicate (a consumer, a restaurant):
//! `PUT {path}/{id}` (an operator's) stores the new state with the next version and its event in
//! one transaction (`versioned::put`): `201` when created, `200` when changed or already so;
//! `GET {path}/{id}` shows it to whoever the entity allows, `404` to anyone else.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::de::DeserializeOwned;
use tracing::{error, info};

use crate::language::input::FieldError;
use crate::owners::versioned::{self, Entity, Outcome, SaveError, VersionedStore};
use crate::platform::http::{
    CorrelationId, correlation_layer, decode, method_not_allowed, require_json,
};
use crate::platform::identity::{Caller, OPERATOR_SCOPE};
use crate::platform::problem::Problem;

/// An entity with an API: its name, the body of its `PUT`, and who may read it.
pub trait Resource: Entity + 'static {
    /// The entity's name in messages ("consumer").
    const NAME: &'static str;
    type Body: DeserializeOwned + Send;
    /// The entity `id` with the state `body` says, or every field that is wrong.
    fn from_body(id: String, body: Self::Body) -> Result<Self, Vec<FieldError>>;
    /// Whether `caller` may read the entity `id` (an operator always may).
    fn readable_by(caller: &Caller, id: &str) -> bool;
}

/// The largest `PUT` body: every valid one fits (the largest menu, each character escaped as
/// JSON allows, is about 650 KB), and API Gateway has passed it whole already.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The routes `{path}` (ending in `/{id}`) for `E`, kept in `store`.
pub fn router<E: Resource, S: VersionedStore>(path: &str, store: S) -> Router {
    Router::new()
        .route(path, get(read::<E, S>).put(write::<E, S>))
        .method_not_allowed_fallback(method_not_allowed)
        // The body bound is ours (answered as problem+json), not axum's default.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(correlation_layer))
        .with_state(store)
}

async fn write<E: Resource, S: VersionedStore>(
    State(store): State<S>,
    caller: Caller,
    Extension(CorrelationId(correlation)): Extension<CorrelationId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    save::<E, S>(&store, &caller, &headers, id, &body, &correlation)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn save<E: Resource, S: VersionedStore>(
    store: &S,
    caller: &Caller,
    headers: &HeaderMap,
    id: String,
    body: &[u8],
    correlation_id: &str,
) -> Result<Response, Problem> {
    if !caller.operator {
        return Err(Problem::forbidden(format!(
            "changing a {} needs the operator scope ({OPERATOR_SCOPE})",
            E::NAME
        )));
    }
    require_json(headers)?;
    if body.len() > MAX_BODY_BYTES {
        return Err(Problem::body_over(body.len(), MAX_BODY_BYTES));
    }
    let entity = E::from_body(id.clone(), decode(body)?).map_err(Problem::invalid_fields)?;
    let (stored, outcome) = versioned::put(store, &id, entity, Some(correlation_id.to_owned()))
        .await
        .map_err(|e| match e {
            SaveError::EventTooLarge { .. } => Problem::payload_too_large(format!(
                "nothing was stored: {e}; send a smaller {}",
                E::NAME
            )),
            e => {
                error!(entity = E::NAME, id, error = %e, "not stored");
                Problem::internal()
            }
        })?;
    info!(
        entity = E::NAME,
        id,
        version = stored.version(),
        ?outcome,
        "stored"
    );
    let status = match outcome {
        Outcome::Created => StatusCode::CREATED,
        Outcome::Updated | Outcome::Unchanged => StatusCode::OK,
    };
    Ok(shown(status, &stored))
}

async fn read<E: Resource, S: VersionedStore>(
    State(store): State<S>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    let unknown = || Problem::not_found(format!("there is no {} {id}", E::NAME));
    if !(caller.operator || E::readable_by(&caller, &id)) {
        // What the caller may not see is not found, as if it did not exist.
        return unknown().into_response();
    }
    match store.get::<E>(&id).await {
        Ok(Some(entity)) => shown(StatusCode::OK, &entity),
        Ok(None) => unknown().into_response(),
        Err(e) => {
            error!(entity = E::NAME, id, error = %e, "not readable");
            Problem::internal().into_response()
        }
    }
}

/// The entity with its version as `ETag`.
fn shown<E: Entity>(status: StatusCode, entity: &E) -> Response {
    let mut response = (status, axum::Json(entity)).into_response();
    let tag = format!("\"v{}\"", entity.version());
    response.headers_mut().insert(
        header::ETAG,
        HeaderValue::from_str(&tag).expect("an ETag of digits"),
    );
    response
}
