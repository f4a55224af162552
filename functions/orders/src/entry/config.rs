//! What the deployed functions read from their environment: the callback policy, and the
//! callbacks checked by it with the system resolver.

use std::sync::Arc;

use crate::adapters::dns::SystemResolver;
use crate::app::callbacks::Callbacks;
use crate::domain::callback_urls::Policy;

/// The deployed policy, unless `ALLOW_LOOPBACK_CALLBACKS=true` (the local stack's, which names
/// its own ports in `LOCAL_STACK_PORTS`, comma-separated).
pub fn callback_policy() -> Policy {
    Policy {
        allow_loopback: std::env::var("ALLOW_LOOPBACK_CALLBACKS").as_deref() == Ok("true"),
        stack_ports: std::env::var("LOCAL_STACK_PORTS")
            .unwrap_or_default()
            .split(',')
            .filter_map(|port| port.trim().parse().ok())
            .collect(),
    }
}

impl Callbacks<SystemResolver> {
    /// The policy the environment sets (`callback_policy`), the system resolver.
    pub fn from_env() -> Self {
        Self {
            policy: callback_policy(),
            resolver: Arc::new(SystemResolver),
        }
    }
}
