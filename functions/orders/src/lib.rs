//! The order context: the Order aggregate and its state machine, the order API, the handler of
//! the validators' replies, the replicas of consumers and restaurants, outcome notifications.

pub mod api;
pub mod backoff;
pub mod callback;
pub mod domain;
pub mod dynamo;
pub mod notify;
pub mod replica;
pub mod replica_updates;
pub mod replies;
pub mod request;
pub mod special_addresses;
pub mod store;
pub mod timer;
pub mod waits;
pub mod webhook_api;
pub mod webhooks;
