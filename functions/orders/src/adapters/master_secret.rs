//! The webhook master secret from Secrets Manager (`WebhookMasterSecret` in the template).

use shared::platform::aws_error::AwsError;

use crate::ports::master_secret::{MasterSecret, SecretError};

impl MasterSecret {
    /// The secret named by `WEBHOOK_SECRET_ARN`, from Secrets Manager. The client is built at
    /// the first read, not at the cold start (most instances never read the secret), and kept
    /// for the reads after a failed one.
    pub fn from_env(
        config: &shared::platform::aws::SdkConfig,
    ) -> Result<Self, shared::platform::aws::MissingEnv> {
        let config = config.clone();
        let client = std::sync::OnceLock::new();
        let secret_id = shared::platform::aws::required_env("WEBHOOK_SECRET_ARN")?;
        Ok(Self::read_with(move || {
            let secrets = client
                .get_or_init(|| {
                    let config = aws_sdk_secretsmanager::config::Builder::from(&config)
                        .interceptor(shared::platform::aws::calls::Counter)
                        .build();
                    aws_sdk_secretsmanager::Client::from_conf(config)
                })
                .clone();
            let secret_id = secret_id.clone();
            async move {
                let answer = secrets
                    .get_secret_value()
                    .secret_id(secret_id)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("SecretsManager.GetSecretValue", e))?;
                let value = answer.secret_string.map(String::into_bytes);
                value.ok_or(SecretError::NoString)
            }
        }))
    }
}
