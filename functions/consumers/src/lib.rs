//! The consumer context: who may order, and up to what amount. It answers `OrderCreated` with
//! `ConsumerValidated` or `ConsumerValidationFailed`.

pub mod domain;
pub mod validator;
