//! AWS SDK configuration, read once per cold start from the environment.

pub use aws_config::SdkConfig;

/// Loads region, credentials and endpoint from the environment the way the SDK documents:
/// `AWS_ENDPOINT_URL` (and the per-service `AWS_ENDPOINT_URL_<SERVICE>`) redirects every client,
/// which is how the local stack points the real SDK at the emulator.
///
/// Throttles (`ProvisionedThroughputExceededException`, `ThrottlingException`) and 5xx answers
/// are retried by the SDK itself, with exponential backoff and full jitter. Its defaults (3
/// attempts, backoff up to 20 s) suit neither a Lambda with a 10 s timeout nor a burst of
/// throttles: here 5 attempts, starting at 25 ms and never waiting more than 1 s.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(retry_config())
        .load()
        .await
}

pub fn retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(5)
        .with_initial_backoff(std::time::Duration::from_millis(25))
        .with_max_backoff(std::time::Duration::from_secs(1))
}

/// Reads a required environment variable (a table or bus name set by the template).
pub fn required_env(name: &str) -> Result<String, MissingEnv> {
    std::env::var(name).map_err(|_| MissingEnv(name.to_owned()))
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set; the template sets it for every function")]
pub struct MissingEnv(pub String);
