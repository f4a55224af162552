//! What every context shares, by kind. Nothing here knows any one context's model.
//!
//! - `language`: the published language: the events that cross a context boundary, the outbox
//!   row that carries them, how a menu prices an order, the rules every input follows, and the
//!   reasons an order is refused, written once for every context that decides them.
//! - `platform`: how a function runs on AWS: SDK clients, errors and retries, the bus, SQS
//!   batches and dead letters, HTTP and problem+json, identity, metrics and logs.
//! - `owners`: the kit of a context that owns entities others replicate and validates orders
//!   against them (consumers, restaurants): versioned writes with their events, their API, and
//!   the validator's loop.
//! - `testing` (feature `testing`, never in a Lambda): AWS's captured event shapes, hostile
//!   inputs for property tests, the published language's fixtures. The in-memory adapters of
//!   the ports above sit beside their ports (`owners::versioned::MemoryVersionedStore`,
//!   `platform::dead_letter::memory`), behind the same feature.

pub mod language {
    pub mod events;
    pub mod input;
    pub mod menu;
    pub mod outbox;
    pub mod refusals;
}

pub mod platform {
    pub mod aws;
    pub mod aws_error;
    pub mod backoff;
    pub mod batch;
    pub mod bus;
    pub mod dead_letter;
    pub mod envelope;
    pub mod http;
    pub mod identity;
    pub mod metrics;
    pub mod problem;
    pub mod table;
    pub mod telemetry;
}

pub mod owners {
    pub mod entity_api;
    pub mod validation;
    pub mod versioned;
}

#[cfg(any(test, feature = "testing"))]
pub mod testing {
    pub mod corpus;
    pub mod fixtures;
    pub mod hostile;
}
