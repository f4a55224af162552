//! Finding a callback host's addresses.

use std::future::Future;
use std::net::IpAddr;

/// Why a host's addresses could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The name does not exist (NXDOMAIN) or has no address records: no retry changes that.
    #[error("does not exist")]
    NoSuchHost,
    /// The resolver failed for now (SERVFAIL, a timeout, unreachable): the next try may pass.
    #[error("could not be resolved for now: {0}")]
    Failed(String),
}

/// Finds the addresses of a host.
pub trait Resolver: Send + Sync {
    fn resolve(&self, host: &str)
    -> impl Future<Output = Result<Vec<IpAddr>, ResolveError>> + Send;
}
