//! The webhook master secret from Secrets Manager (`WebhookMasterSecret` in the template).

use shared::platform::aws_error::AwsError;

use crate::ports::master_secret::{MasterSecret, SecretError};

impl MasterSecret {
    /// The secret named by `WEBHOOK_SECRET_ARN`, from Secrets Manager.
    pub fn from_env(
        config: &shared::platform::aws::SdkConfig,
    ) -> Result<Self, shared::platform::aws::MissingEnv> {
        let secrets = aws_sdk_secretsmanager::config::Builder::from(config)
            .interceptor(shared::platform::aws::calls::Counter)
            .build();
        let secrets = aws_sdk_secretsmanager::Client::from_conf(secrets);
        let secret_id = shared::platform::aws::required_env("WEBHOOK_SECRET_ARN")?;
        Ok(Self::read_with(move || {
            let (secrets, secret_id) = (secrets.clone(), secret_id.clone());
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
