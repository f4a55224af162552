//! Checking a callback URL: the rule (`crate::domain::callback_urls`) applied to the addresses
//! its host resolves to now. The check runs when the order is placed and again before each
//! delivery, because what a name resolves to can change in between. The resolver is a port
//! (`crate::ports::resolver`), so tests never touch the network.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::callback_urls::{self, Checked, Policy, Refused};
use crate::ports::resolver::{ResolveError, Resolver};

/// How callback URLs are checked: the policy, and the resolver their hosts are looked up with.
pub struct Callbacks<R> {
    pub policy: Policy,
    pub resolver: Arc<R>,
}

// By hand: the resolver is shared, not cloned, so it need not be `Clone` itself.
impl<R> Clone for Callbacks<R> {
    fn clone(&self) -> Self {
        Self {
            policy: self.policy.clone(),
            resolver: Arc::clone(&self.resolver),
        }
    }
}

impl<R: Resolver> Callbacks<R> {
    /// Checks `url` by this policy, resolving its host with this resolver.
    pub async fn check(&self, url: &str) -> Result<Checked, CheckError> {
        check(url, &self.policy, self.resolver.as_ref()).await
    }
}

/// How long a name may take to resolve: within the notifier's budget with the delivery's
/// own timeout, and well within an API request's.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a URL did not pass its check: refused for good, or not checkable for now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("callback URL refused: it {0}")]
    Refused(#[from] Refused),
    #[error("callback host {host} {error}")]
    Unresolved { host: String, error: ResolveError },
}

pub async fn check<R: Resolver>(
    url: &str,
    policy: &Policy,
    resolver: &R,
) -> Result<Checked, CheckError> {
    let target = callback_urls::parse(url)?;
    let addresses = match target.literal() {
        Some(literal) => vec![literal],
        None => match resolve_in_time(resolver, &target.host).await {
            Ok(found) if !found.is_empty() => found,
            Ok(_) | Err(ResolveError::NoSuchHost) => {
                return Err(Refused::Unresolvable(target.host).into());
            }
            Err(error) => {
                let host = target.host;
                return Err(CheckError::Unresolved { host, error });
            }
        },
    };
    Ok(callback_urls::admit(target, addresses, policy)?)
}

async fn resolve_in_time<R: Resolver>(
    resolver: &R,
    host: &str,
) -> Result<Vec<IpAddr>, ResolveError> {
    match tokio::time::timeout(RESOLVE_TIMEOUT, resolver.resolve(host)).await {
        Ok(found) => found,
        Err(_) => Err(ResolveError::Failed(format!(
            "no answer within {} s",
            RESOLVE_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::callback_urls::MAX_URL_CHARS;
    use std::collections::HashMap;

    /// A resolver that answers from a table, so no test ever sends a packet: a name not in it
    /// does not exist, `servfail.example.com` fails and `slow.example.com` never answers.
    #[derive(Default)]
    struct Stub(HashMap<&'static str, Vec<IpAddr>>);

    impl Resolver for Stub {
        async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
            match host {
                "servfail.example.com" => Err(ResolveError::Failed("SERVFAIL".into())),
                "slow.example.com" => std::future::pending().await,
                _ => self.0.get(host).cloned().ok_or(ResolveError::NoSuchHost),
            }
        }
    }

    /// The check, for tests of what it refuses.
    async fn check<R: Resolver>(
        url: &str,
        policy: &Policy,
        resolver: &R,
    ) -> Result<Checked, Refused> {
        super::check(url, policy, resolver)
            .await
            .map_err(|e| match e {
                CheckError::Refused(refused) => refused,
                other => panic!("{url}: {other}"),
            })
    }

    #[tokio::test(start_paused = true)]
    async fn a_resolver_failing_or_silent_for_now_is_not_a_refusal() {
        let failed =
            super::check("https://servfail.example.com/", DEPLOYED, &Stub::default()).await;
        assert_eq!(
            failed.unwrap_err().to_string(),
            "callback host servfail.example.com could not be resolved for now: SERVFAIL"
        );
        let silent = super::check("https://slow.example.com/", DEPLOYED, &Stub::default()).await;
        assert_eq!(
            silent.unwrap_err().to_string(),
            "callback host slow.example.com could not be resolved for now: no answer within 3 s"
        );
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const DEPLOYED: &Policy = &Policy {
        allow_loopback: false,
        stack_ports: Vec::new(),
    };
    const LOCAL: &Policy = &Policy {
        allow_loopback: true,
        stack_ports: Vec::new(),
    };

    #[tokio::test]
    async fn a_public_https_url_passes_with_the_addresses_it_was_checked_at() {
        let resolver = Stub(HashMap::from([(
            "hooks.example.com",
            vec![ip("93.184.215.14"), ip("2606:4700::1111")],
        )]));
        let checked = check("https://hooks.example.com/orders?x=1", DEPLOYED, &resolver)
            .await
            .unwrap();
        assert_eq!(checked.addresses.len(), 2);
        assert_eq!(checked.uri.path(), "/orders");
    }

    #[tokio::test]
    async fn a_name_with_any_refused_address_is_refused() {
        let resolver = Stub(HashMap::from([
            (
                "inside.example.com",
                vec![ip("93.184.215.14"), ip("10.0.0.7")],
            ),
            ("metadata.example.com", vec![ip("169.254.169.254")]),
            ("v6.example.com", vec![ip("fd00:ec2::254")]),
        ]));
        for (url, range) in [
            ("https://inside.example.com/", "private-use"),
            ("https://metadata.example.com/", "instance metadata"),
            ("https://v6.example.com/", "instance metadata"),
            ("https://10.1.1.1/", "private-use"),
            ("https://[2002:a9fe:a9fe::1]/", "6to4"),
            ("https://[64:ff9b::a9fe:a9fe]/", "instance metadata"),
            ("https://[::1]:8443/", "loopback"),
            ("https://[fe80::1]/", "link-local"),
        ] {
            match check(url, DEPLOYED, &resolver).await {
                Err(Refused::Address { range: found, .. }) => assert_eq!(found, range, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        assert_eq!(
            check("https://nowhere.example.com/", DEPLOYED, &resolver).await,
            Err(Refused::Unresolvable("nowhere.example.com".into()))
        );
    }

    #[tokio::test]
    async fn malformed_plain_http_and_credentials_are_refused() {
        let resolver = Stub(HashMap::from([(
            "hooks.example.com",
            vec![ip("93.184.215.14")],
        )]));
        for (url, refused) in [
            ("hooks.example.com/x", Refused::NotAUrl),
            ("ftp://hooks.example.com/", Refused::NotAUrl),
            ("not a url", Refused::NotAUrl),
            ("http://hooks.example.com/", Refused::NotHttps),
            (
                "https://user:secret@hooks.example.com/",
                Refused::Credentials,
            ),
            ("https://hooks.example.com:8443/", Refused::Port(8443)),
            ("https://hooks.example.com:99999/", Refused::NotAUrl),
            ("https://hooks.example.com:0443/", Refused::NotAUrl),
            ("https://hooks.example.com:abc/", Refused::NotAUrl),
            ("https://[2606:4700::1]:8443/", Refused::Port(8443)),
            ("https://hooks.example.com:22/", Refused::Port(22)),
        ] {
            assert_eq!(check(url, DEPLOYED, &resolver).await, Err(refused), "{url}");
        }
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert_eq!(
            check(&long, DEPLOYED, &resolver).await,
            Err(Refused::TooLong)
        );
    }

    #[tokio::test]
    async fn the_local_stack_allows_loopback_over_http_and_nothing_else_more() {
        let resolver = Stub(HashMap::from([
            ("localhost", vec![ip("127.0.0.1"), ip("::1")]),
            (
                "mixed.example.com",
                vec![ip("127.0.0.1"), ip("93.184.215.14")],
            ),
        ]));
        assert!(
            check("http://127.0.0.1:9000/hook", LOCAL, &resolver)
                .await
                .is_ok()
        );
        assert!(
            check("http://localhost:9000/hook", LOCAL, &resolver)
                .await
                .is_ok()
        );
        assert!(matches!(
            check("http://127.0.0.1:9000/hook", DEPLOYED, &resolver).await,
            Err(Refused::Address {
                range: "loopback",
                ..
            })
        ));
        // Loopback does not open plain http to public addresses, nor any other range.
        assert_eq!(
            check("http://mixed.example.com/", LOCAL, &resolver).await,
            Err(Refused::NotHttps)
        );
        assert!(matches!(
            check("http://10.0.0.1/", LOCAL, &resolver).await,
            Err(Refused::Address {
                range: "private-use",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn the_local_stack_refuses_its_own_ports() {
        let resolver = Stub(HashMap::from([("localhost", vec![ip("127.0.0.1")])]));
        let local = Policy {
            allow_loopback: true,
            stack_ports: vec![4566, 3999],
        };
        for url in ["http://127.0.0.1:4566/", "http://localhost:3999/functions"] {
            let port = url.split(':').nth(2).unwrap()[..4].parse().unwrap();
            assert_eq!(
                check(url, &local, &resolver).await,
                Err(Refused::StackPort(port)),
                "{url}"
            );
        }
        assert!(
            check("http://127.0.0.1:4567/", &local, &resolver)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_name_whose_address_changed_after_submission_is_refused_at_delivery() {
        let before = Stub(HashMap::from([(
            "hooks.example.com",
            vec![ip("93.184.215.14")],
        )]));
        let after = Stub(HashMap::from([(
            "hooks.example.com",
            vec![ip("192.168.0.10")],
        )]));
        let url = "https://hooks.example.com/orders";
        assert!(check(url, DEPLOYED, &before).await.is_ok());
        assert!(matches!(
            check(url, DEPLOYED, &after).await,
            Err(Refused::Address {
                range: "private-use",
                ..
            })
        ));
    }
}
