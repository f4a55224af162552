//! What the deployed functions read from their environment: the callback policy, and the
//! callbacks checked by it with the system resolver.

use std::sync::Arc;
use std::time::Duration;

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

/// How long `POST /orders` may use a replicated entity it read (`REPLICA_CACHE_SECONDS`, the
/// template's `ReplicaCacheSeconds`; 0 reads the replica for every order). Unset or unreadable:
/// two seconds, the template's default.
pub fn replica_cache_lifetime() -> Duration {
    std::env::var("REPLICA_CACHE_SECONDS")
        .ok()
        .and_then(|seconds| seconds.trim().parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .map_or(Duration::from_secs(2), Duration::from_secs_f64)
}
