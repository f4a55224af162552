//! The restaurant context: restaurants, their menus and prices. It owns its restaurants (`api`:
//! `PUT`/`GET /restaurants/{id}`, each change published as `RestaurantUpdated`) and answers
//! `OrderCreated` with `OrderDetailsValidated` (priced from its own menu) or
//! `OrderDetailsValidationFailed`.

pub mod api;
pub mod domain;
pub mod validator;
