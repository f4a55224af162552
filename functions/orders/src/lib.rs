//! The order context: the Order aggregate and its state machine, the order API, the outbox
//! and its relay, and the handler of the validators' replies.

pub mod api;
pub mod backoff;
pub mod callback;
pub mod domain;
pub mod dynamo;
pub mod notify;
pub mod outbox;
pub mod relay;
pub mod replies;
pub mod request;
pub mod store;
