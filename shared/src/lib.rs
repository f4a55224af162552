//! What every context shares: the published language (events), AWS client configuration,
//! problem+json errors and log setup. Nothing here knows about any one context's model.

pub mod aws;
pub mod aws_error;
pub mod backoff;
pub mod batch;
pub mod bus;
#[cfg(any(test, feature = "testing"))]
pub mod corpus;
pub mod dead_letter;
pub mod entity_api;
pub mod envelope;
pub mod events;
#[cfg(any(test, feature = "testing"))]
pub mod hostile;
pub mod http;
pub mod identity;
pub mod menu;
pub mod metrics;
pub mod outbox;
pub mod problem;
pub mod table;
pub mod telemetry;
pub mod validation;
pub mod versioned;
