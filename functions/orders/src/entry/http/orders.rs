//! `POST /orders` and `GET /orders/{orderId}`: HTTP in and out of the place-order and
//! follow-order use cases (`crate::app`).

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::language::events::{LineItem, Money};
use shared::language::input::FieldError;
use shared::platform::http::{CorrelationId, header_token, malformed, require_json};
use shared::platform::identity::Caller;
use shared::platform::problem::Problem;
use tracing::{Instrument, debug, info, info_span};
use uuid::Uuid;

use super::App;
use crate::app::callbacks::CheckError;
use crate::app::follow_order::{self, MAX_WAIT_SECONDS, NotShown, Shown, etag};
use crate::app::place_order::{Intake, Placed, Refused};
use crate::domain::intake::{Invalid, MAX_BODY_BYTES};
use crate::domain::order::{Order, OrderStatus, StatusChange};
use crate::ports::orders::OrderStore;
use crate::ports::replica::ReplicaStore;
use crate::ports::resolver::Resolver;
use crate::ports::wait_slots::{MAX_WAITS_PER_CALLER, WaitSlots};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
pub const PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// `202 Accepted` body: the order exists and is being validated; priced when the replica knew
/// the restaurant. An idempotent replay answers the same.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    order_id: Uuid,
    status: OrderStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    line_items: Option<Vec<LineItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<Money>,
}

/// What `GET /orders/{orderId}` shows: the API's contract, independent of how orders are stored.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderView {
    order_id: Uuid,
    consumer_id: String,
    restaurant_id: String,
    line_items: Vec<LineItem>,
    status: OrderStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<Money>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rejection_reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_url: Option<String>,
    created_at: DateTime<Utc>,
    history: Vec<StatusChange>,
}

impl From<Order> for OrderView {
    fn from(order: Order) -> Self {
        Self {
            order_id: order.order_id,
            created_at: order.history.first().map(|c| c.at).unwrap_or_default(),
            consumer_id: order.consumer_id,
            restaurant_id: order.restaurant_id,
            line_items: order.line_items,
            status: order.status,
            total: order.total,
            rejection_reasons: order.rejection_reasons,
            callback_url: order.callback_url,
            history: order.history,
        }
    }
}

pub(super) async fn place_order<S: OrderStore, Q: ReplicaStore, R: Resolver>(
    State(app): State<App<S, Q, R>>,
    caller: Caller,
    Extension(CorrelationId(correlation_id)): Extension<CorrelationId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let span =
        info_span!("place_order", correlationId = %correlation_id, orderId = tracing::field::Empty);
    async {
        match accept(&app, &caller, &headers, &body, &correlation_id).await {
            Ok(response) => response,
            Err(problem) => {
                info!(status = problem.status, detail = %problem.detail, "order refused");
                problem.into_response()
            }
        }
    }
    .instrument(span)
    .await
}

async fn accept<S: OrderStore, Q: ReplicaStore, R: Resolver>(
    app: &App<S, Q, R>,
    caller: &Caller,
    headers: &HeaderMap,
    body: &[u8],
    correlation_id: &str,
) -> Result<Response, Problem> {
    require_json(headers)?;
    if body.len() > MAX_BODY_BYTES {
        return Err(Problem::body_over(body.len(), MAX_BODY_BYTES));
    }
    let idempotency_key = header_token(headers, &IDEMPOTENCY_KEY, "Idempotency-Key")?;
    let intake = Intake {
        store: &app.store,
        replica: &app.replica,
        callbacks: &app.callbacks,
    };
    match intake
        .place(caller, idempotency_key, body, correlation_id)
        .await
    {
        Ok(Placed::New(order)) => Ok(accepted_response(accepted_body(&order))),
        Ok(Placed::Replayed { order_id, first }) => Ok(replayed(order_id, first.as_ref())),
        Err(refused) => Err(refusal(refused)),
    }
}

fn refusal(refused: Refused) -> Problem {
    match refused {
        Refused::Invalid(Invalid::Malformed(error)) => malformed(error),
        Refused::Invalid(Invalid::OutOfBounds(errors)) | Refused::Replica(errors) => {
            Problem::invalid_fields(errors)
        }
        Refused::NotTheirs {
            subject,
            consumer_id,
        } => Problem::forbidden(format!(
            "this token is consumer {subject}'s; it may place orders for that consumer only, not for {consumer_id}"
        )),
        Refused::Callback(CheckError::Refused(refused)) => {
            Problem::invalid_fields(vec![FieldError::new("callbackUrl", refused.to_string())])
        }
        // Not the request's fault: the same request may pass in a moment.
        Refused::Callback(failed @ CheckError::Unresolved { .. }) => {
            Problem::unavailable(failed.to_string())
        }
        Refused::KeyReused => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was already used with a different request body; \
             use a new key for a new order",
        ),
        Refused::Unavailable => Problem::internal(),
    }
}

fn accepted_response(body: Accepted) -> Response {
    let location = format!("/orders/{}", body.order_id);
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(body),
    )
        .into_response()
}

fn accepted_body(order: &Order) -> Accepted {
    // The total stored at intake (a validated order's total may have been set by its reply).
    let priced = order.line_items.iter().all(|line| line.price.is_some());
    Accepted {
        order_id: order.order_id,
        status: OrderStatus::Pending,
        line_items: priced.then(|| order.line_items.clone()),
        total: priced.then(|| order.total.clone()).flatten(),
    }
}

fn replayed(order_id: Uuid, first: Option<&Order>) -> Response {
    let body = first.map_or(
        Accepted {
            order_id,
            status: OrderStatus::Pending,
            line_items: None,
            total: None,
        },
        accepted_body,
    );
    let mut response = accepted_response(body);
    response
        .headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

/// `GET /orders/{id}`: the order with its `ETag` (its version). With `Prefer: wait=N` (RFC 7240)
/// the answer waits, up to N seconds, until the order's ETag differs from `If-None-Match`, or
/// without one until the order is decided; `304` when nothing changed. A decided order, or one
/// already changed, is answered at once. A caller holds at most `MAX_WAITS_PER_CALLER` waits at
/// once; beyond them, `429`. Another consumer's order is `404`, as if it did not exist, so that
/// ids reveal nothing.
pub(super) async fn get_order<S: OrderStore + WaitSlots, Q: ReplicaStore, R: Resolver>(
    State(App { store, .. }): State<App<S, Q, R>>,
    caller: Caller,
    Extension(CorrelationId(correlation_id)): Extension<CorrelationId>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
) -> Response {
    match Uuid::parse_str(&order_id) {
        Err(_) => {
            Problem::not_found(format!("there is no order with id {order_id}")).into_response()
        }
        Ok(id) => {
            let known = if_none_match(&headers);
            let followed = follow_order::follow(
                &store,
                &caller,
                id,
                known.as_deref(),
                preferred_wait(&headers),
            )
            .await;
            let shown = match followed {
                Ok(shown) => Ok(order_response(shown, known.as_deref())),
                Err(NotShown::NotFound) => Err(Problem::not_found(format!(
                    "there is no order with id {id}"
                ))),
                Err(NotShown::Unreadable(_)) => Err(Problem::internal()),
                Err(NotShown::TooManyWaits { retry_after }) => Err(too_many_waits(retry_after)),
            };
            match &shown {
                Ok(_) => {
                    debug!(orderId = %id, correlationId = %correlation_id, "order shown")
                }
                Err(problem) => {
                    info!(orderId = %id, correlationId = %correlation_id, status = problem.status, detail = %problem.detail, "order not shown")
                }
            }
            shown.unwrap_or_else(IntoResponse::into_response)
        }
    }
}

/// `retry_after`: whole seconds until the caller's first held wait ends.
fn too_many_waits(retry_after: u64) -> Problem {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-waits",
        "Too many waiting requests",
        format!(
            "this caller already has {MAX_WAITS_PER_CALLER} requests waiting (Prefer: wait); \
             retry after one ends, wait on fewer orders at once, or give a callbackUrl"
        ),
    )
    .retry_after(retry_after)
}

fn order_response(shown: Shown, known: Option<&str>) -> Response {
    let Shown {
        order,
        wait_applied,
    } = shown;
    let tag = etag(&order);
    let unchanged = known == Some(tag.as_str());
    let decided = order.status.is_terminal();
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        axum::Json(OrderView::from(order)).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&tag).expect("an ETag of digits"),
    );
    if !decided {
        // The order is still moving: a client polling without a wait should come back in a second.
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if let Some(seconds) = wait_applied {
        headers.insert(
            PREFERENCE_APPLIED,
            HeaderValue::from_str(&format!("wait={seconds}")).expect("digits"),
        );
    }
    response
}

/// The `wait` preference of `Prefer` (RFC 7240: preferences separated by commas, parameters by
/// semicolons), capped at `MAX_WAIT_SECONDS`. A value that is no number is ignored, as the RFC
/// asks of preferences a server does not understand.
fn preferred_wait(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|preference| {
            let token = preference.split(';').next()?.trim();
            let (name, value) = token.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("wait")
                .then(|| value.trim().trim_matches('"').parse::<u64>().ok())
                .flatten()
        })
        .next()
        .map(|seconds| seconds.min(MAX_WAIT_SECONDS))
}

/// The first entity tag of `If-None-Match` (this API's tags are strong; `W/` is accepted too).
fn if_none_match(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
    let first = value.split(',').next()?.trim();
    Some(first.strip_prefix("W/").unwrap_or(first).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::orders::{Alteration, Altered, MemoryStore};
    use crate::adapters::memory::replica::MemoryReplica;
    use crate::app::callbacks::Callbacks;
    use crate::domain::callback_urls::Policy;
    use crate::entry::http::{Routes, router, router_for};
    use crate::ports::master_secret::MasterSecret;
    use crate::ports::orders::{IdempotencyClaim, Placement};
    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use serde_json::Value;
    use shared::platform::http::CORRELATION_ID;
    use shared::platform::identity::OPERATOR_SCOPE;
    use std::sync::Arc;
    use tower::ServiceExt;

    const ORDER: &str = r#"{"consumerId":"consumer-1","restaurantId":"restaurant-1",
        "lineItems":[{"menuItemId":"item-1","quantity":2}]}"#;

    fn app(store: &MemoryStore, replica: MemoryReplica) -> Router {
        router(App {
            store: store.clone(),
            replica,
            callbacks: Callbacks::from_env(),
            secret: Arc::new(MasterSecret::known(b"master".to_vec())),
        })
    }

    /// The request as API Gateway passes it with a token of `subject` (and `scopes`).
    fn by(subject: &str, scopes: &[&str], mut request: Request<Body>) -> Request<Body> {
        let context = shared::platform::identity::request_context(subject, scopes);
        request.extensions_mut().insert(context);
        request
    }

    /// Sends the request, as consumer-1 unless it names a caller already.
    async fn send(store: &MemoryStore, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        send_to(store, MemoryReplica::default(), request).await
    }

    /// Sends the request to an API whose replica is `replica`.
    async fn send_to(
        store: &MemoryStore,
        replica: MemoryReplica,
        request: Request<Body>,
    ) -> (StatusCode, HeaderMap, Value) {
        let has_caller = request
            .extensions()
            .get::<lambda_http::request::RequestContext>()
            .is_some();
        let request = if has_caller {
            request
        } else {
            by("consumer-1", &[], request)
        };
        let response = app(store, replica).oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, usize::MAX).await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (parts.status, parts.headers, json)
    }

    fn post(body: &str, key: Option<&str>) -> Request<Body> {
        let mut builder = Request::post("/orders").header("content-type", "application/json");
        if let Some(key) = key {
            builder = builder.header("idempotency-key", key);
        }
        by(
            "consumer-1",
            &[],
            builder.body(Body::from(body.to_owned())).unwrap(),
        )
    }

    fn written(store: &MemoryStore) -> (usize, usize) {
        store.snapshot(|inner| (inner.orders.len(), inner.outbox.len()))
    }

    fn get_with(id: &str, headers: &[(&str, &str)]) -> Request<Body> {
        let mut builder = Request::get(format!("/orders/{id}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    /// Places an order and returns its id.
    async fn placed(store: &MemoryStore) -> String {
        let (_, _, body) = send(store, post(ORDER, None)).await;
        body["orderId"].as_str().unwrap().to_owned()
    }

    /// Moves the stored order on by one reply, as order-replies would.
    async fn reply(store: &MemoryStore, id: &str, reply: crate::domain::order::Reply) {
        let order = store
            .get(Uuid::parse_str(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        let crate::domain::order::Transition::Changed { order: next } =
            crate::domain::order::apply(&order, &reply, Utc::now())
        else {
            panic!("no change");
        };
        store.save(&next, order.version, None).await.unwrap();
    }

    #[tokio::test]
    async fn requests_as_api_gateway_sends_them_are_answered() {
        let store = MemoryStore::default();
        let id = Uuid::now_v7();
        let get = shared::testing::corpus::http_request(
            "http-api-v2-jwt-no-route-scopes",
            "GET",
            &format!("/orders/{id}"),
            None,
            |_| {},
        );
        let (status, headers, body) = send(&store, get).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            headers["content-type"],
            shared::platform::problem::CONTENT_TYPE
        );
        assert_eq!(body["detail"], format!("there is no order with id {id}"));
        // An operator (by the scope claim, scopes null) orders for consumer-1: the replica
        // knows no restaurant, so the order is accepted unpriced.
        let post = shared::testing::corpus::http_request(
            "http-api-v2-jwt-no-route-scopes",
            "POST",
            "/orders",
            Some(ORDER),
            |event| {
                event["requestContext"]["authorizer"]["jwt"]["claims"]["scope"] =
                    format!("openid {OPERATOR_SCOPE}").into();
            },
        );
        let (status, _, body) = send(&store, post).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(written(&store), (1, 1));
    }

    #[tokio::test]
    async fn an_order_carries_its_version_as_etag_and_retry_after_until_decided() {
        let store = MemoryStore::default();
        let id = placed(&store).await;
        let (status, headers, _) = send(&store, get_with(&id, &[])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["etag"], "\"v1\"");
        assert_eq!(headers["retry-after"], "1");
        assert!(headers.get("preference-applied").is_none());
        // The client's copy is current: 304, no body, the same tag.
        let (status, headers, body) =
            send(&store, get_with(&id, &[("if-none-match", "\"v1\"")])).await;
        assert_eq!((status, body), (StatusCode::NOT_MODIFIED, Value::Null));
        assert_eq!(headers["etag"], "\"v1\"");
        reply(
            &store,
            &id,
            crate::domain::order::Reply::ConsumerValidationFailed {
                reason: "no".into(),
            },
        )
        .await;
        let (status, headers, body) =
            send(&store, get_with(&id, &[("if-none-match", "\"v1\"")])).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("REJECTED"))
        );
        assert_eq!(headers["etag"], "\"v2\"");
        assert!(headers.get("retry-after").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_request_answers_soon_after_the_change() {
        let store = MemoryStore::default();
        let id = placed(&store).await;
        let changer = {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                reply(&store, &id, crate::domain::order::Reply::ConsumerValidated).await;
                tokio::time::Instant::now()
            })
        };
        let request = get_with(
            &id,
            &[
                ("prefer", "respond-async, wait=5"),
                ("if-none-match", "\"v1\""),
            ],
        );
        let (status, headers, body) = send(&store, request).await;
        let answered = tokio::time::Instant::now();
        let changed = changer.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "CONSUMER_VALIDATED");
        assert_eq!(headers["preference-applied"], "wait=5");
        assert!(
            answered - changed < std::time::Duration::from_secs(1),
            "{:?}",
            answered - changed
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_on_a_decided_order_answers_at_once() {
        let store = MemoryStore::default();
        let id = placed(&store).await;
        let rejected = crate::domain::order::Reply::ConsumerValidationFailed {
            reason: "no".into(),
        };
        reply(&store, &id, rejected).await;
        let began = tokio::time::Instant::now();
        let wait = ("prefer", "wait=20");
        let (status, _, _) =
            send(&store, get_with(&id, &[wait, ("if-none-match", "\"v2\"")])).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        let (status, _, body) = send(&store, get_with(&id, &[wait])).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("REJECTED"))
        );
        assert!(
            began.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            began.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_holds_at_most_its_bound_of_waits_and_others_are_not_held_up() {
        let store = MemoryStore::default();
        let id = placed(&store).await;
        let held = |store: &MemoryStore| store.snapshot(|inner| inner.waits.len());
        let waiting: Vec<_> = (0..MAX_WAITS_PER_CALLER)
            .map(|_| {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(
                    async move { send(&store, get_with(&id, &[("prefer", "wait=20")])).await },
                )
            })
            .collect();
        while held(&store) < MAX_WAITS_PER_CALLER as usize {
            tokio::task::yield_now().await;
        }
        let (status, headers, problem) =
            send(&store, get_with(&id, &[("prefer", "wait=20")])).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
        assert_eq!(problem["type"], "/problems/too-many-waits");
        // Until the first held wait ends: 20 s from when it began, a moment ago.
        let retry_after: u64 = headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((19..=20).contains(&retry_after), "{retry_after}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        // Without a wait, the same caller is answered; another caller's wait has its own slots.
        let (status, _, _) = send(&store, get_with(&id, &[])).await;
        assert_eq!(status, StatusCode::OK);
        let operator = by(
            "operator-1",
            &[OPERATOR_SCOPE],
            get_with(&id, &[("prefer", "wait=1")]),
        );
        let (status, headers, _) = send(&store, operator).await;
        assert_eq!(
            (status, &headers["preference-applied"]),
            (StatusCode::OK, &HeaderValue::from_static("wait=1"))
        );
        for ended in waiting {
            assert_eq!(ended.await.unwrap().0, StatusCode::OK);
        }
        // Each wait gave its slot back as it ended.
        assert_eq!(held(&store), 0);
        let (status, _, _) = send(&store, get_with(&id, &[("prefer", "wait=1")])).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_settled_wait_takes_no_slot() {
        let store = MemoryStore::default();
        let id = placed(&store).await;
        // An ETag the order no longer has: the change is answered at once.
        let (status, _, _) = send(
            &store,
            get_with(&id, &[("prefer", "wait=20"), ("if-none-match", "\"v0\"")]),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        // Nor a wait of 0 s.
        let (status, _, _) = send(&store, get_with(&id, &[("prefer", "wait=0")])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(store.snapshot(|inner| inner.wait_takes), 0);
    }

    #[tokio::test]
    async fn each_deployment_serves_only_its_own_routes() {
        let store = MemoryStore::default();
        let id = placed(&store).await;
        let deployed = |routes| {
            router_for(
                App {
                    store: store.clone(),
                    replica: MemoryReplica::default(),
                    callbacks: Callbacks::from_env(),
                    secret: Arc::new(MasterSecret::known(b"master".to_vec())),
                },
                routes,
            )
        };
        let status = |routes, request| async move {
            deployed(routes)
                .oneshot(by("consumer-1", &[], request))
                .await
                .unwrap()
                .status()
        };
        let head = || {
            Request::head(format!("/orders/{id}"))
                .header("prefer", "wait=20")
                .body(Body::empty())
                .unwrap()
        };
        // The writes' function never waits, not even on a HEAD sent its way; another method on
        // an order is still 405.
        assert_eq!(status(Routes::Writes, head()).await, StatusCode::NOT_FOUND);
        let delete = Request::delete(format!("/orders/{id}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            status(Routes::Writes, delete).await,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(Routes::Writes, post(ORDER, None)).await,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            status(Routes::Reads, post(ORDER, None)).await,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(Routes::Reads, get_with(&id, &[])).await,
            StatusCode::OK
        );
        assert_eq!(store.snapshot(|inner| inner.wait_takes), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_without_a_change_ends_after_n_seconds_with_304() {
        let store = MemoryStore::default();
        let id = placed(&store).await;
        let began = tokio::time::Instant::now();
        let (status, headers, _) = send(
            &store,
            get_with(&id, &[("prefer", "wait=1"), ("if-none-match", "\"v1\"")]),
        )
        .await;
        let took = began.elapsed();
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert_eq!(headers["preference-applied"], "wait=1");
        assert!(
            took >= std::time::Duration::from_secs(1)
                && took < std::time::Duration::from_millis(1500),
            "{took:?}"
        );
        // Without an ETag the wait is for the decision: an undecided order after the wait is 200.
        let (status, _, body) = send(&store, get_with(&id, &[("prefer", "wait=1")])).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("PENDING"))
        );
    }

    #[test]
    fn the_wait_preference_is_read_as_rfc_7240_writes_it_and_capped() {
        let wait = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("prefer", HeaderValue::from_str(value).unwrap());
            preferred_wait(&headers)
        };
        assert_eq!(wait("wait=5"), Some(5));
        assert_eq!(wait("respond-async, WAIT = 7"), Some(7));
        assert_eq!(wait("handling=lenient; x=1, wait=\"3\""), Some(3));
        assert_eq!(wait("wait=600"), Some(MAX_WAIT_SECONDS));
        assert_eq!(wait("wait=soon"), None);
        assert_eq!(wait("return=minimal"), None);
    }

    /// Resolves every name to one address, so no test sends a packet.
    struct OneAddress(std::net::IpAddr);

    impl Resolver for OneAddress {
        async fn resolve(
            &self,
            _host: &str,
        ) -> Result<Vec<std::net::IpAddr>, crate::ports::resolver::ResolveError> {
            Ok(vec![self.0])
        }
    }

    fn with_callback(url: &str) -> Request<Body> {
        let mut body: Value = serde_json::from_str(ORDER).unwrap();
        body["callbackUrl"] = Value::from(url);
        post(&body.to_string(), None)
    }

    #[tokio::test]
    async fn a_callback_url_inside_the_network_is_refused_and_nothing_is_written() {
        let store = MemoryStore::default();
        let resolving_to = |address: &str| Callbacks {
            policy: Policy::default(),
            resolver: Arc::new(OneAddress(address.parse().unwrap())),
        };
        for (url, address) in [
            ("https://10.0.0.1/hook", "93.184.215.14"),
            ("https://[fd00:ec2::254]/hook", "93.184.215.14"),
            ("https://hooks.example.com/hook", "169.254.169.254"),
            ("http://hooks.example.com/hook", "93.184.215.14"),
        ] {
            let router = router(App {
                store: store.clone(),
                replica: MemoryReplica::default(),
                secret: Arc::new(MasterSecret::known(b"master".to_vec())),
                callbacks: resolving_to(address),
            });
            let response = router.oneshot(with_callback(url)).await.unwrap();
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
            let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            let problem: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(problem["errors"][0]["field"], "callbackUrl", "{problem}");
        }
        assert_eq!(written(&store), (0, 0));
        // A public name is accepted, and the order shows where its outcome will go.
        let router = router(App {
            store: store.clone(),
            replica: MemoryReplica::default(),
            secret: Arc::new(MasterSecret::known(b"master".to_vec())),
            callbacks: resolving_to("93.184.215.14"),
        });
        let response = router
            .oneshot(with_callback("https://hooks.example.com/hook"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let id = serde_json::from_slice::<Value>(&body).unwrap()["orderId"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, _, shown) = send(&store, get_with(&id, &[])).await;
        assert_eq!(shown["callbackUrl"], "https://hooks.example.com/hook");
    }

    #[tokio::test]
    async fn a_valid_order_is_accepted_pending_with_one_outbox_record() {
        let store = MemoryStore::default();
        let (status, headers, body) = send(&store, post(ORDER, None)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(body["status"], "PENDING");
        let id = body["orderId"].as_str().unwrap();
        assert_eq!(headers[header::LOCATION], format!("/orders/{id}"));
        assert_eq!(written(&store), (1, 1));
        store.snapshot(|inner| assert_eq!(inner.outbox[0].detail_type, "OrderCreated"));

        let get = Request::get(format!("/orders/{id}"))
            .body(Body::empty())
            .unwrap();
        let (status, _, order) = send(&store, get).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(order["status"], "PENDING");
        assert_eq!(order["history"][0]["status"], "PENDING");
        assert_eq!(order["lineItems"][0]["quantity"], 2);
    }

    #[tokio::test]
    async fn bad_requests_get_problem_json_and_write_nothing() {
        let store = MemoryStore::default();
        let cases = [
            (post("{", None), 400),
            (post(r#"{"consumerId":1}"#, None), 400),
            (post(&ORDER.replace(":2", ":0"), None), 422),
            (post(ORDER, Some("bad key with spaces")), 400),
            (
                Request::post("/orders").body(Body::from(ORDER)).unwrap(),
                415,
            ),
            (post(&" ".repeat(MAX_BODY_BYTES + 1), None), 413),
            (Request::get("/nowhere").body(Body::empty()).unwrap(), 404),
            (Request::delete("/orders").body(Body::empty()).unwrap(), 405),
        ];
        for (request, expected) in cases {
            let (status, headers, body) = send(&store, request).await;
            assert_eq!(status.as_u16(), expected, "{body}");
            assert_eq!(
                headers[header::CONTENT_TYPE],
                shared::platform::problem::CONTENT_TYPE
            );
            assert_eq!(body["status"], expected);
            assert!(!body["detail"].as_str().unwrap().is_empty());
        }
        assert_eq!(written(&store), (0, 0));
    }

    #[tokio::test]
    async fn unknown_and_malformed_order_ids_are_not_found() {
        let store = MemoryStore::default();
        for id in [Uuid::now_v7().to_string(), "not-a-uuid".into()] {
            let get = Request::get(format!("/orders/{id}"))
                .body(Body::empty())
                .unwrap();
            let (status, _, body) = send(&store, get).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert!(body["detail"].as_str().unwrap().contains(&id));
        }
    }

    #[tokio::test]
    async fn a_retry_with_the_same_key_returns_the_first_order() {
        let store = MemoryStore::default();
        let (_, _, first) = send(&store, post(ORDER, Some("key-1"))).await;
        let reformatted =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(ORDER).unwrap()).unwrap();
        let (status, headers, again) = send(&store, post(&reformatted, Some("key-1"))).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(again, first);
        assert_eq!(headers[IDEMPOTENT_REPLAYED], "true");
        assert_eq!(written(&store), (1, 1));

        let (status, _, problem) =
            send(&store, post(&ORDER.replace(":2", ":3"), Some("key-1"))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["type"], "/problems/idempotency-key-reused");
        assert_eq!(written(&store), (1, 1));
    }

    #[tokio::test]
    async fn the_correlation_id_is_echoed_or_made() {
        let store = MemoryStore::default();
        let request = Request::post("/orders")
            .header("content-type", "application/json; charset=utf-8")
            .header("x-correlation-id", "trace-me")
            .body(Body::from(ORDER))
            .unwrap();
        let (status, headers, _) = send(&store, request).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(headers[CORRELATION_ID], "trace-me");
        store.snapshot(|inner| {
            assert!(
                inner.outbox[0]
                    .detail
                    .contains("\"correlationId\":\"trace-me\"")
            )
        });
        let (_, headers, _) = send(&store, post(ORDER, None)).await;
        assert!(!headers[CORRELATION_ID].is_empty());
    }

    #[tokio::test]
    async fn a_correlation_id_outside_the_documented_form_is_refused() {
        let store = MemoryStore::default();
        let long = "x".repeat(129);
        for bad in ["two words", long.as_str()] {
            let mut request = post(ORDER, None);
            request
                .headers_mut()
                .insert(CORRELATION_ID, HeaderValue::from_str(bad).unwrap());
            let (status, headers, problem) = send(&store, request).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(problem["errors"][0]["field"], "X-Correlation-Id");
            assert_ne!(headers[CORRELATION_ID], bad);
            let get = get_with(&Uuid::now_v7().to_string(), &[("x-correlation-id", bad)]);
            assert_eq!(send(&store, get).await.0, StatusCode::BAD_REQUEST);
        }
        assert_eq!(written(&store), (0, 0));
    }

    #[tokio::test]
    async fn a_consumer_places_orders_for_itself_only_and_an_operator_for_anyone() {
        let store = MemoryStore::default();
        let (status, _, problem) = send(&store, by("consumer-2", &[], post(ORDER, None))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(problem["type"], "/problems/forbidden");
        assert!(problem["detail"].as_str().unwrap().contains("consumer-2"));
        assert_eq!(written(&store), (0, 0));
        let operator = by("ops", &[OPERATOR_SCOPE], post(ORDER, None));
        assert_eq!(send(&store, operator).await.0, StatusCode::ACCEPTED);
        assert_eq!(written(&store), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn another_consumers_order_is_not_found_even_when_waited_on() {
        let store = MemoryStore::default();
        let id = placed(&store).await;
        let started = tokio::time::Instant::now();
        let peek = by("consumer-2", &[], get_with(&id, &[("prefer", "wait=5")]));
        let (status, _, problem) = send(&store, peek).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(problem["detail"], format!("there is no order with id {id}"));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let operator = by("ops", &[OPERATOR_SCOPE], get_with(&id, &[]));
        let (status, _, order) = send(&store, operator).await;
        assert_eq!(
            (status, order["consumerId"].as_str()),
            (StatusCode::OK, Some("consumer-1"))
        );
    }

    #[tokio::test]
    async fn a_request_without_a_verified_identity_is_refused() {
        let store = MemoryStore::default();
        let mut request = post(ORDER, None);
        request
            .extensions_mut()
            .remove::<lambda_http::request::RequestContext>();
        let response = app(&store, MemoryReplica::default())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(written(&store), (0, 0));
    }

    /// A replica that knows consumer-1 (limit 100 EUR) and restaurant-1 (item-1 at 12.50 EUR).
    async fn replica_knowing(suspended: bool, accepting_orders: bool) -> MemoryReplica {
        use crate::domain::replica::Replicated;
        use shared::language::events::{
            ChangeMeta, ConsumerStatus, ConsumerUpdated, MenuItem, RestaurantUpdated,
        };
        let replica = MemoryReplica::default();
        let eur = |amount_minor| Money {
            currency: "EUR".into(),
            amount_minor,
        };
        let consumer = ConsumerUpdated {
            meta: ChangeMeta::new(None),
            consumer_id: "consumer-1".into(),
            version: 1,
            name: "Ada".into(),
            status: if suspended {
                ConsumerStatus::Suspended
            } else {
                ConsumerStatus::Active
            },
            order_limit: Some(eur(10_000)),
        };
        let restaurant = RestaurantUpdated {
            meta: ChangeMeta::new(None),
            restaurant_id: "restaurant-1".into(),
            version: 1,
            name: "Ajanta".into(),
            accepting_orders,
            menu: vec![MenuItem {
                menu_item_id: "item-1".into(),
                name: "Vindaloo".into(),
                price: eur(1250),
                available: true,
            }],
        };
        replica
            .apply(&Replicated::Consumer(consumer))
            .await
            .unwrap();
        replica
            .apply(&Replicated::Restaurant(restaurant))
            .await
            .unwrap();
        replica
    }

    #[tokio::test]
    async fn a_retry_after_the_restaurant_closed_gets_the_first_answer_and_a_new_key_does_not() {
        let store = MemoryStore::default();
        let (status, _, first) = send_to(
            &store,
            replica_knowing(false, true).await,
            post(ORDER, Some("k-1")),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let closed = replica_knowing(false, false).await;
        let (status, headers, again) =
            send_to(&store, closed.clone(), post(ORDER, Some("k-1"))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{again}");
        assert_eq!(headers[IDEMPOTENT_REPLAYED], "true");
        assert_eq!(again["orderId"], first["orderId"]);
        assert_eq!(again["total"], first["total"]);
        // What the replica refuses now is refused for a new key, and for the key with another
        // body; nothing more is written.
        let other = ORDER.replace(":2}", ":3}");
        for (body, key) in [(ORDER, "k-2"), (other.as_str(), "k-1")] {
            let (status, headers, problem) =
                send_to(&store, closed.clone(), post(body, Some(key))).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
            // The body's own refusal: it says what to change.
            assert_eq!(problem["type"], "/problems/invalid-fields");
            assert!(!headers.contains_key(IDEMPOTENT_REPLAYED));
        }
        assert_eq!(written(&store), (1, 1));
    }

    /// A store whose idempotency claims cannot be read.
    #[derive(Clone, Default)]
    struct UnreadableClaims;

    impl Alteration for UnreadableClaims {
        async fn claimed(
            &self,
            _: &MemoryStore,
            _: &IdempotencyClaim,
        ) -> Result<Option<Placement>, crate::ports::orders::StoreError> {
            Err(shared::platform::aws_error::AwsError::coded(
                "DynamoDB.GetItem",
                "ThrottlingException",
                400,
                "throttled",
            )
            .into())
        }
    }

    #[tokio::test]
    async fn a_refusal_that_cannot_check_its_key_is_a_retryable_500_not_a_422() {
        let store = Altered::<UnreadableClaims>::default();
        let app = router(App {
            store: store.clone(),
            replica: replica_knowing(false, false).await,
            secret: Arc::new(MasterSecret::known(b"master".to_vec())),
            callbacks: Callbacks::from_env(),
        });
        let response = app.oneshot(post(ORDER, Some("k-1"))).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        // Without a key there is nothing to check: the refusal stands.
        let app = router(App {
            store,
            replica: replica_knowing(false, false).await,
            secret: Arc::new(MasterSecret::known(b"master".to_vec())),
            callbacks: Callbacks::from_env(),
        });
        let response = app.oneshot(post(ORDER, None)).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[tokio::test]
    async fn an_order_the_replica_knows_is_priced_at_intake() {
        let store = MemoryStore::default();
        let replica = replica_knowing(false, true).await;
        let (status, _, body) = send_to(&store, replica, post(ORDER, None)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(
            body["total"],
            serde_json::json!({"currency": "EUR", "amountMinor": 2500})
        );
        assert_eq!(body["lineItems"][0]["price"]["amountMinor"], 1250);
        store.snapshot(|inner| {
            assert!(
                inner.outbox[0]
                    .detail
                    .contains(r#""total":{"currency":"EUR","amountMinor":2500}"#)
            );
        });
        let (_, _, shown) = send(&store, get_with(body["orderId"].as_str().unwrap(), &[])).await;
        assert_eq!(shown["total"]["amountMinor"], 2500);
    }

    #[tokio::test]
    async fn what_the_replica_proves_wrong_is_refused_with_every_reason_and_nothing_written() {
        let store = MemoryStore::default();
        let replica = replica_knowing(true, false).await;
        let order = r#"{"consumerId":"consumer-1","restaurantId":"restaurant-1",
            "lineItems":[{"menuItemId":"item-1","quantity":100},{"menuItemId":"item-9","quantity":1}]}"#;
        let (status, _, problem) = send_to(&store, replica, post(order, None)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<_> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            fields,
            ["consumerId", "restaurantId", "lineItems[1].menuItemId"]
        );
        assert_eq!(written(&store), (0, 0));
        // Over the limit: 100 x 12.50 EUR is more than 100 EUR.
        let over = r#"{"consumerId":"consumer-1","restaurantId":"restaurant-1",
            "lineItems":[{"menuItemId":"item-1","quantity":9}]}"#;
        let replica = replica_knowing(false, true).await;
        let (status, _, problem) = send_to(&store, replica, post(over, None)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("over consumer consumer-1's limit")
        );
        assert_eq!(written(&store), (0, 0));
    }

    #[tokio::test]
    async fn an_order_the_replica_does_not_know_is_accepted_unpriced() {
        let store = MemoryStore::default();
        let (status, _, body) = send(&store, post(ORDER, None)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert!(body.get("total").is_none());
        store.snapshot(|inner| assert!(!inner.outbox[0].detail.contains("total")));
    }

    #[tokio::test]
    async fn idempotency_keys_are_each_callers_own() {
        let store = MemoryStore::default();
        let first = send(&store, post(ORDER, Some("key-1"))).await.2["orderId"].clone();
        // Another caller's request with the same key and body is a new order, not a replay.
        let operator = by("ops", &[OPERATOR_SCOPE], post(ORDER, Some("key-1")));
        let (status, headers, second) = send(&store, operator).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert!(!headers.contains_key(IDEMPOTENT_REPLAYED));
        assert_ne!(first, second["orderId"]);
        assert_eq!(written(&store), (2, 2));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Whatever the body, the answer is 202 (and the order is stored) or a 4xx in
        /// problem+json (and nothing is stored): never a 5xx, never a panic.
        #[test]
        fn a_hostile_body_gets_a_clear_answer_and_writes_nothing_unless_accepted(
            body in shared::testing::hostile::bodies(serde_json::from_str(ORDER).unwrap()),
        ) {
            let store = MemoryStore::default();
            let request = Request::post("/orders")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (status, headers, _) = runtime.block_on(send(&store, request));
            if status == StatusCode::ACCEPTED {
                proptest::prop_assert_eq!(written(&store), (1, 1));
            } else {
                proptest::prop_assert!(status.is_client_error(), "{}", status);
                proptest::prop_assert_eq!(&headers[header::CONTENT_TYPE], "application/problem+json");
                proptest::prop_assert_eq!(written(&store), (0, 0));
            }
        }
    }
}
