//! In-memory adapters with the same atomicity as DynamoDB's, for the handlers' tests.

pub mod orders;
pub mod replica;
