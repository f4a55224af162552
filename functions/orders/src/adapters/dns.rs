//! The system's resolver as the resolver port.

use std::net::IpAddr;

use crate::ports::resolver::{ResolveError, Resolver};

/// The system's resolver (Lambda's VPC resolver, or the machine's), through `getaddrinfo`,
/// whose error kind tells a name that does not exist from a resolver that failed.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let name = host.to_owned();
        // getaddrinfo blocks: on a blocking thread, abandoned past `check`'s timeout (the thread
        // runs on until the system resolver gives up, one per delivery at most).
        match tokio::task::spawn_blocking(move || lookup(&name)).await {
            Ok(found) => found,
            Err(gone) => Err(ResolveError::Failed(gone.to_string())),
        }
    }
}

fn lookup(host: &str) -> Result<Vec<IpAddr>, ResolveError> {
    use dns_lookup::{AddrInfoHints, LookupErrorKind, SockType};
    let hints = AddrInfoHints {
        socktype: SockType::Stream.into(),
        ..AddrInfoHints::default()
    };
    let found =
        dns_lookup::getaddrinfo(Some(host), None, Some(hints)).map_err(|e| match e.kind() {
            LookupErrorKind::NoName | LookupErrorKind::NoData => ResolveError::NoSuchHost,
            _ => ResolveError::Failed(std::io::Error::from(e).to_string()),
        })?;
    let addresses = found
        .map(|info| info.map(|info| info.sockaddr.ip()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ResolveError::Failed(e.to_string()))?;
    match addresses.is_empty() {
        true => Err(ResolveError::NoSuchHost),
        false => Ok(addresses),
    }
}
