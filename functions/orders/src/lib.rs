//! The order context, in layers: `domain` (the Order aggregate, its state machine and the rules
//! an order is checked by: pure), `app` (the use cases: place an order, follow it, apply a
//! validator's reply, start its deadline, deliver its outcome, update the replica), `ports`
//! (what the use cases need from the world), `adapters` (DynamoDB, SQS, Secrets Manager, the
//! resolver, the webhook client; in memory for tests), `entry` (the HTTP routes). The Lambda
//! entry points in `src/bin` compose them.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod entry;
pub mod ports;
