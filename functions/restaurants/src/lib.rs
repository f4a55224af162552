//! The restaurant context: restaurants, their menus and prices. It answers `OrderCreated` with
//! `OrderDetailsValidated` (priced from its own menu) or `OrderDetailsValidationFailed`.

pub mod domain;
pub mod validator;
