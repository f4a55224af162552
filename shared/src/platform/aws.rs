//! AWS SDK configuration, read once per cold start from the environment.

pub use aws_config::SdkConfig;

/// A function's configuration, in Lambda's environment: the region and the execution role's
/// credentials are environment variables there (`AWS_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`: Lambda Developer Guide, "Defined runtime
/// environment variables"), and these two are read from them alone: the SDK's default chains
/// would build profile, web identity, ECS and IMDS providers at every cold start only to take
/// the environment's (docs/benchmarks.md, "Init"). Only SnapStart hands credentials otherwise
/// (a container endpoint, `AWS_CONTAINER_CREDENTIALS_FULL_URI`), and it is for Lambda's managed
/// Java, Python and .NET runtimes, not `provided.al2023`. Everything else is loaded the way the SDK
/// documents: `AWS_ENDPOINT_URL` (and the per-service `AWS_ENDPOINT_URL_<SERVICE>`) redirects
/// every client, which is how the local stack points the real SDK at the emulator.
pub async fn sdk_config() -> SdkConfig {
    use aws_config::environment::{
        EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
    };
    configured()
        .region(EnvironmentVariableRegionProvider::new())
        .credentials_provider(EnvironmentVariableCredentialsProvider::new())
        .load()
        .await
}

/// An operator's configuration (`orderctl`): region and credentials from the SDK's default
/// chains, so a named profile with keys or a role to assume works (not SSO or
/// `credential_process`: those features of aws-config are not built).
pub async fn sdk_config_from_default_chains() -> SdkConfig {
    configured().load().await
}

/// Throttles (`ProvisionedThroughputExceededException`, `ThrottlingException`) and 5xx answers
/// are retried by the SDK itself, with exponential backoff and full jitter. Its defaults (3
/// attempts, backoff up to 20 s) suit neither a Lambda with a 10 s timeout nor a burst of
/// throttles: here 5 attempts, starting at 25 ms and never waiting more than 1 s.
fn configured() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(retry_config())
        .http_client(https_client())
}

/// The roots AWS's service endpoints chain to: Amazon Trust Services' four and the Starfield
/// root that cross-signs them (<https://www.amazontrust.com/repository/>; AWS moved its
/// endpoints' certificates to them, DynamoDB among the first). Copied from Debian's
/// ca-certificates (Mozilla's store); the comments name each.
const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("../../certs/amazon-trust-services.pem");

/// HTTPS as the SDK's default client does it (rustls on aws-lc), trusting only
/// [`AMAZON_TRUST_SERVICES`]: five roots compiled in instead of the system's ~150 read and
/// parsed at every cold start, which was most of the functions' init over a bare Lambda's
/// (docs/benchmarks.md). An endpoint with another issuer (`AWS_ENDPOINT_URL` at a TLS proxy)
/// is refused; the local stack speaks plain HTTP.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let roots = TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES);
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(roots)
                .build()
                .expect("a trust store of PEM certificates is a valid TLS context"),
        )
        .build_https()
}

pub fn retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(5)
        .with_initial_backoff(std::time::Duration::from_millis(25))
        .with_max_backoff(std::time::Duration::from_secs(1))
}

#[cfg(test)]
mod trust_store_tests {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn the_compiled_in_roots_are_the_five_amazon_trust_services_roots_and_all_parse() {
        let certs: Vec<CertificateDer> =
            CertificateDer::pem_slice_iter(super::AMAZON_TRUST_SERVICES)
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(certs.len(), 5);
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs {
            roots.add(cert).unwrap();
        }
        assert_eq!(roots.len(), 5);
    }
}

/// Reads a required environment variable (a table or bus name set by the template).
pub fn required_env(name: &str) -> Result<String, MissingEnv> {
    std::env::var(name).map_err(|_| MissingEnv(name.to_owned()))
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set; the template sets it for every function")]
pub struct MissingEnv(pub String);

/// Clients of each service this system calls, every one counting its requests ([`calls`]).
pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(config).interceptor(calls::Counter);
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

pub fn sqs(config: &SdkConfig) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::config::Builder::from(config).interceptor(calls::Counter);
    aws_sdk_sqs::Client::from_conf(config.build())
}

pub fn eventbridge(config: &SdkConfig) -> aws_sdk_eventbridge::Client {
    let config = aws_sdk_eventbridge::config::Builder::from(config).interceptor(calls::Counter);
    aws_sdk_eventbridge::Client::from_conf(config.build())
}

/// The AWS requests an invocation made, counted where the SDK sends them: each attempt is a
/// billed request, so retries count. An invocation's tally goes out in its record
/// ([`crate::platform::metrics::Recorded`]: the total as the metric `AwsRequests`, each operation
/// as a log field): requests per order, and so cost, is a production metric.
pub mod calls {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::interceptors::Intercept;
    use aws_smithy_runtime_api::client::interceptors::context::{
        BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
        FinalizerInterceptorContextRef,
    };
    use aws_smithy_runtime_api::client::orchestrator::Metadata;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

    /// One operation's requests (attempts) and the time its calls took, retries and backoff
    /// included.
    #[derive(Debug, Clone, Copy, Default, PartialEq)]
    pub struct Tally {
        pub requests: u64,
        pub time: Duration,
    }

    /// Tallies by "Service.Operation" (`DynamoDB.TransactWriteItems`).
    pub type Tallies = BTreeMap<String, Tally>;

    static TALLIES: Mutex<Tallies> = Mutex::new(BTreeMap::new());

    /// What was called since the last take. A Lambda instance serves one invocation at a time,
    /// so taken at the end of an invocation it is that invocation's.
    pub fn take() -> Tallies {
        std::mem::take(&mut *TALLIES.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn add(cfg: &ConfigBag, requests: u64, time: Duration) {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return;
        };
        let key = format!("{}.{}", metadata.service(), metadata.name());
        let mut tallies = TALLIES.lock().unwrap_or_else(|e| e.into_inner());
        let tally = tallies.entry(key).or_default();
        tally.requests += requests;
        tally.time += time;
    }

    #[derive(Debug, Clone, Copy)]
    struct Started(Instant);

    impl Storable for Started {
        type Storer = StoreReplace<Self>;
    }

    /// The interceptor every client in this system carries.
    #[derive(Debug)]
    pub struct Counter;

    impl Intercept for Counter {
        fn name(&self) -> &'static str {
            "CountRequests"
        }

        fn read_before_execution(
            &self,
            _context: &BeforeSerializationInterceptorContextRef<'_>,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            cfg.interceptor_state().store_put(Started(Instant::now()));
            Ok(())
        }

        fn read_before_attempt(
            &self,
            _context: &BeforeTransmitInterceptorContextRef<'_>,
            _runtime_components: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            add(cfg, 1, Duration::ZERO);
            Ok(())
        }

        fn read_after_execution(
            &self,
            _context: &FinalizerInterceptorContextRef<'_>,
            _runtime_components: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let took = cfg.load::<Started>().map(|s| s.0.elapsed());
            add(cfg, 0, took.unwrap_or_default());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::{Credentials, Region, SharedCredentialsProvider};

    #[tokio::test]
    async fn each_attempt_is_counted_under_its_service_and_operation() {
        // Nothing listens on port 1: every attempt fails to connect and the SDK retries it.
        let config = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKID", "secret", None, None, "test",
            )))
            .endpoint_url("http://127.0.0.1:1")
            .retry_config(
                retry_config()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(1)),
            )
            .build();
        let client = dynamodb(&config);
        let answer = client.get_item().table_name("t").send().await;

        assert!(answer.is_err());
        let tallies = calls::take();
        let tally = tallies["DynamoDB.GetItem"];
        assert_eq!(tally.requests, 3);
        assert!(tally.time > std::time::Duration::ZERO);
        assert!(calls::take().is_empty(), "a take empties the tally");
    }
}
