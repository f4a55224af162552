//! Callback URLs as a rule, apart from resolving them: where an order's outcome may be POSTed.
//! A URL that could reach inside the network (SSRF) is refused: every address its host resolves
//! to must be a public unicast one (`special_addresses`), on the https port. Pure: the
//! resolving is the use case's (`crate::app::callbacks`).

use std::net::IpAddr;

use axum::http::Uri;

use crate::domain::special_addresses::refused_range;

/// Longest callback URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// What callbacks may reach. Deployed: `https` to globally reachable addresses only. The local
/// stack also allows loopback (`http` too, any port), where its tests and demos listen, except
/// the ports of the stack itself (its AWS endpoint, API and control port): a callback must not
/// drive the emulator it runs on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub allow_loopback: bool,
    pub stack_ports: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("is over {MAX_URL_CHARS} characters")]
    TooLong,
    #[error("is not an absolute http(s) URL")]
    NotAUrl,
    #[error("must use https")]
    NotHttps,
    #[error("must not carry credentials")]
    Credentials,
    #[error("must use port 443, not {0}")]
    Port(u16),
    #[error("must not reach the local stack's own port {0}")]
    StackPort(u16),
    #[error("host {0} does not resolve")]
    Unresolvable(String),
    #[error("host {host} resolves to {address}, a {range} address")]
    Address {
        host: String,
        address: IpAddr,
        range: &'static str,
    },
}

/// A URL as written, before its host is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub uri: Uri,
    /// Without the brackets of an IPv6 literal.
    pub host: String,
    https: bool,
}

impl Target {
    /// The host when it is an address itself: nothing to resolve.
    pub fn literal(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// A URL that passed the check, with the addresses it was checked at: a delivery connects to
/// one of these, not to whatever the name resolves to a moment later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub uri: Uri,
    pub addresses: Vec<IpAddr>,
}

/// `url` read as a callback target: absolute http(s), no credentials, a port written as it is
/// read.
pub fn parse(url: &str) -> Result<Target, Refused> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(Refused::TooLong);
    }
    let uri: Uri = url.parse().map_err(|_| Refused::NotAUrl)?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(Refused::NotAUrl),
    };
    let authority = uri.authority().ok_or(Refused::NotAUrl)?;
    if authority.as_str().contains('@') {
        return Err(Refused::Credentials);
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return Err(Refused::NotAUrl);
    }
    // A port is digits for a u16, written as they are read (no `:0443`, `:+443`, `:99999`):
    // anything else is no URL, not the default port.
    let port_text = authority.as_str()[authority.host().len()..].strip_prefix(':');
    if port_text.is_some_and(|text| {
        authority.port_u16().map(|port| port.to_string()).as_deref() != Some(text)
    }) {
        return Err(Refused::NotAUrl);
    }
    let host = host.to_owned();
    Ok(Target { uri, host, https })
}

/// The target at the `addresses` its host resolves to (at least one), by `policy`.
pub fn admit(target: Target, addresses: Vec<IpAddr>, policy: &Policy) -> Result<Checked, Refused> {
    let Target { uri, host, https } = target;
    for &address in &addresses {
        if let Some(range) = refused_range(address)
            && !(policy.allow_loopback && address.is_loopback())
        {
            return Err(Refused::Address {
                host,
                address,
                range,
            });
        }
    }
    let local = policy.allow_loopback && addresses.iter().all(IpAddr::is_loopback);
    if !(https || local) {
        return Err(Refused::NotHttps);
    }
    // Only the https port, so that a public host's other services (SSH, databases, admin
    // consoles) are never a callback's target; the local stack's receivers listen where they can.
    let port = uri.port_u16().unwrap_or(443);
    if port != 443 && !local {
        return Err(Refused::Port(port));
    }
    if local && policy.stack_ports.contains(&port) {
        return Err(Refused::StackPort(port));
    }
    Ok(Checked { uri, addresses })
}
