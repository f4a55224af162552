//! The ports' implementations on AWS and the network; in memory for the tests.

pub mod dns;
pub mod dynamo;
pub mod master_secret;
#[cfg(test)]
pub mod memory;
pub mod replica_cache;
pub mod sqs_timers;
pub mod webhook_client;
