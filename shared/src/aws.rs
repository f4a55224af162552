//! AWS SDK configuration, read once per cold start from the environment.

pub use aws_config::SdkConfig;

/// Loads region, credentials and endpoint from the environment the way the SDK documents:
/// `AWS_ENDPOINT_URL` (and the per-service `AWS_ENDPOINT_URL_<SERVICE>`) redirects every client,
/// which is how the local stack points the real SDK at the emulator.
pub async fn sdk_config() -> SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Reads a required environment variable (a table or bus name set by the template).
pub fn required_env(name: &str) -> Result<String, MissingEnv> {
    std::env::var(name).map_err(|_| MissingEnv(name.to_owned()))
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set; the template sets it for every function")]
pub struct MissingEnv(pub String);
