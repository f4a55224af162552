//! The order context's model and rules: no I/O, no clock (the caller passes the time).

pub mod callback_urls;
pub mod intake;
pub mod order;
pub mod replica;
pub mod special_addresses;
pub mod webhook_secrets;
