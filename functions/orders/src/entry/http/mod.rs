//! The HTTP API behind API Gateway (HTTP API, payload 2.0): its routes, and what they work with.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use shared::platform::http::{correlation_layer, method_not_allowed};
use shared::platform::problem::Problem;

use crate::app::callbacks::Callbacks;
use crate::ports::master_secret::MasterSecret;
use crate::ports::orders::OrderStore;
use crate::ports::replica::ReplicaStore;
use crate::ports::resolver::Resolver;
use crate::ports::wait_slots::WaitSlots;
use crate::ports::webhook_generations::GenerationStore;

pub mod orders;
pub mod webhook_secret;

/// What the order API works with: the orders, the replica of consumers and restaurants, and how
/// callback URLs are checked.
pub struct App<S, Q, R> {
    pub store: S,
    pub replica: Q,
    pub callbacks: Callbacks<R>,
    /// Consumers' webhook secrets derive from it; read when a request first needs it.
    pub secret: Arc<MasterSecret>,
}

impl<S: Clone, Q: Clone, R> Clone for App<S, Q, R> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            replica: self.replica.clone(),
            callbacks: self.callbacks.clone(),
            secret: Arc::clone(&self.secret),
        }
    }
}

/// Which routes one deployment of the binary serves: OrderApiFunction the writes, and
/// OrderReaderFunction the reads, so that a wait can never hold an instance that takes orders
/// (`ORDER_API_ROUTES=writes|reads`; both when unset, as the tests run it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    All,
    Writes,
    Reads,
}

impl Routes {
    /// A value that is none of these stops the function at its cold start: served as `All`, a
    /// mistyped writes deployment would hold waits again.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("ORDER_API_ROUTES").as_deref() {
            Ok("writes") => Ok(Routes::Writes),
            Ok("reads") => Ok(Routes::Reads),
            Ok("") | Err(std::env::VarError::NotPresent) => Ok(Routes::All),
            Ok(other) => Err(format!(
                "ORDER_API_ROUTES is {other:?}, not writes or reads"
            )),
            Err(e) => Err(format!("ORDER_API_ROUTES: {e}")),
        }
    }
}

pub fn router<S, Q, R>(app: App<S, Q, R>) -> Router
where
    S: OrderStore + GenerationStore + WaitSlots,
    Q: ReplicaStore,
    R: Resolver + 'static,
{
    router_for(app, Routes::All)
}

pub fn router_for<S, Q, R>(app: App<S, Q, R>, routes: Routes) -> Router
where
    S: OrderStore + GenerationStore + WaitSlots,
    Q: ReplicaStore,
    R: Resolver + 'static,
{
    let mut router = Router::new();
    if routes != Routes::Reads {
        router = router
            .route("/orders", post(orders::place_order::<S, Q, R>))
            .route(
                "/consumers/{consumer_id}/webhook-secret",
                get(webhook_secret::get_secret::<S, Q, R>),
            )
            .route(
                "/consumers/{consumer_id}/webhook-secret/rotate",
                post(webhook_secret::rotate_secret::<S, Q, R>),
            );
    }
    router = match routes {
        // `get` answers HEAD too.
        Routes::All | Routes::Reads => {
            router.route("/orders/{order_id}", get(orders::get_order::<S, Q, R>))
        }
        // API Gateway sends the reads elsewhere; the route stays so that another method on an
        // order is still 405, and a read that strays here is never held.
        Routes::Writes => router.route("/orders/{order_id}", get(unknown_route)),
    };
    router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(unknown_route)
        // The body bound is ours (64 KiB, answered as problem+json), not axum's default.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(correlation_layer))
        .with_state(app)
}

async fn unknown_route(uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!(
        "no resource at {}; the API serves POST /orders, GET /orders/{{orderId}}, GET \
         /consumers/{{consumerId}}/webhook-secret and POST \
         /consumers/{{consumerId}}/webhook-secret/rotate",
        uri.path()
    ))
}
