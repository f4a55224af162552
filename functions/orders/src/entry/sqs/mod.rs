//! The SQS-triggered functions' messages, read and handed to their use cases through the one
//! batch processor (`shared::platform::batch`).

pub mod outcomes;
pub mod replica_updates;
pub mod replies;
