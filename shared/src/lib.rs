//! What every context shares: the published language (events), AWS client configuration,
//! problem+json errors and log setup. Nothing here knows about any one context's model.

pub mod aws;
pub mod events;
pub mod problem;
pub mod telemetry;
