//! What the use cases need from the world, as traits (and the master secret, read through a
//! closure): each has a DynamoDB, SQS or HTTP adapter, and an in-memory one for tests.

pub mod deliverer;
pub mod master_secret;
pub mod orders;
pub mod replica;
pub mod resolver;
pub mod timers;
pub mod wait_slots;
pub mod webhook_generations;
