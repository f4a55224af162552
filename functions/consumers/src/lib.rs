//! The consumer context: who may order, and up to what amount. It owns its consumers (`api`:
//! `PUT`/`GET /consumers/{id}`, each change published as `ConsumerUpdated`) and answers
//! `OrderCreated` with `ConsumerValidated` or `ConsumerValidationFailed`.

pub mod api;
pub mod domain;
pub mod validator;
