//! The deployment's webhook master secret, from which every consumer's signing secret derives
//! (`crate::domain::webhook_secrets`): read when first needed, by whatever reads it.

use std::future::Future;
use std::pin::Pin;

use shared::platform::aws_error::{AwsError, Classified, Retry};

use crate::domain::webhook_secrets::Keyring;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("the webhook secret has no string value")]
    NoString,
}

impl Classified for SecretError {
    fn retry(&self) -> Retry {
        match self {
            SecretError::Aws(call) => call.retry(),
            SecretError::NoString => Retry::Never,
        }
    }
}

type SecretRead = Pin<Box<dyn Future<Output = Result<Vec<u8>, SecretError>> + Send>>;

/// The deployment's master secret, read once, when first needed: most orders have no callback
/// and most requests need no secret, and a cold start need not wait on Secrets Manager for them.
pub struct MasterSecret {
    value: tokio::sync::OnceCell<Vec<u8>>,
    read: Box<dyn Fn() -> SecretRead + Send + Sync>,
}

impl MasterSecret {
    pub fn known(secret: Vec<u8>) -> Self {
        Self::read_with(move || std::future::ready(Ok(secret.clone())))
    }

    /// Read by `read` when first needed; a failed read is tried again the next time.
    pub fn read_with<F, R>(read: F) -> Self
    where
        F: Fn() -> R + Send + Sync + 'static,
        R: Future<Output = Result<Vec<u8>, SecretError>> + Send + 'static,
    {
        Self {
            value: tokio::sync::OnceCell::new(),
            read: Box::new(move || Box::pin(read())),
        }
    }

    pub async fn get(&self) -> Result<Keyring<'_>, SecretError> {
        let value = self.value.get_or_try_init(|| (self.read)()).await?;
        Ok(Keyring(value))
    }
}
