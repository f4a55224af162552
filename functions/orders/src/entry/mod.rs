//! The entry points of the order context other than the Lambda binaries themselves.

pub mod config;
pub mod http;
pub mod sqs;
